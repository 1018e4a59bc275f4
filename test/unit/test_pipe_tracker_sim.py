"""Pipe tracker in the MuJoCo world: a shortened run through the L scenario's riser elbow."""

from __future__ import annotations

import math

import numpy as np
import pytest

from anomaly_inspection_core.control.pipe_tracker import PipeTracker, PipeTrackerConfig, TrackerState
from anomaly_inspection_core.geometry.camera import Pose

pytest.importorskip("mujoco")


@pytest.mark.parametrize("elevation_deg", [0.0, 30.0])
def test_tracker_follows_the_riser_elbow_in_the_simulated_world(elevation_deg: float) -> None:
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
    tracker = PipeTracker(PipeTrackerConfig(standoff_m=standoff, speed_mps=0.4, depth_stride=2,
                                            view_elevation_deg=elevation_deg))
    centreline = pipe_centreline(spec.points, spec.bend_radius)
    axis = centreline.at(np.arange(0.0, centreline.length, 0.02))[0]
    errors, in_view, fitted, elevations = [], [], [], []
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
            if spec.points[0][2] + 0.5 > pose.position[2] and pose.position[0] < spec.points[1][0] - 1.0:
                # on the horizontal run, well before the riser: the UAV's elevation above the axis
                foot = np.array([pose.position[0], spec.points[0][1], spec.points[0][2]])
                u = pose.position - foot
                elevations.append(math.degrees(math.atan2(u[2], np.linalg.norm(u[:2]))))
            uav.set_gimbal_pitch(cmd.gimbal_pitch_deg)
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
    # the view elevation is flown on the horizontal run (after the climb to it) and the gimbal
    # follows it: the pipe stayed in view (asserted above) with the camera pitched down
    assert len(elevations) > 10
    assert abs(np.median(elevations[len(elevations) // 2:]) - elevation_deg) < 5.0
    if elevation_deg == 0:
        assert cmd.gimbal_pitch_deg == 0.0
