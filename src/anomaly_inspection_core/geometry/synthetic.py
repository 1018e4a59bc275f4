"""Analytic ray casting of planes and cylinders with planted surface defects.

Used by tests and benchmarks of localisation and fusion: exact depth, exact ground-truth
masks and exact defect positions, without a simulator. A defect is a disc of a given radius
on a surface (points of the surface within that 3D distance of its centre).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from anomaly_inspection_core.geometry.camera import CameraIntrinsics, Pose


@dataclass(frozen=True)
class PlaneSurface:
    """Infinite plane through ``point`` with unit ``normal``."""

    point: np.ndarray
    normal: np.ndarray

    def intersect(self, origins: np.ndarray, dirs: np.ndarray) -> np.ndarray:
        """Ray parameter t of the first hit (inf when none) for rays ``o + t d``."""
        n = np.asarray(self.normal, float) / np.linalg.norm(self.normal)
        denom = dirs @ n
        with np.errstate(divide="ignore", invalid="ignore"):
            t = ((np.asarray(self.point, float) - origins) @ n) / denom
        return np.where((np.abs(denom) > 1e-12) & (t > 0), t, np.inf)


@dataclass(frozen=True)
class CylinderSurface:
    """Finite cylinder (outer surface only) from ``start`` to ``end`` with ``radius``."""

    start: np.ndarray
    end: np.ndarray
    radius: float

    def intersect(self, origins: np.ndarray, dirs: np.ndarray) -> np.ndarray:
        a = np.asarray(self.start, float)
        axis = np.asarray(self.end, float) - a
        length = np.linalg.norm(axis)
        axis = axis / length
        oc = origins - a
        d_perp = dirs - np.outer(dirs @ axis, axis)
        o_perp = oc - np.outer(oc @ axis, axis)
        qa = np.einsum("ij,ij->i", d_perp, d_perp)
        qb = 2.0 * np.einsum("ij,ij->i", d_perp, o_perp)
        qc = np.einsum("ij,ij->i", o_perp, o_perp) - self.radius ** 2
        disc = qb * qb - 4 * qa * qc
        with np.errstate(invalid="ignore", divide="ignore"):
            t = (-qb - np.sqrt(disc)) / (2 * qa)
        hit = (disc >= 0) & (qa > 1e-12) & (t > 0)
        s = np.einsum("ij,j->i", oc + dirs * np.where(hit, t, 0)[:, None], axis)
        hit &= (s >= 0) & (s <= length)
        return np.where(hit, t, np.inf)

    def normal_at(self, point: np.ndarray) -> np.ndarray:
        a = np.asarray(self.start, float)
        axis = np.asarray(self.end, float) - a
        axis /= np.linalg.norm(axis)
        r = np.asarray(point, float) - a
        r = r - (r @ axis) * axis
        return r / np.linalg.norm(r)


def render_depth(
    surfaces: list, intrinsics: CameraIntrinsics, pose: Pose,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """z-depth image (NaN where nothing is hit), map-frame hit points (H, W, 3), surface index."""
    rays_cam = intrinsics.pixel_rays().reshape(-1, 3)  # z = 1
    dirs = rays_cam @ pose.rotation.T
    origins = np.broadcast_to(pose.position, dirs.shape)
    ts = np.stack([s.intersect(origins, dirs) for s in surfaces], axis=0)
    which = np.argmin(ts, axis=0)
    t = ts[which, np.arange(ts.shape[1])]
    hit = np.isfinite(t)
    depth = np.where(hit, t, np.nan)  # rays have z = 1 in the camera frame: t is z-depth
    points = origins + dirs * np.where(hit, t, 0.0)[:, None]
    shape = (intrinsics.height, intrinsics.width)
    return (depth.reshape(shape).astype(np.float32), points.reshape(shape + (3,)),
            np.where(hit, which, -1).reshape(shape))


def defect_mask(points: np.ndarray, surface_index: np.ndarray, centre: np.ndarray, radius: float,
                on_surface: int | None = None) -> np.ndarray:
    """Pixels whose hit point lies within ``radius`` of ``centre`` (optionally on one surface)."""
    d = np.linalg.norm(points - np.asarray(centre, float), axis=-1)
    mask = (d <= radius) & (surface_index >= 0)
    if on_surface is not None:
        mask &= surface_index == on_surface
    return mask


def gaussian_anomaly_map(points: np.ndarray, surface_index: np.ndarray,
                         defects: list[tuple[np.ndarray, float, float]]) -> np.ndarray:
    """Normalised anomaly map: per defect (centre, radius, peak) a 3D Gaussian bump.

    The bump's width is chosen so that it crosses 0.5 (the threshold) exactly at the defect's
    radius when ``peak`` > 0.5: thresholding the map recovers the disc.
    """
    amap = np.zeros(points.shape[:2], dtype=np.float32)
    valid = surface_index >= 0
    for centre, radius, peak in defects:
        d2 = np.sum((points - np.asarray(centre, float)) ** 2, axis=-1)
        sigma2 = radius ** 2 / (2.0 * np.log(2.0 * peak)) if peak > 0.5 else radius ** 2
        amap = np.maximum(amap, np.where(valid, peak * np.exp(-d2 / (2 * sigma2)), 0.0))
    return amap.astype(np.float32)
