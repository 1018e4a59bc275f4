"""Sim + pipeline tracker nodes in closed loop over ROS 2 topics: the UAV follows the pipe."""

import numpy as np
import rclpy
from geometry_msgs.msg import PoseStamped
from rclpy.executors import SingleThreadedExecutor
from rclpy.parameter import Parameter
from std_srvs.srv import Trigger

from anomaly_inspection.msg import PipelineTrackerStatus
from anomaly_inspection_ros import conversions as conv
from anomaly_inspection_ros.node_utils import latched_qos
from anomaly_inspection_ros.pipeline_tracker_node import PipelineTrackerNode
from anomaly_inspection_ros.sim_node import SimNode

from conftest import spin_until


def test_tracker_node_follows_the_pipe(ros_context):
    sim = SimNode(context=ros_context, namespace="uav",
                  parameter_overrides=[Parameter("scenario", value="pipeline_straight"), Parameter("clean", value=True),
                                       Parameter("rate_hz", value=10.0)])
    tracker = PipelineTrackerNode(context=ros_context, namespace="uav",
                                  parameter_overrides=[Parameter("standoff_m", value=0.85),
                                                       Parameter("speed_mps", value=0.4),
                                                       Parameter("view_elevation_deg", value=30.0)])
    probe = rclpy.create_node("probe", context=ros_context)
    statuses: list[PipelineTrackerStatus] = []
    poses: list[PoseStamped] = []
    probe.create_subscription(PipelineTrackerStatus, "/uav/tracker/status", statuses.append, latched_qos(50))
    probe.create_subscription(PoseStamped, "/uav/camera/pose", poses.append, 10)
    start = probe.create_client(Trigger, "/uav/tracker/start")
    ex = SingleThreadedExecutor(context=ros_context)
    for n in (sim, tracker, probe):
        ex.add_node(n)
    try:
        assert start.wait_for_service(timeout_sec=10.0)
        future = start.call_async(Trigger.Request())
        assert spin_until(ex, future.done, 10.0) and future.result().success
        spin_until(ex, lambda: tracker.last_command is not None and tracker.last_command.distance_travelled > 1.5,
                   timeout_s=60.0)
    finally:
        ex.shutdown()
        for n in (sim, tracker, probe):
            n.destroy_node()
    tracking = [s for s in statuses if s.state == PipelineTrackerStatus.STATE_TRACKING]
    assert tracking, [s.message for s in statuses[-5:]]
    assert statuses[-1].state == PipelineTrackerStatus.STATE_TRACKING, statuses[-1].message
    assert statuses[-1].distance_travelled > 1.3
    assert statuses[-1].inspecting  # following the pipe: its frames are inspection views
    late = [s.standoff for s in tracking[len(tracking) // 2:]]
    assert max(abs(v - 0.85) for v in late) < 0.25, late
    # flown 30 degrees round the pipe above its axis (z = 1.2), the gimbal pitched down to match
    pose = conv.pose_msg_to_pose(poses[-1].pose)
    pitch = float(np.degrees(np.arcsin(-pose.rotation[2, 2])))
    assert 20.0 < pitch < 35.0, pitch
    assert pose.position[2] > 1.2 + 0.25, pose.position


def test_tracker_waits_for_a_ready_detector_and_follows_its_rate(ros_context):
    import json

    import pytest
    from std_msgs.msg import String

    from anomaly_inspection.msg import AnomalyResult
    from anomaly_inspection_ros import conversions as conv

    node = PipelineTrackerNode(context=ros_context, namespace="uav",
                               parameter_overrides=[Parameter("capture_spacing_m", value=0.05),
                                                    Parameter("teach_speed_mps", value=0.15)])
    try:
        assert node.speed_cap(10.0) == float("inf")  # no detector model: fly at the tracker's speed
        node.pacer.take_status(String(data=json.dumps({"state": "collecting"})))
        assert node.speed_cap(10.0) == pytest.approx(0.15)  # teaching: at the inspection pass's pace
        node.pacer.take_status(String(data=json.dumps({"state": "ready"})))
        assert node.speed_cap(10.0) == 0.0  # a model is loaded but nothing scored yet: hold
        for k in range(5):  # 4 frames per second
            msg = AnomalyResult()
            msg.header.stamp = conv.sec_to_stamp(10.0 + 0.25 * k)
            node.pacer.take_result(msg)
        assert node.speed_cap(11.1) == pytest.approx(0.2)
        assert node.speed_cap(30.0) == 0.0  # scoring stalled: hold again (the tracker still corrects)
    finally:
        node.destroy_node()


def test_tracker_node_parameters_reach_the_tracker(ros_context):
    """Every node parameter named like a tracker parameter configures the tracker."""
    node = PipelineTrackerNode(context=ros_context, namespace="uav", parameter_overrides=[
        Parameter("standoff_m", value=0.55), Parameter("inspection_side", value="right"),
        Parameter("riser_look_ahead_deg", value=20.0), Parameter("lost_timeout_s", value=1.5)])
    try:
        cfg = node.tracker_cfg
        assert (cfg.standoff_m, cfg.inspection_side, cfg.riser_look_ahead_deg, cfg.lost_timeout_s) == (
            0.55, "right", 20.0, 1.5)
        assert cfg.uses_gimbal and cfg.speed_mps == node.cfg.speed_mps
    finally:
        node.destroy_node()
