"""Depth-only pipeline tracker node for the UAV: follows a pipe's centreline at a stand-off.

Inputs (relative to the namespace): ``camera/depth/image_raw`` (32FC1 m / 16UC1 mm),
``camera/camera_info``, ``camera/pose`` (the UAV's own odometry of its camera, PoseStamped in
``map``). Never ground-truth geometry.

Outputs: ``cmd_vel`` (geometry_msgs/Twist, level body frame), ``camera/gimbal_pitch``
(std_msgs/Float64, degrees down: the camera pitch for ``view_elevation_deg``), ``tracker/status``
(anomaly_inspection/PipelineTrackerStatus), ``tracker/axis_markers`` (MarkerArray: the fitted
axis of this frame and the fused pipe piece), ``tracker/path`` (nav_msgs/Path, flown path).

Detector pacing: with ``capture_spacing_m > 0`` it listens to ``anomaly/result`` and
``detector/status``; it never flies faster than the detector scores frames, and while the
detector has a model (status ``ready``) but has not scored two frames yet it holds position,
so that nothing is flown past unseen (the first frames after a model loads are the slowest).

Services: ``tracker/start`` and ``tracker/stop`` (std_srvs/Trigger). While stopped, or once
DONE/ABORTED, it commands a hover (zero velocity).
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import asdict, dataclass, field
from typing import Optional

import numpy as np
from geometry_msgs.msg import Point, PoseStamped, Twist
from nav_msgs.msg import Path
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import ColorRGBA, Float64, Header
from std_srvs.srv import Trigger
from visualization_msgs.msg import Marker, MarkerArray

from anomaly_inspection.msg import PipelineTrackerStatus
from anomaly_inspection_core.control.pipe_tracker import PipeTracker, PipeTrackerConfig, TrackerState

from . import conversions as conv
from .node_utils import DetectorPacer, ThrottledWarner, declare_config, latched_qos, qos_from_name, run_node

_STATE_CODES = {
    TrackerState.IDLE: PipelineTrackerStatus.STATE_IDLE,
    TrackerState.TRACKING: PipelineTrackerStatus.STATE_TRACKING,
    TrackerState.SEARCHING: PipelineTrackerStatus.STATE_SEARCHING,
    TrackerState.DONE: PipelineTrackerStatus.STATE_DONE,
    TrackerState.ABORTED: PipelineTrackerStatus.STATE_ABORTED,
}


@dataclass
class TrackerNodeConfig:
    map_frame: str = "map"
    image_qos: str = "sensor_data"
    autostart: bool = field(default=False, metadata={"help": "start tracking without a tracker/start call"})
    pairing_tolerance_s: float = 0.02
    standoff_m: float = 0.7
    standoff_tolerance_m: float = 0.25
    speed_mps: float = 0.4
    start_direction: str = field(default="auto", metadata={"help": "auto (where more pipe is visible) | left | right | up | down"})
    search_timeout_s: float = 20.0
    lost_timeout_s: float = 0.8
    max_yaw_rate: float = 0.6
    no_progress_timeout_s: float = field(default=0.0, metadata={
        "help": "held within 0.25 m this long while tracking with no obstacle in the way: back off and look "
                "again; ABORTED after 3 times at one place; 0 = off"})
    view_elevation_deg: float = field(default=0.0, metadata={
        "help": "on horizontal pieces fly this far round the pipe above its axis with the camera pitched down "
                "to match (tops of pipes seen at a moderate incidence); needs a gimbal; 0 = level"})
    inspection_side: str = field(default="auto", metadata={
        "help": "side of horizontal pieces to inspect, relative to the direction of travel: left | right | auto "
                "(wherever continuity puts the UAV); on the other side after a riser the UAV crosses over the "
                "pipe's top (the UAV mission sets it from the scenario)"})
    revisit_margin_m: float = field(default=0.3, metadata={
        "help": "after crossing over to inspection_side, fly back to this far past the piece's corner to see "
                "the part passed on the other side, then go on; < 0 = never"})
    riser_look_ahead_deg: float = field(default=0.0, metadata={
        "help": "climb a riser going up from a run on the run's side with the camera pitched this far up, then "
                "move round to the side clear of the way on once its end is in view; needs a gimbal; 0 = the "
                "turned side throughout (always so on risers going down)"})
    capture_spacing_m: float = field(default=0.1, metadata={
        "help": "while the detector is scoring, fly at most this far between scored frames (speed <= spacing x "
                "scoring rate in simulated time), so every defect is scored from several views; 0 = no cap"})
    teach_speed_mps: float = field(default=0.0, metadata={
        "help": "while the detector is teaching (status collecting), fly at most this fast: the paced inspection "
                "pass's speed, so that turns are flown, and seen, as they will be when inspected; 0 = no cap"})


class PipelineTrackerNode(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__("pipeline_tracker", **kwargs)
        self.cfg = declare_config(self, TrackerNodeConfig)
        # the node's parameters named like the tracker's are the tracker's (one name, one meaning)
        self.tracker_cfg = PipeTrackerConfig.from_dict(asdict(self.cfg), ignore_unknown=True)
        self.tracker = PipeTracker(self.tracker_cfg)
        self.warner = ThrottledWarner(self)
        self.active = bool(self.cfg.autostart)
        self.intrinsics = None
        self._depth: dict[float, tuple[np.ndarray, Header]] = {}
        self._poses: dict[float, object] = {}
        self.last_command = None
        self.frames = 0
        # the manoeuvre log: each change of what the tracker does (its message less the
        # numbers), with where, so that a flight can be followed from the log alone
        self._manoeuvre = ""
        self._manoeuvre_logged: dict[str, float] = {}

        img_qos = qos_from_name(self.cfg.image_qos, depth=2)
        self.create_subscription(Image, "camera/depth/image_raw", self._on_depth, img_qos)
        self.create_subscription(CameraInfo, "camera/camera_info", self._on_info, img_qos)
        self.create_subscription(PoseStamped, "camera/pose", self._on_pose, 20)
        self.pub_cmd = self.create_publisher(Twist, "cmd_vel", 10)
        self.pub_gimbal = self.create_publisher(Float64, "camera/gimbal_pitch", 10)
        self.pub_status = self.create_publisher(PipelineTrackerStatus, "tracker/status", latched_qos())
        self.pub_markers = self.create_publisher(MarkerArray, "tracker/axis_markers", 5)
        self.pub_path = self.create_publisher(Path, "tracker/path", latched_qos())
        if self.cfg.teach_speed_mps < 0:
            raise ValueError(f"teach_speed_mps must be >= 0, got {self.cfg.teach_speed_mps}")
        self.pacer = DetectorPacer(self.cfg.capture_spacing_m, teach_speed=self.cfg.teach_speed_mps)
        self.pacer.attach(self, self.warner)
        self.create_service(Trigger, "tracker/start", self._on_start)
        self.create_service(Trigger, "tracker/stop", self._on_stop)

    # ------------------------------------------------------------------ services
    def _on_start(self, request, response):
        self.tracker.reset()
        self.active = True
        response.success, response.message = True, "tracking started"
        self.get_logger().info("tracking started")
        return response

    def _on_stop(self, request, response):
        self.active = False
        self.pub_cmd.publish(Twist())
        response.success, response.message = True, "stopped (hovering)"
        return response

    # ------------------------------------------------------------------ detector pacing
    def speed_cap(self, now: float) -> float:
        """Progress speed limit from the detector's scoring (see :class:`DetectorPacer`). The
        tracker applies it to its progress along the pipe only: stand-off corrections,
        clearance pushes, backing off and searching never wait for the detector."""
        cap = self.pacer.speed_cap(now, float("inf"))
        if cap == 0.0 and self.active:
            self.warner.warn("pacing", "holding position: the detector has a model but is not scoring frames yet")
        return cap

    # ------------------------------------------------------------------ inputs
    def _on_info(self, msg: CameraInfo) -> None:
        try:
            self.intrinsics = conv.camera_info_to_intrinsics(msg)
        except (conv.ConversionError, ValueError) as exc:
            self.warner.warn("info", f"dropping CameraInfo: {exc}")

    def _on_depth(self, msg: Image) -> None:
        try:
            t, depth = conv.stamped_depth(msg)
        except conv.ConversionError as exc:
            self.warner.warn("depth", f"dropping depth image: {exc}")
            return
        self._depth = {t: (depth, msg.header)}  # newest only: the tracker controls on fresh data
        self._try_pair()

    def _on_pose(self, msg: PoseStamped) -> None:
        try:
            t, pose = conv.pose_stamped_to_pose(msg, self.cfg.map_frame)
        except conv.ConversionError as exc:
            self.warner.warn("pose", f"dropping pose: {exc}")
            return
        self._poses[t] = pose
        if len(self._poses) > 20:
            for old in sorted(self._poses)[:-20]:
                del self._poses[old]
        self._try_pair()

    def _try_pair(self) -> None:
        if not self._depth or self.intrinsics is None:
            return
        (t, (depth, header)), = self._depth.items()
        match = [ts for ts in self._poses if abs(ts - t) <= self.cfg.pairing_tolerance_s]
        if not match:
            return
        pose = self._poses[min(match, key=lambda ts: abs(ts - t))]
        self._depth = {}
        if depth.shape != (self.intrinsics.height, self.intrinsics.width):
            self.warner.warn("size", f"dropping depth {depth.shape[::-1]}: CameraInfo says "
                                     f"{self.intrinsics.width}x{self.intrinsics.height}")
            return
        self._process(t, depth, pose, header)

    # ------------------------------------------------------------------ control
    def _process(self, t: float, depth: np.ndarray, pose, header: Header) -> None:
        if not self.active:
            return
        try:
            cmd = self.tracker.update(depth, self.intrinsics, pose, t, speed_limit=self.speed_cap(t))
        except ValueError as exc:
            self.warner.warn("update", f"tracker rejected frame at t={t:.3f}: {exc}")
            return
        self.frames += 1
        prev_state = self.last_command.state if self.last_command is not None else None
        self.last_command = cmd
        linear = np.asarray(cmd.linear_body, dtype=float)
        twist = Twist()
        twist.linear.x, twist.linear.y, twist.linear.z = (float(v) for v in linear)
        twist.angular.z = float(cmd.yaw_rate)
        self.pub_cmd.publish(twist)
        if self.tracker_cfg.uses_gimbal:
            self.pub_gimbal.publish(Float64(data=float(cmd.gimbal_pitch_deg)))
        if cmd.state != prev_state:
            text = f"tracker: {cmd.state.value}: {cmd.message}"
            if cmd.state == TrackerState.ABORTED:
                self.get_logger().error(text)
            else:
                self.get_logger().info(text)
        self._log_manoeuvre(t, pose, cmd)
        self._publish_status(cmd, header)
        if self.frames % 5 == 0 or cmd.state in (TrackerState.DONE, TrackerState.ABORTED):
            self._publish_markers(cmd, header)
            self._publish_path(header)

    def _log_manoeuvre(self, t: float, pose, cmd) -> None:
        """Log a change of manoeuvre (the message less its numbers) with the camera position;
        one that comes back within 2 s of its last line (a depth guard acting on and off) is not
        logged again."""
        kind = re.sub(r"-?\d+(\.\d+)?", "#", cmd.message)
        if kind == self._manoeuvre:
            return
        self._manoeuvre = kind
        if t - self._manoeuvre_logged.get(kind, -math.inf) < 2.0:
            return
        self._manoeuvre_logged[kind] = t
        x, y, z = (float(v) for v in pose.position)
        self.get_logger().info(f"t={t:.1f} s at ({x:.2f}, {y:.2f}, {z:.2f}) {cmd.state.value}: {cmd.message}")

    def _publish_status(self, cmd, header: Header) -> None:
        st = PipelineTrackerStatus(header=Header(stamp=header.stamp, frame_id=header.frame_id))
        st.state = _STATE_CODES[cmd.state]
        st.state_name = cmd.state.value
        st.message = cmd.message
        if cmd.estimate is not None:
            st.axis_point = conv.point(cmd.estimate.point)
            st.axis_direction = conv.vector3(cmd.estimate.direction)
            st.radius = float(cmd.estimate.radius)
            st.inlier_ratio = float(cmd.estimate.inlier_ratio)
        st.standoff = float(cmd.standoff) if np.isfinite(cmd.standoff) else float("nan")
        st.lateral_offset = float(cmd.lateral_offset) if np.isfinite(cmd.lateral_offset) else float("nan")
        st.distance_travelled = float(cmd.distance_travelled)
        st.inspecting = bool(cmd.inspecting)
        self.pub_status.publish(st)

    def _publish_markers(self, cmd, header: Header) -> None:
        est = cmd.estimate_map
        if est is None:
            return
        h = Header(stamp=header.stamp, frame_id=self.cfg.map_frame)
        a, b = est.endpoints
        line = Marker(header=h, ns="pipe_axis", id=0, type=Marker.LINE_STRIP, action=Marker.ADD)
        line.pose.orientation.w = 1.0
        line.scale.x = 0.02
        line.color = ColorRGBA(r=0.1, g=0.8, b=1.0, a=1.0)
        line.points = [Point(x=float(p[0]), y=float(p[1]), z=float(p[2])) for p in (a, b)]
        self.pub_markers.publish(MarkerArray(markers=[line]))

    def _publish_path(self, header: Header) -> None:
        h = Header(stamp=header.stamp, frame_id=self.cfg.map_frame)
        path = Path(header=h)
        for p in self.tracker.path[::2]:
            ps = PoseStamped(header=h)
            ps.pose.position = conv.point(p)
            ps.pose.orientation.w = 1.0
            path.poses.append(ps)
        self.pub_path.publish(path)


def main(args=None) -> int:
    return run_node(PipelineTrackerNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
