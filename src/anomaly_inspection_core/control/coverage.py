"""Inspection coverage: the share of a part's surface that a set of camera views sees well.

The part's visible surface (the faces of a box except the one standing on the table; the side
and top of a vertical cylinder) is sampled on a regular grid of equal-area cells. A cell counts
as seen by a view when its centre

* projects inside the image, in front of the camera and within the camera's range,
* faces the camera (back-face test) with an incidence angle (between the surface normal and
  the direction to the camera) of at most ``max_incidence_deg``,
* is imaged at a resolution of at least ``min_px_per_cm`` pixels per centimetre
  (``f * 0.01 / depth``).

Occlusion is handled by the back-face test alone. That is exact for a single convex part (a
box, a cylinder) on a table seen from above the table: no other face of the part can hide a
face that looks at the camera. Non-convex parts or clutter between the camera and the part
need a ray cast, which this module does not do.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..geometry.camera import CameraIntrinsics, Pose
from ..scenario.schema import BoxSpec, CylinderSpec


@dataclass(frozen=True)
class SurfaceSamples:
    """Equal-area surface cells: centres (N,3), outward normals (N,3), areas (N,), face labels (N,)."""

    points: np.ndarray
    normals: np.ndarray
    areas: np.ndarray
    faces: np.ndarray
    face_names: tuple[str, ...]

    @property
    def total_area(self) -> float:
        return float(self.areas.sum())


@dataclass(frozen=True)
class CoverageResult:
    """Coverage of a part by a set of views.

    ``fraction`` is the share of the sampled surface area seen by at least one view (by at
    least ``min_views`` when :func:`compute_coverage` was given more);
    ``per_face`` the same share per face; ``per_view`` the share each view sees on its own;
    ``views_per_sample`` how many views see each sample (for redundancy statistics).
    """

    fraction: float
    covered_area_m2: float
    total_area_m2: float
    per_face: dict[str, float]
    per_view: list[float]
    views_per_sample: np.ndarray = field(repr=False)

    def as_dict(self) -> dict:
        return {"fraction": self.fraction, "covered_area_m2": self.covered_area_m2,
                "total_area_m2": self.total_area_m2, "per_face": dict(self.per_face),
                "per_view": list(self.per_view)}


def _grid_face(center: np.ndarray, u: np.ndarray, v: np.ndarray, normal: np.ndarray, size_u: float,
               size_v: float, spacing: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    nu = max(1, int(math.ceil(size_u / spacing)))
    nv = max(1, int(math.ceil(size_v / spacing)))
    su = (np.arange(nu) + 0.5) / nu - 0.5
    sv = (np.arange(nv) + 0.5) / nv - 0.5
    gu, gv = np.meshgrid(su * size_u, sv * size_v, indexing="ij")
    pts = center + gu.reshape(-1, 1) * u + gv.reshape(-1, 1) * v
    normals = np.repeat(normal[None], len(pts), axis=0)
    areas = np.full(len(pts), size_u * size_v / (nu * nv))
    return pts, normals, areas


def sample_part_surface(part: BoxSpec | CylinderSpec, spacing_m: float = 0.01,
                        include_bottom: bool = False) -> SurfaceSamples:
    """Sample the inspectable surface of a part on a grid of about ``spacing_m``.

    A box gives its top and four sides (and its bottom with ``include_bottom``); a vertical
    cylinder its side and top. Cell areas are exact, so shares of faces are exact.
    """
    if not (spacing_m > 0 and math.isfinite(spacing_m)):
        raise ValueError(f"spacing_m must be positive, got {spacing_m}")
    pts, nrm, ars, lab, names = [], [], [], [], []

    def add(name: str, p: np.ndarray, n: np.ndarray, a: np.ndarray) -> None:
        lab.append(np.full(len(p), len(names)))
        names.append(name)
        pts.append(p)
        nrm.append(n)
        ars.append(a)

    if isinstance(part, BoxSpec):
        c = np.asarray(part.position, dtype=float)
        h = np.asarray(part.size, dtype=float) / 2.0
        if np.any(h <= 0):
            raise ValueError(f"part {part.name!r}: box size must be positive, got {part.size}")
        yaw = math.radians(part.yaw_deg)
        ex = np.array([math.cos(yaw), math.sin(yaw), 0.0])
        ey = np.array([-math.sin(yaw), math.cos(yaw), 0.0])
        ez = np.array([0.0, 0.0, 1.0])
        faces = [("top", ez, ex, ey, h[2], 2 * h[0], 2 * h[1]),
                 ("+x", ex, ey, ez, h[0], 2 * h[1], 2 * h[2]),
                 ("-x", -ex, ey, ez, h[0], 2 * h[1], 2 * h[2]),
                 ("+y", ey, ex, ez, h[1], 2 * h[0], 2 * h[2]),
                 ("-y", -ey, ex, ez, h[1], 2 * h[0], 2 * h[2])]
        if include_bottom:
            faces.append(("bottom", -ez, ex, ey, h[2], 2 * h[0], 2 * h[1]))
        for name, n, u, v, off, su, sv in faces:
            add(name, *_grid_face(c + n * off, u, v, n, su, sv, spacing_m))
    elif isinstance(part, CylinderSpec):
        base = np.asarray(part.base, dtype=float)
        r, height = float(part.radius), float(part.height)
        if r <= 0 or height <= 0:
            raise ValueError(f"part {part.name!r}: cylinder radius and height must be positive")
        n_az = max(8, int(math.ceil(2 * math.pi * r / spacing_m)))
        n_z = max(1, int(math.ceil(height / spacing_m)))
        az = (np.arange(n_az) + 0.5) / n_az * 2 * math.pi
        zz = (np.arange(n_z) + 0.5) / n_z * height
        ga, gz = np.meshgrid(az, zz, indexing="ij")
        n_side = np.stack([np.cos(ga), np.sin(ga), np.zeros_like(ga)], axis=-1).reshape(-1, 3)
        p_side = base + r * n_side + np.stack([np.zeros(ga.size), np.zeros(ga.size), gz.reshape(-1)], axis=1)
        add("side", p_side, n_side, np.full(len(p_side), 2 * math.pi * r * height / (n_az * n_z)))
        # Top disc: equal-area rings (radii at sqrt spacing) split into sectors.
        n_r = max(1, int(math.ceil(r / spacing_m)))
        edges = r * np.sqrt(np.arange(n_r + 1) / n_r)
        tp, ta = [], []
        for k in range(n_r):
            rm = 0.5 * (edges[k] + edges[k + 1])
            n_s = max(1, int(math.ceil(2 * math.pi * rm / spacing_m)))
            a = (np.arange(n_s) + 0.5) / n_s * 2 * math.pi
            ring_area = math.pi * (edges[k + 1] ** 2 - edges[k] ** 2)
            tp.append(base + np.stack([rm * np.cos(a), rm * np.sin(a), np.full(n_s, height)], axis=1))
            ta.append(np.full(n_s, ring_area / n_s))
        p_top = np.vstack(tp)
        add("top", p_top, np.repeat([[0.0, 0.0, 1.0]], len(p_top), axis=0), np.concatenate(ta))
    else:
        raise TypeError(f"part must be a BoxSpec or CylinderSpec, got {type(part).__name__}")
    return SurfaceSamples(np.vstack(pts), np.vstack(nrm), np.concatenate(ars), np.concatenate(lab), tuple(names))


def visible_from(samples: SurfaceSamples, pose: Pose, intrinsics: CameraIntrinsics, *,
                 min_px_per_cm: float = 4.0, max_incidence_deg: float = 60.0, min_range_m: float = 0.05,
                 max_range_m: float = 5.0) -> np.ndarray:
    """Boolean mask (N,) of the samples one camera view sees adequately (see module docstring)."""
    p_cam = pose.inverse().transform_points(samples.points)
    uv, in_front = intrinsics.project(p_cam)
    z = p_cam[:, 2]
    in_image = (in_front & (uv[:, 0] >= -0.5) & (uv[:, 0] <= intrinsics.width - 0.5)
                & (uv[:, 1] >= -0.5) & (uv[:, 1] <= intrinsics.height - 0.5))
    to_cam = pose.position - samples.points
    dist = np.linalg.norm(to_cam, axis=1)
    cos_inc = np.einsum("ij,ij->i", samples.normals, to_cam) / np.maximum(dist, 1e-12)
    facing = cos_inc >= math.cos(math.radians(max_incidence_deg))
    in_range = (dist >= min_range_m) & (dist <= max_range_m)
    px_per_cm = min(intrinsics.fx, intrinsics.fy) * 0.01 / np.where(z > 1e-9, z, np.inf)
    return in_image & facing & in_range & (px_per_cm >= min_px_per_cm)


def compute_coverage(part: BoxSpec | CylinderSpec | SurfaceSamples, poses: list[Pose],
                     intrinsics: CameraIntrinsics, *, spacing_m: float = 0.01, min_px_per_cm: float = 4.0,
                     max_incidence_deg: float = 60.0, min_range_m: float = 0.05,
                     max_range_m: float = 5.0, min_views: int = 1) -> CoverageResult:
    """Share of the part's inspectable surface area seen adequately by at least ``min_views`` of
    ``poses`` (1: by any; 2: what a fusion that needs two views can confirm)."""
    if min_views < 1:
        raise ValueError(f"min_views must be >= 1, got {min_views}")
    if not 0.0 < max_incidence_deg <= 90.0:
        raise ValueError(f"max_incidence_deg must be in (0, 90], got {max_incidence_deg}")
    if min_px_per_cm < 0:
        raise ValueError(f"min_px_per_cm must be >= 0, got {min_px_per_cm}")
    samples = part if isinstance(part, SurfaceSamples) else sample_part_surface(part, spacing_m)
    total = samples.total_area
    count = np.zeros(len(samples.areas), dtype=np.int64)
    per_view = []
    for pose in poses:
        m = visible_from(samples, pose, intrinsics, min_px_per_cm=min_px_per_cm,
                         max_incidence_deg=max_incidence_deg, min_range_m=min_range_m, max_range_m=max_range_m)
        count += m
        per_view.append(float(samples.areas[m].sum() / total))
    seen = count >= min_views
    per_face = {}
    for k, name in enumerate(samples.face_names):
        sel = samples.faces == k
        per_face[name] = float(samples.areas[sel & seen].sum() / samples.areas[sel].sum())
    covered = float(samples.areas[seen].sum())
    return CoverageResult(covered / total, covered, total, per_face, per_view, count)
