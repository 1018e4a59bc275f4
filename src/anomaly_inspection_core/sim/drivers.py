"""One command interface over the robots' kinematics, for the simulator node.

A driver takes the command a real robot's controller would take (a velocity twist for the
UAV and the AGV, a camera target pose for the manipulator), integrates it, and reports the
camera pose and the body position (for collision checks).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from anomaly_inspection_core.geometry.camera import Pose
from anomaly_inspection_core.scenario import Scenario

from .robots import AgvKinematics, CameraMount, CameraTargetKinematics, UavKinematics, collides


@dataclass
class _Twist:
    linear: np.ndarray
    yaw_rate: float


class RobotDriver:
    """Base: holds the latest command; subclasses integrate it in :meth:`step`."""

    command_type = "twist"  # or "pose"
    collision_radius = 0.2

    def __init__(self) -> None:
        self.command = _Twist(np.zeros(3), 0.0)

    def set_velocity_command(self, linear: np.ndarray, yaw_rate: float) -> None:
        lin = np.asarray(linear, dtype=np.float64).reshape(3)
        if not (np.all(np.isfinite(lin)) and np.isfinite(yaw_rate)):
            raise ValueError("velocity command is not finite")
        self.command = _Twist(lin, float(yaw_rate))

    def set_target(self, target: Pose) -> None:
        raise TypeError(f"{type(self).__name__} takes velocity commands, not pose targets")

    def step(self, dt: float) -> None:
        raise NotImplementedError

    def camera_pose(self) -> Pose:
        raise NotImplementedError

    def body_position(self) -> np.ndarray:
        raise NotImplementedError

    def collides(self, scenario: Scenario) -> bool:
        return collides(scenario, self.body_position(), self.collision_radius)


class UavDriver(RobotDriver):
    """Multirotor: twist in the level body frame (x forward, y left, z up) + yaw rate."""

    collision_radius = 0.25  # rotor tip radius of a small inspection quadrotor

    def __init__(self, start: Pose, camera_pitch_deg: float = 0.0) -> None:
        super().__init__()
        self.kin = UavKinematics(start, CameraMount(np.array([0.12, 0.0, 0.0]), camera_pitch_deg))

    def step(self, dt: float) -> None:
        self.kin.step(self.command.linear, self.command.yaw_rate, dt)

    def camera_pose(self) -> Pose:
        return self.kin.camera_pose()

    def body_position(self) -> np.ndarray:
        return self.kin.position.copy()


class AgvDriver(RobotDriver):
    """Differential drive: linear.x and angular.z of the twist; the rest is ignored."""

    collision_radius = 0.35

    def __init__(self, start: Pose, camera_yaw_deg: float = 0.0) -> None:
        super().__init__()
        self.kin = AgvKinematics(start, camera_yaw_deg=camera_yaw_deg)

    def step(self, dt: float) -> None:
        self.kin.step(float(self.command.linear[0]), self.command.yaw_rate, dt)

    def camera_pose(self) -> Pose:
        return self.kin.camera_pose()

    def body_position(self) -> np.ndarray:
        return np.array([self.kin.x, self.kin.y, 0.4])


class CameraTargetDriver(RobotDriver):
    """Manipulator stand-in: the wrist camera moves toward a target pose with limited speeds."""

    command_type = "pose"
    collision_radius = 0.05

    def __init__(self, start: Pose) -> None:
        super().__init__()
        self.kin = CameraTargetKinematics(start)

    def set_velocity_command(self, linear: np.ndarray, yaw_rate: float) -> None:
        raise TypeError("the manipulator takes camera target poses, not velocity commands")

    def set_target(self, target: Pose) -> None:
        self.kin.set_target(target)

    def step(self, dt: float) -> None:
        self.kin.step(dt)

    def camera_pose(self) -> Pose:
        return self.kin.camera_pose()

    def body_position(self) -> np.ndarray:
        return self.kin.camera_pose().position.copy()


def make_robot(scenario: Scenario) -> RobotDriver:
    """The driver for ``scenario.robot`` starting at ``scenario.start_pose``."""
    if scenario.robot == "uav":
        return UavDriver(scenario.start_pose)
    if scenario.robot == "agv":
        return AgvDriver(scenario.start_pose)
    if scenario.robot == "manipulator":
        return CameraTargetDriver(scenario.start_pose)
    raise ValueError(f"unknown robot '{scenario.robot}'")
