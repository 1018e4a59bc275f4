"""Pure-pursuit patrol on the simulator's AGV kinematics, obstacle stops, depth obstacle distance."""

from __future__ import annotations

import math

import numpy as np
import pytest

from anomaly_inspection_core.control.patrol import (
    BLOCKED, DRIVING, DWELLING, FINISHED, PatrolConfig, PurePursuitController, min_obstacle_distance)
from anomaly_inspection_core.geometry.camera import CameraIntrinsics, Pose
from anomaly_inspection_core.sim.robots import AgvKinematics

SQUARE = np.array([[0.0, 0.0], [4.0, 0.0], [4.0, 4.0], [0.0, 4.0], [0.0, 0.0]])


def _distance_to_square(p: np.ndarray) -> float:
    best = math.inf
    for a, b in zip(SQUARE[:-1], SQUARE[1:]):
        t = np.clip((p - a) @ (b - a) / ((b - a) @ (b - a)), 0.0, 1.0)
        best = min(best, float(np.linalg.norm(a + t * (b - a) - p)))
    return best


def _run(ctrl: PurePursuitController, obstacle=None, dt: float = 0.05, t_max: float = 120.0):
    agv = AgvKinematics(Pose(np.zeros(3)))
    log = []
    t = 0.0
    while t < t_max:
        pose = np.array([agv.x, agv.y, agv.yaw])
        dist = obstacle(t, pose) if obstacle else math.inf
        cmd = ctrl.update(pose, dist, dt)
        log.append((t, agv.x, agv.y, cmd.state, cmd.waypoint_index, cmd.v))
        if cmd.state == FINISHED:
            break
        agv.step(cmd.v, cmd.omega, dt)
        t += dt
    return agv, log


def test_follows_a_square_and_finishes_at_the_last_waypoint():
    ctrl = PurePursuitController(SQUARE, PatrolConfig(lookahead_m=0.5, max_speed=0.8))
    agv, log = _run(ctrl)
    assert log[-1][3] == FINISHED
    assert math.hypot(agv.x, agv.y) <= 0.15 + 0.05
    xy = np.array([(r[1], r[2]) for r in log])
    errors = np.array([_distance_to_square(p) for p in xy])
    assert errors.max() < 0.25  # pure pursuit cuts the 90 deg corners by a fraction of the lookahead
    assert np.median(errors) < 0.02
    # It visited every corner's neighbourhood and reported the waypoints in order.
    for corner in SQUARE[1:4]:
        assert np.min(np.linalg.norm(xy - corner, axis=1)) < 0.3
    indices = [r[4] for r in log]
    assert indices == sorted(indices) and set(indices) >= {1, 2, 3, 4}


def test_stops_for_an_obstacle_and_resumes_when_it_is_gone():
    cfg = PatrolConfig(lookahead_m=0.5, stop_distance_m=0.8, resume_distance_m=1.0)
    ctrl = PurePursuitController(SQUARE[:2], cfg)
    obstacle_x = 2.5

    def sensor(t: float, pose: np.ndarray) -> float:
        return obstacle_x - pose[0] if t < 20.0 else math.inf  # removed after 20 s

    agv, log = _run(ctrl, sensor)
    blocked = [r for r in log if r[3] == BLOCKED]
    assert blocked, "the robot never stopped"
    # It stopped before the obstacle (braking from 0.5 m/s at 1 m/s^2 adds ~0.13 m).
    first = blocked[0]
    assert obstacle_x - first[1] == pytest.approx(0.8, abs=0.06)
    assert max(r[1] for r in log if r[0] < 20.0) < obstacle_x - 0.5
    assert all(r[5] == 0.0 for r in blocked)
    assert log[-1][3] == FINISHED and agv.x == pytest.approx(4.0, abs=0.2)


def test_hysteresis_holds_between_stop_and_resume_distances():
    ctrl = PurePursuitController(SQUARE, PatrolConfig(stop_distance_m=0.8, resume_distance_m=1.0))
    pose = np.zeros(3)
    assert ctrl.update(pose, 0.7).state == BLOCKED
    assert ctrl.update(pose, 0.9).state == BLOCKED  # not yet clear
    assert ctrl.update(pose, 1.1).state == DRIVING
    assert ctrl.update(pose, 0.9).state == DRIVING  # above the stop distance


def test_dwells_at_every_waypoint_when_asked():
    cfg = PatrolConfig(lookahead_m=0.5, stop_at_waypoints=True, dwell_s=1.0)
    ctrl = PurePursuitController(SQUARE, cfg)
    _, log = _run(ctrl)
    assert log[-1][3] == FINISHED
    dwell_at = {r[4] for r in log if r[3] == DWELLING}
    assert dwell_at == {1, 2, 3, 4}
    for idx in (1, 2, 3):
        rows = [r for r in log if r[3] == DWELLING and r[4] == idx]
        assert len(rows) * 0.05 == pytest.approx(1.0, abs=0.11)
        assert np.linalg.norm(np.array(rows[0][1:3]) - SQUARE[idx]) <= 0.15 + 1e-6


def test_loop_mode_keeps_going():
    ctrl = PurePursuitController(SQUARE[:4], PatrolConfig(lookahead_m=0.5, loop=True))
    _, log = _run(ctrl, t_max=60.0)
    assert all(r[3] == DRIVING for r in log)
    assert ctrl.laps >= 1


def test_config_errors_name_the_field():
    with pytest.raises(ValueError, match="resume_distance_m"):
        PatrolConfig(stop_distance_m=1.0, resume_distance_m=0.5)
    with pytest.raises(ValueError, match="lookahead_m"):
        PatrolConfig(lookahead_m=0.0)
    with pytest.raises(ValueError, match="unknown key"):
        PatrolConfig.from_mapping({"lookahed_m": 1.0})
    assert PatrolConfig.from_mapping({"loop": True}).loop
    with pytest.raises(ValueError, match="N >= 2"):
        PurePursuitController(np.zeros((1, 2)))


def _floor_and_wall_depth(k: CameraIntrinsics, height: float, pitch_deg: float, wall_x: float | None) -> np.ndarray:
    """Analytic depth of a level floor (and optionally a wall at x = wall_x) for a pitched camera."""
    rays = k.pixel_rays().reshape(-1, 3)
    p = math.radians(pitch_deg)
    fwd = np.array([math.cos(p), 0.0, -math.sin(p)])
    right = np.array([0.0, -1.0, 0.0])
    down = np.cross(fwd, right)
    r = np.stack([right, down, fwd], axis=1)
    d = rays @ r.T  # ray direction in the robot frame per unit z-depth
    depth = np.full(len(d), np.inf)
    hit_floor = d[:, 2] < -1e-9
    depth[hit_floor] = height / -d[hit_floor, 2]
    if wall_x is not None:
        hit_wall = d[:, 0] > 1e-9
        t_wall = np.where(hit_wall, (wall_x - 0.0) / np.where(hit_wall, d[:, 0], 1.0), np.inf)
        depth = np.minimum(depth, t_wall)
    depth[~np.isfinite(depth)] = 0.0  # no return
    return depth.reshape(k.height, k.width)


def test_min_obstacle_distance_ignores_the_floor_and_finds_a_wall():
    k = CameraIntrinsics.from_fov(160, 120, 55.0)
    floor = _floor_and_wall_depth(k, 1.2, 15.0, None)
    assert min_obstacle_distance(floor, k, 1.2, 15.0) == math.inf
    wall = _floor_and_wall_depth(k, 1.2, 15.0, 3.0)
    assert min_obstacle_distance(wall, k, 1.2, 15.0) == pytest.approx(3.0, abs=1e-6)
    with pytest.raises(ValueError, match="depth image"):
        min_obstacle_distance(floor[:-1], k, 1.2, 15.0)
