"""Manipulator view capture node: plans viewpoints around the workcell part, moves the arm's
camera through them, waits for it to settle and for the detector to score a settled frame.

Inputs (relative to the namespace, e.g. ``/arm``): ``camera/pose`` (PoseStamped in ``map``,
the camera's own pose from the arm's joint encoders), ``anomaly/result`` (AnomalyResult, to
know a settled frame was scored), ``detector/status`` (JSON: while the detector is not
``ready`` it is being taught, so a view is held for ``teach_dwell_s`` instead), ``sim/status``
(JSON: a refused target skips the view at once).

Outputs: ``camera/target_pose`` (PoseStamped in ``map``: the arm controller plans IK and a
joint path to it), ``capture/status`` (std_msgs/String JSON, transient local: ``state`` in
idle | running | done | aborted, ``message``, ``progress``, ``views_total``, ``views_done``,
``views_skipped``, ``coverage``), ``capture/views`` (MarkerArray: planned viewpoints, grey =
pending, yellow = current, green = captured, red = skipped).

Services: ``capture/start`` and ``capture/stop`` (std_srvs/Trigger).

The part geometry used for planning is the workcell's asset model (what a real cell has from
CAD): the scenario's table and part, never its defects. The arm model is the workcell's
overhead arm (:func:`anomaly_inspection_core.control.arm.workcell_arm`).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
from geometry_msgs.msg import PoseStamped
from rclpy.node import Node
from std_msgs.msg import ColorRGBA, Header, String
from std_srvs.srv import Trigger
from visualization_msgs.msg import Marker, MarkerArray

from anomaly_inspection.msg import AnomalyResult
from anomaly_inspection_core.control.arm import workcell_arm, workcell_scene
from anomaly_inspection_core.control.coverage import compute_coverage, sample_part_surface
from anomaly_inspection_core.control.view_planner import PATTERNS, plan_views_filled, tour_time
from anomaly_inspection_core.geometry.camera import CameraIntrinsics, Pose
from anomaly_inspection_core.scenario import load_scenario

from . import conversions as conv
from .node_utils import ThrottledWarner, declare_config, latched_qos, run_node, wall_timer

IDLE, RUNNING, DONE, ABORTED = "idle", "running", "done", "aborted"
# phases of one view while running
MOVING, SETTLING, CAPTURING = "moving", "settling", "capturing"


@dataclass
class CaptureNodeConfig:
    scenario: str = field(default="workcell_casting", metadata={"help": "workcell scenario (its part and table)"})
    map_frame: str = "map"
    autostart: bool = field(default=False, metadata={"help": "start capturing without a capture/start call"})
    n_views: int = field(default=16, metadata={"help": "candidate viewpoints (unreachable ones are dropped)"})
    pattern: str = field(default="spiral", metadata={"help": "hemisphere | spiral"})
    standoff_m: float = field(default=0.0, metadata={"help": "camera distance to the part centre (0 = workcell's)"})
    fill_standoff_m: float = field(default=0.0, metadata={
        "help": "while the views at standoff_m plan less than min_planned_coverage, add views from this farther "
                "standoff where they gain most (0 = none)"})
    min_planned_coverage: float = field(default=0.97, metadata={"help": "see fill_standoff_m (fraction)"})
    fill_min_views: int = field(default=1, metadata={
        "help": "fill views are added until min_planned_coverage of the surface is seen by this many views "
                "(2: a plate's thin sides, seen once from the close views, then twice, as fusion needs)"})
    min_elevation_deg: float = 20.0
    max_elevation_deg: float = 85.0
    position_tolerance_m: float = field(default=0.003, metadata={"help": "camera at the target within this"})
    angle_tolerance_deg: float = field(default=1.0, metadata={"help": "optical axis at the target within this"})
    steady_tolerance_m: float = field(default=0.0005, metadata={"help": "max motion between poses when steady"})
    settle_time_s: float = field(default=0.3, metadata={"help": "steady at the target this long (sim time)"})
    captures_per_view: int = field(default=1, metadata={"help": "scored settled frames per view"})
    teach_dwell_s: float = field(default=0.6, metadata={"help": "hold per view while the detector is taught"})
    view_timeout_s: float = field(default=30.0, metadata={"help": "sim-time limit per view; then skip it"})
    view_wall_timeout_s: float = field(default=120.0, metadata={"help": "wall-clock limit per view (sim stalled)"})
    target_resend_s: float = field(default=1.0, metadata={
        "help": "re-send a view's target when the arm has not moved for this long (sim time) short of it: a "
                "target published before the arm controller's subscription matched is lost"})
    min_px_per_cm: float = field(default=4.0, metadata={"help": "coverage: resolution a cell needs"})
    max_incidence_deg: float = field(default=60.0, metadata={"help": "coverage: steepest usable view of a cell"})
    status_period_s: float = 1.0


def optical_axis(pose: Pose) -> np.ndarray:
    """The camera's viewing direction (optical +z) in ``map``."""
    return pose.rotation[:, 2]


def axis_angle_deg(a: np.ndarray, b: np.ndarray) -> float:
    """Angle between two directions, degrees."""
    c = float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))
    return math.degrees(math.acos(max(-1.0, min(1.0, c))))


def at_view(pose: Pose, target: Pose, position_tolerance_m: float, angle_tolerance_deg: float) -> bool:
    """The camera is where the view needs it and looks the same way; the roll about the optical
    axis is free (the arm solves targets with a free roll, the image content is the same)."""
    return bool(np.linalg.norm(pose.position - target.position) <= position_tolerance_m
                and axis_angle_deg(optical_axis(pose), optical_axis(target)) <= angle_tolerance_deg)


class CaptureNode(Node):
    """Moves the arm's camera through planned views and captures a scored frame at each."""

    def __init__(self, **kwargs) -> None:
        super().__init__("capture", **kwargs)
        self.cfg = declare_config(self, CaptureNodeConfig)
        cfg = self.cfg
        if cfg.pattern not in PATTERNS:
            raise ValueError(f"parameter pattern must be one of {PATTERNS}, got '{cfg.pattern}'")
        if not (math.isfinite(cfg.fill_standoff_m) and cfg.fill_standoff_m >= 0):
            raise ValueError(f"parameter fill_standoff_m must be >= 0, got {cfg.fill_standoff_m}")
        if not 0.0 <= cfg.min_planned_coverage <= 1.0:
            raise ValueError(f"parameter min_planned_coverage must be in [0, 1], got {cfg.min_planned_coverage}")
        if cfg.fill_min_views < 1:
            raise ValueError(f"parameter fill_min_views must be >= 1, got {cfg.fill_min_views}")
        if cfg.n_views < 1 or cfg.captures_per_view < 1:
            raise ValueError(f"n_views and captures_per_view must be >= 1, got {cfg.n_views}, {cfg.captures_per_view}")
        for name in ("position_tolerance_m", "angle_tolerance_deg", "steady_tolerance_m", "view_timeout_s",
                     "view_wall_timeout_s", "target_resend_s"):
            if not getattr(cfg, name) > 0:
                raise ValueError(f"parameter {name} must be positive, got {getattr(cfg, name)}")
        scenario = load_scenario(cfg.scenario)
        if scenario.workcell is None:
            raise ValueError(f"scenario '{scenario.name}' has no workcell: the capture node needs a manipulator cell")
        self.workcell = scenario.workcell
        self.intrinsics = CameraIntrinsics.from_fov(scenario.camera.width, scenario.camera.height,
                                                    scenario.camera.fov_y_deg)
        self.warner = ThrottledWarner(self)
        t0 = time.perf_counter()
        arm = workcell_arm(self.workcell)
        self.surface = sample_part_surface(self.workcell.part)
        standoff = cfg.standoff_m if cfg.standoff_m > 0 else float(self.workcell.standoff)
        self.views, n_fill, fill_coverage = plan_views_filled(
            self.workcell.part, standoff, cfg.fill_standoff_m, cfg.n_views, arm,
            lambda poses: self._coverage(poses, cfg.fill_min_views), cfg.min_planned_coverage,
            pattern=cfg.pattern, min_elevation_deg=cfg.min_elevation_deg,
            max_elevation_deg=cfg.max_elevation_deg, scene=workcell_scene(self.workcell))
        self.planned_coverage = (fill_coverage if cfg.fill_min_views == 1
                                 else self._coverage([v.pose for v in self.views]))
        self.get_logger().info(
            f"planned {len(self.views) - n_fill} of {cfg.n_views} {cfg.pattern} views at {standoff:.2f} m"
            + (f" and {n_fill} at {cfg.fill_standoff_m:.2f} m" if n_fill else "") + " around "
            f"'{scenario.name}' in {time.perf_counter() - t0:.1f} s: planned coverage "
            f"{100 * self.planned_coverage:.1f} %"
            + (f" ({100 * fill_coverage:.1f} % by {cfg.fill_min_views} views or more)" if cfg.fill_min_views > 1 else "")
            + f", joint tour {tour_time(arm, self.views):.0f} s")

        self.state = IDLE
        self.message = f"{len(self.views)} views planned"
        self.detector_state = ""
        self.latest_pose: Optional[tuple[float, Pose]] = None
        self._reset_pass()

        self.pub_target = self.create_publisher(PoseStamped, "camera/target_pose", 10)
        self.pub_status = self.create_publisher(String, "capture/status", latched_qos())
        self.pub_views = self.create_publisher(MarkerArray, "capture/views", latched_qos())
        self.create_subscription(PoseStamped, "camera/pose", self._on_pose, 20)
        self.create_subscription(AnomalyResult, "anomaly/result", self._on_result, 20)
        self.create_subscription(String, "detector/status", self._on_detector_status, latched_qos())
        self.create_subscription(String, "sim/status", self._on_sim_status, latched_qos())
        self.create_service(Trigger, "capture/start", self._on_start)
        self.create_service(Trigger, "capture/stop", self._on_stop)
        wall_timer(self, 0.05, self._tick)
        wall_timer(self, cfg.status_period_s, self._publish_status)
        self._publish_markers()
        self._publish_status()
        if cfg.autostart:
            self._start()

    # ------------------------------------------------------------------ pass state
    def _reset_pass(self) -> None:
        self.view_index = 0
        self.phase = MOVING
        self.view_status: list[str] = ["pending"] * len(self.views)
        self.captured_poses: list[Pose] = []
        self.views_done = 0
        self.views_skipped = 0
        self.coverage = 0.0
        self._view_started = 0.0
        self._view_started_sim: Optional[float] = None
        self._steady_since: Optional[float] = None
        self._prev_pose: Optional[Pose] = None
        self._settled_stamp: Optional[float] = None
        self._scored = 0
        self._sent_wall = 0.0
        self._sent_stamp: Optional[float] = None  # sim time of the last target sent (None: before any pose)
        self._moved_stamp = -math.inf  # sim time the camera last moved

    def _coverage(self, poses: list[Pose], min_views: int = 1) -> float:
        if not poses:
            return 0.0
        return float(compute_coverage(self.surface, poses, self.intrinsics, min_px_per_cm=self.cfg.min_px_per_cm,
                                      max_incidence_deg=self.cfg.max_incidence_deg, min_views=min_views).fraction)

    def _start(self) -> tuple[bool, str]:
        self._reset_pass()
        if not self.views:
            self._finish(ABORTED, "no reachable viewpoint: check the standoff and the elevation band")
            return False, self.message
        self.state, self.message = RUNNING, "capturing"
        self.get_logger().info(f"capture started: {len(self.views)} views")
        self._begin_view()
        return True, f"capturing {len(self.views)} views"

    def _begin_view(self) -> None:
        self.phase = MOVING
        self.view_status[self.view_index] = "current"
        self._view_started = time.monotonic()
        self._view_started_sim = self.latest_pose[0] if self.latest_pose is not None else None
        self._steady_since, self._prev_pose, self._settled_stamp, self._scored = None, None, None, 0
        self._send_target()
        self._publish_markers()
        self._publish_status()

    def _send_target(self) -> None:
        view = self.views[self.view_index]
        stamp = self.latest_pose[0] if self.latest_pose is not None else 0.0
        msg = conv.pose_to_pose_stamped(view.pose, Header(stamp=conv.sec_to_stamp(stamp), frame_id=self.cfg.map_frame))
        self.pub_target.publish(msg)
        self._sent_wall = time.monotonic()
        self._sent_stamp = self.latest_pose[0] if self.latest_pose is not None else None

    def _end_view(self, captured: bool, why: str = "") -> None:
        k = self.view_index
        if captured:
            self.view_status[k] = "captured"
            self.views_done += 1
            assert self.latest_pose is not None
            self.captured_poses.append(self.latest_pose[1])
            self.coverage = self._coverage(self.captured_poses)
        else:
            self.view_status[k] = "skipped"
            self.views_skipped += 1
            self.get_logger().warning(f"view {k + 1}/{len(self.views)} skipped: {why}")
        self.view_index += 1
        if self.view_index >= len(self.views):
            if self.views_done == 0:
                self._finish(ABORTED, f"no view captured ({why})")
            else:
                self._finish(DONE, f"{self.views_done} of {len(self.views)} views captured, "
                                   f"coverage {100 * self.coverage:.1f} %")
            return
        self._begin_view()

    def _finish(self, state: str, message: str) -> None:
        self.state, self.message = state, message
        log = self.get_logger().error if state == ABORTED else self.get_logger().info
        log(f"capture {state}: {message}")
        self._publish_markers()
        self._publish_status()

    # ------------------------------------------------------------------ services
    def _on_start(self, request, response):
        response.success, response.message = self._start()
        return response

    def _on_stop(self, request, response):
        if self.state == RUNNING:
            self.state = IDLE
            self.message = f"stopped at view {self.view_index + 1}/{len(self.views)}"
            self._publish_status()
        response.success, response.message = True, self.message
        return response

    # ------------------------------------------------------------------ inputs
    def _on_pose(self, msg: PoseStamped) -> None:
        try:
            t, pose = conv.pose_stamped_to_pose(msg, self.cfg.map_frame)
        except conv.ConversionError as exc:
            self.warner.warn("pose", f"dropping camera pose: {exc}")
            return
        if self.latest_pose is not None and t < self.latest_pose[0]:
            if self.latest_pose[0] - t > 1.0:  # the sim restarted its clock: take the new one
                self._steady_since = None
            else:
                self.warner.warn("pose_order", f"dropping camera pose older than the last one (t={t:.3f})")
                return
        if self.latest_pose is not None and \
                np.linalg.norm(pose.position - self.latest_pose[1].position) > self.cfg.steady_tolerance_m:
            self._moved_stamp = t
        self.latest_pose = (t, pose)
        if self.state == RUNNING and self.phase in (MOVING, SETTLING):
            self._update_settling(t, pose)

    def _update_settling(self, t: float, pose: Pose) -> None:
        cfg = self.cfg
        target = self.views[self.view_index].pose
        steady = (self._prev_pose is not None
                  and np.linalg.norm(pose.position - self._prev_pose.position) <= cfg.steady_tolerance_m)
        self._prev_pose = pose
        if not (at_view(pose, target, cfg.position_tolerance_m, cfg.angle_tolerance_deg) and steady):
            self._steady_since = None
            self.phase = MOVING
            return
        if self._steady_since is None:
            self._steady_since = t
            self.phase = SETTLING
        if t - self._steady_since >= cfg.settle_time_s:
            self._settled_stamp = t
            self.phase = CAPTURING

    def _on_result(self, msg: AnomalyResult) -> None:
        try:
            t = conv.validate_stamp(msg.header.stamp)
        except conv.ConversionError as exc:
            self.warner.warn("result", f"dropping anomaly result: {exc}")
            return
        if not math.isfinite(msg.score):
            self.warner.warn("result_score", "dropping anomaly result with a non-finite score")
            return
        if (self.state == RUNNING and self.phase == CAPTURING and self._settled_stamp is not None
                and t >= self._settled_stamp):
            self._scored += 1

    def _on_detector_status(self, msg: String) -> None:
        try:
            self.detector_state = str(json.loads(msg.data).get("state", ""))
        except (json.JSONDecodeError, AttributeError):
            self.warner.warn("detector_status", "ignoring malformed detector/status")

    def _on_sim_status(self, msg: String) -> None:
        try:
            data = json.loads(msg.data)
            state = str(data.get("state", ""))
        except (json.JSONDecodeError, AttributeError):
            self.warner.warn("sim_status", "ignoring malformed sim/status")
            return
        # A refusal that arrives after this view's target was sent is about this view.
        if state == "target_refused" and self.state == RUNNING and self.phase == MOVING \
                and time.monotonic() - self._sent_wall < self.cfg.view_wall_timeout_s:
            self._end_view(False, f"the arm refused the target: {data.get('message', '')}")

    # ------------------------------------------------------------------ sequencing
    def _tick(self) -> None:
        if self.state != RUNNING:
            return
        # Sim time: a loaded machine slows the simulation, not the arm's motion in it.
        if self._view_started_sim is None and self.latest_pose is not None:
            self._view_started_sim = self.latest_pose[0]
        sim_elapsed = (self.latest_pose[0] - self._view_started_sim
                       if self.latest_pose is not None and self._view_started_sim is not None else 0.0)
        if sim_elapsed > self.cfg.view_timeout_s:
            self._end_view(False, f"not captured within {self.cfg.view_timeout_s:.0f} s ({self.phase})")
            return
        if time.monotonic() - self._view_started > self.cfg.view_wall_timeout_s:
            self._end_view(False, f"no progress within {self.cfg.view_wall_timeout_s:.0f} s of wall time "
                                  f"({self.phase})")
            return
        if self.phase == MOVING:
            self._resend_target_if_lost()
        if self.phase != CAPTURING or self.latest_pose is None or self._settled_stamp is None:
            return
        if self.detector_state == "ready":
            if self._scored >= self.cfg.captures_per_view:
                self._end_view(True)
        elif self.latest_pose[0] - self._settled_stamp >= self.cfg.teach_dwell_s:
            # teaching (or no detector): the detector collects the frames streamed while we hold
            self._end_view(True)

    def _resend_target_if_lost(self) -> None:
        """Send the view's target again when the arm stands still short of it: a target published
        before DDS matched the arm controller's subscription is lost (the arm never moved and the
        view timed out once in CI, its teach frames all of the start pose), and a restarted
        simulator has forgotten it."""
        if self.latest_pose is None:
            return
        t = self.latest_pose[0]
        if self._sent_stamp is None:
            why = "it was sent before any camera pose came"
        elif t < self._sent_stamp:
            why = f"the simulated clock went back from {self._sent_stamp:.1f} s to {t:.1f} s"
        elif t - max(self._sent_stamp, self._moved_stamp) >= self.cfg.target_resend_s:
            why = (f"sent at t={self._sent_stamp:.1f} s, the camera has not moved since "
                   f"t={max(self._sent_stamp, self._moved_stamp):.1f} s (now {t:.1f} s)")
        else:
            return
        self.warner.warn("target_resend", f"view {self.view_index + 1}/{len(self.views)}: sending the target "
                                          f"again ({why})")
        self._send_target()

    # ------------------------------------------------------------------ outputs
    def status_dict(self) -> dict:
        """The status payload published on ``capture/status``."""
        n = len(self.views)
        shown = min(self.view_index + (1 if self.state == RUNNING else 0), n)
        progress = (f"view {shown}/{n}, {self.views_done} captured"
                    + (f", {self.views_skipped} skipped" if self.views_skipped else "")
                    + f", coverage {100 * self.coverage:.0f} %")
        return {"state": self.state, "message": self.message, "progress": progress, "views_total": n,
                "views_done": self.views_done, "views_skipped": self.views_skipped,
                "coverage": round(self.coverage, 4), "planned_coverage": round(self.planned_coverage, 4),
                "phase": self.phase if self.state == RUNNING else ""}

    def _publish_status(self) -> None:
        self.pub_status.publish(String(data=json.dumps(self.status_dict())))

    def _publish_markers(self) -> None:
        colours = {"pending": (0.6, 0.6, 0.6), "current": (1.0, 0.85, 0.0), "captured": (0.1, 0.8, 0.2),
                   "skipped": (0.9, 0.1, 0.1)}
        header = Header(frame_id=self.cfg.map_frame)
        markers = [Marker(header=header, ns="capture_views", action=Marker.DELETEALL)]
        for k, (view, status) in enumerate(zip(self.views, self.view_status)):
            m = Marker(header=header, ns="capture_views", id=k, type=Marker.ARROW, action=Marker.ADD)
            tip = view.pose.position + 0.1 * optical_axis(view.pose)
            m.points = [conv.point(view.pose.position), conv.point(tip)]
            m.pose.orientation.w = 1.0
            m.scale.x, m.scale.y, m.scale.z = 0.01, 0.02, 0.03
            r, g, b = colours[status]
            m.color = ColorRGBA(r=r, g=g, b=b, a=0.9)
            markers.append(m)
        self.pub_views.publish(MarkerArray(markers=markers))


def main(args=None) -> int:
    return run_node(CaptureNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
