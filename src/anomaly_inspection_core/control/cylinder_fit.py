"""Cylinder detection in depth images: oriented point sampling, RANSAC and refinement.

Pure numpy; cheap enough to run on every depth frame (a few ms for ~2k points).

The fit works on *oriented* points (position + surface normal): two oriented points on a
cylinder fix its axis direction (``n1 x n2``) and, in the plane perpendicular to it, its
centre (intersection of the two normal lines) and radius. Planes (ground, walls) give
parallel normals and never produce a hypothesis, which is what makes the ground easy to
reject.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from anomaly_inspection_core.geometry.camera import CameraIntrinsics, Pose



@dataclass(frozen=True)
class CylinderFitConfig:
    """Parameters of :func:`fit_cylinder_oriented`."""

    radius_min_m: float = 0.04
    radius_max_m: float = 0.5
    #: distance tolerance of an inlier (metres) at 1 m range; grows linearly with range
    inlier_tol_m: float = 0.012
    inlier_tol_per_m: float = 0.008
    #: largest angle between a point's normal and the cylinder's radial direction
    normal_tol_deg: float = 30.0
    iterations: int = 96
    min_inliers: int = 60
    #: largest axial gap (metres) inside one contiguous visible piece of pipe
    max_axial_gap_m: float = 0.35
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0.0 < self.radius_min_m < self.radius_max_m:
            raise ValueError(
                f"need 0 < radius_min_m < radius_max_m, got {self.radius_min_m}, {self.radius_max_m}")
        if self.inlier_tol_m <= 0 or self.inlier_tol_per_m < 0:
            raise ValueError("inlier tolerances must be positive")
        if not 0.0 < self.normal_tol_deg < 90.0:
            raise ValueError(f"normal_tol_deg must be in (0, 90), got {self.normal_tol_deg}")
        if self.iterations < 1 or self.min_inliers < 5:
            raise ValueError("iterations must be >= 1 and min_inliers >= 5")


@dataclass(frozen=True)
class CylinderPrior:
    """Expected cylinder (same frame as the points) and how far a fit may stray from it."""

    point: np.ndarray
    direction: np.ndarray
    radius: float
    max_angle_deg: float = 25.0
    max_axis_offset_m: float = 0.35
    radius_ratio: float = 1.35

    def accepts(self, point: np.ndarray, direction: np.ndarray, radius: float) -> bool:
        """Whether a cylinder is close enough to the prior."""
        return bool(self.accepts_many(np.reshape(point, (1, 3)), np.reshape(direction, (1, 3)),
                                      np.array([radius]))[0])

    def accepts_many(self, points: np.ndarray, directions: np.ndarray,
                     radii: np.ndarray) -> np.ndarray:
        """Vectorised :meth:`accepts` for (H, 3), (H, 3), (H,) arrays; boolean (H,)."""
        d0 = _unit(self.direction)
        dirs = directions / np.linalg.norm(directions, axis=1, keepdims=True)
        ok = np.abs(dirs @ d0) >= np.cos(np.radians(self.max_angle_deg))
        ok &= (radii >= self.radius / self.radius_ratio) & (radii <= self.radius * self.radius_ratio)
        # distance between the hypothesis axis and the prior axis, measured at the hypothesis
        # point and perpendicular to the prior axis
        v = points - np.asarray(self.point, float)
        off = np.linalg.norm(v - (v @ d0)[:, None] * d0, axis=1)
        return ok & (off <= self.max_axis_offset_m)


@dataclass(frozen=True)
class CylinderEstimate:
    """A fitted cylinder.

    ``point`` is on the axis at the middle of the visible (inlier) extent, ``direction`` a
    unit vector along the axis, ``extent`` the (min, max) axial coordinates of the inliers
    relative to ``point`` (so the visible piece spans ``point + t * direction``,
    ``t in extent``). ``inlier_ratio`` is inliers / valid sampled points; ``rms_m`` the RMS
    radial residual of the inliers. ``frame`` names the frame ("camera" or "map").
    """

    point: np.ndarray
    direction: np.ndarray
    radius: float
    inlier_ratio: float
    num_inliers: int
    extent: tuple[float, float]
    rms_m: float
    frame: str = "camera"

    @property
    def endpoints(self) -> tuple[np.ndarray, np.ndarray]:
        """Axis points at both ends of the visible extent."""
        return (self.point + self.extent[0] * self.direction,
                self.point + self.extent[1] * self.direction)

    def transformed(self, pose: Pose, frame: str = "map") -> "CylinderEstimate":
        """The same cylinder in another frame; ``pose`` maps this frame into it."""
        return replace(self, point=pose.transform_points(self.point)[0],
                       direction=pose.rotation @ self.direction, frame=frame)

    def distance_to_axis(self, p: np.ndarray) -> float:
        """Distance (metres) of a point from the infinite axis line."""
        v = np.asarray(p, float) - self.point
        return float(np.linalg.norm(v - np.dot(v, self.direction) * self.direction))

    def surface_offset(self, points: np.ndarray) -> np.ndarray:
        """Distance (metres) of each point (N, 3) from the cylinder's surface (the infinite one):
        ``|distance to the axis - radius|``."""
        v = np.atleast_2d(np.asarray(points, float)) - self.point
        radial = v - np.outer(v @ self.direction, self.direction)
        return np.abs(np.linalg.norm(radial, axis=1) - self.radius)


@dataclass
class OrientedPoints:
    """Points (N, 3) with unit normals (N, 3) pointing towards the sensor, camera frame."""

    points: np.ndarray
    normals: np.ndarray

    def __len__(self) -> int:
        return int(self.points.shape[0])

    def subset(self, mask: np.ndarray) -> "OrientedPoints":
        return OrientedPoints(self.points[mask], self.normals[mask])


def _unit(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    return v / np.linalg.norm(v)


def depth_to_oriented_points(depth: np.ndarray, intrinsics: CameraIntrinsics, stride: int = 4,
                             min_range_m: float = 0.2, max_range_m: float = 8.0,
                             max_jump: float = 0.04) -> OrientedPoints:
    """Back-project a depth image on a ``stride`` grid and estimate normals from the grid.

    Normals come from central differences of neighbouring grid points; pixels next to a
    depth discontinuity (relative jump > ``max_jump``) or a hole get none and are dropped.
    """
    depth = np.asarray(depth)
    if depth.ndim != 2:
        raise ValueError(f"depth must be a 2-D image, got shape {depth.shape}")
    if depth.shape != (intrinsics.height, intrinsics.width):
        raise ValueError(f"depth is {depth.shape[1]}x{depth.shape[0]} but intrinsics are "
                         f"{intrinsics.width}x{intrinsics.height}")
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    off = stride // 2
    vs = np.arange(off, depth.shape[0], stride)
    us = np.arange(off, depth.shape[1], stride)
    z = depth[np.ix_(vs, us)].astype(np.float64)
    valid = np.isfinite(z) & (z > min_range_m) & (z < max_range_m)
    z = np.where(valid, z, np.nan)
    uu, vv = np.meshgrid(us, vs)
    pts = intrinsics.backproject(uu, vv, z)  # (h, w, 3)

    dx = pts[1:-1, 2:] - pts[1:-1, :-2]
    dy = pts[2:, 1:-1] - pts[:-2, 1:-1]
    n = np.cross(dx, dy)
    norm = np.linalg.norm(n, axis=-1)
    zc = z[1:-1, 1:-1]
    with np.errstate(invalid="ignore"):
        smooth = (
            (np.abs(z[1:-1, 2:] - z[1:-1, :-2]) < max_jump * zc * 2)
            & (np.abs(z[2:, 1:-1] - z[:-2, 1:-1]) < max_jump * zc * 2)
        )
    ok = np.isfinite(norm) & (norm > 1e-12) & smooth & valid[1:-1, 1:-1]
    p = pts[1:-1, 1:-1][ok]
    n = n[ok] / norm[ok][:, None]
    # orient towards the camera (the camera is at the origin)
    flip = np.einsum("ij,ij->i", n, p) > 0
    n[flip] = -n[flip]
    return OrientedPoints(p, n)


def _hypotheses(op: OrientedPoints, idx1: np.ndarray, idx2: np.ndarray,
                cfg: CylinderFitConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cylinders (axis point, axis direction, radius) through pairs of oriented points."""
    p1, n1 = op.points[idx1], op.normals[idx1]
    p2, n2 = op.points[idx2], op.normals[idx2]
    a = np.cross(n1, n2)
    an = np.linalg.norm(a, axis=1)
    keep = an > 0.15  # about 9 degrees between the normals; planes give ~0
    a = a[keep] / an[keep][:, None]
    p1, n1, p2, n2 = p1[keep], n1[keep], p2[keep], n2[keep]
    # project onto the plane perpendicular to the axis and intersect the two normal lines
    def perp(v: np.ndarray) -> np.ndarray:
        return v - np.einsum("ij,ij->i", v, a)[:, None] * a
    q1, q2, m1, m2 = perp(p1), perp(p2), perp(n1), perp(n2)
    # solve q1 - r1 m1 = q2 - r2 m2 for r1, r2 (least squares, 2 unknowns)
    w = q1 - q2
    m11 = np.einsum("ij,ij->i", m1, m1)
    m22 = np.einsum("ij,ij->i", m2, m2)
    m12 = np.einsum("ij,ij->i", m1, m2)
    b1 = np.einsum("ij,ij->i", m1, w)
    b2 = np.einsum("ij,ij->i", m2, w)
    det = m11 * m22 - m12 * m12
    good = np.abs(det) > 1e-9
    det = np.where(good, det, 1.0)
    r1 = (m22 * b1 - m12 * b2) / det
    r2 = (m12 * b1 - m11 * b2) / det
    c = q1 - r1[:, None] * m1
    radius = 0.5 * (r1 + r2)
    good &= (r1 > 0) & (r2 > 0) & (np.abs(r1 - r2) < 0.25 * radius + 0.01)
    good &= (radius >= cfg.radius_min_m) & (radius <= cfg.radius_max_m)
    return c[good], a[good], radius[good]


def _residuals(points: np.ndarray, normals: np.ndarray, c: np.ndarray, a: np.ndarray,
               r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Radial residuals (H, N) and |cos| between normals and radial directions (H, N).

    Written with (N, 3) @ (3, H) products only: no (H, N, 3) temporaries.
    """
    pa = a @ points.T  # (H, N) p . a
    ca = np.einsum("hk,hk->h", c, a)[:, None]
    along = pa - ca  # (p - c) . a
    v2 = (np.einsum("nk,nk->n", points, points)[None, :] - 2.0 * (c @ points.T)
          + np.einsum("hk,hk->h", c, c)[:, None])
    dist = np.sqrt(np.maximum(v2 - along * along, 0.0))
    vn = np.einsum("nk,nk->n", points, normals)[None, :] - c @ normals.T  # (p - c) . n
    an = a @ normals.T
    cos = np.abs(vn - along * an) / np.maximum(dist, 1e-9)
    return np.abs(dist - r[:, None]), cos


def _inlier_mask(op: OrientedPoints, c: np.ndarray, a: np.ndarray, r: float,
                 cfg: CylinderFitConfig) -> np.ndarray:
    res, cos = _residuals(op.points, op.normals, c[None], a[None], np.array([r]))
    tol = cfg.inlier_tol_m + cfg.inlier_tol_per_m * op.points[:, 2]
    return (res[0] < tol) & (cos[0] > np.cos(np.radians(cfg.normal_tol_deg)))


def _refine(op: OrientedPoints, c: np.ndarray, a: np.ndarray, r: float,
            cfg: CylinderFitConfig) -> tuple[np.ndarray, np.ndarray, float, np.ndarray]:
    """Re-estimate axis (from the inlier normals) and circle (geometric fit), twice."""
    mask = _inlier_mask(op, c, a, r, cfg)
    for _ in range(2):
        if mask.sum() < cfg.min_inliers:
            break
        pts, nrm = op.points[mask], op.normals[mask]
        # the axis is the direction most perpendicular to all surface normals
        _, vecs = np.linalg.eigh(nrm.T @ nrm)
        a_new = vecs[:, 0]
        if np.dot(a_new, a) < 0:
            a_new = -a_new
        # 2-D basis of the plane perpendicular to the axis
        e1 = np.cross(a_new, [1.0, 0.0, 0.0] if abs(a_new[0]) < 0.9 else [0.0, 1.0, 0.0])
        e1 /= np.linalg.norm(e1)
        e2 = np.cross(a_new, e1)
        xy = np.stack([pts @ e1, pts @ e2], axis=1)
        ctr = np.array([c @ e1, c @ e2])
        rad = r
        for _ in range(5):  # Gauss-Newton on sum (|xy - ctr| - rad)^2
            d = xy - ctr
            dist = np.maximum(np.linalg.norm(d, axis=1), 1e-9)
            jac = np.column_stack([-d / dist[:, None], -np.ones_like(dist)])
            res = dist - rad
            step, *_ = np.linalg.lstsq(jac, -res, rcond=None)
            ctr = ctr + step[:2]
            rad = rad + step[2]
            if np.abs(step).max() < 1e-5:
                break
        if not (cfg.radius_min_m * 0.8 <= rad <= cfg.radius_max_m * 1.2):
            break
        along = float(np.mean(pts @ a_new))
        c, a, r = ctr[0] * e1 + ctr[1] * e2 + along * a_new, a_new, float(rad)
        mask = _inlier_mask(op, c, a, r, cfg)
    return c, a, r, mask


def _contiguous_extent(t: np.ndarray, t_ref: float, max_gap: float) -> tuple[float, float]:
    """Range of the sorted axial coordinates ``t`` around ``t_ref`` without gaps > max_gap."""
    ts = np.sort(t)
    gaps = np.nonzero(np.diff(ts) > max_gap)[0]
    lo_i, hi_i = 0, len(ts) - 1
    k = int(np.clip(np.searchsorted(ts, t_ref), 0, len(ts) - 1))
    for g in gaps:
        if g < k:
            lo_i = g + 1
        else:
            hi_i = g
            break
    return float(ts[lo_i]), float(ts[hi_i])


def fit_cylinder_oriented(op: OrientedPoints, cfg: CylinderFitConfig,
                          prior: CylinderPrior | None = None,
                          rng: np.random.Generator | None = None,
                          ) -> tuple[CylinderEstimate, np.ndarray] | None:
    """RANSAC cylinder on oriented points; returns the estimate and its inlier mask, or None.

    With a ``prior`` only hypotheses (and refined results) it accepts are kept, which is how
    the tracker keeps following the same pipe and ignores supports and the continuation
    after an elbow.
    """
    n = len(op)
    if n < cfg.min_inliers:
        return None
    rng = rng if rng is not None else np.random.default_rng(cfg.seed)
    # sample pairs of nearby points: both are then likely on the same surface
    idx1 = rng.integers(0, n, cfg.iterations * 3)
    offs = rng.normal(scale=0.12, size=(cfg.iterations * 3, 3))
    targets = op.points[idx1] + offs
    # nearest neighbour by brute force on a random candidate pool keeps this O(H * pool)
    pool = rng.integers(0, n, min(n, 250))
    dd = np.sum((targets[:, None, :] - op.points[pool][None, :, :]) ** 2, axis=-1)
    idx2 = pool[np.argmin(dd, axis=1)]
    c, a, r = _hypotheses(op, idx1, idx2, cfg)
    if prior is not None and len(c):
        keep = prior.accepts_many(c, a, r)
        c, a, r = c[keep], a[keep], r[keep]
    if len(c) == 0:
        return None
    c, a, r = c[: cfg.iterations], a[: cfg.iterations], r[: cfg.iterations]
    # score on a subsample: enough to rank hypotheses, keeps the (H, N) arrays small
    score_idx = rng.choice(n, size=min(n, 800), replace=False)
    res, cos = _residuals(op.points[score_idx], op.normals[score_idx], c, a, r)
    tol = cfg.inlier_tol_m + cfg.inlier_tol_per_m * op.points[score_idx, 2]
    inl = (res < tol[None, :]) & (cos > np.cos(np.radians(cfg.normal_tol_deg)))
    best = int(np.argmax(inl.sum(axis=1)))
    c, a, r, mask = _refine(op, c[best], a[best], float(r[best]), cfg)
    if prior is not None and not prior.accepts(c, a, r):
        return None
    if mask.sum() < cfg.min_inliers:
        return None
    pts = op.points[mask]
    t = (pts - c) @ a
    # keep only the contiguous piece around the densest part: a coaxial pipe further on
    # (across a gap) is not this piece
    t_ref = float(np.median(t))
    lo, hi = _contiguous_extent(t, t_ref, cfg.max_axial_gap_m)
    piece = (t >= lo) & (t <= hi)
    full_mask = mask.copy()
    full_mask[np.nonzero(mask)[0][~piece]] = False
    if full_mask.sum() < cfg.min_inliers:
        return None
    mid = 0.5 * (lo + hi)
    point = c + mid * a
    radial = _residuals(op.points[full_mask], op.normals[full_mask], point[None], a[None],
                        np.array([r]))[0][0]
    est = CylinderEstimate(point=point, direction=a, radius=float(r),
                           inlier_ratio=float(full_mask.sum()) / n,
                           num_inliers=int(full_mask.sum()), extent=(lo - mid, hi - mid),
                           rms_m=float(np.sqrt(np.mean(radial ** 2))))
    return est, full_mask


def estimate_normals(points: np.ndarray, k: int = 12, max_points: int = 3000,
                     rng: np.random.Generator | None = None) -> OrientedPoints:
    """Normals of an unorganised cloud by PCA of the ``k`` nearest neighbours.

    Clouds larger than ``max_points`` are randomly subsampled first (brute-force
    neighbour search is quadratic). Normals point towards the origin (the camera).
    """
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 3:
        raise ValueError(f"points must have shape (N, 3), got {pts.shape}")
    pts = pts[np.all(np.isfinite(pts), axis=1)]
    if len(pts) > max_points:
        rng = rng if rng is not None else np.random.default_rng(0)
        pts = pts[rng.choice(len(pts), max_points, replace=False)]
    k = min(k, len(pts))
    if k < 3:
        return OrientedPoints(np.zeros((0, 3)), np.zeros((0, 3)))
    normals = np.empty_like(pts)
    for start in range(0, len(pts), 500):
        chunk = pts[start:start + 500]
        d2 = np.sum((chunk[:, None, :] - pts[None, :, :]) ** 2, axis=-1)
        nn = np.argpartition(d2, k - 1, axis=1)[:, :k]
        nb = pts[nn]  # (c, k, 3)
        centred = nb - nb.mean(axis=1, keepdims=True)
        cov = np.einsum("cki,ckj->cij", centred, centred)
        _, vecs = np.linalg.eigh(cov)
        normals[start:start + len(chunk)] = vecs[:, :, 0]
    flip = np.einsum("ij,ij->i", normals, pts) > 0
    normals[flip] = -normals[flip]
    return OrientedPoints(pts, normals)
