"""Mapper node over ROS 2 topics: localises and fuses regions, drops invalid input, reports silent inputs.

The scene is a plane 1 m in front of a camera looking along the map's +z (identity orientation,
ROS optical frame); one anomalous 10x10 px region marks a point at (0.1, 0, 1) m. The camera
sees it from three positions, so the mapper must fuse three views into one defect there.
"""

import contextlib
import json
import math

import numpy as np
import pytest
import rclpy
from geometry_msgs.msg import PoseStamped
from rclpy.executors import SingleThreadedExecutor
from rclpy.parameter import Parameter
from sensor_msgs.msg import CameraInfo, Image, RegionOfInterest
from std_msgs.msg import Header, String
from std_srvs.srv import Trigger

from anomaly_inspection.msg import AnomalyRegion, AnomalyResult, Defect, DefectArray, PipelineTrackerStatus
from anomaly_inspection_core.geometry.camera import CameraIntrinsics, Pose
from anomaly_inspection_ros import conversions as conv
from anomaly_inspection_ros.mapper_node import MapperNode
from anomaly_inspection_ros.node_utils import latched_qos, qos_from_name

from conftest import spin_until

INTR = CameraIntrinsics(160, 120, 100.0, 100.0, 80.0, 60.0)
DEFECT = np.array([0.1, 0.0, 1.0])
REQUIRED = ["anomaly/result", "camera/depth/image_raw", "camera/camera_info", "camera/pose"]


class Feeder:
    """Publishes one camera frame's worth of mapper inputs (depth, CameraInfo, pose, map, result)."""

    def __init__(self, ctx, gate: bool = False):
        self.node = rclpy.create_node("feeder", namespace="t", context=ctx)
        img = qos_from_name("reliable", 5)
        self.depth = self.node.create_publisher(Image, "camera/depth/image_raw", img)
        self.info = self.node.create_publisher(CameraInfo, "camera/camera_info", img)
        self.pose = self.node.create_publisher(PoseStamped, "camera/pose", 50)
        self.map = self.node.create_publisher(Image, "anomaly/map", qos_from_name("reliable", 5))
        self.result = self.node.create_publisher(AnomalyResult, "anomaly/result", 20)
        self.gate = self.node.create_publisher(PipelineTrackerStatus, "tracker/status", 50) if gate else None
        self.statuses: list[dict] = []
        self.node.create_subscription(String, "mapper/status", lambda m: self.statuses.append(json.loads(m.data)),
                                      latched_qos(20))

    def frame(self, t: float, cam_x: float, inspecting: bool = True, pipe=None) -> None:
        """``pipe``: (axis point, axis direction, radius) the tracker status reports, camera frame."""
        header = Header(stamp=conv.sec_to_stamp(t), frame_id="camera")
        u = int(round(INTR.cx + INTR.fx * (DEFECT[0] - cam_x) / DEFECT[2]))
        v = int(round(INTR.cy))
        amap = np.zeros((INTR.height, INTR.width), np.float32)
        amap[v - 5:v + 5, u - 5:u + 5] = 1.0
        if self.gate is not None:
            status = PipelineTrackerStatus(header=header, inspecting=inspecting)
            if pipe is not None:
                status.axis_point, status.axis_direction = conv.point(pipe[0]), conv.vector3(pipe[1])
                status.radius = float(pipe[2])
            self.gate.publish(status)
        self.depth.publish(conv.metres_to_depth_image(np.ones((INTR.height, INTR.width), np.float32), header))
        self.info.publish(conv.intrinsics_to_camera_info(INTR, header))
        pose = Pose(np.array([cam_x, 0.0, 0.0]), np.array([0.0, 0.0, 0.0, 1.0]))
        self.pose.publish(conv.pose_to_pose_stamped(pose, Header(stamp=header.stamp, frame_id="map")))
        self.map.publish(conv.numpy_to_image(amap, "32FC1", header))
        region = AnomalyRegion(bbox=RegionOfInterest(x_offset=u - 5, y_offset=v - 5, width=10, height=10),
                               peak_x=u, peak_y=v, peak_score=0.9, mean_score=0.9, pixel_area=100, label="anomaly")
        self.result.publish(AnomalyResult(header=header, score=0.9, threshold=0.5, pixel_threshold=0.5,
                                          is_anomalous=True, regions=[region], point_spread_x_px=6.0,
                                          point_spread_y_px=6.0, normal_level=0.12, inference_ms=300.0))

    def last_status(self) -> dict:
        return self.statuses[-1] if self.statuses else {}


def _mapper(ctx, tmp_path, **params):
    overrides = [Parameter("output_dir", value=str(tmp_path)), Parameter("image_qos", value="reliable"),
                 Parameter("min_views", value=2), Parameter("publish_points", value=False)]
    overrides += [Parameter(k, value=v) for k, v in params.items()]
    return MapperNode(context=ctx, namespace="t", parameter_overrides=overrides)


@contextlib.contextmanager
def _graph(ctx, tmp_path, gate: bool = False, **params):
    """A mapper and a feeder on one executor; torn down however the test ends."""
    mapper = _mapper(ctx, tmp_path, **params)
    feeder = Feeder(ctx, gate=gate)
    ex = SingleThreadedExecutor(context=ctx)
    for n in (mapper, feeder.node):
        ex.add_node(n)
    try:
        yield mapper, feeder, ex
    finally:
        ex.shutdown()
        mapper.destroy_node()
        feeder.node.destroy_node()


def test_mapper_fuses_views_drops_bad_input_and_reports_silent_inputs(ros_context, tmp_path):
    with _graph(ros_context, tmp_path) as (mapper, feeder, ex):
        # before any input the mapper says which of its required inputs are silent
        assert spin_until(ex, lambda: feeder.last_status().get("silent_inputs") is not None, 5.0)
        assert sorted(feeder.last_status()["silent_inputs"]) == sorted(REQUIRED)

        # invalid input is dropped without killing the node and without counting as received
        header = Header(stamp=conv.sec_to_stamp(50.0), frame_id="camera")
        feeder.depth.publish(conv.numpy_to_image(np.zeros((120, 160, 3), np.uint8), "rgb8", header))
        bad_pose = PoseStamped(header=Header(stamp=header.stamp, frame_id="map"))
        bad_pose.pose.orientation.w = math.nan
        feeder.pose.publish(bad_pose)
        feeder.result.publish(AnomalyResult(header=header, score=math.nan, pixel_threshold=0.5))
        feeder.result.publish(AnomalyResult(header=Header(frame_id="camera"), score=0.1, pixel_threshold=0.5))
        feeder.result.publish(AnomalyResult(header=header, score=0.1, pixel_threshold=0.5, point_spread_x_px=math.inf))
        feeder.result.publish(AnomalyResult(header=header, score=0.1, pixel_threshold=0.5, normal_level=1.5))
        spin_until(ex, lambda: False, 0.5)
        assert sum(mapper.received.values()) == 0, mapper.received

        # ground truth (evaluation only): the defect the frames flag, and one beside it that they
        # show but never flag; the report must say so
        gt_pub = feeder.node.create_publisher(DefectArray, "ground_truth/defects", latched_qos())
        gt = DefectArray(header=Header(frame_id="map"))
        for k, pos in ((1, DEFECT), (2, np.array([-0.2, 0.0, 1.0]))):
            gt.defects.append(Defect(id=k, type="crack", position=conv.point(pos),
                                     size=conv.vector3((0.03, 0.03, 0.0)), normal=conv.vector3((0.0, 0.0, -1.0))))
        gt_pub.publish(gt)
        assert spin_until(ex, lambda: mapper.ground_truth is not None, 5.0)

        for i, cam_x in enumerate((0.0, 0.05, 0.1)):
            feeder.frame(100.0 + 0.1 * i, cam_x)
            spin_until(ex, lambda i=i: mapper.frames_localized > i, 5.0)
        assert spin_until(ex, lambda: feeder.last_status().get("frames_localized") == 3, 5.0), feeder.last_status()
        status = feeder.last_status()
        assert status["confirmed"] == 1 and status["silent_inputs"] == [], status
        assert all(status["received"][t] == 3 for t in REQUIRED), status["received"]

        # how the mission ended goes into the report's mission section; malformed statuses are dropped
        mission_pub = feeder.node.create_publisher(String, "mission/status", latched_qos())
        mission_pub.publish(String(data=json.dumps({"outcome": "completed", "coverage": 0.967, "distance_m": 12.5})))
        assert spin_until(ex, lambda: mapper.mission_status.get("outcome") == "completed", 5.0)
        for bad in ("not json", "[1, 2]", '{"coverage": NaN}', '{"nested": {"a": 1}}'):
            mission_pub.publish(String(data=bad))
        spin_until(ex, lambda: False, 0.5)
        assert mapper.mission_status == {"outcome": "completed", "coverage": 0.967, "distance_m": 12.5}
        # the mapper echoes the outcome it will report (the mission node waits for it)
        assert spin_until(ex, lambda: feeder.last_status().get("mission_outcome") == "completed", 5.0)

        client = feeder.node.create_client(Trigger, "report/write")
        assert client.wait_for_service(timeout_sec=5.0)
        future = client.call_async(Trigger.Request())
        assert spin_until(ex, future.done, 10.0) and future.result().success, future.result()
        report = json.loads((tmp_path / "report.json").read_text())
        assert report["mission"]["outcome"] == "completed" and report["mission"]["coverage"] == 0.967
        assert report["mission"]["frames_localized"] == 3  # the mapper's own facts are not overridden
        assert len(report["defects"]) == 1
        assert report["defects"][0]["position_m"] == pytest.approx(DEFECT.tolist(), abs=0.01)
        assert report["defects"][0]["views"] == 3
        # the 10 px square less the map's 6 px blur: 8 px, at 1 m
        assert report["defects"][0]["size_m"][0] == pytest.approx(8.0 / INTR.fx, rel=0.15)
        assert report["defects"][0]["extent_m"][0] == pytest.approx(10.0 / INTR.fx, rel=0.15)
        assert report["mission"]["inputs_received"]["camera/pose"] == 3
        assert report["mission"]["detector_inference_ms_p50"] == 300.0  # the detector's time per frame
        ev = report["evaluation"]
        assert ev["recall"] == 0.5 and ev["missed_ground_truth_ids"] == [2]
        assert ev["ground_truth_views"] == [{"id": 1, "frames_in_view": 3, "frames_flagged": 3},
                                            {"id": 2, "frames_in_view": 3, "frames_flagged": 0}]
        assert ev["missed"][0]["reason"] == "not_flagged", ev["missed"]


def test_mapper_localises_only_frames_its_gate_marks_as_inspecting(ros_context, tmp_path):
    with _graph(ros_context, tmp_path, gate=True, inspection_gate_topic="tracker/status") as (mapper, feeder, ex):
        assert spin_until(ex, lambda: "tracker/status" in (feeder.last_status().get("silent_inputs") or []), 5.0)
        for i, cam_x in enumerate((0.0, 0.05, 0.1, 0.1)):
            feeder.frame(100.0 + 0.1 * i, cam_x, inspecting=(i != 1))
            spin_until(ex, lambda i=i: mapper.frames_localized + mapper.frames_gated > i, 5.0)
        assert (mapper.frames_localized, mapper.frames_gated) == (3, 1)
        assert spin_until(ex, lambda: feeder.last_status().get("silent_inputs") == [], 5.0)


def test_mapper_maps_only_regions_on_the_pipe_the_tracker_estimates(ros_context, tmp_path):
    with pytest.raises(ValueError, match="inspection_gate_topic"):
        _mapper(ros_context, tmp_path, on_pipe_tolerance_m=0.03)  # no tracker status: no pipe to test against
    graph = _graph(ros_context, tmp_path, gate=True, inspection_gate_topic="tracker/status", on_pipe_tolerance_m=0.03)
    with graph as (mapper, feeder, ex):
        assert spin_until(ex, lambda: "tracker/status" in (feeder.last_status().get("silent_inputs") or []), 5.0)
        # a status whose pipe axis is NaN is dropped (its frame would wait for a valid one)
        bad = PipelineTrackerStatus(header=Header(stamp=conv.sec_to_stamp(99.0), frame_id="camera"), inspecting=True,
                                    radius=0.2)
        bad.axis_point.x = float("nan")
        feeder.gate.publish(bad)
        # a vertical pipe of radius 0.2 whose front is the marked point (0.1, 0, 1) in the map: on it in
        # three frames; in two more the tracker's pipe lies 0.1 m deeper (a support, the ground behind)
        for i, (cam_x, deeper) in enumerate(((0.0, 0.0), (0.05, 0.1), (0.1, 0.0), (0.1, 0.1), (0.0, 0.0))):
            pipe = (np.array([DEFECT[0] - cam_x, 0.0, DEFECT[2] + 0.2 + deeper]), np.array([0.0, 1.0, 0.0]), 0.2)
            feeder.frame(100.0 + 0.1 * i, cam_x, pipe=pipe)
            spin_until(ex, lambda i=i: mapper.frames_localized + mapper.frames_gated > i, 5.0)
        assert mapper.frames_localized == 5 and mapper.regions_off_pipe == 2
        (track,) = mapper.fuser.all()
        assert track.views == 3 and np.linalg.norm(track.position - DEFECT) < 0.01
        assert mapper.received["tracker/status"] == 5  # the NaN one not counted


def test_mapper_ignores_frames_taken_while_the_camera_turns(ros_context, tmp_path):
    with _graph(ros_context, tmp_path, max_rotation_rate_dps=15.0) as (mapper, feeder, ex):
        # 0.3 s before the first frame the camera looked 30 deg away: 100 deg/s, a turn
        turned = Pose(np.zeros(3), np.array([0.0, math.sin(math.radians(15.0)), 0.0, math.cos(math.radians(15.0))]))
        feeder.pose.publish(conv.pose_to_pose_stamped(turned, Header(stamp=conv.sec_to_stamp(99.7), frame_id="map")))
        for i, (t, cam_x) in enumerate(((100.0, 0.0), (101.0, 0.0), (101.1, 0.05), (101.2, 0.1))):
            feeder.frame(t, cam_x)
            spin_until(ex, lambda i=i: mapper.frames_localized + mapper.frames_gated > i, 5.0)
        assert (mapper.frames_gated, mapper.frames_localized) == (1, 3)
