"""Workcell arm and plate rendering, the manipulator and AGV drivers, new factory scenarios."""

from __future__ import annotations

import numpy as np
import pytest

from anomaly_inspection_core.geometry.camera import Pose
from anomaly_inspection_core.scenario import PlateSpec, ScenarioError, load_scenario, parse_scenario
from anomaly_inspection_core.sim.drivers import AgvDriver, ArmDriver, make_robot

pytest.importorskip("mujoco")

PLATE = {
    "name": "plate_test", "kind": "workcell", "seed": 2,
    "camera": {"width": 160, "height": 120, "fov_y_deg": 50.0, "min_range": 0.05, "max_range": 5.0},
    "lighting": {"shadows": False},
    "workcell": {"part": {"shape": "plate", "position": [0, 0], "size": [0.4, 0.3, 0.03],
                          "holes": [{"position": [0.0, 0.0], "radius": 0.05}]}, "standoff": 0.6},
    "defects": [{"type": "stain", "position": [0.12, 0.08, 0.78], "size": 0.03}],
}


@pytest.fixture(scope="module")
def plate_world():
    from anomaly_inspection_core.sim import SimWorld

    world = SimWorld(parse_scenario(PLATE))
    yield world
    world.close()


def test_plate_hole_shows_table_in_depth(plate_world):
    pose = Pose.looking_at([0.0, 0.0, 1.3], [0.0, 0.0, 0.0])  # straight down, 0.52 m above the top face
    frame = plate_world.render(pose, wrist_camera=False)
    v, u = 60, 80  # optical axis: through the hole centre onto the table top (z = 0.75)
    assert frame.depth[v, u] == pytest.approx(1.3 - 0.75, abs=0.005)
    assert frame.depth[v, u + 20] == pytest.approx(1.3 - 0.78, abs=0.005)  # plate top beside the hole
    assert frame.defect_ids[v, u] == 0


def test_plate_validation_names_the_field():
    bad = {**PLATE, "workcell": {**PLATE["workcell"], "part": {**PLATE["workcell"]["part"],
                                                                "holes": [{"position": [0.19, 0.0], "radius": 0.02}]}}}
    with pytest.raises(ScenarioError, match=r"workcell.part.holes\[0\].position: the hole"):
        parse_scenario(bad)
    in_hole = {**PLATE, "defects": [{"type": "stain", "position": [0.03, 0.0, 0.78], "size": 0.02}]}
    with pytest.raises(ScenarioError, match=r"defects\[0\].position: the defect overlaps hole 0"):
        parse_scenario(in_hole)


def test_arm_visible_externally_not_in_wrist_view(plate_world):
    arm = plate_world.arm
    q = np.asarray(arm.home)
    outside = Pose.looking_at([2.0, -1.5, 1.6], arm.base.position - [0, 0, 0.4])
    ext = plate_world.render(outside, joints=q, wrist_camera=False)
    assert ext.robot_fraction > 0.003
    wrist = plate_world.render(arm.camera_pose(q), joints=q)
    assert wrist.robot_fraction == 0.0
    # The wrist camera at home looks down at the plate: the part fills the image centre.
    assert np.isfinite(wrist.depth[60, 80]) and wrist.depth[60, 80] < 0.7


def test_arm_driver_moves_and_refuses_unreachable():
    scn = parse_scenario(PLATE)
    drv = make_robot(scn)
    assert isinstance(drv, ArmDriver) and drv.command_type == "pose"
    start = drv.camera_pose().position.copy()
    assert drv.set_target(Pose.looking_at([0.3, 0.3, 1.2], [0.0, 0.0, 0.78])) is True
    for _ in range(400):
        drv.step(0.05)
    assert drv.settled and drv.last_error is None
    assert np.linalg.norm(drv.camera_pose().position - [0.3, 0.3, 1.2]) < 1e-3
    assert np.linalg.norm(drv.camera_pose().position - start) > 0.1
    assert drv.set_target(Pose.looking_at([5.0, 0.0, 1.0], [0.0, 0.0, 0.78])) is False
    assert "unreachable" in drv.last_error
    assert not drv.collides(scn)


@pytest.mark.parametrize("name", ["workcell_plate", "workcell_cylinder", "factory_tank_farm", "factory_machine_hall"])
def test_new_scenarios_load_and_render(name):
    from anomaly_inspection_core.sim import SimWorld

    scn = load_scenario(name)
    assert len(scn.defects) >= 5
    assert all(d.normal[2] > -0.5 for d in scn.defects)  # nothing on a bottom face
    with SimWorld(scn, 96, 72) as world:
        seen = set()
        for pose in world.default_trajectory(6):
            seen.update(world.render(pose).defects_in_view)
    assert len(seen) >= 3, seen


def test_agv_driver_takes_the_scenario_mast():
    scn = load_scenario("factory_tank_farm")
    drv = make_robot(scn)
    assert isinstance(drv, AgvDriver) and drv.camera_yaw_deg == 45.0
    pose = drv.camera_pose()
    assert pose.position[2] == pytest.approx(scn.factory.camera_height)
    heading = np.array([np.cos(np.radians(45.0)), np.sin(np.radians(45.0))])  # start faces +x
    fwd = pose.rotation[:, 2]
    assert fwd[:2] / np.linalg.norm(fwd[:2]) == pytest.approx(heading, abs=1e-6)
    assert isinstance(load_scenario("workcell_plate").workcell.part, PlateSpec)
