"""Anomaly detector node: scores every frame it can with a memory-bank model learned from normal images.

Topics (relative to the namespace):

* in  ``camera/image_raw`` (sensor_msgs/Image; QoS ``image_qos``, sensor data by default)
* in  ``teach_gate_topic`` (optional, anomaly_inspection/PipelineTrackerStatus): while teaching,
  only frames taken while it says ``inspecting`` are kept (not the take-off, the search or the
  look round the pipe's end, which the mapper ignores too)
* out ``anomaly/result`` (anomaly_inspection/AnomalyResult; same stamp and frame as the image)
* out ``anomaly/map`` (sensor_msgs/Image 32FC1, normalised score per pixel, input resolution)
* out ``anomaly/overlay`` (sensor_msgs/Image rgb8, heatmap over the image, for RViz)
* out ``detector/status`` (std_msgs/String JSON, transient local): idle | collecting | fitting | ready | error

Services:

* ``detector/teach`` (std_srvs/SetBool): ``true`` starts collecting normal frames;
  ``false`` stops and fits a model from them in a background thread, then saves it to
  ``teach_output_dir`` (when set) and starts scoring with it.
* ``detector/reload`` (std_srvs/Trigger): loads ``model_dir`` again.

Only the newest frame is kept while the model is busy (bounded memory, bounded latency);
``max_rate_hz`` caps the scoring rate.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
from rclpy.node import Node
from sensor_msgs.msg import Image, RegionOfInterest
from std_msgs.msg import String
from std_srvs.srv import SetBool, Trigger

from anomaly_inspection.msg import AnomalyRegion, AnomalyResult, PipelineTrackerStatus

from anomaly_inspection_core.detection.teach import make_frame_buffer

from . import conversions as conv
from .node_utils import wall_timer, ThrottledWarner, declare_config, latched_qos, qos_from_name, run_node


@dataclass
class DetectorNodeConfig:
    model_dir: str = field(default="", metadata={"help": "model directory to load at start ('' = wait for teaching)"})
    device: str = field(default="auto", metadata={"help": "auto | cpu | cuda"})
    cpu_threads: int = field(default=0, metadata={
        "help": "torch CPU threads (0 = torch's default, one per core); on a small computer shared with the "
                "simulator or the flight controller, fewer leave them the CPU they need"})
    fit_threads: int = field(default=0, metadata={
        "help": "torch CPU threads while fitting a taught model (0 = torch's default, one per core): the "
                "missions pause the simulation meanwhile, so the fit may use every core"})
    max_rate_hz: float = field(default=5.0, metadata={"help": "upper bound on frames scored per second"})
    image_qos: str = "sensor_data"
    region_threshold: float = field(default=0.5, metadata={
        "help": "anomaly-map level for region extraction (0.5 = the model's calibrated pixel threshold); lower "
                "finds fainter defects, with more single-view false positives for the mapper's fusion to reject"})
    publish_map: bool = True
    publish_overlay: bool = True
    # teaching (online fitting from normal frames)
    backbone: str = "efficientnet_lite0"
    image_size: int = field(default=320, metadata={"help": "model input width when teaching"})
    image_height: int = field(default=0, metadata={
        "help": "model input height when teaching (0 = image_size, square; a camera's own aspect, e.g. 640 x 480, "
                "embeds about 2x faster than 640 x 640)"})
    layers: str = field(default="", metadata={
        "help": "comma-separated backbone layers of a taught model ('' = the backbone's default)"})
    neighbourhood: str = field(default="", metadata={
        "help": "side of the square a taught model averages each layer's features over: one odd size or one per "
                "layer, comma-separated ('' = the backbone's default; Lite0: 1, none)"})
    teach_max_frames: int = field(default=120, metadata={"help": "frames kept for teaching (see teach_thinning)"})
    teach_thinning: str = field(default="even", metadata={
        "help": "which frames go when teach_max_frames is reached: even (every other, the interval doubles) or "
                "diverse (the most alike: frames stay dense where the view changes fast, e.g. turns)"})
    teach_min_interval_s: float = field(default=0.2, metadata={"help": "minimum stamp spacing of taught frames"})
    teach_gate_topic: str = field(default="", metadata={
        "help": "PipelineTrackerStatus topic: teach only from frames taken while it says inspecting, stamped "
                "within 0.5 s of the frame ('' = every frame)"})
    teach_output_dir: str = field(default="", metadata={"help": "where a taught model is saved ('' = not saved)"})
    coreset_ratio: float = 0.1
    max_bank_size: int = field(default=4000, metadata={"help": "memory-bank cap of a taught model (fit and search time)"})
    teach_holdout_fraction: float = field(default=0.2, metadata={
        "help": "share of the taught frames kept out of the bank to calibrate the thresholds (a teach pass "
                "gives 50-150 frames: 10 % leaves too few for the tail of the normal maxima)"})
    border_margin: float = field(default=0.075, metadata={
        "help": "fraction of each image side along the edges that a taught model's calibration, regions and "
                "image score ignore (frame-border responses of a moving camera; the surface is seen mid-frame "
                "in another view)"})


class DetectorNode(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__("detector", **kwargs)
        self.cfg = declare_config(self, DetectorNodeConfig)
        if self.cfg.max_rate_hz <= 0:
            raise ValueError("max_rate_hz must be positive")
        if not 0.0 < self.cfg.region_threshold < 1.0:
            raise ValueError("region_threshold must be in (0, 1)")
        if not 0.0 < self.cfg.teach_holdout_fraction < 0.5:
            raise ValueError("teach_holdout_fraction must be in (0, 0.5)")
        if self.cfg.teach_max_frames < 4:
            raise ValueError(f"teach_max_frames must be >= 4 (a fit needs 4 frames), got {self.cfg.teach_max_frames}")
        if self.cfg.cpu_threads < 0 or self.cfg.fit_threads < 0:
            raise ValueError("cpu_threads and fit_threads must be >= 0")
        from anomaly_inspection_core.detection import BackboneError, PatchCoreConfig, check_layers, parse_layers
        from anomaly_inspection_core.detection.backbones import parse_neighbourhood

        self.warner = ThrottledWarner(self)
        self.device = self._resolve_device(self.cfg.device)
        layers = parse_layers(self.cfg.layers)
        try:  # at start, not after a teach pass has been flown for nothing
            check_layers(self.cfg.backbone, layers)
        except BackboneError as exc:
            raise ValueError(f"parameters 'backbone'/'layers': {exc}") from exc
        try:  # the configuration of the model a teach pass fits
            self._teach_config = PatchCoreConfig(
                backbone=self.cfg.backbone, layers=layers, neighbourhood=parse_neighbourhood(self.cfg.neighbourhood),
                image_size=self.cfg.image_size, image_height=self.cfg.image_height, device=self.device,
                coreset_ratio=self.cfg.coreset_ratio,
                max_bank_size=self.cfg.max_bank_size, border_margin=self.cfg.border_margin)
        except ValueError as exc:
            raise ValueError(f"teach parameters: {exc}") from exc
        import torch

        self._default_threads = torch.get_num_threads()
        self._set_threads(self.cfg.cpu_threads)
        self.model = None
        self.state = "idle"
        self.message = ""
        self._latest: Optional[Image] = None
        self._lock = threading.Lock()
        self._teach = make_frame_buffer(self.cfg.teach_thinning, self.cfg.teach_max_frames,
                                        self.cfg.teach_min_interval_s)
        self._teach_seen = 0
        self._fit_thread: Optional[threading.Thread] = None
        self.frames_scored = 0
        self.latencies_ms: list[float] = []

        self.pub_result = self.create_publisher(AnomalyResult, "anomaly/result", 10)
        self.pub_map = self.create_publisher(Image, "anomaly/map", qos_from_name("reliable", 2))
        self.pub_overlay = self.create_publisher(Image, "anomaly/overlay", qos_from_name(self.cfg.image_qos))
        self.pub_status = self.create_publisher(String, "detector/status", latched_qos())
        self.create_subscription(Image, "camera/image_raw", self._on_image, qos_from_name(self.cfg.image_qos))
        self._gate: Optional[tuple[float, bool]] = None  # (stamp, inspecting) of the latest gate status
        if self.cfg.teach_gate_topic:
            self.create_subscription(PipelineTrackerStatus, self.cfg.teach_gate_topic, self._on_gate, 10)
        self.create_service(SetBool, "detector/teach", self._on_teach)
        self.create_service(Trigger, "detector/reload", self._on_reload)
        wall_timer(self, 1.0 / self.cfg.max_rate_hz, self._process_latest)

        if self.cfg.model_dir:
            self._load(self.cfg.model_dir)
        self._publish_status()

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def _resolve_device(device: str) -> str:
        if device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"device must be auto, cpu or cuda, got '{device}'")
        if device == "cpu":
            return "cpu"
        import torch

        if torch.cuda.is_available():
            return "cuda"
        if device == "cuda":
            raise RuntimeError("device 'cuda' requested but no CUDA device is available")
        return "cpu"

    def _set_state(self, state: str, message: str = "") -> None:
        self.state, self.message = state, message
        self._publish_status()

    def _publish_status(self) -> None:
        payload = {"state": self.state, "message": self.message, "device": self.device,
                   "model_id": getattr(self.model, "model_id", ""), "teach_frames": len(self._teach),
                   "frames_scored": self.frames_scored}
        self.pub_status.publish(String(data=json.dumps(payload)))

    def _load(self, model_dir: str) -> bool:
        from anomaly_inspection_core.detection import PatchCoreModel

        try:
            self.model = PatchCoreModel.load(Path(model_dir), device=self.device)
        except Exception as exc:  # noqa: BLE001 - report any load failure and keep running
            self.get_logger().error(f"cannot load model from '{model_dir}': {exc}")
            self._set_state("error", f"cannot load model: {exc}")
            return False
        self.get_logger().info(f"loaded model {self.model.model_id} from {model_dir}")
        self._set_state("ready")
        return True

    # ------------------------------------------------------------------ callbacks
    def _on_image(self, msg: Image) -> None:
        if self.state == "collecting":
            self._collect(msg)
        with self._lock:
            self._latest = msg  # newer frames replace older ones: never a queue

    def _collect(self, msg: Image) -> None:
        try:
            t = conv.validate_stamp(msg.header.stamp)
        except conv.ConversionError as exc:
            self.warner.warn("bad_teach_image", f"dropping teach image: {exc}")
            return
        self._teach_seen += 1
        if self._teach_seen % 20 == 0:  # progress, whether or not this frame is kept
            self._publish_status()
        if self.cfg.teach_gate_topic:
            gate = self._gate
            if gate is None or not gate[1] or abs(gate[0] - t) > 0.5:
                return
        if not self._teach.due(t):  # decode only the frames that will be kept
            return
        try:
            rgb = conv.image_to_rgb(msg)
        except conv.ConversionError as exc:
            self.warner.warn("bad_teach_image", f"dropping teach image: {exc}")
            return
        self._teach.add(rgb, t)  # bounded: beyond teach_max_frames, teach_thinning says which go

    def _on_gate(self, msg: PipelineTrackerStatus) -> None:
        try:
            self._gate = (conv.validate_stamp(msg.header.stamp), bool(msg.inspecting))
        except conv.ConversionError as exc:
            self.warner.warn("bad_gate", f"dropping teach gate status: {exc}")

    def _on_teach(self, request: SetBool.Request, response: SetBool.Response) -> SetBool.Response:
        if request.data:
            if self.state == "fitting":
                response.success, response.message = False, "a fit is running"
                return response
            self._teach.clear()
            self._teach_seen = 0
            self._set_state("collecting")
            response.success, response.message = True, "collecting normal frames"
            return response
        if self.state != "collecting":
            response.success, response.message = False, f"not collecting (state {self.state})"
            return response
        if len(self._teach) < 4:
            self._set_state("error", f"too few teach frames ({len(self._teach)})")
            response.success, response.message = False, self.message
            return response
        frames = self._teach.frames
        self._teach.clear()
        self._set_state("fitting", f"fitting on {len(frames)} frames")
        self._fit_thread = threading.Thread(target=self._fit, args=(frames,), daemon=True)
        self._fit_thread.start()
        response.success, response.message = True, f"fitting on {len(frames)} frames"
        return response

    def _set_threads(self, n: int) -> None:
        import torch

        torch.set_num_threads(n or self._default_threads)

    def _fit(self, frames: list[np.ndarray]) -> None:
        from anomaly_inspection_core.detection import PatchCoreModel

        t0 = time.perf_counter()
        self._set_threads(self.cfg.fit_threads)  # no frame is scored while fitting
        try:
            model = PatchCoreModel(self._teach_config)
            model.fit(frames, holdout_fraction=self.cfg.teach_holdout_fraction)
            if self.cfg.teach_output_dir:
                model.save(Path(self.cfg.teach_output_dir))
        except Exception as exc:  # noqa: BLE001 - a failed fit must not kill the node
            self.get_logger().error(f"fitting failed: {exc}")
            self._set_state("error", f"fitting failed: {exc}")
            return
        finally:
            self._set_threads(self.cfg.cpu_threads)
        self.model = model
        self.get_logger().info(f"fitted {model.model_id} on {len(frames)} frames in {time.perf_counter() - t0:.1f} s")
        self._set_state("ready", f"fitted on {len(frames)} frames in {time.perf_counter() - t0:.1f} s")

    def _on_reload(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        if not self.cfg.model_dir:
            response.success, response.message = False, "parameter model_dir is empty"
        else:
            response.success = self._load(self.cfg.model_dir)
            response.message = self.message or "loaded"
        return response

    # ------------------------------------------------------------------ scoring
    def _process_latest(self) -> None:
        if self.state != "ready" or self.model is None:
            return
        with self._lock:
            msg, self._latest = self._latest, None
        if msg is None:
            return
        try:
            conv.validate_stamp(msg.header.stamp)
            rgb = conv.image_to_rgb(msg)
        except conv.ConversionError as exc:
            self.warner.warn("bad_image", f"dropping image: {exc}")
            return
        t0 = time.perf_counter()
        pred = self.model.predict(rgb)
        if self.cfg.region_threshold != 0.5:
            pred.regions = self.model.regions(pred.anomaly_map, self.cfg.region_threshold)
        ms = (time.perf_counter() - t0) * 1e3
        self.latencies_ms.append(ms)
        self.frames_scored += 1
        self.pub_result.publish(self._result_msg(msg, pred, ms))
        if self.cfg.publish_map:
            self.pub_map.publish(conv.numpy_to_image(pred.anomaly_map.astype(np.float32), "32FC1", msg.header))
        if self.cfg.publish_overlay and self.pub_overlay.get_subscription_count() > 0:
            from anomaly_inspection_core.detection.visualize import overlay_heatmap

            overlay = overlay_heatmap(rgb, pred.anomaly_map, pred.regions, label=f"{pred.score:.2f}")
            self.pub_overlay.publish(conv.numpy_to_image(overlay, "rgb8", msg.header))
        if self.frames_scored % 50 == 0:
            self._publish_status()

    def _result_msg(self, msg: Image, pred, ms: float) -> AnomalyResult:
        out = AnomalyResult(header=msg.header)
        out.score = float(pred.score)
        out.threshold = 0.5
        out.pixel_threshold = float(self.cfg.region_threshold)  # 0.5 = the model's calibrated pixel threshold
        out.is_anomalous = bool(pred.is_anomalous)
        out.model_id = str(self.model.model_id)
        out.inference_ms = float(ms)
        out.normal_level = float(self.model.normal_level)
        spread = self.model.point_spread_px  # in model input pixels: the frame is resized to the input size
        if spread:
            in_h, in_w = self.model.config.input_hw
            out.point_spread_x_px = float(spread * msg.width / in_w)
            out.point_spread_y_px = float(spread * msg.height / in_h)
        for r in pred.regions:
            x, y, w, h = (int(v) for v in r.bbox)
            out.regions.append(AnomalyRegion(
                bbox=RegionOfInterest(x_offset=x, y_offset=y, width=w, height=h),
                peak_x=int(r.peak_xy[0]), peak_y=int(r.peak_xy[1]),
                peak_score=float(r.peak_score), mean_score=float(r.mean_score),
                pixel_area=int(r.area_px), label=str(getattr(r, "label", "") or "")))
        return out


def main(args=None) -> int:
    return run_node(DetectorNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
