"""One command interface over the robots' kinematics, for the simulator node.

A driver takes the command a real robot's controller would take (a velocity twist for the
UAV and the AGV, a camera target pose for the manipulator), integrates it, and reports the
camera pose and the body position (for collision checks).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

from ..geometry.camera import Pose
from ..scenario import Scenario

from .robots import AgvKinematics, CameraMount, CameraTargetKinematics, UavKinematics, collides


@dataclass
class _Twist:
    linear: np.ndarray
    yaw_rate: float


class RobotDriver(ABC):
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

    def set_target(self, target: Pose) -> bool:
        raise TypeError(f"{type(self).__name__} takes velocity commands, not pose targets")

    has_gimbal = False

    def set_gimbal_pitch(self, pitch_down_deg: float) -> None:
        raise TypeError(f"{type(self).__name__} has no camera gimbal")

    @abstractmethod
    def step(self, dt: float) -> None:
        """Integrate the latest command over ``dt`` seconds."""

    @abstractmethod
    def camera_pose(self) -> Pose:
        """Camera optical frame in ``map``."""

    @abstractmethod
    def body_position(self) -> np.ndarray:
        """Position used for collision checks."""

    def collides(self, scenario: Scenario) -> bool:
        return collides(scenario, self.body_position(), self.collision_radius)


class UavDriver(RobotDriver):
    """Multirotor: twist in the level body frame (x forward, y left, z up) + yaw rate."""

    collision_radius = 0.25  # rotor tip radius of a small inspection quadrotor
    has_gimbal = True

    def __init__(self, start: Pose, camera_pitch_deg: float = 0.0) -> None:
        super().__init__()
        self.kin = UavKinematics(start, CameraMount(np.array([0.12, 0.0, 0.0]), camera_pitch_deg))

    def step(self, dt: float) -> None:
        self.kin.step(self.command.linear, self.command.yaw_rate, dt)

    def set_gimbal_pitch(self, pitch_down_deg: float) -> None:
        self.kin.set_gimbal_pitch(pitch_down_deg)

    def camera_pose(self) -> Pose:
        return self.kin.camera_pose()

    def body_position(self) -> np.ndarray:
        return self.kin.position.copy()


class AgvDriver(RobotDriver):
    """Differential drive: linear.x and angular.z of the twist; the rest is ignored."""

    collision_radius = 0.35

    def __init__(self, start: Pose, camera_yaw_deg: float = 0.0, camera_height: float = 1.2,
                 camera_pitch_deg: float = 15.0) -> None:
        super().__init__()
        self.camera_yaw_deg = float(camera_yaw_deg)
        self.camera_height = float(camera_height)
        self.camera_pitch_deg = float(camera_pitch_deg)
        self.kin = AgvKinematics(start, CameraMount(np.array([0.0, 0.0, camera_height]), camera_pitch_deg),
                                 camera_yaw_deg=camera_yaw_deg)

    def step(self, dt: float) -> None:
        self.kin.step(float(self.command.linear[0]), self.command.yaw_rate, dt)

    def camera_pose(self) -> Pose:
        return self.kin.camera_pose()

    def body_position(self) -> np.ndarray:
        return np.array([self.kin.x, self.kin.y, 0.4])


class ArmDriver(RobotDriver):
    """The workcell's overhead UR5-class arm (``control.arm.ArmKinematics.for_workcell``).

    Takes camera target poses: each is solved by IK and followed along a smooth collision-free
    joint path. A target that cannot be reached is refused: :meth:`set_target` returns False,
    the arm keeps its motion and :attr:`last_error` says why. Render the world with
    ``SimWorld.render(pose, t, joints=driver.joint_positions)`` so the links are drawn where
    the camera is.
    """

    command_type = "pose"

    def __init__(self, workcell) -> None:
        super().__init__()
        from ..control.arm import ArmKinematics

        self.kin = ArmKinematics.for_workcell(workcell)
        self.collision_radius = float(self.kin.collision_radius)

    def set_velocity_command(self, linear: np.ndarray, yaw_rate: float) -> None:
        raise TypeError("the manipulator takes camera target poses, not velocity commands")

    def set_target(self, target: Pose) -> bool:
        return self.kin.set_target(target)

    @property
    def last_error(self) -> str | None:
        """Why the last target was refused (None after an accepted one)."""
        return self.kin.last_error

    @property
    def settled(self) -> bool:
        """At rest for the settle time after the last motion (capture now)."""
        return self.kin.settled

    @property
    def moving(self) -> bool:
        return self.kin.moving

    @property
    def joint_positions(self) -> np.ndarray:
        return self.kin.joint_positions

    def step(self, dt: float) -> None:
        self.kin.step(dt)

    def camera_pose(self) -> Pose:
        return self.kin.camera_pose()

    def body_position(self) -> np.ndarray:
        return self.kin.body_position()

    def collides(self, scenario: Scenario) -> bool:
        """The camera sphere touches the scene, or any link is inside an obstacle."""
        if super().collides(scenario):
            return True
        return self.kin.scene.clearance(self.kin.arm, self.kin.q) < 0.0


class CameraTargetDriver(RobotDriver):
    """A free-flying camera that moves toward target poses with limited speeds (no arm).

    Kept for scenarios without a workcell arm and for tests; manipulator scenarios get an
    :class:`ArmDriver`.
    """

    command_type = "pose"
    collision_radius = 0.05

    def __init__(self, start: Pose) -> None:
        super().__init__()
        self.kin = CameraTargetKinematics(start)
        self.last_error: str | None = None

    def set_velocity_command(self, linear: np.ndarray, yaw_rate: float) -> None:
        raise TypeError("the manipulator takes camera target poses, not velocity commands")

    def set_target(self, target: Pose) -> bool:
        self.kin.set_target(target)
        return True

    @property
    def settled(self) -> bool:
        return self.kin.at_target

    def step(self, dt: float) -> None:
        self.kin.step(dt)

    def camera_pose(self) -> Pose:
        return self.kin.camera_pose()

    def body_position(self) -> np.ndarray:
        return self.kin.camera_pose().position.copy()


def make_robot(scenario: Scenario) -> RobotDriver:
    """The driver for ``scenario.robot`` starting at ``scenario.start_pose``.

    The AGV's mast camera takes the factory's ``camera_height``, ``camera_pitch_deg`` and
    ``camera_yaw_deg`` (pan from the heading); the manipulator is the workcell's overhead arm,
    starting at its home configuration (``scenario.start_pose`` does not apply to it).
    """
    if scenario.robot == "uav":
        return UavDriver(scenario.start_pose)
    if scenario.robot == "agv":
        fac = scenario.factory
        if fac is None:
            return AgvDriver(scenario.start_pose)
        return AgvDriver(scenario.start_pose, camera_yaw_deg=fac.camera_yaw_deg,
                         camera_height=fac.camera_height, camera_pitch_deg=fac.camera_pitch_deg)
    if scenario.robot == "manipulator":
        if scenario.workcell is None:
            return CameraTargetDriver(scenario.start_pose)
        return ArmDriver(scenario.workcell)
    raise ValueError(f"unknown robot '{scenario.robot}'")
