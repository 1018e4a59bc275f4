"""Detector node in-process: taught online through its service, then an image in -> a result out, same stamp."""

import json

import cv2
import numpy as np
import pytest
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.parameter import Parameter
from sensor_msgs.msg import Image
from std_msgs.msg import Header, String
from std_srvs.srv import SetBool

from anomaly_inspection.msg import AnomalyResult
from anomaly_inspection_ros import conversions as conv
from anomaly_inspection_ros.detector_node import DetectorNode
from anomaly_inspection_ros.node_utils import latched_qos, qos_from_name

from conftest import spin_until


def texture(rng: np.random.Generator, h: int = 120, w: int = 160) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    phase = rng.uniform(0, 2 * np.pi, 2)
    gray = 128 + 40 * np.sin(xx * 0.6 + phase[0]) * np.sin(yy * 0.6 + phase[1]) + rng.normal(0, 3, (h, w))
    return np.clip(np.stack([gray, gray * 0.85, gray * 0.6], -1), 0, 255).astype(np.uint8)


def test_detector_node_teach_then_score(ros_context, tmp_path):
    import torch

    rng = np.random.default_rng(3)
    threads_before = torch.get_num_threads()
    node = DetectorNode(context=ros_context, namespace="cam", parameter_overrides=[
        Parameter("image_size", value=128), Parameter("image_height", value=96),  # the frames' 4:3
        Parameter("teach_min_interval_s", value=0.0),
        Parameter("max_rate_hz", value=20.0), Parameter("device", value="cpu"),
        Parameter("cpu_threads", value=1), Parameter("fit_threads", value=2),
        Parameter("layers", value="blocks.4, blocks.10"),
        Parameter("teach_output_dir", value=str(tmp_path / "model"))])
    assert torch.get_num_threads() == 1
    probe = rclpy.create_node("probe", context=ros_context)
    pub = probe.create_publisher(Image, "/cam/camera/image_raw", qos_from_name("sensor_data", depth=5))
    results: list[AnomalyResult] = []
    status: list[dict] = []
    probe.create_subscription(AnomalyResult, "/cam/anomaly/result", results.append, 10)
    probe.create_subscription(String, "/cam/detector/status", lambda m: status.append(json.loads(m.data)),
                              latched_qos())
    teach = probe.create_client(SetBool, "/cam/detector/teach")
    ex = SingleThreadedExecutor(context=ros_context)
    ex.add_node(node)
    ex.add_node(probe)
    t = [10.0]

    def publish(img: np.ndarray, encoding: str = "rgb8") -> float:
        t[0] = round(t[0] + 0.1, 3)
        arr = img if encoding == "rgb8" else np.ascontiguousarray(img[:, :, ::-1])
        pub.publish(conv.numpy_to_image(arr, encoding, Header(stamp=conv.sec_to_stamp(t[0]), frame_id="cam")))
        return t[0]

    def call(flag: bool):
        fut = teach.call_async(SetBool.Request(data=flag))
        assert spin_until(ex, fut.done, 10.0)
        return fut.result()

    try:
        assert teach.wait_for_service(timeout_sec=10.0)
        assert call(True).success
        for _ in range(16):
            publish(texture(rng), "bgr8")  # teach frames in another encoding than the test frames
            spin_until(ex, lambda: False, 0.05)
        assert call(False).success
        assert spin_until(ex, lambda: status and status[-1]["state"] == "ready", 120.0), status[-1:]
        meta = json.loads((tmp_path / "model" / "metadata.json").read_text())
        assert meta["layers"] == ["blocks.4", "blocks.10"]  # the node's layers, not the default three
        assert meta["input_size"] == [96, 128]
        assert torch.get_num_threads() == 1  # scoring threads again after the fit

        # a malformed image is dropped with a warning; the node keeps running
        bad = conv.numpy_to_image(texture(rng), "rgb8")
        bad.step = 10
        pub.publish(bad)
        spin_until(ex, lambda: False, 0.3)

        normal_stamp = publish(texture(rng))
        assert spin_until(ex, lambda: any(abs(conv.stamp_to_sec(r.header.stamp) - normal_stamp) < 1e-6 for r in results), 30.0)
        defect = texture(rng)
        cv2.circle(defect, (80, 60), 12, (30, 20, 10), -1)
        defect_stamp = publish(defect)
        assert spin_until(ex, lambda: any(abs(conv.stamp_to_sec(r.header.stamp) - defect_stamp) < 1e-6 for r in results), 30.0)
    finally:
        ex.shutdown()
        node.destroy_node()
        probe.destroy_node()
        torch.set_num_threads(threads_before)
    by_stamp = {round(conv.stamp_to_sec(r.header.stamp), 3): r for r in results}
    normal, anomalous = by_stamp[normal_stamp], by_stamp[defect_stamp]
    assert normal.header.frame_id == anomalous.header.frame_id == "cam"
    assert anomalous.score > normal.score
    assert anomalous.is_anomalous and anomalous.score >= anomalous.threshold == 0.5
    assert anomalous.regions, "the planted stain should give a region"
    r = anomalous.regions[0]
    assert r.bbox.x_offset <= 80 <= r.bbox.x_offset + r.bbox.width
    assert r.bbox.y_offset <= 60 <= r.bbox.y_offset + r.bbox.height
    assert not normal.is_anomalous
    # the map's blur and normal level, for the mapper's size estimate
    assert 0.0 < anomalous.point_spread_x_px < 80 and 0.0 < anomalous.point_spread_y_px < 60
    # in frame pixels: 160 x 120 frames and a 128 x 96 input scale both axes alike
    assert anomalous.point_spread_x_px == pytest.approx(anomalous.point_spread_y_px)
    assert anomalous.normal_level == pytest.approx(0.1192, abs=1e-3)
    assert node.frames_scored >= 2 and all(len(k) for k in [normal.model_id])


def test_teaching_keeps_only_gated_frames(ros_context):
    """With ``teach_gate_topic``, frames taken while the tracker is not inspecting (take-off, search,
    the look round the pipe's end) or with no recent status are not taught; a bad status is dropped."""
    from anomaly_inspection.msg import PipelineTrackerStatus

    rng = np.random.default_rng(4)
    node = DetectorNode(context=ros_context, namespace="gate", parameter_overrides=[
        Parameter("teach_min_interval_s", value=0.0), Parameter("device", value="cpu"),
        Parameter("teach_gate_topic", value="tracker/status")])
    probe = rclpy.create_node("gate_probe", context=ros_context)
    pub = probe.create_publisher(Image, "/gate/camera/image_raw", qos_from_name("sensor_data", depth=5))
    gate = probe.create_publisher(PipelineTrackerStatus, "/gate/tracker/status", 10)
    teach = probe.create_client(SetBool, "/gate/detector/teach")
    ex = SingleThreadedExecutor(context=ros_context)
    ex.add_node(node)
    ex.add_node(probe)

    def send(stamp: float, inspecting: bool | None) -> None:
        if inspecting is not None:
            st = PipelineTrackerStatus()
            st.header.stamp = conv.sec_to_stamp(stamp)
            st.inspecting = inspecting
            gate.publish(st)
            spin_until(ex, lambda: False, 0.05)
        pub.publish(conv.numpy_to_image(texture(rng), "rgb8", Header(stamp=conv.sec_to_stamp(stamp), frame_id="cam")))
        spin_until(ex, lambda: False, 0.05)

    try:
        assert teach.wait_for_service(timeout_sec=10.0)
        fut = teach.call_async(SetBool.Request(data=True))
        assert spin_until(ex, fut.done, 10.0) and fut.result().success
        send(1.0, None)  # no status yet
        send(1.1, False)  # searching
        assert len(node._teach) == 0
        send(1.2, True)
        send(1.3, True)
        assert len(node._teach) == 2
        send(5.0, None)  # the last status is 3.7 s old
        bad = PipelineTrackerStatus()
        bad.header.stamp.sec = 4
        bad.header.stamp.nanosec = 1_100_000_000  # 5.1 s if read naively; out of range: dropped with a warning, the gate unchanged
        bad.inspecting = True
        gate.publish(bad)
        spin_until(ex, lambda: False, 0.05)
        send(5.1, None)
        assert len(node._teach) == 2
    finally:
        ex.shutdown()
        node.destroy_node()
        probe.destroy_node()


@pytest.mark.parametrize("params, match", [
    ({"layers": "blocks.4,blocks.99"}, "has no layer 'blocks.99'; available: stem, blocks.0"),
    ({"backbone": "resnet18", "layers": "blocks.4"}, "available: stem, layer1, layer2, layer3, layer4"),
    ({"backbone": "vgg16"}, "unknown backbone 'vgg16'"),
    ({"neighbourhood": "2"}, "teach parameters: neighbourhood must be odd sizes"),
    ({"layers": "blocks.4,blocks.10", "neighbourhood": "1,1,3"}, "gives 3 sizes for 2 layers"),
])
def test_bad_backbone_or_layers_fail_at_start(ros_context, params, match):
    # at start, not when the teach pass ends and the fit is tried
    overrides = [Parameter(k, value=v) for k, v in params.items()]
    with pytest.raises(ValueError, match=match):
        DetectorNode(context=ros_context, parameter_overrides=overrides)
