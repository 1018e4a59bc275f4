"""AGV patrol node: pure-pursuit waypoint patrol that stops for obstacles seen in the mast camera's depth.

Inputs (relative to the namespace, e.g. ``/agv``): ``camera/pose`` (PoseStamped in ``map``: the
mast camera's pose from the AGV's odometry; the body pose follows from the mast mount),
``camera/depth/image_raw`` (32FC1 m / 16UC1 mm) and ``camera/camera_info`` (obstacle distance
in the driving corridor, :func:`anomaly_inspection_core.control.patrol.min_obstacle_distance`),
``anomaly/result`` (only its stamps: how many frames per second the detector scores).

Outputs: ``cmd_vel`` (geometry_msgs/Twist: linear.x and angular.z), ``patrol/status``
(std_msgs/String JSON, transient local: ``state`` in idle | running | done | aborted,
``message``, ``progress``, ``waypoint``, ``waypoints_total``, ``distance_m``, ``controller``
(driving | blocked | dwelling | finished), ``obstacle_m``), ``patrol/path`` (nav_msgs/Path,
the driven path) and ``patrol/route`` (nav_msgs/Path, the waypoints; transient local).

Services: ``patrol/start`` and ``patrol/stop`` (std_srvs/Trigger). While stopped, done or
aborted it commands zero velocity. The camera captures while driving: the detector scores the
stream, the mapper fuses what it sees; ``stop_at_waypoints`` adds captures at stops. The speed
is capped at ``capture_spacing_m`` times the detector's scoring rate (simulated time), so a
slow or loaded detector still scores a frame every ``capture_spacing_m`` along the route and
every defect is seen in several scored frames (fusion needs ``min_views``); the cap scales
v and omega together, so the path is the same.

Waypoints come from the scenario's ``factory.patrol`` or the ``waypoints`` parameter (JSON
``[[x, y], ...]`` in ``map``); the mast mount (height, pitch, pan) from the scenario's factory.
The patrol aborts when an obstacle blocks the way longer than ``blocked_timeout_s``.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
from geometry_msgs.msg import PoseStamped, Twist
from nav_msgs.msg import Path
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header, String
from std_srvs.srv import Trigger

from anomaly_inspection_core.control.patrol import (BLOCKED, FINISHED, PatrolConfig, PurePursuitController,
                                                    min_obstacle_distance)
from anomaly_inspection_core.geometry.camera import CameraIntrinsics, Pose
from anomaly_inspection_core.scenario import load_scenario

from . import conversions as conv
from .node_utils import DetectorPacer, ThrottledWarner, declare_config, latched_qos, qos_from_name, run_node, wall_timer

IDLE, RUNNING, DONE, ABORTED = "idle", "running", "done", "aborted"


@dataclass
class PatrolNodeConfig:
    scenario: str = field(default="factory_floor", metadata={"help": "factory scenario (patrol route, mast mount)"})
    waypoints: str = field(default="", metadata={"help": "JSON [[x, y], ...] in map overriding the scenario's route"})
    map_frame: str = "map"
    image_qos: str = "sensor_data"
    autostart: bool = field(default=False, metadata={"help": "start the patrol without a patrol/start call"})
    lookahead_m: float = 0.6
    max_speed: float = field(default=0.5, metadata={"help": "m/s; the detector scores frames while driving"})
    min_speed: float = 0.05
    max_omega: float = 0.8
    goal_tolerance_m: float = 0.2
    stop_distance_m: float = field(default=0.8, metadata={"help": "stop for an obstacle closer than this"})
    resume_distance_m: float = field(default=1.0, metadata={"help": "drive on once it is farther than this"})
    stop_at_waypoints: bool = field(default=False, metadata={"help": "dwell on each waypoint (captures at stops)"})
    dwell_s: float = 1.0
    check_obstacles: bool = field(default=True, metadata={"help": "stop for obstacles seen in depth"})
    corridor_half_width_m: float = field(default=0.45, metadata={"help": "half width of the driving corridor"})
    depth_max_age_s: float = field(default=0.5, metadata={"help": "newest depth must be this fresh (sim time)"})
    blocked_timeout_s: float = field(default=30.0, metadata={"help": "abort when blocked this long (sim time)"})
    capture_spacing_m: float = field(default=0.2, metadata={
        "help": "drive at most this far per frame the detector scores (slows down for a slow detector; 0 = off)"})
    status_period_s: float = 1.0
    pose_timeout_s: float = field(default=5.0, metadata={
        "help": "warn when patrolling with no camera pose for this long (wall seconds): the AGV cannot move"})


def parse_waypoints(text: str) -> np.ndarray:
    """``[[x, y], ...]`` (JSON) -> (N, 2) array; a clear error for anything else."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"parameter waypoints is not JSON ([[x, y], ...]): {exc}") from exc
    arr = np.asarray(data, dtype=float) if isinstance(data, list) else np.zeros((0,))
    if arr.ndim != 2 or arr.shape[1] != 2 or len(arr) < 2:
        raise ValueError(f"parameter waypoints must be at least two [x, y] pairs, got {text!r}")
    if not np.all(np.isfinite(arr)):
        raise ValueError("parameter waypoints contains non-finite values")
    return arr


def body_pose_from_camera(camera: Pose, camera_yaw_deg: float) -> np.ndarray:
    """(x, y, yaw) of the AGV body under its mast camera (mast on the body's vertical axis).

    The heading is the optical axis' direction in the floor plane minus the mast's pan;
    a camera looking straight down has no such direction (ValueError).
    """
    axis = camera.rotation[:, 2]
    if math.hypot(axis[0], axis[1]) < 1e-6:
        raise ValueError("the camera looks straight up or down: no heading")
    yaw = math.atan2(axis[1], axis[0]) - math.radians(camera_yaw_deg)
    return np.array([camera.position[0], camera.position[1], math.atan2(math.sin(yaw), math.cos(yaw))])


class PatrolNode(Node):
    """Drives the AGV along its waypoints with pure pursuit, stopping for obstacles."""

    def __init__(self, **kwargs) -> None:
        super().__init__("patrol", **kwargs)
        self.cfg = declare_config(self, PatrolNodeConfig)
        cfg = self.cfg
        scenario = load_scenario(cfg.scenario)
        fac = scenario.factory
        if cfg.waypoints.strip():
            self.waypoints = parse_waypoints(cfg.waypoints)
        elif fac is not None:
            self.waypoints = np.asarray(fac.patrol, dtype=float)
        else:
            raise ValueError(f"scenario '{scenario.name}' has no factory patrol route and no waypoints parameter")
        self.camera_height = float(fac.camera_height) if fac is not None else 1.2
        self.camera_pitch_deg = float(fac.camera_pitch_deg) if fac is not None else 15.0
        self.camera_yaw_deg = float(fac.camera_yaw_deg) if fac is not None else 0.0
        if not (cfg.depth_max_age_s > 0 and cfg.blocked_timeout_s > 0 and cfg.corridor_half_width_m > 0
                and cfg.pose_timeout_s > 0):
            raise ValueError("depth_max_age_s, blocked_timeout_s, corridor_half_width_m and pose_timeout_s must be "
                             "positive")
        self.patrol_cfg = PatrolConfig(
            lookahead_m=cfg.lookahead_m, max_speed=cfg.max_speed, min_speed=cfg.min_speed, max_omega=cfg.max_omega,
            goal_tolerance_m=cfg.goal_tolerance_m, stop_distance_m=cfg.stop_distance_m,
            resume_distance_m=cfg.resume_distance_m, loop=False, stop_at_waypoints=cfg.stop_at_waypoints,
            dwell_s=cfg.dwell_s)
        self.controller = PurePursuitController(self.waypoints, self.patrol_cfg)
        self.warner = ThrottledWarner(self)
        self.intrinsics: Optional[CameraIntrinsics] = None
        self.state, self.message = IDLE, f"{len(self.waypoints)} waypoints"
        self._depth: Optional[tuple[float, np.ndarray]] = None
        self.pacer = DetectorPacer(cfg.capture_spacing_m)
        self._reset_pass()

        img_qos = qos_from_name(cfg.image_qos, depth=2)
        self.create_subscription(PoseStamped, "camera/pose", self._on_pose, 20)
        self.create_subscription(Image, "camera/depth/image_raw", self._on_depth, img_qos)
        self.create_subscription(CameraInfo, "camera/camera_info", self._on_info, img_qos)
        self.pacer.attach(self, self.warner)
        self.pub_cmd = self.create_publisher(Twist, "cmd_vel", 10)
        self.pub_status = self.create_publisher(String, "patrol/status", latched_qos())
        self.pub_path = self.create_publisher(Path, "patrol/path", latched_qos())
        self.pub_route = self.create_publisher(Path, "patrol/route", latched_qos())
        self.create_service(Trigger, "patrol/start", self._on_start)
        self.create_service(Trigger, "patrol/stop", self._on_stop)
        wall_timer(self, cfg.status_period_s, self._publish_status)
        self._publish_route()
        self._publish_status()
        self.get_logger().info(
            f"patrol: {len(self.waypoints)} waypoints, {self.route_length:.1f} m, up to {cfg.max_speed:g} m/s; "
            f"mast camera {self.camera_height:g} m high, pitched {self.camera_pitch_deg:g} deg, "
            f"panned {self.camera_yaw_deg:g} deg")
        if cfg.autostart:
            self._start()

    @property
    def route_length(self) -> float:
        return float(np.sum(np.linalg.norm(np.diff(self.waypoints, axis=0), axis=1)))

    # ------------------------------------------------------------------ pass state
    def _reset_pass(self) -> None:
        self.controller.reset()
        self.last_command = None
        self.distance_m = 0.0
        self.obstacle_m = math.inf
        self.path: list[np.ndarray] = []
        self._last_t: Optional[float] = None
        self._blocked_since: Optional[float] = None
        self.updates = 0
        self._pose_wall = time.monotonic()  # when the last camera pose arrived (or the pass began)

    def _start(self) -> None:
        self._reset_pass()
        self.state, self.message = RUNNING, "patrolling"
        self.get_logger().info("patrol started")
        self._publish_status()

    def _finish(self, state: str, message: str) -> None:
        self.pub_cmd.publish(Twist())
        self.state, self.message = state, message
        (self.get_logger().error if state == ABORTED else self.get_logger().info)(f"patrol {state}: {message}")
        self._publish_path()
        self._publish_status()

    # ------------------------------------------------------------------ services
    def _on_start(self, request, response):
        self._start()
        response.success, response.message = True, f"patrolling {len(self.waypoints)} waypoints"
        return response

    def _on_stop(self, request, response):
        self.pub_cmd.publish(Twist())
        if self.state == RUNNING:
            self.state, self.message = IDLE, f"stopped after {self.distance_m:.1f} m"
            self._publish_status()
        response.success, response.message = True, self.message
        return response

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
        if self.intrinsics is not None and depth.shape != (self.intrinsics.height, self.intrinsics.width):
            self.warner.warn("depth_size", f"dropping depth {depth.shape[1]}x{depth.shape[0]}: CameraInfo says "
                                           f"{self.intrinsics.width}x{self.intrinsics.height}")
            return
        self._depth = (t, depth)

    def scoring_rate_hz(self, now: float) -> Optional[float]:
        """Frames scored per second of sim time (None when the detector is not scoring)."""
        return self.pacer.rate_hz(now)

    def speed_cap(self, now: float) -> float:
        """The speed (m/s) that keeps one scored frame per ``capture_spacing_m``."""
        cap = self.pacer.speed_cap(now, self.cfg.max_speed, self.cfg.min_speed)
        if cap == 0.0 and self.state == RUNNING:
            self.warner.warn("pacing", "holding still: the detector has a model but is not scoring frames yet")
        return cap

    def _on_pose(self, msg: PoseStamped) -> None:
        self._pose_wall = time.monotonic()
        try:
            t, camera_pose = conv.pose_stamped_to_pose(msg, self.cfg.map_frame)
            body = body_pose_from_camera(camera_pose, self.camera_yaw_deg)
        except (conv.ConversionError, ValueError) as exc:
            self.warner.warn("pose", f"dropping camera pose: {exc}")
            return
        if self.state == RUNNING:
            self._control(t, body)

    # ------------------------------------------------------------------ control
    def _obstacle_distance(self, t: float) -> Optional[float]:
        """Distance to the nearest obstacle ahead; None while there is no fresh depth to tell."""
        if not self.cfg.check_obstacles:
            return math.inf
        if self._depth is None or self.intrinsics is None or abs(t - self._depth[0]) > self.cfg.depth_max_age_s:
            return None
        depth = self._depth[1]
        if depth.shape != (self.intrinsics.height, self.intrinsics.width):
            return None
        return min_obstacle_distance(depth, self.intrinsics, self.camera_height, self.camera_pitch_deg,
                                     self.camera_yaw_deg, corridor_half_width=self.cfg.corridor_half_width_m)

    def _control(self, t: float, body: np.ndarray) -> None:
        if self._last_t is not None and t <= self._last_t:
            self.warner.warn("pose_order", f"dropping camera pose not newer than the last one (t={t:.3f})")
            return
        dt = 0.1 if self._last_t is None else min(t - self._last_t, 0.5)
        self._last_t = t
        if self.path:
            self.distance_m += float(np.linalg.norm(body[:2] - self.path[-1][:2]))
        self.path.append(body.copy())
        obstacle = self._obstacle_distance(t)
        if obstacle is None:
            self.warner.warn("no_depth", "no fresh depth image: holding still (cannot see obstacles)")
            self.pub_cmd.publish(Twist())
            return
        self.obstacle_m = obstacle
        cmd = self.controller.update(body, obstacle, dt)
        previous = self.last_command.state if self.last_command is not None else None
        self.last_command = cmd
        cap = self.speed_cap(t)
        scale = cap / cmd.v if cmd.v > cap else 1.0
        twist = Twist()
        twist.linear.x, twist.angular.z = float(cmd.v * scale), float(cmd.omega * scale)
        self.pub_cmd.publish(twist)
        self.updates += 1
        if cmd.state != previous and previous is not None:
            self.get_logger().info(f"patrol: {cmd.state} (waypoint {cmd.waypoint_index + 1}/{len(self.waypoints)}"
                                   + (f", obstacle at {obstacle:.2f} m)" if cmd.state == BLOCKED else ")"))
        if cmd.state == BLOCKED:
            self._blocked_since = t if self._blocked_since is None else self._blocked_since
            if t - self._blocked_since > self.cfg.blocked_timeout_s:
                self._finish(ABORTED, f"blocked by an obstacle {obstacle:.2f} m ahead for "
                                      f"{self.cfg.blocked_timeout_s:.0f} s at ({body[0]:.2f}, {body[1]:.2f})")
                return
        else:
            self._blocked_since = None
        if cmd.state == FINISHED:
            self._finish(DONE, f"route complete: {self.distance_m:.1f} m driven")
            return
        if self.updates % 10 == 0:
            self._publish_path()

    # ------------------------------------------------------------------ outputs
    def status_dict(self) -> dict:
        """The status payload published on ``patrol/status``."""
        n = len(self.waypoints)
        ctrl = self.last_command.state if self.last_command is not None else ""
        wp = self.last_command.waypoint_index + 1 if self.last_command is not None else 1
        if self.state == DONE:
            wp = n
        progress = f"waypoint {wp}/{n}, {self.distance_m:.1f} of {self.route_length:.1f} m" \
                   + (f", {ctrl}" if ctrl and self.state == RUNNING else "")
        return {"state": self.state, "message": self.message, "progress": progress, "waypoint": wp,
                "waypoints_total": n, "distance_m": round(self.distance_m, 3), "controller": ctrl,
                "obstacle_m": None if not math.isfinite(self.obstacle_m) else round(self.obstacle_m, 3)}

    def _publish_status(self) -> None:
        silent = time.monotonic() - self._pose_wall
        if self.state == RUNNING and silent > self.cfg.pose_timeout_s:
            self.warner.warn("no_pose", f"patrolling, but no camera pose has arrived for {silent:.0f} s: the AGV "
                                        "cannot move (is camera/pose published and reaching this node?)")
        self.pub_status.publish(String(data=json.dumps(self.status_dict())))

    def _path_msg(self, xy_yaw: list[np.ndarray]) -> Path:
        header = Header(stamp=conv.sec_to_stamp(self._last_t or 0.0), frame_id=self.cfg.map_frame)
        msg = Path(header=header)
        for x, y, yaw in xy_yaw:
            ps = PoseStamped(header=header)
            ps.pose.position.x, ps.pose.position.y = float(x), float(y)
            ps.pose.orientation.z, ps.pose.orientation.w = math.sin(yaw / 2.0), math.cos(yaw / 2.0)
            msg.poses.append(ps)
        return msg

    def _publish_path(self) -> None:
        self.pub_path.publish(self._path_msg(self.path[::2] + self.path[-1:]))

    def _publish_route(self) -> None:
        seg = np.diff(self.waypoints, axis=0)
        yaws = list(np.arctan2(seg[:, 1], seg[:, 0]))
        self.pub_route.publish(self._path_msg([np.array([x, y, yaw]) for (x, y), yaw
                                               in zip(self.waypoints, yaws + yaws[-1:])]))


def main(args=None) -> int:
    return run_node(PatrolNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
