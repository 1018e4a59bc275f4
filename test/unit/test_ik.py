"""Damped-least-squares inverse kinematics of the wrist camera."""

from __future__ import annotations

import math

import numpy as np
import pytest

from anomaly_inspection_core.control.arm import ArmError, ArmModel
from anomaly_inspection_core.geometry.camera import rotation_angle_deg
from anomaly_inspection_core.control.ik import solve_ik, wrap_near
from anomaly_inspection_core.geometry.camera import Pose


def test_random_reachable_poses_within_1mm_and_half_a_degree():
    arm = ArmModel()
    rng = np.random.default_rng(7)
    for _ in range(25):
        q_true = rng.uniform(arm.lower_array * 0.45, arm.upper_array * 0.45)
        target = arm.camera_pose(q_true)
        res = solve_ik(arm, target, arm.home_array)
        assert res.success, res
        reached = arm.camera_pose(res.q)
        assert np.linalg.norm(reached.position - target.position) < 1e-3
        assert rotation_angle_deg(reached.rotation, target.rotation) < 0.5
        assert res.pos_err_m < 1e-3 and res.rot_err_deg < 0.5
        assert arm.within_limits(res.q)


def test_solutions_respect_tight_joint_limits():
    lower = tuple(math.radians(v) for v in (-90, -180, -150, -180, -180, -90))
    upper = tuple(math.radians(v) for v in (90, 0, 150, 180, 180, 90))
    arm = ArmModel(lower=lower, upper=upper)
    rng = np.random.default_rng(3)
    for _ in range(10):
        q_true = rng.uniform(np.asarray(lower) * 0.8, np.asarray(upper) * 0.8)
        res = solve_ik(arm, arm.camera_pose(q_true), arm.home_array)
        assert res.success
        assert np.all(res.q >= arm.lower_array - 1e-12) and np.all(res.q <= arm.upper_array + 1e-12)


def test_free_roll_leaves_only_the_roll_free():
    arm = ArmModel()
    q_true = np.array([0.4, -1.2, 1.3, -1.6, -1.4, 0.3])
    target = arm.camera_pose(q_true)
    spin = Pose(np.zeros(3), np.array([0.0, 0.0, math.sin(0.6), math.cos(0.6)]))  # 69 deg about optical z
    rolled = target.compose(spin)
    res = solve_ik(arm, rolled, arm.home_array, free_roll=True)
    assert res.success
    got = arm.camera_pose(res.q)
    assert np.linalg.norm(got.position - target.position) < 1e-3
    assert math.degrees(math.acos(min(1.0, got.rotation[:, 2] @ target.rotation[:, 2]))) < 0.5


def test_out_of_reach_target_fails_with_best_effort():
    arm = ArmModel()
    res = solve_ik(arm, Pose.looking_at([2.0, 0.0, 0.5], [3.0, 0.0, 0.5]), arm.home_array, restarts=2)
    assert not res.success
    assert res.pos_err_m > 0.5  # reach is about 0.95 m, the target is 2 m away
    assert arm.within_limits(res.q)


def test_bad_target_type_is_rejected():
    with pytest.raises(ArmError, match="Pose"):
        solve_ik(ArmModel(), np.eye(4))


def test_wrap_near_shifts_by_whole_turns_only():
    arm = ArmModel()
    q = np.array([6.0, -1.0, 1.0, 5.0, -6.0, 0.1])
    out = wrap_near(arm, q, np.zeros(6))
    np.testing.assert_allclose(out, [6.0 - 2 * math.pi, -1.0, 1.0, 5.0 - 2 * math.pi, -6.0 + 2 * math.pi, 0.1])
    np.testing.assert_allclose(arm.camera_matrix(out), arm.camera_matrix(q), atol=1e-12)
