"""The simulator node publishes image, depth, CameraInfo and pose with one stamp and matching sizes."""

import numpy as np
import rclpy
from geometry_msgs.msg import PoseStamped
from rclpy.executors import SingleThreadedExecutor
from rclpy.parameter import Parameter
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Float64

from anomaly_inspection.msg import DefectArray
from anomaly_inspection_ros import conversions as conv
from anomaly_inspection_ros.node_utils import latched_qos, qos_from_name
from anomaly_inspection_ros.sim_node import SimNode

from conftest import spin_until


def test_sim_node_streams_are_consistent(ros_context):
    sim = SimNode(context=ros_context, namespace="uav",
                  parameter_overrides=[Parameter("scenario", value="pipeline_straight"),
                                       Parameter("rate_hz", value=10.0)])
    probe = rclpy.create_node("probe", context=ros_context)
    got: dict[str, dict[float, object]] = {"rgb": {}, "depth": {}, "info": {}, "pose": {}}
    gt: list[DefectArray] = []
    qos = qos_from_name("sensor_data", depth=5)

    def keep(kind):
        return lambda msg: got[kind].__setitem__(conv.stamp_to_sec(msg.header.stamp), msg)

    probe.create_subscription(Image, "/uav/camera/image_raw", keep("rgb"), qos)
    probe.create_subscription(Image, "/uav/camera/depth/image_raw", keep("depth"), qos)
    probe.create_subscription(CameraInfo, "/uav/camera/camera_info", keep("info"), qos)
    probe.create_subscription(PoseStamped, "/uav/camera/pose", keep("pose"), 10)
    probe.create_subscription(DefectArray, "/uav/ground_truth/defects", gt.append, latched_qos())
    ex = SingleThreadedExecutor(context=ros_context)
    ex.add_node(sim)
    ex.add_node(probe)
    try:
        common = lambda: set(got["rgb"]) & set(got["depth"]) & set(got["info"]) & set(got["pose"])  # noqa: E731
        assert spin_until(ex, lambda: len(common()) >= 3 and gt, timeout_s=60.0), {k: len(v) for k, v in got.items()}
        t = sorted(common())[-1]
        rgb = conv.image_to_rgb(got["rgb"][t])
        depth = conv.depth_to_metres(got["depth"][t])
        intr = conv.camera_info_to_intrinsics(got["info"][t])
        pose = conv.pose_msg_to_pose(got["pose"][t].pose)

        # the UAV's camera gimbal: a non-finite command is dropped, a pitch is slewed to
        gimbal = probe.create_publisher(Float64, "/uav/camera/gimbal_pitch", 10)

        def pitch_down() -> float:
            fwd = conv.pose_msg_to_pose(got["pose"][max(got["pose"])].pose).rotation[:, 2]
            return float(np.degrees(np.arcsin(-fwd[2])))

        gimbal.publish(Float64(data=float("nan")))
        assert spin_until(ex, lambda: max(got["pose"]) > t + 0.5, timeout_s=30.0)
        assert abs(pitch_down()) < 1e-6
        gimbal.publish(Float64(data=20.0))
        assert spin_until(ex, lambda: abs(pitch_down() - 20.0) < 0.5, timeout_s=30.0), pitch_down()
    finally:
        ex.shutdown()
        sim.destroy_node()
        probe.destroy_node()
    assert rgb.shape == (480, 640, 3) and depth.shape == (480, 640)
    assert (intr.width, intr.height) == (640, 480)
    assert got["pose"][t].header.frame_id == "map"
    assert got["rgb"][t].header.frame_id == got["depth"][t].header.frame_id == "camera_optical_frame"
    # the pipe (its first metres start at the image centre) is in front at about the stand-off
    band = depth[200:280, :320]
    assert np.isfinite(band).mean() > 0.9 and 0.6 < np.nanmedian(band) < 1.2
    assert np.linalg.norm(pose.position - np.array([0.0, 1.0, 1.2])) < 0.3
    assert len(gt[-1].defects) == 10 and gt[-1].header.frame_id == "map"
