"""Scenario parsing and validation: good files load, bad ones name the offending field."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from anomaly_inspection_core.scenario import DEFECT_TYPES, ScenarioError, load_scenario, parse_scenario
from anomaly_inspection_core.sim.robots import AgvKinematics, CameraTargetKinematics, UavKinematics, collides
from anomaly_inspection_core.geometry.camera import Pose

BASE = {
    "name": "t", "kind": "pipeline", "seed": 1,
    "pipeline": {"points": [[0, 0, 1.2], [4, 0, 1.2], [4, 0, 3.0]], "radius": 0.15},
    "defects": [
        {"type": "corrosion", "position": [1.0, 0.15, 1.2], "size": 0.05},
        {"type": "dent", "position": [2.0, 0.0, 1.35], "size": 0.06},
    ],
}


def test_shipped_scenarios_load():
    for name in ("pipeline_straight", "pipeline_l_riser", "pipeline_elbows", "workcell_casting", "factory_floor"):
        scn = load_scenario(name)
        assert scn.defects, name
        assert {d.type for d in scn.defects} <= set(DEFECT_TYPES)
    assert len(load_scenario("pipeline_elbows").defects) == 14


def test_defects_snap_to_surface_with_normal():
    scn = parse_scenario(copy.deepcopy(BASE))
    d = scn.defects[0]
    assert d.id == 1 and d.surface == "pipe"
    np.testing.assert_allclose(np.linalg.norm(d.position[1:] - [0, 1.2]), 0.15, atol=1e-9)
    np.testing.assert_allclose(d.normal, [0, 1, 0], atol=1e-9)
    assert scn.defects[1].depth == pytest.approx(0.2 * 0.06)
    twin = scn.clean_twin()
    assert twin.defects == () and twin.seed == scn.seed and twin.pipeline is scn.pipeline


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d["defects"][1].update(type="rust"), "defects[1].type: unknown defect type 'rust'; expected one of corrosion"),
    (lambda d: d["defects"][0].update(position=[1.0, 0.6, 1.2]), "defects[0].position: [1.0, 0.6, 1.2] is not on any surface"),
    (lambda d: d["defects"][0].pop("size"), "defects[0].size: required field is missing"),
    (lambda d: d["defects"][0].update(size="big"), "defects[0].size: expected a number"),
    (lambda d: d.update(kind="ship"), "kind: unknown scene kind 'ship'"),
    (lambda d: d["pipeline"].update(radius=-1), "pipeline.radius: must be >= 0.01"),
    (lambda d: d["pipeline"].update(points=[[0, 0, 1], [0.3, 0, 1], [0.3, 0.3, 1]]), "pipeline.bend_radius:"),
    (lambda d: d.update(colour=1), "colour: unknown field"),
    (lambda d: d["defects"].append({"type": "dent", "position": [1.0, 1.0, 0.0], "size": 0.05}),
     "defects[2].type: a dent is not supported on surface 'ground'"),
    (lambda d: d.update(camera={"width": 0}), "camera.width: must be >= 16"),
])
def test_bad_input_names_the_field(mutate, message):
    data = copy.deepcopy(BASE)
    mutate(data)
    with pytest.raises(ScenarioError) as err:
        parse_scenario(data)
    assert message in str(err.value)


def test_bad_file_error_names_file_and_field(tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text("kind: pipeline\npipeline: {points: [[0,0,1],[2,0,1]]}\ndefects:\n  - {type: rust, position: [1,0.15,1], size: 0.05}\n")
    with pytest.raises(ScenarioError, match=r"bad.yaml: defects\[0\].type: unknown defect type 'rust'"):
        load_scenario(f)
    with pytest.raises(ScenarioError, match="no such file"):
        load_scenario(tmp_path / "missing.yaml")


def test_clearance_and_collision():
    scn = parse_scenario(copy.deepcopy(BASE))
    assert scn.clearance(np.array([1.0, 1.0, 1.2])) == pytest.approx(0.85)
    assert collides(scn, np.array([1.0, 0.3, 1.2]), 0.2)
    assert not collides(scn, np.array([1.0, 1.0, 1.2]), 0.3)
    assert collides(scn, np.array([1.0, 3.0, 0.1]), 0.2)  # ground


def test_uav_kinematics_limits_and_camera():
    uav = UavKinematics(Pose(np.array([0.0, 0.0, 1.0])))
    for _ in range(100):
        uav.step(np.array([10.0, 0.0, 0.0]), 0.0, 0.05)
    assert np.linalg.norm(uav.velocity) == pytest.approx(uav.limits.max_speed_xy)
    assert uav.position[0] == pytest.approx(2.0 * 5.0 - 0.5 * 2.0 * 1.0 ** 2, abs=0.06)
    cam = uav.camera_pose()
    np.testing.assert_allclose(cam.rotation[:, 2], [1, 0, 0], atol=1e-9)  # optical axis = body +x
    np.testing.assert_allclose(cam.rotation[:, 1], [0, 0, -1], atol=1e-9)  # image down = world down


def test_uav_gimbal_slews_to_the_commanded_pitch_within_its_range():
    uav = UavKinematics(Pose(np.array([0.0, 0.0, 1.0])))
    uav.set_gimbal_pitch(30.0)
    uav.step(np.zeros(3), 0.0, 0.25)  # 60 deg/s: 15 deg after a quarter second
    assert uav.gimbal_pitch_deg == pytest.approx(15.0)
    uav.step(np.zeros(3), 0.0, 0.5)
    assert uav.gimbal_pitch_deg == pytest.approx(30.0)
    fwd = uav.camera_pose().rotation[:, 2]
    np.testing.assert_allclose(fwd, [np.cos(np.radians(30)), 0.0, -np.sin(np.radians(30))], atol=1e-9)
    uav.set_gimbal_pitch(500.0)  # clipped to the gimbal's range
    assert uav.gimbal_target_deg == uav.limits.gimbal_max_deg
    with pytest.raises(ValueError):
        uav.set_gimbal_pitch(float("nan"))


def test_agv_and_camera_target():
    agv = AgvKinematics(Pose(np.zeros(3)), max_accel=100.0, max_alpha=100.0)
    for _ in range(100):
        agv.step(1.0, 0.0, 0.01)
    assert agv.x == pytest.approx(1.0, abs=0.02) and agv.y == pytest.approx(0.0)
    arm = CameraTargetKinematics(Pose(np.zeros(3)), max_linear=0.5)
    arm.set_target(Pose(np.array([1.0, 0.0, 0.0])))
    arm.step(1.0)
    assert arm.pose.position[0] == pytest.approx(0.5)
    arm.step(2.0)
    assert arm.at_target


def test_flat_capped_cylinder_distance_is_exact_above_the_cap():
    from anomaly_inspection_core.scenario.surfaces import TubeSurface, pipe_centreline

    cl = pipe_centreline(np.array([[0.0, 0.0, 0.75], [0.0, 0.0, 1.05]]), 0.24)
    capped = TubeSurface("part", cl, 0.12, flat_ends=True)
    rounded = TubeSurface("pipe", cl, 0.12)
    above_rim = np.array([0.124, 0.0, 1.14])  # 9 cm above the top, just outside the rim
    assert capped.signed_distance(above_rim) == pytest.approx(np.hypot(0.004, 0.09), abs=1e-9)
    assert capped.signed_distance(np.array([0.0, 0.0, 1.10])) == pytest.approx(0.05, abs=1e-9)
    assert capped.signed_distance(np.array([0.0, 0.0, 0.70])) == pytest.approx(0.05, abs=1e-9)
    assert capped.signed_distance(np.array([0.3, 0.0, 0.9])) == pytest.approx(0.18, abs=1e-9)
    assert capped.signed_distance(np.array([0.0, 0.0, 0.9])) < 0  # inside
    # without flat ends the cap is a hemisphere: the same point looks 12 cm closer
    assert rounded.signed_distance(above_rim) < capped.signed_distance(above_rim) - 0.05
