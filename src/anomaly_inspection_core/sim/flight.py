"""Closed-loop flights of the pipe tracker in the simulated world, without ROS.

The tracker's commands fly the same UAV driver the sim node uses, from depth frames the same
world renders; there is no transport latency and no detector sharing the CPU, so a flight here
is the tracker's best case. Ground truth (the pipe's true axis) is used only to *measure* the
flight: stand-off error, clearance, whether the pipe stayed in view.

Used by ``anomaly-inspection benchmark tracker`` and by the tracker's simulation tests.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from ..control.pipe_tracker import PipeTracker, PipeTrackerConfig, TrackerCommand, TrackerState
from ..geometry.camera import Pose
from ..scenario.schema import Scenario
from .world import RenderedFrame

#: ``observe(t, pose, cmd, frame)`` is called once per tracker update
Observer = Callable[[float, Pose, TrackerCommand, RenderedFrame], None]


@dataclass
class FlightResult:
    """One flight's outcome and per-frame measurements (arrays have one entry per update)."""

    scenario: str
    state: str  # the tracker's last state (TrackerState value: DONE, ABORTED), "collided" or "timeout (...)"
    message: str
    sim_time_s: float
    distance_m: float
    standoff_error_m: np.ndarray = field(repr=False)  # camera-to-pipe-surface distance - stand-off
    clearance_m: np.ndarray = field(repr=False)  # UAV body to the nearest solid (pipe, supports, ground)
    pipe_in_view: np.ndarray = field(repr=False)  # >= 3 axis samples (6 cm) within 3 m inside the image
    fitted: np.ndarray = field(repr=False)  # the tracker had a pipe estimate
    update_ms: np.ndarray = field(repr=False)
    wall_s: float = 0.0
    command: TrackerCommand | None = field(default=None, repr=False)  # the tracker's last command
    #: the camera's last position to the pipe's far end (a DONE far from it ended at a false end)
    end_gap_m: float = float("nan")

    @property
    def completed(self) -> bool:
        return self.state == TrackerState.DONE.value

    def summary(self) -> dict:
        err = np.abs(self.standoff_error_m)
        ms = self.update_ms
        return {
            "scenario": self.scenario,
            "state": self.state,
            "sim_time_s": round(self.sim_time_s, 1),
            "distance_m": round(self.distance_m, 2),
            "standoff_abs_err_p50_m": round(float(np.median(err)), 3) if err.size else None,
            "standoff_abs_err_p95_m": round(float(np.percentile(err, 95)), 3) if err.size else None,
            "min_clearance_m": round(float(self.clearance_m.min()), 3) if self.clearance_m.size else None,
            "pipe_in_view": round(float(self.pipe_in_view.mean()), 3) if self.pipe_in_view.size else None,
            "end_gap_m": round(self.end_gap_m, 2) if np.isfinite(self.end_gap_m) else None,
            "fitted": round(float(self.fitted.mean()), 3) if self.fitted.size else None,
            "update_ms_p50": round(float(np.median(ms)), 1) if ms.size else None,
            "update_ms_p95": round(float(np.percentile(ms, 95)), 1) if ms.size else None,
            "wall_s": round(self.wall_s, 1),
            "message": self.message,
        }


def tracker_params_from_file(path: str | Path, node: str = "pipeline_tracker") -> dict:
    """The ``/**/<node>`` parameters of a ROS 2 parameter file (``{}`` when the node has none)."""
    import yaml

    data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    for key, value in data.items():
        if str(key).rstrip("/").split("/")[-1] == node and isinstance(value, dict):
            return dict(value.get("ros__parameters") or {})
    return {}


def fly_pipe_tracker(scenario: Scenario, config: PipeTrackerConfig, max_time_s: float = 600.0, dt: float = 0.1,
                     width: int = 640, height: int = 480, start: Pose | None = None,
                     observe: Observer | None = None, speed_limit: float | None = None,
                     delay_steps: int = 0) -> tuple[PipeTracker, FlightResult]:
    """Fly ``scenario``'s UAV with a :class:`PipeTracker` until DONE, ABORTED, a collision or
    ``max_time_s`` of simulated time. ``start`` replaces the scenario's start pose;
    ``speed_limit`` is passed to every update (the mission's detector pacing);
    ``delay_steps`` applies each command that many steps of ``dt`` late (the transport and
    processing latency of the ROS graph, where a command computed from one frame reaches the
    simulator one or two frames later; 0: the best case, applied at once)."""
    from ..scenario.loader import pipe_centreline
    from .drivers import UavDriver
    from .world import SimWorld

    if scenario.pipeline is None:
        raise ValueError(f"scenario '{scenario.name}' has no pipeline")
    spec = scenario.pipeline
    axis = pipe_centreline(spec.points, spec.bend_radius)
    axis_pts = axis.at(np.arange(0.0, axis.length, 0.02))[0]
    if delay_steps < 0:
        raise ValueError(f"delay_steps must be >= 0, got {delay_steps}")
    robot = UavDriver(start or scenario.start_pose)
    tracker = PipeTracker(config)
    pending: deque = deque([None] * delay_steps)  # None: no command has arrived yet (hover)
    errors, clearance, in_view, fitted, update_ms = [], [], [], [], []
    t, cmd, state, wall0 = 0.0, None, None, time.perf_counter()
    with SimWorld(scenario, width, height) as world:
        k = world.intrinsics
        while t < max_time_s:
            pose = robot.camera_pose()
            frame = world.render(pose, t)
            t0 = time.perf_counter()
            cmd = tracker.update(frame.depth, k, pose, t, speed_limit=speed_limit)
            update_ms.append((time.perf_counter() - t0) * 1e3)
            dist = np.linalg.norm(axis_pts - pose.position, axis=1)
            errors.append(float(dist.min()) - spec.radius - config.standoff_m)
            clearance.append(float(scenario.clearance(robot.body_position())))
            uv, front = k.project(pose.inverse().transform_points(axis_pts))
            inside = front & (dist < 3.0) & (uv[:, 0] >= 0) & (uv[:, 0] < k.width) & (uv[:, 1] >= 0) & (uv[:, 1] < k.height)
            in_view.append(int(inside.sum()) >= 3)
            fitted.append(cmd.estimate is not None)
            if observe is not None:
                observe(t, pose, cmd, frame)
            if cmd.state in (TrackerState.DONE, TrackerState.ABORTED):
                state = cmd.state.value
                break
            if robot.collides(scenario):
                state = "collided"
                break
            pending.append((np.asarray(cmd.linear_body, float), float(cmd.yaw_rate), cmd.gimbal_pitch_deg))
            applied = pending.popleft()
            if applied is not None:
                linear, yaw_rate, gimbal = applied
                robot.set_velocity_command(linear, yaw_rate)
                robot.set_gimbal_pitch(gimbal)
            robot.step(dt)
            t += dt
        end_gap = float(np.linalg.norm(robot.camera_pose().position - axis_pts[-1]))
    if state is None:
        state = "timeout" if cmd is None else f"timeout ({cmd.state.value})"
    result = FlightResult(
        scenario=scenario.name, state=state, message="" if cmd is None else cmd.message, sim_time_s=t,
        distance_m=float(cmd.distance_travelled) if cmd is not None else 0.0,
        standoff_error_m=np.asarray(errors), clearance_m=np.asarray(clearance), pipe_in_view=np.asarray(in_view, bool),
        fitted=np.asarray(fitted, bool), update_ms=np.asarray(update_ms), wall_s=time.perf_counter() - wall0,
        command=cmd, end_gap_m=end_gap)
    return tracker, result


__all__ = ["FlightResult", "fly_pipe_tracker", "tracker_params_from_file"]
