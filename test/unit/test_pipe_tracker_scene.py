"""Analytic depth renderer and UAV kinematics for the pipe tracker tests (numpy only).

A scene is a pipe polyline (cylinders joined by spheres), vertical support posts, flanges
and a ground plane at z = 0; depth is ray-cast exactly for a pinhole camera.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from anomaly_inspection_core.geometry.camera import CameraIntrinsics, Pose

# optical axes expressed in the body frame (x forward, y left, z up)
BODY_R_OPTICAL = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])


@dataclass
class Cylinder:
    a: np.ndarray
    b: np.ndarray
    radius: float


@dataclass
class PipeScene:
    """Pipe along ``waypoints`` (radius ``radius``), posts, flanges and the ground."""

    waypoints: list
    radius: float = 0.15
    posts_every_m: float = 2.0
    post_radius: float = 0.04
    flanges_every_m: float = 1.5
    ground: bool = True
    cylinders: list = field(default_factory=list)
    spheres: list = field(default_factory=list)

    def __post_init__(self) -> None:
        pts = [np.asarray(p, float) for p in self.waypoints]
        for a, b in zip(pts[:-1], pts[1:]):
            self.cylinders.append(Cylinder(a, b, self.radius))
            d = b - a
            length = float(np.linalg.norm(d))
            d /= length
            if self.flanges_every_m:
                for s in np.arange(self.flanges_every_m, length - 0.3, self.flanges_every_m):
                    c = a + s * d
                    self.cylinders.append(Cylinder(c - 0.03 * d, c + 0.03 * d, 1.35 * self.radius))
            horizontal = abs(d[2]) < 0.1
            if self.posts_every_m and horizontal:
                for s in np.arange(0.5, length - 0.3, self.posts_every_m):
                    c = a + s * d
                    top = c[2] - self.radius
                    if top > 0.05:
                        self.cylinders.append(
                            Cylinder(np.array([c[0], c[1], 0.0]), np.array([c[0], c[1], top]),
                                     self.post_radius))
        for p in pts[1:-1]:
            self.spheres.append((p, self.radius))

    def raycast(self, origins: np.ndarray, dirs: np.ndarray) -> np.ndarray:
        """Distance along each unit ray to the first hit (inf for none)."""
        t_best = np.full(dirs.shape[0], np.inf)
        o = origins
        if self.ground:
            with np.errstate(divide="ignore", invalid="ignore"):
                t = -o[2] / dirs[:, 2]
            t = np.where((t > 1e-6) & np.isfinite(t), t, np.inf)
            t_best = np.minimum(t_best, t)
        for cyl in self.cylinders:
            t_best = np.minimum(t_best, _ray_cylinder(o, dirs, cyl))
        for c, r in self.spheres:
            t_best = np.minimum(t_best, _ray_sphere(o, dirs, c, r))
        return t_best

    def render(self, intrinsics: CameraIntrinsics, pose: Pose, max_range: float = 10.0
               ) -> np.ndarray:
        """z-depth image (float32, NaN for no return or beyond ``max_range``)."""
        rays_cam = intrinsics.pixel_rays().reshape(-1, 3)
        norm = np.linalg.norm(rays_cam, axis=1)
        dirs = (rays_cam / norm[:, None]) @ pose.rotation.T
        t = self.raycast(pose.position, dirs)
        z = t / norm  # z-depth = range * cos(angle to the optical axis)
        z[~np.isfinite(z) | (z > max_range)] = np.nan
        return z.reshape(intrinsics.height, intrinsics.width).astype(np.float32)


def _ray_cylinder(o: np.ndarray, d: np.ndarray, cyl: Cylinder) -> np.ndarray:
    axis = cyl.b - cyl.a
    length = np.linalg.norm(axis)
    axis = axis / length
    w = o - cyl.a
    d_perp = d - (d @ axis)[:, None] * axis
    w_perp = w - np.dot(w, axis) * axis
    qa = np.einsum("ij,ij->i", d_perp, d_perp)
    qb = 2.0 * (d_perp @ w_perp)
    qc = np.dot(w_perp, w_perp) - cyl.radius ** 2
    disc = qb * qb - 4 * qa * qc
    t = np.full(d.shape[0], np.inf)
    ok = (disc >= 0) & (qa > 1e-12)
    sq = np.sqrt(np.where(ok, disc, 0.0))
    qa_s = np.where(ok, qa, 1.0)
    for sgn in (-1.0, 1.0):
        tt = (-qb + sgn * sq) / (2 * qa_s)
        s = np.dot(w, axis) + tt * (d @ axis)
        hit = ok & (tt > 1e-6) & (s >= 0) & (s <= length)
        t = np.where(hit & (tt < t), tt, t)
    # end caps
    da = d @ axis
    with np.errstate(divide="ignore", invalid="ignore"):
        for cap, s0 in ((cyl.a, 0.0), (cyl.b, length)):
            tt = (s0 - np.dot(w, axis)) / da
            p = o + tt[:, None] * d - cap
            r2 = np.einsum("ij,ij->i", p, p)
            hit = np.isfinite(tt) & (tt > 1e-6) & (r2 <= cyl.radius ** 2)
            t = np.where(hit & (tt < t), tt, t)
    return t


def _ray_sphere(o: np.ndarray, d: np.ndarray, c: np.ndarray, r: float) -> np.ndarray:
    w = o - c
    b = d @ w
    disc = b * b - (np.dot(w, w) - r * r)
    ok = disc >= 0
    sq = np.sqrt(np.where(ok, disc, 0.0))
    t1 = -b - sq
    t2 = -b + sq
    t = np.where(t1 > 1e-6, t1, np.where(t2 > 1e-6, t2, np.inf))
    return np.where(ok, t, np.inf)


def camera_pose(x: float, y: float, z: float, yaw: float) -> Pose:
    """Camera pose (optical frame) of a level UAV at (x, y, z) with heading ``yaw``."""
    c, s = math.cos(yaw), math.sin(yaw)
    r_map_body = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    return Pose.from_rotation(np.array([x, y, z]), r_map_body @ BODY_R_OPTICAL)


@dataclass
class Uav:
    """Kinematic UAV: integrates level-body velocity and yaw-rate commands."""

    x: float
    y: float
    z: float
    yaw: float

    def step(self, linear_body: np.ndarray, yaw_rate: float, dt: float) -> None:
        c, s = math.cos(self.yaw), math.sin(self.yaw)
        vx, vy, vz = linear_body
        self.x += (c * vx - s * vy) * dt
        self.y += (s * vx + c * vy) * dt
        self.z += vz * dt
        self.yaw += yaw_rate * dt

    @property
    def pose(self) -> Pose:
        return camera_pose(self.x, self.y, self.z, self.yaw)

    @property
    def position(self) -> np.ndarray:
        return np.array([self.x, self.y, self.z])


def distance_to_polyline(p: np.ndarray, waypoints: list) -> float:
    """Distance from a point to the pipe axis polyline."""
    best = math.inf
    pts = [np.asarray(w, float) for w in waypoints]
    for a, b in zip(pts[:-1], pts[1:]):
        d = b - a
        s = float(np.clip(np.dot(p - a, d) / np.dot(d, d), 0.0, 1.0))
        best = min(best, float(np.linalg.norm(p - (a + s * d))))
    return best
