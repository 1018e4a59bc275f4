"""Pinhole camera intrinsics and rigid poses.

Conventions used everywhere in the project:

* The camera frame is the ROS *optical* frame: x right, y down, z forward (into the scene).
* A :class:`Pose` of a camera is ``T_map_camera``: it maps points from the camera frame into
  the fixed ``map`` frame (``p_map = R @ p_cam + t``).
* Quaternions are stored ``(x, y, z, w)`` like geometry_msgs/Quaternion.
* Pixel ``(u, v)`` is column, row; pixel centres are at integer coordinates, matching
  sensor_msgs/CameraInfo's K.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class CameraIntrinsics:
    """Pinhole intrinsics of an undistorted image of ``width`` x ``height`` pixels."""

    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float

    def __post_init__(self) -> None:
        if self.width <= 0 or self.height <= 0:
            raise ValueError(f"image size must be positive, got {self.width}x{self.height}")
        for name in ("fx", "fy", "cx", "cy"):
            value = getattr(self, name)
            if not math.isfinite(value):
                raise ValueError(f"intrinsic {name} is not finite: {value}")
        if self.fx <= 0 or self.fy <= 0:
            raise ValueError(f"focal lengths must be positive, got fx={self.fx}, fy={self.fy}")

    @classmethod
    def from_fov(cls, width: int, height: int, fov_y_deg: float) -> "CameraIntrinsics":
        """Square-pixel camera with the given vertical field of view, principal point centred."""
        if not 1.0 < fov_y_deg < 179.0:
            raise ValueError(f"vertical field of view must be in (1, 179) degrees, got {fov_y_deg}")
        f = 0.5 * height / math.tan(math.radians(fov_y_deg) / 2.0)
        return cls(width, height, f, f, (width - 1) / 2.0, (height - 1) / 2.0)

    @classmethod
    def from_matrix(cls, k: np.ndarray, width: int, height: int) -> "CameraIntrinsics":
        k = np.asarray(k, dtype=float).reshape(3, 3)
        return cls(width, height, float(k[0, 0]), float(k[1, 1]), float(k[0, 2]), float(k[1, 2]))

    @property
    def K(self) -> np.ndarray:  # noqa: N802 - the conventional name
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    @property
    def fov_y_deg(self) -> float:
        return math.degrees(2.0 * math.atan(0.5 * self.height / self.fy))

    def scaled(self, width: int, height: int) -> "CameraIntrinsics":
        """Intrinsics of the same camera resampled to ``width`` x ``height`` pixels."""
        sx, sy = width / self.width, height / self.height
        return CameraIntrinsics(
            width, height, self.fx * sx, self.fy * sy,
            (self.cx + 0.5) * sx - 0.5, (self.cy + 0.5) * sy - 0.5,
        )

    def pixel_rays(self) -> np.ndarray:
        """Unit-depth rays (z = 1) for every pixel, shape (H, W, 3), camera frame."""
        u = np.arange(self.width, dtype=np.float64)
        v = np.arange(self.height, dtype=np.float64)
        uu, vv = np.meshgrid(u, v)
        x = (uu - self.cx) / self.fx
        y = (vv - self.cy) / self.fy
        return np.stack([x, y, np.ones_like(x)], axis=-1)

    def backproject(self, u: np.ndarray, v: np.ndarray, depth: np.ndarray) -> np.ndarray:
        """Camera-frame points (N, 3) of pixels (u, v) at metric z-depth ``depth``."""
        u = np.asarray(u, dtype=np.float64)
        v = np.asarray(v, dtype=np.float64)
        z = np.asarray(depth, dtype=np.float64)
        return np.stack([(u - self.cx) / self.fx * z, (v - self.cy) / self.fy * z, z], axis=-1)

    def project(self, points_cam: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Pixel coordinates (N, 2) and a mask of points in front of the camera."""
        p = np.asarray(points_cam, dtype=np.float64).reshape(-1, 3)
        in_front = p[:, 2] > 1e-9
        z = np.where(in_front, p[:, 2], 1.0)
        uv = np.stack([self.fx * p[:, 0] / z + self.cx, self.fy * p[:, 1] / z + self.cy], axis=-1)
        return uv, in_front


def quaternion_to_matrix(q: np.ndarray) -> np.ndarray:
    """Rotation matrix of a unit quaternion (x, y, z, w). Raises on a non-finite or zero one."""
    q = np.asarray(q, dtype=np.float64).reshape(4)
    if not np.all(np.isfinite(q)):
        raise ValueError(f"quaternion is not finite: {q.tolist()}")
    n = float(np.linalg.norm(q))
    if n < 1e-9:
        raise ValueError("quaternion has zero norm")
    x, y, z, w = q / n
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])


def matrix_to_quaternion(r: np.ndarray) -> np.ndarray:
    """Unit quaternion (x, y, z, w) with w >= 0 of a rotation matrix."""
    m = np.asarray(r, dtype=np.float64).reshape(3, 3)
    tr = m[0, 0] + m[1, 1] + m[2, 2]
    if tr > 0:
        s = math.sqrt(tr + 1.0) * 2
        q = [(m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s, 0.25 * s]
    elif m[0, 0] > m[1, 1] and m[0, 0] > m[2, 2]:
        s = math.sqrt(1.0 + m[0, 0] - m[1, 1] - m[2, 2]) * 2
        q = [0.25 * s, (m[0, 1] + m[1, 0]) / s, (m[0, 2] + m[2, 0]) / s, (m[2, 1] - m[1, 2]) / s]
    elif m[1, 1] > m[2, 2]:
        s = math.sqrt(1.0 + m[1, 1] - m[0, 0] - m[2, 2]) * 2
        q = [(m[0, 1] + m[1, 0]) / s, 0.25 * s, (m[1, 2] + m[2, 1]) / s, (m[0, 2] - m[2, 0]) / s]
    else:
        s = math.sqrt(1.0 + m[2, 2] - m[0, 0] - m[1, 1]) * 2
        q = [(m[0, 2] + m[2, 0]) / s, (m[1, 2] + m[2, 1]) / s, 0.25 * s, (m[1, 0] - m[0, 1]) / s]
    q = np.asarray(q)
    q /= np.linalg.norm(q)
    return -q if q[3] < 0 else q


def rotation_angle_deg(r_a: np.ndarray, r_b: np.ndarray) -> float:
    """Angle (degrees) of the rotation between two rotation matrices."""
    r = r_a @ r_b.T
    s = float(np.linalg.norm([r[2, 1] - r[1, 2], r[0, 2] - r[2, 0], r[1, 0] - r[0, 1]]))
    # atan2 keeps small angles accurate, where acos of a cosine near 1 loses half the digits.
    return math.degrees(math.atan2(s / 2.0, (float(np.trace(r)) - 1.0) / 2.0))


def look_at(eye: np.ndarray, target: np.ndarray, up: np.ndarray = (0.0, 0.0, 1.0)) -> np.ndarray:
    """Rotation (camera optical frame -> map) of a camera at ``eye`` looking at ``target``.

    The image's "up" (-y of the optical frame) is as close to ``up`` as possible.
    """
    eye = np.asarray(eye, dtype=np.float64)
    z = np.asarray(target, dtype=np.float64) - eye
    nz = np.linalg.norm(z)
    if nz < 1e-9:
        raise ValueError("look_at: eye and target coincide")
    z /= nz
    up_v = np.asarray(up, dtype=np.float64)
    x = np.cross(z, up_v)  # camera x (right) = forward x up
    if np.linalg.norm(x) < 1e-6:  # looking along `up`: pick any perpendicular
        x = np.cross(z, np.array([1.0, 0.0, 0.0]) if abs(z[0]) < 0.9 else np.array([0.0, 1.0, 0.0]))
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    return np.stack([x, y, z], axis=1)


@dataclass(frozen=True)
class Pose:
    """Rigid transform: position (metres) and orientation quaternion (x, y, z, w)."""

    position: np.ndarray = field(default_factory=lambda: np.zeros(3))
    orientation: np.ndarray = field(default_factory=lambda: np.array([0.0, 0.0, 0.0, 1.0]))

    def __post_init__(self) -> None:
        p = np.asarray(self.position, dtype=np.float64).reshape(3)
        q = np.asarray(self.orientation, dtype=np.float64).reshape(4)
        if not np.all(np.isfinite(p)):
            raise ValueError(f"pose position is not finite: {p.tolist()}")
        n = float(np.linalg.norm(q)) if np.all(np.isfinite(q)) else float("nan")
        if not (abs(n - 1.0) < 1e-3):
            raise ValueError(f"pose orientation is not a unit quaternion (norm {n:.4f})")
        object.__setattr__(self, "position", p)
        object.__setattr__(self, "orientation", q / n)

    @classmethod
    def from_matrix(cls, t: np.ndarray) -> "Pose":
        t = np.asarray(t, dtype=np.float64)
        return cls(t[:3, 3].copy(), matrix_to_quaternion(t[:3, :3]))

    @classmethod
    def from_rotation(cls, position: np.ndarray, rotation: np.ndarray) -> "Pose":
        return cls(np.asarray(position, dtype=np.float64), matrix_to_quaternion(rotation))

    @classmethod
    def looking_at(cls, eye: np.ndarray, target: np.ndarray, up=(0.0, 0.0, 1.0)) -> "Pose":
        """Camera pose (optical frame) at ``eye`` looking at ``target``."""
        return cls.from_rotation(eye, look_at(eye, target, up))

    @property
    def rotation(self) -> np.ndarray:
        return quaternion_to_matrix(self.orientation)

    def matrix(self) -> np.ndarray:
        t = np.eye(4)
        t[:3, :3] = self.rotation
        t[:3, 3] = self.position
        return t

    def inverse(self) -> "Pose":
        r = self.rotation.T
        return Pose.from_rotation(-r @ self.position, r)

    def compose(self, other: "Pose") -> "Pose":
        """``self * other`` (apply ``other`` first)."""
        return Pose.from_matrix(self.matrix() @ other.matrix())

    def transform_points(self, points: np.ndarray) -> np.ndarray:
        p = np.asarray(points, dtype=np.float64).reshape(-1, 3)
        return p @ self.rotation.T + self.position

    def as_dict(self) -> dict:
        return {"position": self.position.tolist(), "orientation_xyzw": self.orientation.tolist()}

    @classmethod
    def from_dict(cls, data: dict) -> "Pose":
        return cls(np.asarray(data["position"], float), np.asarray(data["orientation_xyzw"], float))
