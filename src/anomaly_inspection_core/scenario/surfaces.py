"""Analytic object surfaces: closest points, outward normals and signed distances.

Used to validate that defects lie on a surface (and to snap them onto it), to build conforming
defect patches, and for clearance checks (UAV crash detection). Pure numpy.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field

import numpy as np


def _unit(v: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.maximum(n, 1e-12)


def any_perpendicular(v: np.ndarray) -> np.ndarray:
    """A unit vector perpendicular to ``v`` (prefers horizontal ones)."""
    v = np.asarray(v, dtype=np.float64)
    ref = np.array([0.0, 0.0, 1.0]) if abs(v[2]) < 0.9 * np.linalg.norm(v) else np.array([1.0, 0.0, 0.0])
    return _unit(np.cross(v, ref))


@dataclass(frozen=True)
class SurfaceHit:
    """Closest point on a surface to a query point."""

    point: np.ndarray
    normal: np.ndarray
    signed_distance: float
    on_surface: bool  # False when the closest point is on an open end or a face that hosts nothing


class Surface(ABC):
    """Interface of an analytic surface."""

    name: str
    deformable: bool = False  # the world can push it in for dents

    @abstractmethod
    def closest_many(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Closest surface points (N,3), outward normals (N,3), signed distances (N,)."""

    @abstractmethod
    def closest(self, point: np.ndarray) -> SurfaceHit:
        """Closest surface point, outward normal and signed distance of one point."""

    def signed_distance(self, point: np.ndarray) -> float:
        return float(self.closest_many(np.asarray(point, dtype=np.float64).reshape(1, 3))[2][0])

    def tangent_hint(self, point: np.ndarray, normal: np.ndarray) -> np.ndarray:
        """A preferred in-surface direction at ``point`` (pipe axis, vertical on walls)."""
        t = np.array([0.0, 0.0, 1.0]) if abs(normal[2]) < 0.7 else np.array([1.0, 0.0, 0.0])
        t = t - normal * float(t @ normal)
        return _unit(t)


@dataclass(frozen=True)
class Centreline:
    """Densely sampled pipe centreline: straight runs joined by circular bends."""

    points: np.ndarray  # (N, 3)
    arclength: np.ndarray  # (N,)
    runs: tuple[tuple[np.ndarray, np.ndarray], ...]  # straight parts (start, end) after trimming
    bends: tuple[tuple[np.ndarray, np.ndarray, np.ndarray], ...]  # (arc start, arc end, corner)

    @property
    def length(self) -> float:
        return float(self.arclength[-1])

    def at(self, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Centre points and unit tangents at arclengths ``s`` (clipped to the pipe)."""
        s = np.clip(np.asarray(s, dtype=np.float64), 0.0, self.length)
        idx = np.clip(np.searchsorted(self.arclength, s, side="right") - 1, 0, len(self.points) - 2)
        seg = self.points[idx + 1] - self.points[idx]
        seg_len = self.arclength[idx + 1] - self.arclength[idx]
        t = ((s - self.arclength[idx]) / np.maximum(seg_len, 1e-12))[..., None]
        return self.points[idx] + t * seg, _unit(seg)


def pipe_centreline(points: np.ndarray, bend_radius: float, step_deg: float = 3.0) -> Centreline:
    """Centreline of a pipe through polyline ``points`` with circular bends at the corners.

    Raises ValueError when a bend does not fit between its neighbouring corners.
    """
    p = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    if len(p) < 2:
        raise ValueError("a pipeline needs at least 2 points")
    dirs = p[1:] - p[:-1]
    lengths = np.linalg.norm(dirs, axis=1)
    if np.any(lengths < 1e-6):
        raise ValueError(f"consecutive points coincide (segment {int(np.argmin(lengths))})")
    dirs = dirs / lengths[:, None]
    # Trim of each segment at its start and end (tangent length of the bends).
    trim_start = np.zeros(len(dirs))
    trim_end = np.zeros(len(dirs))
    arcs: list[tuple[np.ndarray, np.ndarray, np.ndarray, float] | None] = []
    for i in range(1, len(p) - 1):
        d0, d1 = dirs[i - 1], dirs[i]
        theta = math.acos(float(np.clip(d0 @ d1, -1.0, 1.0)))
        if theta < 1e-4:
            arcs.append(None)
            continue
        if theta > math.radians(170):
            raise ValueError(f"points[{i}]: the pipe turns back on itself ({math.degrees(theta):.0f} deg)")
        tan_len = bend_radius * math.tan(theta / 2.0)
        trim_end[i - 1] = tan_len
        trim_start[i] = tan_len
        n = d1 - (d1 @ d0) * d0
        n /= np.linalg.norm(n)
        arcs.append((p[i] - d0 * tan_len, n, d0, theta))
    for i in range(len(dirs)):
        if trim_start[i] + trim_end[i] > lengths[i] + 1e-9:
            raise ValueError(
                f"segment {i} ({lengths[i]:.2f} m) is too short for bends of radius {bend_radius} m"
            )
    out: list[np.ndarray] = []
    runs = []
    bends = []
    for i in range(len(dirs)):
        a = p[i] + dirs[i] * trim_start[i]
        b = p[i + 1] - dirs[i] * trim_end[i]
        runs.append((a, b))
        out.append(a)
        if np.linalg.norm(b - a) > 1e-9:
            out.append(b)
        if i < len(arcs) and arcs[i] is not None:
            start, n, d0, theta = arcs[i]
            centre = start + n * bend_radius
            steps = max(2, int(math.ceil(math.degrees(theta) / step_deg)))
            for k in range(1, steps):
                al = theta * k / steps
                out.append(centre + bend_radius * (-n * math.cos(al) + d0 * math.sin(al)))
            bends.append((start, p[i + 1] + dirs[i + 1] * trim_start[i + 1], p[i + 1].copy()))
    pts = [out[0]]
    for q in out[1:]:
        if np.linalg.norm(q - pts[-1]) > 1e-9:
            pts.append(q)
    pts_arr = np.array(pts)
    arclength = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(pts_arr, axis=0), axis=1))])
    return Centreline(pts_arr, arclength, tuple(runs), tuple(bends))


@dataclass(frozen=True)
class TubeSurface(Surface):
    """Outer surface of a tube of ``radius`` around a centreline (a pipe or a tank wall)."""

    name: str
    centreline: Centreline
    radius: float
    deformable: bool = True
    end_margin: float = 0.0
    flat_ends: bool = False  # closed by flat caps (a part or a tank); else the ends count as round (conservative)

    def _project(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        pts = np.asarray(points, dtype=np.float64).reshape(-1, 3)
        a = self.centreline.points[:-1]
        ab = self.centreline.points[1:] - a
        ab2 = np.maximum(np.einsum("ij,ij->i", ab, ab), 1e-18)
        ap = pts[:, None, :] - a[None]
        t = np.clip(np.einsum("nij,ij->ni", ap, ab) / ab2[None], 0.0, 1.0)
        q = a[None] + t[..., None] * ab[None]
        d2 = np.einsum("nij,nij->ni", pts[:, None, :] - q, pts[:, None, :] - q)
        best = np.argmin(d2, axis=1)
        rows = np.arange(len(pts))
        centre = q[rows, best]
        s = self.centreline.arclength[best] + t[rows, best] * np.sqrt(ab2[best])
        return centre, s, best

    def closest_many(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        pts = np.asarray(points, dtype=np.float64).reshape(-1, 3)
        centre, _, seg = self._project(pts)
        radial = pts - centre
        dist = np.linalg.norm(radial, axis=1)
        tangent = _unit(self.centreline.points[seg + 1] - self.centreline.points[seg])
        fallback = np.array([any_perpendicular(t) for t in tangent]) if np.any(dist < 1e-9) else None
        normal = np.where((dist < 1e-9)[:, None], fallback if fallback is not None else 0.0, radial / np.maximum(dist, 1e-12)[:, None])
        return centre + normal * self.radius, normal, dist - self.radius

    def arclength_of(self, points: np.ndarray) -> np.ndarray:
        return self._project(points)[1]

    def signed_distance(self, point: np.ndarray) -> float:
        """Distance to the tube, with exact flat caps when ``flat_ends`` (the projection onto the
        centreline clamps at its ends, which would round the caps off into hemispheres)."""
        d = super().signed_distance(point)
        if not self.flat_ends:
            return d
        p = np.asarray(point, dtype=np.float64).reshape(3)
        pts = self.centreline.points
        for end, inner in ((pts[0], pts[1]), (pts[-1], pts[-2])):
            out = _unit(end - inner)
            h = float((p - end) @ out)  # how far beyond this end's cap plane
            if h > 0.0:
                radial = float(np.linalg.norm((p - end) - h * out)) - self.radius
                return math.hypot(max(radial, 0.0), h)
        return d

    def closest(self, point: np.ndarray) -> SurfaceHit:
        pts = np.asarray(point, dtype=np.float64).reshape(1, 3)
        sp, n, d = self.closest_many(pts)
        s = float(self._project(pts)[1][0])
        inside = self.end_margin - 1e-9 <= s <= self.centreline.length - self.end_margin + 1e-9
        return SurfaceHit(sp[0], n[0], float(d[0]), bool(inside and 1e-9 < s < self.centreline.length - 1e-9))

    def tangent_hint(self, point: np.ndarray, normal: np.ndarray) -> np.ndarray:
        _, s, seg = self._project(np.asarray(point, dtype=np.float64).reshape(1, 3))
        t = self.centreline.points[seg[0] + 1] - self.centreline.points[seg[0]]
        t = t - normal * float(t @ normal)
        return _unit(t)


def rot_z(yaw: float) -> np.ndarray:
    c, s = math.cos(yaw), math.sin(yaw)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


@dataclass(frozen=True)
class BoxSurface(Surface):
    """Surface of a box with centre ``center``, half extents ``half`` and yaw about +z."""

    name: str
    center: np.ndarray
    half: np.ndarray
    yaw: float = 0.0
    deformable: bool = True
    host_bottom: bool = False
    rotation: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "rotation", rot_z(self.yaw))

    def closest_many(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        pts = np.asarray(points, dtype=np.float64).reshape(-1, 3)
        r = self.rotation
        q = (pts - self.center) @ r  # local coordinates
        h = np.asarray(self.half, dtype=np.float64)
        clamped = np.clip(q, -h, h)
        outside = np.any(np.abs(q) > h, axis=1)
        # Which face: the axis where the point is furthest out relative to the half extent.
        rel = np.abs(q) - h
        axis = np.argmax(rel, axis=1)
        rows = np.arange(len(q))
        sign = np.sign(q[rows, axis])
        sign[sign == 0] = 1.0
        surf = clamped.copy()
        surf[rows, axis] = np.where(outside, clamped[rows, axis], sign * h[axis])
        normal_local = np.zeros_like(q)
        normal_local[rows, axis] = sign
        dist_out = np.linalg.norm(q - clamped, axis=1)
        dist = np.where(outside, dist_out, rel[rows, axis])
        return surf @ r.T + self.center, normal_local @ r.T, dist

    def closest(self, point: np.ndarray) -> SurfaceHit:
        sp, n, d = self.closest_many(np.asarray(point, dtype=np.float64).reshape(1, 3))
        ok = self.host_bottom or n[0][2] > -0.5
        return SurfaceHit(sp[0], n[0], float(d[0]), bool(ok))

    def face_of(self, normal: np.ndarray) -> tuple[int, float]:
        """(axis, sign) of the face with outward ``normal`` (map frame)."""
        local = self.rotation.T @ np.asarray(normal, dtype=np.float64)
        axis = int(np.argmax(np.abs(local)))
        return axis, float(np.sign(local[axis]) or 1.0)


@dataclass(frozen=True)
class PlaneSurface(Surface):
    """Horizontal floor at height ``z`` over ``[-hx, hx] x [-hy, hy]`` around ``center_xy``."""

    name: str
    z: float = 0.0
    half_x: float = 50.0
    half_y: float = 50.0
    center_xy: tuple[float, float] = (0.0, 0.0)
    deformable: bool = False

    def closest_many(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        pts = np.asarray(points, dtype=np.float64).reshape(-1, 3)
        sp = pts.copy()
        sp[:, 2] = self.z
        n = np.tile([0.0, 0.0, 1.0], (len(pts), 1))
        return sp, n, pts[:, 2] - self.z

    def closest(self, point: np.ndarray) -> SurfaceHit:
        p = np.asarray(point, dtype=np.float64).reshape(3)
        inside = abs(p[0] - self.center_xy[0]) <= self.half_x and abs(p[1] - self.center_xy[1]) <= self.half_y
        return SurfaceHit(np.array([p[0], p[1], self.z]), np.array([0.0, 0.0, 1.0]), float(p[2] - self.z), inside)
