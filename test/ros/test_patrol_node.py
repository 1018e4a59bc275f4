"""Sim + patrol nodes in closed loop over ROS 2 topics: the AGV drives its route and stops for obstacles."""

import json
import math

import numpy as np
import pytest
import rclpy
import yaml
from nav_msgs.msg import Path
from rclpy.executors import SingleThreadedExecutor
from rclpy.parameter import Parameter
from sensor_msgs.msg import Image
from std_msgs.msg import String
from std_srvs.srv import Trigger

from anomaly_inspection_core.geometry.camera import Pose
from anomaly_inspection_core.paths import scenarios_dir
from anomaly_inspection_ros.node_utils import latched_qos
from anomaly_inspection_ros.patrol_node import PatrolNode, body_pose_from_camera, parse_waypoints
from anomaly_inspection_ros.sim_node import SimNode

from conftest import spin_until


def test_body_pose_from_a_panned_mast_camera():
    from anomaly_inspection_core.sim.robots import AgvKinematics, CameraMount

    for yaw_deg, pan_deg in ((0.0, 90.0), (135.0, 45.0), (-60.0, 0.0)):
        start = Pose(np.array([1.0, -2.0, 0.0]), np.array([0.0, 0.0, math.sin(math.radians(yaw_deg) / 2),
                                                          math.cos(math.radians(yaw_deg) / 2)]))
        kin = AgvKinematics(start, CameraMount(np.array([0.0, 0.0, 1.2]), 15.0), camera_yaw_deg=pan_deg)
        x, y, yaw = body_pose_from_camera(kin.camera_pose(), pan_deg)
        assert (x, y) == pytest.approx((1.0, -2.0), abs=1e-9)
        assert math.remainder(yaw - math.radians(yaw_deg), 2 * math.pi) == pytest.approx(0.0, abs=1e-9)


def test_parse_waypoints_rejects_bad_input():
    assert parse_waypoints("[[0, 0], [1, 2.5]]").tolist() == [[0.0, 0.0], [1.0, 2.5]]
    for bad in ("[[0, 0]]", "[1, 2, 3]", "not json", "[[0, 0], [1, NaN]]", "{}"):
        with pytest.raises(ValueError, match="waypoints"):
            parse_waypoints(bad)


def _nodes(ros_context, scenario: str, patrol_params: list):
    sim = SimNode(context=ros_context, namespace="agv",
                  parameter_overrides=[Parameter("scenario", value=scenario), Parameter("clean", value=True),
                                       Parameter("rate_hz", value=20.0), Parameter("publish_clock", value=False),
                                       Parameter("publish_defect_mask", value=False)])
    patrol = PatrolNode(context=ros_context, namespace="agv",
                        parameter_overrides=[Parameter("scenario", value=scenario), *patrol_params])
    probe = rclpy.create_node("probe", context=ros_context)
    statuses: list[String] = []
    probe.create_subscription(String, "/agv/patrol/status", statuses.append, latched_qos(50))
    ex = SingleThreadedExecutor(context=ros_context)
    for n in (sim, patrol, probe):
        ex.add_node(n)
    return sim, patrol, probe, statuses, ex


def _state(statuses):
    return json.loads(statuses[-1].data) if statuses else {}


def test_patrol_node_drives_its_route(ros_context):
    sim, patrol, probe, statuses, ex = _nodes(
        ros_context, "factory_floor", [Parameter("waypoints", value="[[-7.0, 0.0], [-5.0, 0.0], [-4.0, 0.6]]")])
    paths: list[Path] = []
    probe.create_subscription(Path, "/agv/patrol/path", paths.append, latched_qos())
    bad_depth = probe.create_publisher(Image, "/agv/camera/depth/image_raw", 5)
    start = probe.create_client(Trigger, "/agv/patrol/start")
    try:
        assert start.wait_for_service(timeout_sec=10.0)
        future = start.call_async(Trigger.Request())
        assert spin_until(ex, future.done, 10.0) and future.result().success
        bad_depth.publish(Image(encoding="bgr8", height=2, width=2, step=6, data=bytes(12)))
        assert spin_until(ex, lambda: _state(statuses).get("state") in ("done", "aborted"), timeout_s=90.0), \
            _state(statuses)
        st = _state(statuses)
        assert st["state"] == "done", st
        assert st["waypoint"] == st["waypoints_total"] == 3
        route = 2.0 + math.hypot(1.0, 0.6)
        assert st["distance_m"] == pytest.approx(route, abs=0.35)
        end = sim.robot.kin
        assert math.hypot(end.x + 4.0, end.y - 0.6) <= patrol.cfg.goal_tolerance_m + 0.05
        assert not sim.crashed
        assert paths and len(paths[-1].poses) > 10
        assert patrol.warner.counts.get("depth", 0) >= 1
    finally:
        ex.shutdown()
        for n in (sim, patrol, probe):
            n.destroy_node()


def test_patrol_node_stops_for_an_obstacle_and_aborts_when_blocked(ros_context, tmp_path):
    """A forward-looking mast camera and a route straight into a tank: stop before it, then give up."""
    data = yaml.safe_load((scenarios_dir() / "factory_floor.yaml").read_text())
    data["name"] = "factory_blocked"
    data["factory"]["patrol"] = [[0.0, -2.0], [0.0, 4.0]]  # through tank_b (radius 0.6 at (0, 2.5))
    data["factory"]["camera_yaw_deg"] = 0.0
    scenario = tmp_path / "factory_blocked.yaml"
    scenario.write_text(yaml.safe_dump(data))
    sim, patrol, probe, statuses, ex = _nodes(ros_context, str(scenario),
                                              [Parameter("blocked_timeout_s", value=2.0)])
    start = probe.create_client(Trigger, "/agv/patrol/start")
    try:
        assert start.wait_for_service(timeout_sec=10.0)
        future = start.call_async(Trigger.Request())
        assert spin_until(ex, future.done, 10.0) and future.result().success
        assert spin_until(ex, lambda: _state(statuses).get("state") in ("done", "aborted"), timeout_s=90.0), \
            _state(statuses)
        st = _state(statuses)
        assert st["state"] == "aborted" and "blocked" in st["message"], st
        gap = 1.9 - sim.robot.kin.y  # tank surface at y = 2.5 - 0.6
        assert 0.4 < gap < 1.0, gap  # stopped about stop_distance_m (0.8 m) before it
        assert not sim.crashed
    finally:
        ex.shutdown()
        for n in (sim, patrol, probe):
            n.destroy_node()


def test_patrol_node_warns_when_no_camera_pose_arrives(ros_context):
    """Started with nothing publishing camera/pose, it holds still and says why, and keeps running."""
    patrol = PatrolNode(context=ros_context, namespace="agv_silent",
                        parameter_overrides=[Parameter("scenario", value="factory_floor"),
                                             Parameter("pose_timeout_s", value=0.5),
                                             Parameter("status_period_s", value=0.2)])
    ex = SingleThreadedExecutor(context=ros_context)
    ex.add_node(patrol)
    try:
        spin_until(ex, lambda: False, 1.0)
        assert patrol.warner.counts.get("no_pose", 0) == 0  # idle: nothing expected
        patrol._start()
        assert spin_until(ex, lambda: patrol.warner.counts.get("no_pose", 0) >= 1, 5.0)
        assert patrol.state == "running" and patrol.last_command is None
    finally:
        ex.shutdown()
        patrol.destroy_node()


def test_speed_is_capped_by_the_detector_scoring_rate(ros_context):
    from anomaly_inspection.msg import AnomalyResult
    from anomaly_inspection_ros import conversions as conv

    patrol = PatrolNode(context=ros_context, namespace="agv",
                        parameter_overrides=[Parameter("capture_spacing_m", value=0.2),
                                             Parameter("max_speed", value=0.5)])
    try:
        assert patrol.speed_cap(10.0) == 0.5  # no results (teaching): not capped
        for k in range(9):  # 2 frames scored per second
            msg = AnomalyResult()
            msg.header.stamp = conv.sec_to_stamp(10.0 + 0.5 * k)
            patrol.pacer.take_result(msg)
        assert patrol.scoring_rate_hz(14.1) == pytest.approx(2.0)
        assert patrol.speed_cap(14.1) == pytest.approx(0.4)
        assert patrol.speed_cap(20.0) == 0.5  # results stopped: not capped
        stale = AnomalyResult()
        stale.header.stamp = conv.sec_to_stamp(13.9)
        patrol.pacer.take_result(stale)  # out of order: ignored
        assert patrol.scoring_rate_hz(14.1) == pytest.approx(2.0)
        # a detector with a model that is not scoring (yet): hold still rather than pass things unseen
        patrol.pacer.take_status(String(data=json.dumps({"state": "ready"})))
        assert patrol.speed_cap(20.0) == 0.0
        assert patrol.speed_cap(14.1) == pytest.approx(0.4)
        patrol.pacer.take_status(String(data="not json"))  # dropped with a warning, state kept
        assert patrol.speed_cap(20.0) == 0.0
        patrol.pacer.take_status(String(data=json.dumps({"state": "collecting"})))  # teaching
        assert patrol.speed_cap(20.0) == 0.5
    finally:
        patrol.destroy_node()
