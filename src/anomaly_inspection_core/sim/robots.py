"""Pure-python robot kinematics for the simulator: UAV, differential-drive AGV, camera-on-arm.

Each model integrates commanded velocities with speed and acceleration limits and gives the
camera pose (optical frame, ``T_map_camera``) for rendering.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..geometry.camera import Pose
from ..scenario.schema import Scenario


def _yaw_of(pose: Pose) -> float:
    r = pose.rotation
    return math.atan2(r[1, 0], r[0, 0])


def _yaw_pose(position: np.ndarray, yaw: float) -> Pose:
    return Pose(np.asarray(position, dtype=np.float64), np.array([0.0, 0.0, math.sin(yaw / 2), math.cos(yaw / 2)]))


def _body_camera_rotation(yaw: float, pitch_down: float) -> np.ndarray:
    """Optical-frame rotation of a camera looking along body +x, pitched down by ``pitch_down``."""
    fwd = np.array([math.cos(yaw) * math.cos(pitch_down), math.sin(yaw) * math.cos(pitch_down), -math.sin(pitch_down)])
    right = np.array([math.sin(yaw), -math.cos(yaw), 0.0])
    down = np.cross(fwd, right)
    return np.stack([right, down, fwd], axis=1)


def _clamp_norm(v: np.ndarray, limit: float) -> np.ndarray:
    n = float(np.linalg.norm(v))
    return v if n <= limit or n == 0.0 else v * (limit / n)


@dataclass
class CameraMount:
    """Camera offset in the level body frame (x forward, y left, z up) and downward pitch."""

    offset: np.ndarray = field(default_factory=lambda: np.array([0.1, 0.0, -0.05]))
    pitch_deg: float = 0.0


@dataclass
class UavLimits:
    max_speed_xy: float = 2.0
    max_speed_z: float = 1.0
    max_accel: float = 2.0
    max_yaw_rate: float = 1.0
    max_yaw_accel: float = 2.0
    #: camera gimbal: pitch range (degrees, + = down) and slew rate
    gimbal_min_deg: float = -30.0
    gimbal_max_deg: float = 90.0
    gimbal_rate_dps: float = 60.0


class UavKinematics:
    """Multirotor as a kinematic point with yaw: velocity commands in the level body frame."""

    def __init__(self, start: Pose, camera_mount: CameraMount | None = None, limits: UavLimits | None = None) -> None:
        self.position = np.asarray(start.position, dtype=np.float64).copy()
        self.yaw = _yaw_of(start)
        self.mount = camera_mount or CameraMount()
        self.limits = limits or UavLimits()
        self.velocity = np.zeros(3)  # map frame
        self.yaw_rate = 0.0
        # a pitch gimbal: the camera's downward pitch slews towards the commanded one
        self.gimbal_pitch_deg = float(self.mount.pitch_deg)
        self.gimbal_target_deg = self.gimbal_pitch_deg

    def set_gimbal_pitch(self, pitch_down_deg: float) -> None:
        """Command the camera's downward pitch (degrees), clipped to the gimbal's range."""
        if not math.isfinite(pitch_down_deg):
            raise ValueError("gimbal pitch is not finite")
        self.gimbal_target_deg = float(np.clip(pitch_down_deg, self.limits.gimbal_min_deg, self.limits.gimbal_max_deg))

    @property
    def state(self) -> np.ndarray:
        """(x, y, z, yaw)."""
        return np.array([*self.position, self.yaw])

    def step(self, v_body_xyz: np.ndarray, yaw_rate: float, dt: float) -> None:
        """Advance ``dt`` seconds toward the commanded body velocity and yaw rate (limited)."""
        if dt <= 0:
            raise ValueError(f"dt must be positive, got {dt}")
        lim = self.limits
        v_cmd = np.asarray(v_body_xyz, dtype=np.float64).reshape(3)
        if not np.all(np.isfinite(v_cmd)) or not math.isfinite(yaw_rate):
            raise ValueError("velocity command is not finite")
        c, s = math.cos(self.yaw), math.sin(self.yaw)
        v_map = np.array([c * v_cmd[0] - s * v_cmd[1], s * v_cmd[0] + c * v_cmd[1], v_cmd[2]])
        v_map[:2] = _clamp_norm(v_map[:2], lim.max_speed_xy)
        v_map[2] = float(np.clip(v_map[2], -lim.max_speed_z, lim.max_speed_z))
        self.velocity = self.velocity + _clamp_norm(v_map - self.velocity, lim.max_accel * dt)
        w_cmd = float(np.clip(yaw_rate, -lim.max_yaw_rate, lim.max_yaw_rate))
        self.yaw_rate += float(np.clip(w_cmd - self.yaw_rate, -lim.max_yaw_accel * dt, lim.max_yaw_accel * dt))
        self.position = self.position + self.velocity * dt
        slew = lim.gimbal_rate_dps * dt
        self.gimbal_pitch_deg += float(np.clip(self.gimbal_target_deg - self.gimbal_pitch_deg, -slew, slew))
        self.yaw = math.atan2(math.sin(self.yaw + self.yaw_rate * dt), math.cos(self.yaw + self.yaw_rate * dt))

    def body_pose(self) -> Pose:
        return _yaw_pose(self.position, self.yaw)

    def camera_pose(self) -> Pose:
        c, s = math.cos(self.yaw), math.sin(self.yaw)
        o = self.mount.offset
        pos = self.position + np.array([c * o[0] - s * o[1], s * o[0] + c * o[1], o[2]])
        return Pose.from_rotation(pos, _body_camera_rotation(self.yaw, math.radians(self.gimbal_pitch_deg)))


class AgvKinematics:
    """Differential-drive ground robot (v, omega) with a camera on a mast."""

    def __init__(self, start: Pose, camera_mount: CameraMount | None = None, max_speed: float = 1.0,
                 max_omega: float = 1.0, max_accel: float = 1.0, max_alpha: float = 2.0,
                 camera_yaw_deg: float = 0.0) -> None:
        self.x, self.y = float(start.position[0]), float(start.position[1])
        self.yaw = _yaw_of(start)
        self.mount = camera_mount or CameraMount(np.array([0.0, 0.0, 1.2]), 15.0)
        self.camera_yaw = math.radians(camera_yaw_deg)  # mast pan relative to the heading (+90 = left)
        self.max_speed, self.max_omega, self.max_accel, self.max_alpha = max_speed, max_omega, max_accel, max_alpha
        self.v = 0.0
        self.omega = 0.0

    def step(self, v: float, omega: float, dt: float) -> None:
        if dt <= 0:
            raise ValueError(f"dt must be positive, got {dt}")
        v_cmd = float(np.clip(v, -self.max_speed, self.max_speed))
        w_cmd = float(np.clip(omega, -self.max_omega, self.max_omega))
        self.v += float(np.clip(v_cmd - self.v, -self.max_accel * dt, self.max_accel * dt))
        self.omega += float(np.clip(w_cmd - self.omega, -self.max_alpha * dt, self.max_alpha * dt))
        mid = self.yaw + 0.5 * self.omega * dt
        self.x += self.v * math.cos(mid) * dt
        self.y += self.v * math.sin(mid) * dt
        self.yaw = math.atan2(math.sin(self.yaw + self.omega * dt), math.cos(self.yaw + self.omega * dt))

    def body_pose(self) -> Pose:
        return _yaw_pose(np.array([self.x, self.y, 0.0]), self.yaw)

    def camera_pose(self) -> Pose:
        c, s = math.cos(self.yaw), math.sin(self.yaw)
        o = self.mount.offset
        pos = np.array([self.x + c * o[0] - s * o[1], self.y + s * o[0] + c * o[1], o[2]])
        return Pose.from_rotation(pos, _body_camera_rotation(self.yaw + self.camera_yaw, math.radians(self.mount.pitch_deg)))


class CameraTargetKinematics:
    """Manipulator placeholder: the camera moves toward a target pose with limited speeds."""

    def __init__(self, start: Pose, max_linear: float = 0.25, max_angular: float = 1.0) -> None:
        self.pose = start
        self.target = start
        self.max_linear = max_linear
        self.max_angular = max_angular

    def set_target(self, target: Pose) -> None:
        self.target = target

    @property
    def at_target(self) -> bool:
        return bool(np.linalg.norm(self.target.position - self.pose.position) < 1e-4
                    and _angle_between(self.pose.orientation, self.target.orientation) < 1e-3)

    def step(self, dt: float) -> None:
        if dt <= 0:
            raise ValueError(f"dt must be positive, got {dt}")
        delta = self.target.position - self.pose.position
        pos = self.pose.position + _clamp_norm(delta, self.max_linear * dt)
        q0, q1 = self.pose.orientation, self.target.orientation
        angle = _angle_between(q0, q1)
        frac = 1.0 if angle <= self.max_angular * dt else self.max_angular * dt / angle
        self.pose = Pose(pos, _slerp(q0, q1, frac))

    def camera_pose(self) -> Pose:
        return self.pose


def _angle_between(q0: np.ndarray, q1: np.ndarray) -> float:
    d = abs(float(np.dot(q0, q1)))
    return 2.0 * math.acos(min(1.0, d))


def _slerp(q0: np.ndarray, q1: np.ndarray, t: float) -> np.ndarray:
    d = float(np.dot(q0, q1))
    if d < 0:
        q1, d = -q1, -d
    if d > 0.9995:
        q = q0 + t * (q1 - q0)
        return q / np.linalg.norm(q)
    th = math.acos(d)
    q = (math.sin((1 - t) * th) * q0 + math.sin(t * th) * q1) / math.sin(th)
    return q / np.linalg.norm(q)


def collides(scenario: Scenario, position: np.ndarray, radius: float) -> bool:
    """True when a sphere of ``radius`` at ``position`` touches any solid object (pipe, supports, ground...)."""
    return scenario.clearance(position) < radius
