"""Simulated robot: renders a scenario in MuJoCo and publishes camera, depth, CameraInfo and pose.

Topics (relative to the node's namespace, e.g. ``/uav``):

========================================  ============================  ==========================
``camera/image_raw``                      sensor_msgs/Image rgb8        sensor-data QoS
``camera/depth/image_raw``                sensor_msgs/Image 32FC1 (m)   sensor-data QoS
``camera/camera_info``                    sensor_msgs/CameraInfo        sensor-data QoS
``camera/pose``                           geometry_msgs/PoseStamped     reliable, camera in ``map``
``ground_truth/defects``                  anomaly_inspection/DefectArray  transient local, once
``ground_truth/defect_mask``              sensor_msgs/Image 16UC1 ids   sensor-data QoS (optional)
``sim/status``                            std_msgs/String (JSON)        transient local
``/clock``                                rosgraph_msgs/Clock           simulated time
``cmd_vel`` (in)                          geometry_msgs/Twist           UAV / AGV velocity command
``camera/target_pose`` (in)               geometry_msgs/PoseStamped     manipulator camera target
``camera/gimbal_pitch`` (in)              std_msgs/Float64 (degrees)    UAV camera pitch, + = down
========================================  ============================  ==========================

All outputs of one step carry the same stamp (simulated time). Commands are validated and
a stale command (older than ``command_timeout_s``) stops the robot.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
from geometry_msgs.msg import PoseStamped, Twist
from rclpy.node import Node
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Float64, Header, String
from std_srvs.srv import SetBool, Trigger

from anomaly_inspection.msg import Defect, DefectArray
from anomaly_inspection_core.geometry.camera import Pose
from anomaly_inspection_core.scenario import load_scenario
from anomaly_inspection_core.sim import SimWorld
from anomaly_inspection_core.sim.drivers import make_robot

from . import conversions as conv
from .node_utils import wall_timer, ThrottledWarner, declare_config, latched_qos, qos_from_name, run_node


@dataclass
class SimNodeConfig:
    scenario: str = field(default="pipeline_straight", metadata={"help": "shipped scenario name or YAML path"})
    clean: bool = field(default=False, metadata={"help": "render the clean twin (no defects), for teaching"})
    rate_hz: float = field(default=10.0, metadata={"help": "simulation step and publish rate"})
    map_frame: str = "map"
    camera_frame: str = "camera_optical_frame"
    image_qos: str = "sensor_data"
    publish_clock: bool = field(default=True, metadata={"help": "publish simulated time on /clock"})
    start_time_s: float = field(default=100.0, metadata={"help": "simulated time of the first step"})
    publish_defect_mask: bool = True
    command_timeout_s: float = 0.5


class SimNode(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__("sim", **kwargs)
        self.cfg = declare_config(self, SimNodeConfig)
        if not (0.1 <= self.cfg.rate_hz <= 200.0):
            raise ValueError(f"rate_hz must be in [0.1, 200], got {self.cfg.rate_hz}")
        self.warner = ThrottledWarner(self)
        scenario = load_scenario(self.cfg.scenario)
        self.scenario = scenario.clean_twin() if self.cfg.clean else scenario
        self.world = SimWorld(self.scenario)
        self.robot = make_robot(self.scenario)
        self.sim_time = float(self.cfg.start_time_s)
        self.dt = 1.0 / self.cfg.rate_hz
        self.steps = 0
        self.crashed = False
        self._last_cmd_time: Optional[float] = None
        self._render_ms: list[float] = []

        img_qos = qos_from_name(self.cfg.image_qos)
        self.pub_rgb = self.create_publisher(Image, "camera/image_raw", img_qos)
        self.pub_depth = self.create_publisher(Image, "camera/depth/image_raw", img_qos)
        self.pub_info = self.create_publisher(CameraInfo, "camera/camera_info", img_qos)
        self.pub_pose = self.create_publisher(PoseStamped, "camera/pose", 10)
        self.pub_mask = (self.create_publisher(Image, "ground_truth/defect_mask", img_qos)
                         if self.cfg.publish_defect_mask else None)
        self.pub_gt = self.create_publisher(DefectArray, "ground_truth/defects", latched_qos())
        self.pub_status = self.create_publisher(String, "sim/status", latched_qos())
        self.pub_clock = self.create_publisher(Clock, "/clock", 10) if self.cfg.publish_clock else None

        if self.robot.command_type == "twist":
            self.create_subscription(Twist, "cmd_vel", self._on_twist, 10)
            if self.robot.has_gimbal:
                self.create_subscription(Float64, "camera/gimbal_pitch", self._on_gimbal_pitch, 10)
        else:
            self.create_subscription(PoseStamped, "camera/target_pose", self._on_target_pose, 10)

        self.paused = False
        self.create_service(SetBool, "sim/pause", self._on_pause)
        self.create_service(Trigger, "sim/load_clean", lambda req, res: self._load(res, clean=True))
        self.create_service(Trigger, "sim/load_inspection", lambda req, res: self._load(res, clean=False))
        self._publish_ground_truth()
        self._publish_status("running")
        self.timer = wall_timer(self, self.dt, self._step)
        self.get_logger().info(
            f"sim: scenario '{self.scenario.name}'{' (clean twin)' if self.cfg.clean else ''}, robot "
            f"{self.scenario.robot}, {self.world.intrinsics.width}x{self.world.intrinsics.height} at "
            f"{self.cfg.rate_hz:g} Hz, {len(self.scenario.defects)} defects")

    def _on_pause(self, request, response):
        """Freeze simulated time and rendering (frees the CPU, e.g. while a model is being fitted)."""
        self.paused = bool(request.data)
        self._publish_status("paused" if self.paused else "running")
        response.success, response.message = True, "paused" if self.paused else "running"
        return response

    # ------------------------------------------------------------------ world switching
    def _load(self, response, clean: bool):
        """Rebuild the world as the clean twin or the scenario with defects; robot back at the start."""
        try:
            scenario = load_scenario(self.cfg.scenario)
            scenario = scenario.clean_twin() if clean else scenario
        except Exception as exc:  # noqa: BLE001 - keep the current world on any failure
            response.success, response.message = False, f"cannot load scenario: {exc}"
            return response
        # One offscreen GL context at a time (SimWorld.close now frees its own GL objects in its
        # own context, which was the cause of a new world rendering black with no depth).
        self.world.close()
        self.world = SimWorld(scenario)
        self.scenario, self.cfg.clean = scenario, clean
        self.robot = make_robot(scenario)
        self.crashed = self.paused = False
        self._last_cmd_time = None
        self._publish_ground_truth()
        self._publish_status("running")
        what = "clean twin" if clean else "inspection scenario"
        self.get_logger().info(f"loaded the {what} of '{scenario.name}', robot at the start")
        response.success, response.message = True, f"loaded {what}"
        return response

    # ------------------------------------------------------------------ commands
    def _on_twist(self, msg: Twist) -> None:
        lin = np.array([msg.linear.x, msg.linear.y, msg.linear.z], dtype=float)
        ang = np.array([msg.angular.x, msg.angular.y, msg.angular.z], dtype=float)
        if not (np.all(np.isfinite(lin)) and np.all(np.isfinite(ang))):
            self.warner.warn("bad_twist", "dropping cmd_vel with non-finite values")
            return
        self.robot.set_velocity_command(lin, float(ang[2]))
        self._last_cmd_time = time.monotonic()

    def _on_gimbal_pitch(self, msg: Float64) -> None:
        pitch = float(msg.data)
        if not math.isfinite(pitch):
            self.warner.warn("bad_gimbal", "dropping a non-finite camera/gimbal_pitch")
            return
        self.robot.set_gimbal_pitch(pitch)  # clipped to the gimbal's range

    def _on_target_pose(self, msg: PoseStamped) -> None:
        if msg.header.frame_id and msg.header.frame_id != self.cfg.map_frame:
            self.warner.warn("bad_frame", f"dropping target pose in frame '{msg.header.frame_id}' "
                                          f"(expected '{self.cfg.map_frame}')")
            return
        try:
            target = conv.pose_msg_to_pose(msg.pose)
        except conv.ConversionError as exc:
            self.warner.warn("bad_target", f"dropping camera target pose: {exc}")
            return
        if self.robot.set_target(target) is False:
            self.warner.warn("unreachable", f"camera target refused: {getattr(self.robot, 'last_error', '')}")
            self._publish_status("target_refused", getattr(self.robot, "last_error", ""))
            self._target_refused = True
            return
        if getattr(self, "_target_refused", False):
            self._target_refused = False
            self._publish_status("running")
        self._last_cmd_time = time.monotonic()

    # ------------------------------------------------------------------ stepping
    def _step(self) -> None:
        if self.crashed or self.paused:
            return
        if (self.robot.command_type == "twist" and self._last_cmd_time is not None
                and time.monotonic() - self._last_cmd_time > self.cfg.command_timeout_s):
            self.robot.set_velocity_command(np.zeros(3), 0.0)
            self._last_cmd_time = None
        self.robot.step(self.dt)
        self.sim_time += self.dt
        self.steps += 1
        pose = self.robot.camera_pose()
        if self.robot.collides(self.scenario):
            self.crashed = True
            self.get_logger().error(f"robot collided with the scene at {np.round(self.robot.body_position(), 3)}")
            self._publish_status("crashed")
            return
        t0 = time.perf_counter()
        frame = self.world.render(pose, time_s=self.sim_time, joints=getattr(self.robot, "joint_positions", None))
        self._render_ms.append((time.perf_counter() - t0) * 1e3)
        self._publish_frame(frame, pose)

    def _publish_frame(self, frame, pose: Pose) -> None:
        stamp = conv.sec_to_stamp(self.sim_time)
        if self.pub_clock is not None:
            self.pub_clock.publish(Clock(clock=stamp))
        cam_header = Header(stamp=stamp, frame_id=self.cfg.camera_frame)
        self.pub_info.publish(conv.intrinsics_to_camera_info(frame.intrinsics, cam_header))
        self.pub_depth.publish(conv.metres_to_depth_image(frame.depth, cam_header))
        if self.pub_mask is not None:
            ids = np.clip(frame.defect_ids, 0, 65535).astype(np.uint16)
            self.pub_mask.publish(conv.numpy_to_image(ids, "16UC1", cam_header))
        self.pub_pose.publish(conv.pose_to_pose_stamped(pose, Header(stamp=stamp, frame_id=self.cfg.map_frame)))
        self.pub_rgb.publish(conv.numpy_to_image(frame.rgb, "rgb8", cam_header))

    # ------------------------------------------------------------------ ground truth / status
    def _publish_ground_truth(self) -> None:
        msg = DefectArray(header=Header(stamp=conv.sec_to_stamp(self.sim_time), frame_id=self.cfg.map_frame))
        for d in self.scenario.defects:
            normal = np.asarray(getattr(d, "normal", (0.0, 0.0, 1.0)), dtype=float)
            msg.defects.append(Defect(
                id=int(d.id), type=str(d.type), position=conv.point(d.position),
                size=conv.vector3((d.size, d.size, 0.0)), normal=conv.vector3(normal),
                score=1.0, confidence=1.0, num_views=0))
            msg.defects[-1].orientation.w = 1.0
        self.pub_gt.publish(msg)

    def _publish_status(self, state: str, message: str = "") -> None:
        payload = {"state": state, "message": message, "scenario": self.scenario.name, "clean": self.cfg.clean,
                   "sim_time": self.sim_time, "steps": self.steps,
                   "body_position": [float(v) for v in self.robot.body_position()]}
        self.pub_status.publish(String(data=json.dumps(payload)))

    def render_stats(self) -> dict:
        arr = np.asarray(self._render_ms) if self._render_ms else np.zeros(1)
        return {"frames": self.steps, "render_ms_p50": float(np.median(arr)),
                "render_ms_p95": float(np.percentile(arr, 95))}

    def destroy_node(self) -> bool:
        try:
            self.world.close()
        finally:
            return super().destroy_node()


def main(args=None) -> int:
    return run_node(SimNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
