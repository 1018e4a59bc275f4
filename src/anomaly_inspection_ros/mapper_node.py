"""Defect mapper node: anomaly results + depth + CameraInfo + camera pose -> fused 3D defects, markers, report.

Inputs (relative to the namespace; all paired by stamp):

* ``anomaly/result`` (AnomalyResult) and ``anomaly/map`` (32FC1) from the detector
* ``camera/depth/image_raw`` (32FC1 metres or 16UC1 millimetres), ``camera/camera_info``
* camera pose: ``camera/pose`` (PoseStamped in ``map``), or tf2 (``use_tf``) on a full ROS 2 install
* ``camera/image_raw`` (optional, for evidence crops in the report)
* ``ground_truth/defects`` (DefectArray, transient local; optional: only for the report's evaluation)
* ``inspection_gate_topic`` (optional, PipelineTrackerStatus): frames taken while the robot is not
  inspecting (searching, looking round the pipe's end) are not localised

Outputs: ``defects`` (DefectArray in ``map``, confirmed defects), ``defect_markers`` (MarkerArray),
``anomaly_points`` (PointCloud2, optional) and, on ``report/write`` (std_srvs/Trigger), report.json
and report.html in ``output_dir``.

Every input is validated; an invalid or unpaired message is dropped with a throttled warning.
Buffers are bounded; a result whose inputs do not arrive within ``pairing_timeout_s`` is dropped.
"""

from __future__ import annotations

import collections
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
from geometry_msgs.msg import PoseStamped
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, Image, PointCloud2
from std_msgs.msg import ColorRGBA, Header, String
from std_srvs.srv import Trigger
from visualization_msgs.msg import Marker, MarkerArray

from anomaly_inspection.msg import AnomalyResult, Defect, DefectArray
from anomaly_inspection_core.evaluation.coverage import GroundTruthViews
from anomaly_inspection_core.geometry.camera import CameraIntrinsics, Pose, rotation_angle_deg
from anomaly_inspection_core.geometry.fusion import DefectFuser, FusedDefect, FusionConfig
from anomaly_inspection_core.geometry.localization import (LocalizationConfig, RegionObservation,
                                                          localize_regions)

from . import conversions as conv
from .node_utils import wall_timer, ThrottledWarner, declare_config, latched_qos, qos_from_name, run_node


#: with ``inspection_box: part``, detections this close above the table the part stands on are
#: not mapped (the box has no margin below the part)
TABLE_CLEARANCE_M = 0.003


@dataclass
class MapperNodeConfig:
    map_frame: str = "map"
    image_qos: str = "sensor_data"
    pairing_tolerance_s: float = field(default=0.02, metadata={"help": "max stamp difference for depth/pose/info"})
    pairing_timeout_s: float = field(default=2.0, metadata={"help": "drop a result whose inputs never arrive"})
    buffer_size: int = field(default=60, metadata={"help": "messages kept per input topic"})
    use_tf: bool = field(default=False, metadata={"help": "camera pose from tf2 (full ROS 2 install) instead of camera/pose"})
    min_region_area_px: int = 12
    max_depth_m: float = field(default=10.0, metadata={
        "help": "regions whose surface is farther than this are not localised (beyond inspection range)"})
    gate_m: float = 0.08
    min_views: int = 2
    min_whole_views: int = field(default=0, metadata={
        "help": "of those, frames in which the defect was not cut by the image edge or the detector's border band "
                "(visibility_border); a patch only ever seen cut cannot be placed; 0 = off"})
    min_score: float = 0.55
    max_size_m: float = field(default=0.0, metadata={
        "help": "fused tracks larger than this (largest extent or estimated size, see size_rule; m) are not "
                "reported as defects: an area metres long is an unfamiliar view, not a surface defect; 0 = no limit"})
    size_rule: str = field(default="extent", metadata={
        "help": "what max_size_m limits: 'extent' (the regions' own extent, the defect plus the anomaly map's blur) "
                "or 'size' (the defect's estimated size, the blur taken out: the blur's metres grow with range)"})
    max_rotation_rate_dps: float = field(default=0.0, metadata={
        "help": "frames taken while the camera turns faster than this (deg/s, from camera/pose over "
                "rotation_window_s) are not localised: views in transit, e.g. an AGV turning at a corner; 0 = off"})
    rotation_window_s: float = 0.3
    min_hit_ratio: float = field(default=0.0, metadata={
        "help": "a defect must be detected in at least this share of the inspection frames that had its position "
                "in view (inside the image less visibility_border, unoccluded); 0 = off"})
    weak_min_views: int = field(default=0, metadata={
        "help": "a defect whose views average below min_score is reported anyway once detected in this many "
                "frames, while detected in weak_min_hit_ratio of the frames that saw it: weak but consistent; 0 = off"})
    weak_min_hit_ratio: float = field(default=0.6, metadata={
        "help": "see weak_min_views: the share of the frames that saw a weak defect that must have detected it"})
    brief_min_views: int = field(default=0, metadata={
        "help": "a defect seen in fewer than min_views frames (but at least this many) is reported anyway while it "
                "scores at least brief_min_score and is detected in brief_min_hit_ratio of the frames that saw it: "
                "strong but brief (a robot passing by); 0 = off"})
    brief_min_score: float = field(default=0.8, metadata={"help": "see brief_min_views"})
    brief_min_hit_ratio: float = field(default=1.0, metadata={"help": "see brief_min_views"})
    visibility_border: float = field(default=0.075, metadata={
        "help": "fraction of each image side along the edges where a defect does not count as in view and a "
                "region reaching it is a partial view (the detector's border_margin: no regions are extracted "
                "there)"})
    silhouette_band_px: int = field(default=0, metadata={
        "help": "a region with most of its depth pixels within this many of a depth edge (no return, out of "
                "range, a jump) is not localised: features there mix in the background; 0 = off"})
    min_view_quality: float = field(default=0.0, metadata={
        "help": "ignore views below this quality (score x distance x incidence weight; grazing or far views)"})
    publish_points: bool = True
    output_dir: str = field(default="", metadata={"help": "folder for report.json / report.html"})
    scenario: str = field(default="", metadata={"help": "scenario name/path, only to draw the asset in the report"})
    mission_name: str = ""
    report_gate_m: float = 0.10
    inspection_gate_topic: str = field(default="", metadata={
        "help": "anomaly_inspection/PipelineTrackerStatus topic (e.g. tracker/status): frames taken while its "
                "'inspecting' flag is false (searching, looking round the pipe's end, done) are not localised; "
                "'' = every frame counts"})
    inspection_box: str = field(default="", metadata={
        "help": "only defects inside this box are mapped: '' = anywhere; 'part' = the scenario's workcell part "
                "(its fixtured pose, grown by inspection_box_margin_m); or JSON [[xmin, ymin, zmin], [xmax, ymax, zmax]]"})
    inspection_box_margin_m: float = 0.01
    on_pipe_tolerance_m: float = field(default=0.0, metadata={
        "help": "with inspection_gate_topic: a region localised farther than this from the surface of the pipe "
                "the tracker estimated in that frame (its axis and radius, from depth) is not mapped: a support, "
                "the ground or another piece behind, not the pipe inspected; 0 = off"})
    inspection_gate_tolerance_s: float = field(default=0.5, metadata={
        "help": "largest stamp difference between a frame and the gating status used for it"})


def _p50_p95(name: str, values_ms: list[float]) -> dict[str, float]:
    """``{name}_p50`` and ``{name}_p95`` of ``values_ms``, or nothing when there are none."""
    if not values_ms:
        return {}
    return {f"{name}_p50": float(np.median(values_ms)), f"{name}_p95": float(np.percentile(values_ms, 95))}


def _score_color(score: float) -> ColorRGBA:
    """Yellow at the threshold (0.5) to red at 1.0 and above."""
    t = float(np.clip((score - 0.5) / 0.5, 0.0, 1.0))
    return ColorRGBA(r=1.0, g=float(1.0 - 0.85 * t), b=0.0, a=0.8)


class _StampBuffer:
    """Bounded stamp -> message buffer with nearest-stamp lookup."""

    def __init__(self, size: int) -> None:
        self.items: collections.deque = collections.deque(maxlen=size)

    def add(self, t: float, value) -> None:
        self.items.append((t, value))

    def clear(self) -> None:
        self.items.clear()

    def nearest(self, t: float, tolerance: float):
        best, best_dt = None, tolerance
        for ts, value in self.items:
            dt = abs(ts - t)
            if dt <= best_dt:
                best, best_dt = value, dt
        return best

    def latest(self):
        return self.items[-1][1] if self.items else None


class MapperNode(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__("mapper", **kwargs)
        self.cfg = declare_config(self, MapperNodeConfig)
        self.warner = ThrottledWarner(self)
        if self.cfg.on_pipe_tolerance_m > 0 and not self.cfg.inspection_gate_topic:
            raise ValueError("parameter on_pipe_tolerance_m needs inspection_gate_topic (the tracker's status, "
                             "which carries the pipe it estimates)")
        # regions reaching the detector's border band are cut by it: truncated views
        self.loc_cfg = LocalizationConfig(max_depth_m=self.cfg.max_depth_m, border_margin=self.cfg.visibility_border,
                                          silhouette_band_px=self.cfg.silhouette_band_px)
        self.fuser = DefectFuser(FusionConfig(gate_m=self.cfg.gate_m, min_views=self.cfg.min_views,
                                              min_whole_views=self.cfg.min_whole_views,
                                              min_score=self.cfg.min_score, min_quality=self.cfg.min_view_quality,
                                              max_size_m=self.cfg.max_size_m,
                                              size_rule=self.cfg.size_rule, inspection_box=self._inspection_box(),
                                              min_hit_ratio=self.cfg.min_hit_ratio,
                                              weak_min_views=self.cfg.weak_min_views,
                                              weak_min_hit_ratio=self.cfg.weak_min_hit_ratio,
                                              brief_min_views=self.cfg.brief_min_views,
                                              brief_min_score=self.cfg.brief_min_score,
                                              brief_min_hit_ratio=self.cfg.brief_min_hit_ratio))
        n = max(4, int(self.cfg.buffer_size))
        self.depth_buf, self.pose_buf = _StampBuffer(n), _StampBuffer(n)
        # colour images wait here for the detector (~1 s behind on a loaded CPU): keep enough of them
        self.info_buf, self.rgb_buf, self.map_buf = _StampBuffer(n), _StampBuffer(max(8, n // 2)), _StampBuffer(8)
        self.pending: collections.deque = collections.deque(maxlen=n)
        self.path: list[np.ndarray] = []
        self.ground_truth: Optional[list[dict]] = None
        # evaluation only: per ground-truth defect, inspected frames in view / flagged
        self.gt_views: Optional[GroundTruthViews] = None
        self.published_ids: set[int] = set()
        self.frames_localized = 0
        self.frames_gated = 0
        self.regions_off_pipe = 0
        self.gate_buf = _StampBuffer(4 * n)
        # valid messages per input since the last reset: a silent input means a broken graph
        self.received: collections.Counter = collections.Counter()
        self.mission_status: dict = {}
        self.latency_ms: list[float] = []
        self.detector_ms: list[float] = []  # the detector's own time per scored frame (AnomalyResult.inference_ms)
        self.tf_buffer = self._make_tf_buffer() if self.cfg.use_tf else None

        img_qos = qos_from_name(self.cfg.image_qos, depth=5)
        self.create_subscription(AnomalyResult, "anomaly/result", self._on_result, 20)
        self.create_subscription(Image, "anomaly/map", self._on_map, qos_from_name("reliable", 5))
        self.create_subscription(Image, "camera/depth/image_raw", self._on_depth, img_qos)
        self.create_subscription(CameraInfo, "camera/camera_info", self._on_info, img_qos)
        self.create_subscription(Image, "camera/image_raw", self._on_rgb, img_qos)
        self.create_subscription(PoseStamped, "camera/pose", self._on_pose, 50)
        self.create_subscription(DefectArray, "ground_truth/defects", self._on_ground_truth, latched_qos())
        # how the mission ended (mission node): folded into the report's mission section
        self.create_subscription(String, "mission/status", self._on_mission_status, latched_qos())
        if self.cfg.inspection_gate_topic:
            from anomaly_inspection.msg import PipelineTrackerStatus

            self.create_subscription(PipelineTrackerStatus, self.cfg.inspection_gate_topic, self._on_gate, 50)
        self.pub_defects = self.create_publisher(DefectArray, "defects", latched_qos())
        self.pub_markers = self.create_publisher(MarkerArray, "defect_markers", latched_qos())
        self.pub_points = self.create_publisher(PointCloud2, "anomaly_points", 5)
        self.pub_status = self.create_publisher(String, "mapper/status", latched_qos())
        self.create_service(Trigger, "report/write", self._on_write_report)
        self.create_service(Trigger, "mapper/reset", self._on_reset)
        wall_timer(self, 0.05, self._match_pending)
        wall_timer(self, 1.0, self._publish_status)

    def _inspection_box(self):
        spec = self.cfg.inspection_box.strip()
        if not spec:
            return None
        if spec == "part":
            from anomaly_inspection_core.control.view_planner import part_bounds
            from anomaly_inspection_core.scenario import load_scenario

            scenario = load_scenario(self.cfg.scenario) if self.cfg.scenario else None
            if scenario is None or scenario.workcell is None:
                raise ValueError("inspection_box 'part' needs a workcell scenario (parameter scenario)")
            # no margin below: the part stands on the table, and the table top next to it is no
            # part (a plate's corner on the table was a consistent false defect, 36 views)
            lo, hi = part_bounds(scenario.workcell.part, self.cfg.inspection_box_margin_m,
                                 below_m=-TABLE_CLEARANCE_M)
        else:
            try:
                lo, hi = (np.asarray(v, dtype=float) for v in json.loads(spec))
            except (ValueError, TypeError) as exc:
                raise ValueError(f"parameter inspection_box: expected '', 'part' or JSON "
                                 f"[[xmin, ymin, zmin], [xmax, ymax, zmax]], got {spec!r} ({exc})") from exc
        box = (tuple(float(v) for v in lo), tuple(float(v) for v in hi))
        self.get_logger().info(f"mapping defects only inside {np.round(lo, 3).tolist()} - {np.round(hi, 3).tolist()}")
        return box

    # ------------------------------------------------------------------ tf2 (optional)
    def _make_tf_buffer(self):
        try:
            import tf2_ros  # type: ignore
        except ImportError:
            self.get_logger().warning("use_tf is set but tf2_ros is not installed: using camera/pose instead")
            return None
        buf = tf2_ros.Buffer()
        self._tf_listener = tf2_ros.TransformListener(buf, self)
        return buf

    def _pose_from_tf(self, frame_id: str, stamp) -> Optional[Pose]:
        from rclpy.time import Time

        try:
            tf = self.tf_buffer.lookup_transform(self.cfg.map_frame, frame_id, Time.from_msg(stamp))
        except Exception as exc:  # noqa: BLE001 - tf2 raises several exception types
            self.warner.warn("tf", f"no transform {self.cfg.map_frame} <- {frame_id}: {exc}")
            return None
        t, q = tf.transform.translation, tf.transform.rotation
        return Pose(np.array([t.x, t.y, t.z]), np.array([q.x, q.y, q.z, q.w]))

    # ------------------------------------------------------------------ inputs
    def _stamp(self, header, what: str) -> Optional[float]:
        try:
            return conv.validate_stamp(header.stamp)
        except conv.ConversionError as exc:
            self.warner.warn(f"stamp_{what}", f"dropping {what}: {exc}")
            return None

    def _on_depth(self, msg: Image) -> None:
        t = self._stamp(msg.header, "depth")
        if t is None:
            return
        try:
            self.depth_buf.add(t, conv.depth_to_metres(msg))
            self.received["camera/depth/image_raw"] += 1
        except conv.ConversionError as exc:
            self.warner.warn("depth", f"dropping depth image: {exc}")

    def _on_info(self, msg: CameraInfo) -> None:
        t = self._stamp(msg.header, "camera_info")
        if t is None:
            return
        try:
            self.info_buf.add(t, conv.camera_info_to_intrinsics(msg))
            self.received["camera/camera_info"] += 1
        except (conv.ConversionError, ValueError) as exc:
            self.warner.warn("info", f"dropping CameraInfo: {exc}")

    def _on_rgb(self, msg: Image) -> None:
        t = self._stamp(msg.header, "image")
        if t is None:
            return
        self.rgb_buf.add(t, msg)  # decoded only when a result needs it

    def _on_map(self, msg: Image) -> None:
        t = self._stamp(msg.header, "anomaly map")
        if t is None:
            return
        try:
            amap = conv.image_to_numpy(msg, allowed=("32FC1",))
        except conv.ConversionError as exc:
            self.warner.warn("map", f"dropping anomaly map: {exc}")
            return
        if not np.all(np.isfinite(amap)):
            self.warner.warn("map_nan", "dropping anomaly map with non-finite values")
            return
        self.map_buf.add(t, amap)
        self.received["anomaly/map"] += 1

    def _on_pose(self, msg: PoseStamped) -> None:
        t = self._stamp(msg.header, "pose")
        if t is None:
            return
        if msg.header.frame_id != self.cfg.map_frame:
            self.warner.warn("pose_frame", f"dropping pose in frame '{msg.header.frame_id}' "
                                           f"(expected '{self.cfg.map_frame}')")
            return
        try:
            pose = conv.pose_msg_to_pose(msg.pose)
        except conv.ConversionError as exc:
            self.warner.warn("pose", f"dropping pose: {exc}")
            return
        self.pose_buf.add(t, pose)
        self.received["camera/pose"] += 1
        if not self.path or np.linalg.norm(self.path[-1] - pose.position) > 0.02:
            self.path.append(pose.position.copy())

    def _on_mission_status(self, msg: String) -> None:
        try:
            self.mission_status = conv.json_status_facts(msg.data)
        except conv.ConversionError as exc:
            self.warner.warn("mission_status", f"dropping mission status: {exc}")
            return
        self._publish_status()  # the echo the mission node waits for, now rather than at the next tick

    def _on_ground_truth(self, msg: DefectArray) -> None:
        gt = []
        for d in msg.defects:
            pos = [d.position.x, d.position.y, d.position.z]
            n = np.array([d.normal.x, d.normal.y, d.normal.z])
            if not (np.all(np.isfinite(pos)) and np.all(np.isfinite(n))):
                self.warner.warn("gt", "dropping ground truth with a non-finite position or normal")
                return
            norm = float(np.linalg.norm(n))
            gt.append({"id": int(d.id), "type": d.type, "position": pos, "size": float(max(d.size.x, d.size.y)),
                       "normal": (n / norm).tolist() if norm > 1e-6 else None})
        self.ground_truth = gt
        self.gt_views = GroundTruthViews(gt, gate_m=self.cfg.report_gate_m)

    def _on_gate(self, msg) -> None:
        t = self._stamp(msg.header, "inspection gate status")
        if t is None:
            return
        pipe = None
        if self.cfg.on_pipe_tolerance_m > 0:
            try:
                pipe = conv.tracker_status_cylinder(msg)
            except conv.ConversionError as exc:
                self.warner.warn("gate_pipe", f"dropping inspection gate status: {exc}")
                return
        self.gate_buf.add(t, (bool(msg.inspecting), t, pipe))
        self.received[self.cfg.inspection_gate_topic] += 1

    def _on_result(self, msg: AnomalyResult) -> None:
        t = self._stamp(msg.header, "anomaly result")
        if t is None:
            return
        if not (np.isfinite(msg.score) and np.isfinite(msg.pixel_threshold)):
            self.warner.warn("result_nan", "dropping anomaly result with non-finite score/threshold")
            return
        scale = (msg.point_spread_x_px, msg.point_spread_y_px, msg.normal_level)
        if not all(np.isfinite(v) and v >= 0 for v in scale) or msg.normal_level >= 1:
            self.warner.warn("result_scale", f"dropping anomaly result with invalid point spread / normal level "
                                             f"{tuple(round(float(v), 3) for v in scale)}")
            return
        self.pending.append((t, msg, time.monotonic()))
        self.received["anomaly/result"] += 1
        if np.isfinite(msg.inference_ms) and msg.inference_ms >= 0:
            self.detector_ms.append(float(msg.inference_ms))

    # ------------------------------------------------------------------ pairing and fusion
    def _match_pending(self) -> None:
        keep = collections.deque(maxlen=self.pending.maxlen)
        while self.pending:
            t, msg, arrived = self.pending.popleft()
            if not msg.regions and (not self.fuser.counts_visibility or not self.fuser.all()) and self.gt_views is None:
                continue  # nothing to localise, no defect whose consistency this frame could tell, no evaluation
            tol = self.cfg.pairing_tolerance_s
            amap = self.map_buf.nearest(t, 1e-6)
            depth = self.depth_buf.nearest(t, tol)
            intr = self.info_buf.nearest(t, tol) or self.info_buf.latest()
            pose = (self._pose_from_tf(msg.header.frame_id, msg.header.stamp) if self.tf_buffer is not None
                    else self.pose_buf.nearest(t, tol))
            gate = (self.gate_buf.nearest(t, self.cfg.inspection_gate_tolerance_s)
                    if self.cfg.inspection_gate_topic else (True, t, None))
            if (msg.regions and amap is None) or depth is None or intr is None or pose is None or gate is None:
                if time.monotonic() - arrived < self.cfg.pairing_timeout_s:
                    keep.append((t, msg, arrived))
                else:
                    gate_tol = self.cfg.inspection_gate_tolerance_s
                    missing = [f"{n} within {dt * 1e3:.0f} ms" for n, v, dt in (
                        ("anomaly map", amap if msg.regions else 0, 0.0), ("depth", depth, tol), ("CameraInfo", intr, tol),
                        ("pose", pose, tol), (self.cfg.inspection_gate_topic, gate, gate_tol)) if v is None]
                    self.warner.warn("unpaired", f"dropping result at t={t:.3f}: no {', '.join(missing)}")
                continue
            inspecting, gate_t, pipe = gate
            if not inspecting or self._turning(t, pose):
                self.frames_gated += 1
                continue
            if pipe is not None:  # the tracker's pipe, from its depth frame's camera into the map
                pipe_pose = pose if abs(gate_t - t) <= tol else self.pose_buf.nearest(gate_t, tol)
                pipe = pipe.transformed(pipe_pose) if pipe_pose is not None else None
            dets = self._localize(t, msg, amap, depth, intr, pose, pipe) if msg.regions else []
            border_px = int(self.cfg.visibility_border * min(intr.width, intr.height))
            if self.gt_views is not None:
                self.gt_views.observe(pose, intr, depth, [d.position for d in dets], border_px=border_px,
                                      max_depth_m=self.cfg.max_depth_m)
            if self.fuser.counts_visibility:
                before = {d.id for d in self.fuser.confirmed()}
                self.fuser.observe_frame(t, pose, intr, depth, border_px=border_px, max_depth_m=self.cfg.max_depth_m)
                if {d.id for d in self.fuser.confirmed()} != before:
                    self._publish(msg.header)
        self.pending = keep

    def _turning(self, t: float, pose: Pose) -> bool:
        """Whether the camera turned faster than max_rotation_rate_dps just before ``t``."""
        if self.cfg.max_rotation_rate_dps <= 0 or self.tf_buffer is not None:
            return False
        window = self.cfg.rotation_window_s
        earlier = self.pose_buf.nearest(t - window, 0.5 * window)
        if earlier is None:
            return False
        return rotation_angle_deg(pose.rotation, earlier.rotation) / window > self.cfg.max_rotation_rate_dps

    def _localize(self, t: float, msg: AnomalyResult, amap: np.ndarray, depth: np.ndarray,
                  intr: CameraIntrinsics, pose: Pose, pipe=None) -> list:
        """Localise and fuse one frame's regions; returns its 3D detections. With ``pipe`` (the
        tracker's cylinder in the map frame), detections off its surface are not fused."""
        t0 = time.perf_counter()
        if amap.shape != (intr.height, intr.width):
            self.warner.warn("map_size", f"dropping result: anomaly map {amap.shape[::-1]} does not match "
                                         f"CameraInfo {intr.width}x{intr.height}")
            return []
        regions = []
        for r in msg.regions:
            x, y, w, h = r.bbox.x_offset, r.bbox.y_offset, r.bbox.width, r.bbox.height
            if w == 0 or h == 0 or x + w > intr.width or y + h > intr.height:
                self.warner.warn("bbox", f"dropping region with bbox outside the image: {(x, y, w, h)}")
                continue
            mask = amap[y:y + h, x:x + w] >= msg.pixel_threshold
            if mask.sum() < self.cfg.min_region_area_px:
                continue
            regions.append(RegionObservation(bbox=(x, y, w, h), mask=mask, peak_score=r.peak_score,
                                             mean_score=r.mean_score, label=r.label,
                                             peak_xy=(int(r.peak_x), int(r.peak_y))))
        if not regions:
            return []
        rgb_msg = self.rgb_buf.nearest(t, 1e-6)
        rgb = None
        if rgb_msg is not None:
            try:
                rgb = conv.image_to_rgb(rgb_msg)
            except conv.ConversionError:
                rgb = None
        try:
            dets = localize_regions(regions, depth, intr, pose, t, rgb=rgb, anomaly_map=amap, config=self.loc_cfg,
                                    depth_intrinsics=intr.scaled(depth.shape[1], depth.shape[0])
                                    if depth.shape != (intr.height, intr.width) else None,
                                    normal_level=msg.normal_level,  # 0 = unknown, as localize_regions reads it
                                    point_spread_px=(msg.point_spread_x_px, msg.point_spread_y_px))
        except ValueError as exc:
            self.warner.warn("localize", f"cannot localise frame at t={t:.3f}: {exc}")
            return []
        if pipe is not None and dets:
            on_pipe = pipe.surface_offset(np.array([d.position for d in dets])) <= self.cfg.on_pipe_tolerance_m
            self.regions_off_pipe += int(np.count_nonzero(~on_pipe))
            dets = [d for d, keep in zip(dets, on_pipe) if keep]
        self.fuser.update(dets)
        self.frames_localized += 1
        self.latency_ms.append((time.perf_counter() - t0) * 1e3)
        self._publish(msg.header)
        if self.cfg.publish_points and dets and self.pub_points.get_subscription_count() > 0:
            pts = np.array([d.position for d in dets])
            self.pub_points.publish(conv.points_to_pointcloud2(
                pts, Header(stamp=msg.header.stamp, frame_id=self.cfg.map_frame), np.array([d.score for d in dets])))
        return dets

    # ------------------------------------------------------------------ outputs
    def _defect_msg(self, d: FusedDefect) -> Defect:
        q = d.orientation
        out = Defect(id=int(d.id), type=str(d.type), position=conv.point(d.position),
                     size=conv.vector3(d.size), normal=conv.vector3(d.normal), score=float(d.score),
                     confidence=float(d.confidence), num_views=int(d.views),
                     first_seen=conv.sec_to_stamp(d.first_seen), last_seen=conv.sec_to_stamp(d.last_seen))
        out.orientation.x, out.orientation.y, out.orientation.z, out.orientation.w = (float(v) for v in q)
        return out

    def _publish(self, header: Header) -> None:
        confirmed = self.fuser.confirmed()
        out_header = Header(stamp=header.stamp, frame_id=self.cfg.map_frame)
        self.pub_defects.publish(DefectArray(header=out_header, defects=[self._defect_msg(d) for d in confirmed]))
        markers = MarkerArray()
        ids = set()
        for d in confirmed:
            ids.add(d.id)
            box = Marker(header=out_header, ns="defects", id=int(d.id), type=Marker.CUBE, action=Marker.ADD)
            box.pose.position = conv.point(d.position)
            q = d.orientation
            box.pose.orientation.x, box.pose.orientation.y, box.pose.orientation.z, box.pose.orientation.w = (
                float(v) for v in q)
            size = np.maximum(np.asarray(d.size, float), 0.005)
            box.scale = conv.vector3(size)
            box.color = _score_color(d.score)
            text = Marker(header=out_header, ns="defect_labels", id=int(d.id), type=Marker.TEXT_VIEW_FACING,
                          action=Marker.ADD)
            text.pose.position = conv.point(np.asarray(d.position) + np.asarray(d.normal) * 0.08)
            text.pose.orientation.w = 1.0
            text.scale.z = 0.05
            text.color = ColorRGBA(r=1.0, g=1.0, b=1.0, a=1.0)
            text.text = f"#{d.id} {d.type} {max(size[:2]) * 100:.0f} cm ({d.score:.2f}, {d.views} views)"
            markers.markers.extend([box, text])
        for gone in self.published_ids - ids:  # retracted defects: delete their markers
            for ns in ("defects", "defect_labels"):
                markers.markers.append(Marker(header=out_header, ns=ns, id=int(gone), action=Marker.DELETE))
        self.published_ids = ids
        self.pub_markers.publish(markers)
        self._publish_status(len(confirmed))

    def required_inputs(self) -> list[str]:
        """Topics without which no frame can be localised."""
        needed = ["anomaly/result", "camera/depth/image_raw", "camera/camera_info"]
        if self.tf_buffer is None:
            needed.append("camera/pose")
        if self.cfg.inspection_gate_topic:
            needed.append(self.cfg.inspection_gate_topic)
        return needed

    def _publish_status(self, n_confirmed: Optional[int] = None) -> None:
        self.pub_status.publish(String(data=json.dumps({
            "frames_localized": self.frames_localized, "tracks": len(self.fuser.all()),
            "confirmed": len(self.fuser.confirmed()) if n_confirmed is None else n_confirmed, "received": dict(self.received),
            "silent_inputs": [t for t in self.required_inputs() if not self.received[t]],
            "ground_truth": self.ground_truth is not None,
            # echoed so that the mission node knows the report will carry its outcome
            "mission_outcome": self.mission_status.get("outcome")})))

    # ------------------------------------------------------------------ services
    def _on_reset(self, request, response):
        self.fuser.reset()
        self.path.clear()
        self.pending.clear()
        self.gate_buf.clear()
        self.frames_gated = 0
        self.regions_off_pipe = 0
        if self.gt_views is not None:
            self.gt_views.reset()
        self.received.clear()
        self._publish(Header(stamp=self.get_clock().now().to_msg()))
        response.success, response.message = True, "defect map cleared"
        return response

    def write_report(self) -> tuple[Path, Path]:
        from anomaly_inspection_core.report import write_report

        if not self.cfg.output_dir:
            raise ValueError("parameter output_dir is empty")
        asset = None
        if self.cfg.scenario:
            from anomaly_inspection_core.scenario import load_scenario

            from anomaly_inspection_core.report.asset import asset_from_scenario

            asset = asset_from_scenario(load_scenario(self.cfg.scenario))
        mission = {"name": self.cfg.mission_name or "inspection", **self.mission_status,
                   "frames_localized": self.frames_localized,
                   "frames_outside_inspection": self.frames_gated, "regions_off_pipe": self.regions_off_pipe,
                   **_p50_p95("mapper_latency_ms", self.latency_ms or [0.0]),
                   **_p50_p95("detector_inference_ms", self.detector_ms),
                   "tracks": len(self.fuser.all()), "inputs_received": dict(self.received),
                   "tracks_too_large": sum(1 for t in self.fuser.all() if self.fuser.too_large(t))}
        return write_report(Path(self.cfg.output_dir), mission, self.cfg.scenario or "unknown", self.fuser.confirmed(),
                            robot_path=np.asarray(self.path) if self.path else None,
                            ground_truth=self.ground_truth, asset_geometry=asset, gate_m=self.cfg.report_gate_m,
                            frame_id=self.cfg.map_frame,
                            ground_truth_views=None if self.gt_views is None else self.gt_views.counts(),
                            tracks=[self.fuser.describe(t) for t in self.fuser.all()])

    def _on_write_report(self, request, response):
        try:
            json_path, html_path = self.write_report()
        except Exception as exc:  # noqa: BLE001 - report errors go back to the caller, the node keeps running
            self.get_logger().error(f"writing the report failed: {exc}")
            response.success, response.message = False, str(exc)
            return response
        response.success, response.message = True, str(json_path.parent)
        return response


def main(args=None) -> int:
    return run_node(MapperNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
