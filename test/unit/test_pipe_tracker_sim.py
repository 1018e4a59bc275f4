"""Pipe tracker in the MuJoCo world: a shortened run through the L scenario's riser elbow."""

from __future__ import annotations

import math

import numpy as np
import pytest

from anomaly_inspection_core.control.pipe_tracker import PipeTracker, PipeTrackerConfig, TrackerState
from anomaly_inspection_core.geometry.camera import Pose

pytest.importorskip("mujoco")


def test_tracker_follows_the_riser_elbow_in_the_simulated_world() -> None:
    from anomaly_inspection_core.scenario.loader import load_scenario, pipe_centreline
    from anomaly_inspection_core.sim.robots import UavKinematics
    from anomaly_inspection_core.sim.world import SimWorld

    scn = load_scenario("pipeline_l_riser")
    spec = scn.pipeline
    # 2 m before the elbow instead of the start of the 6 m run: keeps the test short
    start = scn.start_pose
    position = start.position + np.array([4.0, 0.0, 0.0])
    uav = UavKinematics(Pose(position, start.orientation))
    standoff = spec.standoff - spec.radius  # the scenario's stand-off is to the axis
    tracker = PipeTracker(PipeTrackerConfig(standoff_m=standoff, speed_mps=0.4, depth_stride=2))
    centreline = pipe_centreline(spec.points, spec.bend_radius)
    axis = centreline.at(np.arange(0.0, centreline.length, 0.02))[0]
    errors, in_view, fitted = [], [], []
    dt, t = 0.1, 0.0
    with SimWorld(scn, 320, 240) as world:
        k = world.intrinsics
        while t < 40.0:
            pose = uav.camera_pose()
            frame = world.render(pose, t)
            cmd = tracker.update(frame.depth, k, pose, t)
            fitted.append(cmd.estimate is not None)
            errors.append(float(np.min(np.linalg.norm(axis - pose.position, axis=1))) - spec.radius - standoff)
            uv, front = k.project(pose.inverse().transform_points(axis))
            near = np.linalg.norm(axis - pose.position, axis=1) < 3.0
            inside = front & near & (uv[:, 0] >= 0) & (uv[:, 0] < k.width) & (uv[:, 1] >= 0) & (uv[:, 1] < k.height)
            in_view.append(int(inside.sum()) >= 3)  # at least a few cm of the axis
            if cmd.state in (TrackerState.DONE, TrackerState.ABORTED):
                break
            uav.step(cmd.linear_body, cmd.yaw_rate, dt)
            t += dt
    assert cmd.state == TrackerState.DONE, cmd.message
    assert np.max(np.abs(errors)) < 0.25
    missing = [i for i, ok in enumerate(in_view) if not ok]
    assert not missing, f"pipe out of view in frames {missing} of {len(in_view)}"
    assert np.mean(fitted) > 0.85
    # it climbed the riser (top of the pipe at z = 4.0)
    assert tracker.path[:, 2].max() > 3.7
    assert math.isfinite(cmd.distance_travelled) and cmd.distance_travelled > 4.0
    assert np.median(tracker.frame_times_ms) < 40.0
