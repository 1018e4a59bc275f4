"""AGV patrol: a pure-pursuit waypoint follower that stops for obstacles, and the obstacle
distance it needs, measured in the mast camera's depth image.

The controller is pure logic: feed it the robot pose ``(x, y, yaw)`` and the distance to the
nearest obstacle ahead every control period, send the returned ``(v, omega)`` to the base.

States:

* ``driving``: following the path;
* ``blocked``: an obstacle is closer than ``stop_distance_m``; the robot stands until it is
  farther than ``resume_distance_m`` (hysteresis, so a noisy reading does not make it jerk);
* ``dwelling``: stopped on a waypoint for ``dwell_s`` (captures at stops);
* ``finished``: the last waypoint is reached (never with ``loop``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any, NamedTuple

import numpy as np

from ..geometry.camera import CameraIntrinsics

DRIVING, BLOCKED, DWELLING, FINISHED = "driving", "blocked", "dwelling", "finished"


class PatrolCommand(NamedTuple):
    """Velocity command and controller state; ``waypoint_index`` is the waypoint being driven to."""

    v: float
    omega: float
    state: str
    waypoint_index: int


@dataclass(frozen=True)
class PatrolConfig:
    """Parameters of :class:`PurePursuitController` (one YAML mapping, see :meth:`from_mapping`)."""

    lookahead_m: float = 0.6
    max_speed: float = 0.5
    min_speed: float = 0.05
    max_omega: float = 1.0
    goal_tolerance_m: float = 0.15
    stop_distance_m: float = 0.8
    resume_distance_m: float = 1.0
    loop: bool = False
    stop_at_waypoints: bool = False
    dwell_s: float = 1.0
    rotate_in_place_deg: float = 60.0
    slow_down_distance_m: float = 0.8

    def __post_init__(self) -> None:
        for name in ("lookahead_m", "max_speed", "max_omega", "goal_tolerance_m", "stop_distance_m",
                     "rotate_in_place_deg", "slow_down_distance_m"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"patrol.{name} must be a positive number, got {value!r}")
        if not 0 <= self.min_speed <= self.max_speed:
            raise ValueError(f"patrol.min_speed must be in [0, max_speed], got {self.min_speed}")
        if self.resume_distance_m < self.stop_distance_m:
            raise ValueError(f"patrol.resume_distance_m ({self.resume_distance_m}) must be >= "
                             f"stop_distance_m ({self.stop_distance_m})")
        if self.dwell_s < 0:
            raise ValueError(f"patrol.dwell_s must be >= 0, got {self.dwell_s}")

    @classmethod
    def from_mapping(cls, data: dict[str, Any] | None) -> "PatrolConfig":
        """Build from a YAML mapping; unknown keys are errors that name the key."""
        data = dict(data or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"patrol: unknown key(s) {unknown}; known: {sorted(known)}")
        return cls(**data)


def _wrap(a: float) -> float:
    return math.atan2(math.sin(a), math.cos(a))


class PurePursuitController:
    """Pure pursuit along a polyline of waypoints (N, 2) in ``map``; see the module docstring."""

    def __init__(self, waypoints: np.ndarray, config: PatrolConfig | None = None) -> None:
        wp = np.asarray(waypoints, dtype=np.float64)
        if wp.ndim != 2 or wp.shape[1] != 2 or len(wp) < 2:
            raise ValueError(f"waypoints must be an (N, 2) array with N >= 2, got shape {wp.shape}")
        if not np.all(np.isfinite(wp)):
            raise ValueError("waypoints contain non-finite values")
        if np.any(np.linalg.norm(np.diff(wp, axis=0), axis=1) < 1e-6):
            raise ValueError("waypoints contain two consecutive identical points")
        self.config = config or PatrolConfig()
        self.waypoints = wp
        closed = self.config.loop and np.linalg.norm(wp[-1] - wp[0]) > 1e-6
        self._path = np.vstack([wp, wp[:1]]) if closed else wp
        self._n_wp = len(wp)
        self.reset()

    def reset(self) -> None:
        """Start over from the first segment."""
        self.segment = 0  # driving from path point `segment` to `segment + 1`
        self.laps = 0
        self.state = DRIVING
        self._blocked = False
        self._dwell_left = 0.0

    @property
    def waypoint_index(self) -> int:
        return (self.segment + 1) % self._n_wp

    @property
    def finished(self) -> bool:
        return self.state == FINISHED

    # ------------------------------------------------------------------ geometry helpers
    def _n_seg(self) -> int:
        return len(self._path) - 1

    def _project(self, k: int, p: np.ndarray) -> tuple[float, float]:
        a, b = self._path[k], self._path[k + 1]
        ab = b - a
        t = float(np.clip((p - a) @ ab / (ab @ ab), 0.0, 1.0))
        return t, float(np.linalg.norm(a + t * ab - p))

    def _advance_segment(self) -> bool:
        """Move to the next segment; False when the path has ended (no loop)."""
        if self.segment + 1 < self._n_seg():
            self.segment += 1
            return True
        if self.config.loop:
            self.segment = 0
            self.laps += 1
            return True
        return False

    def _lookahead_point(self, p: np.ndarray, t: float) -> np.ndarray:
        """The point ``lookahead_m`` along the path from the projection of ``p``."""
        remaining = self.config.lookahead_m
        k = self.segment
        a, b = self._path[k], self._path[k + 1]
        point = a + t * (b - a)
        while True:
            b = self._path[k + 1]
            d = float(np.linalg.norm(b - point))
            if d >= remaining:
                return point + (b - point) * (remaining / d)
            remaining -= d
            point = b
            if self.config.stop_at_waypoints:
                return point
            if k + 1 < self._n_seg():
                k += 1
            elif self.config.loop:
                k = 0
            else:
                return point

    # ------------------------------------------------------------------ control
    def update(self, pose_xy_yaw: np.ndarray, obstacle_distance: float = math.inf, dt: float = 0.1) -> PatrolCommand:
        """One control step: the command for the robot at ``pose_xy_yaw`` = (x, y, yaw).

        ``obstacle_distance`` (m, ``inf`` when nothing is seen) comes from
        :func:`min_obstacle_distance`; ``dt`` is the control period, used to time dwells.
        """
        pose = np.asarray(pose_xy_yaw, dtype=np.float64).reshape(3)
        if not np.all(np.isfinite(pose)):
            raise ValueError(f"pose must be 3 finite values (x, y, yaw), got {pose.tolist()}")
        if math.isnan(obstacle_distance):
            raise ValueError("obstacle_distance is NaN (use inf when nothing is seen)")
        cfg = self.config
        if self.state == FINISHED:
            return PatrolCommand(0.0, 0.0, FINISHED, self.waypoint_index)

        if self._blocked:
            self._blocked = obstacle_distance < cfg.resume_distance_m
        else:
            self._blocked = obstacle_distance < cfg.stop_distance_m

        if self._dwell_left > 0.0:
            self._dwell_left -= dt
            if self._dwell_left > 0.0:
                self.state = DWELLING
                return PatrolCommand(0.0, 0.0, DWELLING, self.waypoint_index)
            if not self._advance_segment():
                self.state = FINISHED
                return PatrolCommand(0.0, 0.0, FINISHED, self.waypoint_index)

        if self._blocked:
            self.state = BLOCKED
            return PatrolCommand(0.0, 0.0, BLOCKED, self.waypoint_index)

        p = pose[:2]
        t, _ = self._project(self.segment, p)
        goal = self._path[self.segment + 1]
        last_segment = self.segment + 1 == self._n_seg() and not cfg.loop
        if cfg.stop_at_waypoints or last_segment:
            if np.linalg.norm(goal - p) <= cfg.goal_tolerance_m:
                if cfg.stop_at_waypoints and cfg.dwell_s > 0:
                    self._dwell_left = cfg.dwell_s
                    self.state = DWELLING
                    return PatrolCommand(0.0, 0.0, DWELLING, self.waypoint_index)
                if not self._advance_segment():
                    self.state = FINISHED
                    return PatrolCommand(0.0, 0.0, FINISHED, self.waypoint_index)
                t, _ = self._project(self.segment, p)
        else:
            # Hand over to the next segment once it is the closer one (corners are cut by
            # about the lookahead distance, as pure pursuit does).
            nxt = self.segment + 1 if self.segment + 1 < self._n_seg() else 0
            t_next, d_next = self._project(nxt, p)
            _, d_cur = self._project(self.segment, p)
            if t >= 1.0 - 1e-9 or (d_next < d_cur and t_next > 0.0):
                self._advance_segment()
                t, _ = self._project(self.segment, p)

        target = self._lookahead_point(p, t)
        c, s = math.cos(pose[2]), math.sin(pose[2])
        d = target - p
        x_b, y_b = c * d[0] + s * d[1], -s * d[0] + c * d[1]
        dist = math.hypot(x_b, y_b)
        alpha = math.atan2(y_b, x_b)
        if dist < 1e-9:
            return PatrolCommand(0.0, 0.0, DRIVING, self.waypoint_index)
        self.state = DRIVING
        if abs(alpha) > math.radians(cfg.rotate_in_place_deg):
            return PatrolCommand(0.0, math.copysign(cfg.max_omega, alpha), DRIVING, self.waypoint_index)
        v = cfg.max_speed
        if cfg.stop_at_waypoints or last_segment:
            to_goal = float(np.linalg.norm(self._path[self.segment + 1] - p))
            v = max(cfg.min_speed, min(v, cfg.max_speed * to_goal / cfg.slow_down_distance_m))
        curvature = 2.0 * math.sin(alpha) / dist
        omega = v * curvature
        if abs(omega) > cfg.max_omega:
            v *= cfg.max_omega / abs(omega)
            omega = math.copysign(cfg.max_omega, omega)
        return PatrolCommand(float(v), float(omega), DRIVING, self.waypoint_index)


def min_obstacle_distance(depth: np.ndarray, intrinsics: CameraIntrinsics, camera_height: float,
                          camera_pitch_deg: float = 0.0, camera_yaw_deg: float = 0.0,
                          corridor_half_width: float = 0.4, floor_margin: float = 0.08,
                          max_height: float = 2.0, roi: tuple[int, int, int, int] | None = None,
                          stride: int = 2, min_points: int = 15, camera_forward_offset: float = 0.0) -> float:
    """Forward distance (m) from the robot to the nearest obstacle in its driving corridor.

    Back-projects the depth image (metric z-depth, optical frame) into the level robot frame
    (x forward, y left, z up from the floor) using the camera's mounting height, downward
    pitch and yaw relative to the heading. The floor (points lower than ``floor_margin``) and
    everything above ``max_height`` or outside ``|y| <= corridor_half_width`` is ignored.
    The ``min_points``-th nearest remaining point gives the distance, so a few noisy pixels do
    not stop the robot; ``inf`` when fewer remain. ``roi`` = (u0, v0, u1, v1) limits the pixels.

    A camera that looks sideways (``camera_yaw_deg`` far from 0) sees little of the corridor
    ahead: the distance is then mostly ``inf`` and cannot protect the robot.
    """
    d = np.asarray(depth, dtype=np.float64)
    if d.shape != (intrinsics.height, intrinsics.width):
        raise ValueError(f"depth image is {d.shape}, intrinsics say {(intrinsics.height, intrinsics.width)}")
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    u0, v0, u1, v1 = (0, 0, intrinsics.width, intrinsics.height) if roi is None else roi
    if not (0 <= u0 < u1 <= intrinsics.width and 0 <= v0 < v1 <= intrinsics.height):
        raise ValueError(f"roi {roi} is not a window inside the {intrinsics.width}x{intrinsics.height} image")
    vv, uu = np.mgrid[v0:v1:stride, u0:u1:stride]
    z = d[vv, uu]
    ok = np.isfinite(z) & (z > 0)
    if not np.any(ok):
        return math.inf
    pc = intrinsics.backproject(uu[ok], vv[ok], z[ok])
    yaw, pitch = math.radians(camera_yaw_deg), math.radians(camera_pitch_deg)
    fwd = np.array([math.cos(yaw) * math.cos(pitch), math.sin(yaw) * math.cos(pitch), -math.sin(pitch)])
    right = np.array([math.sin(yaw), -math.cos(yaw), 0.0])
    down = np.cross(fwd, right)
    r = np.stack([right, down, fwd], axis=1)
    pb = pc @ r.T + np.array([camera_forward_offset, 0.0, camera_height])
    keep = (pb[:, 2] > floor_margin) & (pb[:, 2] < max_height) & (np.abs(pb[:, 1]) <= corridor_half_width) \
        & (pb[:, 0] > 0.0)
    x = pb[keep, 0]
    if len(x) < min_points:
        return math.inf
    return float(np.partition(x, min_points - 1)[min_points - 1])
