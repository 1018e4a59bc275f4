"""A 6-DOF UR5-class manipulator with a wrist camera: kinematics, collision model and motion.

Pure numpy, no simulator and no ROS. The arm is described by standard Denavit-Hartenberg
parameters (UR5 values by default). Conventions follow :mod:`geometry.camera`: poses are
``T_map_<frame>``, the camera frame is the optical frame (x right, y down, z forward).

* :class:`ArmModel`: forward kinematics of every joint frame and of the camera, the geometric
  Jacobian of the camera frame, and a capsule approximation of the links.
* :class:`CollisionScene`: simple primitives (boxes, vertical cylinders, the floor) and a
  clearance test of the arm's capsules against them.
* :func:`plan_joint_path`: a smooth (quintic time scaling) joint-space path with a collision
  check, re-routed through a raised "home" configuration when the straight path collides.
* :class:`ArmKinematics`: the stepping object the simulator drives with camera target poses.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from dataclasses import dataclass, field

import numpy as np

from ..geometry.camera import Pose

log = logging.getLogger(__name__)

# Universal Robots UR5 (standard DH): the link lengths of the real arm.
UR5_D = (0.089159, 0.0, 0.0, 0.10915, 0.09465, 0.0823)
UR5_A = (0.0, -0.425, -0.39225, 0.0, 0.0, 0.0)
UR5_ALPHA = (math.pi / 2, 0.0, 0.0, math.pi / 2, -math.pi / 2, 0.0)
# The UR5 joints turn +-360 deg; the elbow is limited further here because the real forearm
# collides with the upper arm beyond about +-165 deg (not modelled by the capsules).
UR5_LOWER = tuple(math.radians(v) for v in (-360.0, -360.0, -165.0, -360.0, -360.0, -360.0))
UR5_UPPER = tuple(math.radians(v) for v in (360.0, 360.0, 165.0, 360.0, 360.0, 360.0))
# Capsule radii (m) of the segments between successive DH frame origins, then the camera.
UR5_LINK_RADII = (0.075, 0.065, 0.055, 0.045, 0.045, 0.045)
DEFAULT_CAMERA_RADIUS = 0.04


class ArmError(ValueError):
    """Invalid arm description or joint vector."""


class PathPlanningError(RuntimeError):
    """No collision-free joint path between two configurations was found."""


def _rot_x(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def _rot_z(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def rotation_error(r_target: np.ndarray, r_current: np.ndarray) -> np.ndarray:
    """Rotation vector (axis * angle, map frame) that turns ``r_current`` into ``r_target``."""
    r = r_target @ r_current.T
    axis = np.array([r[2, 1] - r[1, 2], r[0, 2] - r[2, 0], r[1, 0] - r[0, 1]])
    s = float(np.linalg.norm(axis))
    # atan2 keeps small angles accurate, where acos of a cosine near 1 loses half the digits.
    angle = math.atan2(s / 2.0, (float(np.trace(r)) - 1.0) / 2.0)
    if angle < 1e-9:
        return np.zeros(3)
    if s < 1e-9 or angle > math.pi - 1e-4:
        # Near 180 deg the antisymmetric part vanishes: take the axis from the symmetric part.
        m = (r + np.eye(3)) / 2.0
        k = int(np.argmax(np.diag(m)))
        axis = m[:, k] / math.sqrt(max(m[k, k], 1e-12))
        return axis / np.linalg.norm(axis) * angle
    return axis / s * angle


@dataclass(frozen=True)
class ArmModel:
    """A serial 6-DOF arm (standard DH) on a base pose in ``map`` with a wrist camera.

    ``camera_mount`` is ``T_flange_camera``: the camera optical frame relative to the last DH
    frame (the tool flange: z out of the flange). The default camera looks along the flange
    axis, 5 cm in front of it.
    """

    base: Pose = field(default_factory=Pose)
    d: tuple[float, ...] = UR5_D
    a: tuple[float, ...] = UR5_A
    alpha: tuple[float, ...] = UR5_ALPHA
    lower: tuple[float, ...] = UR5_LOWER
    upper: tuple[float, ...] = UR5_UPPER
    max_joint_speed: tuple[float, ...] = (math.radians(60.0),) * 6
    camera_mount: Pose = field(default_factory=lambda: Pose(np.array([0.0, 0.0, 0.05])))
    link_radii: tuple[float, ...] = UR5_LINK_RADII
    camera_radius: float = DEFAULT_CAMERA_RADIUS
    home: tuple[float, ...] = (0.0, -math.pi / 2, math.pi / 2, -math.pi / 2, -math.pi / 2, 0.0)

    def __post_init__(self) -> None:
        for name in ("d", "a", "alpha", "lower", "upper", "max_joint_speed", "link_radii", "home"):
            value = getattr(self, name)
            if len(value) != 6 or not all(math.isfinite(float(v)) for v in value):
                raise ArmError(f"ArmModel.{name} needs 6 finite values, got {value}")
            object.__setattr__(self, name, tuple(float(v) for v in value))
        if any(lo >= hi for lo, hi in zip(self.lower, self.upper)):
            raise ArmError(f"ArmModel joint limits need lower < upper, got {self.lower} / {self.upper}")
        if any(v <= 0 for v in self.max_joint_speed):
            raise ArmError(f"ArmModel.max_joint_speed must be positive, got {self.max_joint_speed}")
        if not self.within_limits(np.asarray(self.home)):
            raise ArmError(f"ArmModel.home {self.home} is outside the joint limits")

    # ------------------------------------------------------------------ helpers
    @property
    def lower_array(self) -> np.ndarray:
        return np.asarray(self.lower)

    @property
    def upper_array(self) -> np.ndarray:
        return np.asarray(self.upper)

    @property
    def home_array(self) -> np.ndarray:
        return np.asarray(self.home)

    @property
    def reach(self) -> float:
        """Upper bound of the distance from the shoulder to the camera (m)."""
        mount = float(np.linalg.norm(self.camera_mount.position))
        return float(sum(abs(v) for v in self.a) + sum(abs(v) for v in self.d[3:]) + mount)

    def shoulder_position(self) -> np.ndarray:
        """Map position of the shoulder (frame 1 origin); it does not move with the joints."""
        return self.base.transform_points(np.array([0.0, 0.0, self.d[0]]))[0]

    def check_q(self, q: np.ndarray) -> np.ndarray:
        """``q`` as a float array of shape (6,); raises :class:`ArmError` when it is not one."""
        q = np.asarray(q, dtype=np.float64)
        if q.shape != (6,) or not np.all(np.isfinite(q)):
            raise ArmError(f"joint vector must be 6 finite values, got {np.asarray(q).tolist()}")
        return q

    def within_limits(self, q: np.ndarray, tol: float = 1e-9) -> bool:
        q = np.asarray(q, dtype=np.float64)
        return bool(np.all(q >= self.lower_array - tol) and np.all(q <= self.upper_array + tol))

    def clip(self, q: np.ndarray) -> np.ndarray:
        return np.clip(q, self.lower_array, self.upper_array)

    # ------------------------------------------------------------------ kinematics
    def joint_frames(self, q: np.ndarray) -> np.ndarray:
        """Homogeneous transforms ``T_map_i`` of the DH frames 0..6, shape (7, 4, 4)."""
        q = self.check_q(q)
        frames = np.empty((7, 4, 4))
        t = self.base.matrix()
        frames[0] = t
        for i in range(6):
            ct, st = math.cos(q[i]), math.sin(q[i])
            ca, sa = math.cos(self.alpha[i]), math.sin(self.alpha[i])
            link = np.array([
                [ct, -st * ca, st * sa, self.a[i] * ct],
                [st, ct * ca, -ct * sa, self.a[i] * st],
                [0.0, sa, ca, self.d[i]],
                [0.0, 0.0, 0.0, 1.0],
            ])
            t = t @ link
            frames[i + 1] = t
        return frames

    def flange_pose(self, q: np.ndarray) -> Pose:
        return Pose.from_matrix(self.joint_frames(q)[6])

    def camera_matrix(self, q: np.ndarray) -> np.ndarray:
        """``T_map_camera`` (4x4) at joint configuration ``q``."""
        return self.joint_frames(q)[6] @ self.camera_mount.matrix()

    def camera_pose(self, q: np.ndarray) -> Pose:
        """Camera optical-frame pose in ``map`` at joint configuration ``q``."""
        return Pose.from_matrix(self.camera_matrix(q))

    def jacobian(self, q: np.ndarray, frames: np.ndarray | None = None) -> np.ndarray:
        """Geometric Jacobian (6x6) of the camera frame in ``map``: rows (v, omega)."""
        if frames is None:
            frames = self.joint_frames(q)
        p = (frames[6] @ self.camera_mount.matrix())[:3, 3]
        jac = np.empty((6, 6))
        for i in range(6):
            z = frames[i][:3, 2]
            o = frames[i][:3, 3]
            jac[:3, i] = np.cross(z, p - o)
            jac[3:, i] = z
        return jac

    def capsules(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Capsule approximation of the arm: segment starts (M,3), ends (M,3), radii (M,).

        One capsule joins each pair of successive DH frame origins (the UR skeleton with its
        shoulder and wrist offsets) and a last one covers the flange-to-camera body.
        """
        frames = self.joint_frames(q)
        origins = frames[:, :3, 3]
        cam = (frames[6] @ self.camera_mount.matrix())[:3, 3]
        starts = np.vstack([origins[:-1], origins[-1:]])
        ends = np.vstack([origins[1:], cam[None]])
        radii = np.asarray(self.link_radii + (self.camera_radius,))
        return starts, ends, radii


# ---------------------------------------------------------------------------- collision scene
@dataclass(frozen=True)
class BoxObstacle:
    """A box with centre ``center``, full ``size`` and yaw (radians) about +z."""

    name: str
    center: np.ndarray
    size: np.ndarray
    yaw: float = 0.0

    def signed_distance(self, points: np.ndarray) -> np.ndarray:
        r = _rot_z(self.yaw)
        q = (np.asarray(points, dtype=np.float64).reshape(-1, 3) - self.center) @ r
        d = np.abs(q) - np.asarray(self.size) / 2.0
        outside = np.linalg.norm(np.maximum(d, 0.0), axis=1)
        inside = np.minimum(np.max(d, axis=1), 0.0)
        return outside + inside


@dataclass(frozen=True)
class CylinderObstacle:
    """A vertical cylinder standing on ``base`` (x, y, z of the bottom centre)."""

    name: str
    base: np.ndarray
    radius: float
    height: float

    def signed_distance(self, points: np.ndarray) -> np.ndarray:
        p = np.asarray(points, dtype=np.float64).reshape(-1, 3) - self.base
        dr = np.linalg.norm(p[:, :2], axis=1) - self.radius
        dz = np.abs(p[:, 2] - self.height / 2.0) - self.height / 2.0
        d = np.stack([dr, dz], axis=1)
        return np.linalg.norm(np.maximum(d, 0.0), axis=1) + np.minimum(np.max(d, axis=1), 0.0)


@dataclass(frozen=True)
class FloorObstacle:
    """The half space below ``z = height``."""

    name: str = "floor"
    height: float = 0.0

    def signed_distance(self, points: np.ndarray) -> np.ndarray:
        return np.asarray(points, dtype=np.float64).reshape(-1, 3)[:, 2] - self.height


Obstacle = BoxObstacle | CylinderObstacle | FloorObstacle


@dataclass(frozen=True)
class CollisionScene:
    """Static obstacles around the arm and the clearance the arm must keep from them.

    ``ignore_base_link`` skips the first capsule (base to shoulder), which stands on its mount
    by construction.
    """

    obstacles: tuple[Obstacle, ...] = ()
    margin: float = 0.01
    samples_per_capsule: int = 8
    ignore_base_link: bool = True

    def clearance(self, arm: ArmModel, q: np.ndarray) -> float:
        """Smallest distance (m) between the arm's capsule surfaces and any obstacle."""
        if not self.obstacles:
            return math.inf
        starts, ends, radii = arm.capsules(q)
        if self.ignore_base_link:
            starts, ends, radii = starts[1:], ends[1:], radii[1:]
        t = np.linspace(0.0, 1.0, self.samples_per_capsule)
        pts = starts[:, None, :] + t[None, :, None] * (ends - starts)[:, None, :]
        rad = np.repeat(radii, len(t))
        pts = pts.reshape(-1, 3)
        best = math.inf
        for ob in self.obstacles:
            best = min(best, float(np.min(ob.signed_distance(pts) - rad)))
        return best

    def in_collision(self, arm: ArmModel, q: np.ndarray) -> bool:
        """True when the arm at ``q`` is closer than ``margin`` to an obstacle or to itself."""
        return self.clearance(arm, q) < self.margin or self_collision(arm, q)


def _segment_distance(p0: np.ndarray, p1: np.ndarray, q0: np.ndarray, q1: np.ndarray) -> float:
    """Distance between segments p0-p1 and q0-q1 (sampled; exact enough for capsule checks)."""
    t = np.linspace(0.0, 1.0, 9)
    a = p0 + t[:, None] * (p1 - p0)
    b = q0 + t[:, None] * (q1 - q0)
    return float(np.min(np.linalg.norm(a[:, None, :] - b[None, :, :], axis=2)))


def self_collision(arm: ArmModel, q: np.ndarray, margin: float = 0.0) -> bool:
    """True when the wrist or camera capsules touch the base or upper-arm capsules."""
    starts, ends, radii = arm.capsules(q)
    # Capsules 0 (base), 1 (upper arm) against 4, 5 (wrist) and 6 (camera); neighbours share
    # joints and always "touch", so they are not compared.
    for i in (0, 1):
        for j in (4, 5, 6):
            if _segment_distance(starts[i], ends[i], starts[j], ends[j]) < radii[i] + radii[j] + margin:
                return True
    return False


# ---------------------------------------------------------------------------- paths
def quintic_profile(n: int) -> np.ndarray:
    """Quintic time scaling s(tau) = 10 tau^3 - 15 tau^4 + 6 tau^5 sampled at n points in [0, 1].

    Zero velocity and acceleration at both ends: the arm starts and stops without jerks.
    """
    tau = np.linspace(0.0, 1.0, max(int(n), 2))
    return tau ** 3 * (10.0 - 15.0 * tau + 6.0 * tau ** 2)


def segment_collision_free(arm: ArmModel, scene: CollisionScene, q_from: np.ndarray, q_to: np.ndarray,
                           resolution_rad: float = math.radians(2.0)) -> bool:
    """True when the straight joint-space segment keeps clear of the scene at every check point."""
    steps = max(2, int(math.ceil(float(np.max(np.abs(q_to - q_from))) / resolution_rad)) + 1)
    for s in np.linspace(0.0, 1.0, steps):
        if scene.in_collision(arm, q_from + s * (q_to - q_from)):
            return False
    return True


def _segment_samples(arm: ArmModel, q_from: np.ndarray, q_to: np.ndarray, dt: float) -> np.ndarray:
    """Quintic samples every ``dt`` seconds; the duration keeps every joint under its speed limit."""
    delta = np.abs(q_to - q_from)
    # The peak speed of a quintic move is 15/8 of the mean speed.
    duration = float(np.max(1.875 * delta / np.asarray(arm.max_joint_speed)))
    n = max(2, int(math.ceil(duration / dt)) + 1)
    s = quintic_profile(n)
    return q_from[None, :] + s[:, None] * (q_to - q_from)[None, :]


def plan_joint_path(arm: ArmModel, q_from: np.ndarray, q_to: np.ndarray, scene: CollisionScene | None = None,
                    dt: float = 0.05, via: np.ndarray | None = None,
                    resolution_rad: float = math.radians(2.0), random_vias: int = 30,
                    random_seed: int = 0) -> np.ndarray:
    """Smooth joint waypoints (N, 6) from ``q_from`` to ``q_to``, one every ``dt`` seconds.

    Interpolates in joint space with quintic time scaling (rest to rest) and checks the path
    against ``scene``. When the straight path collides it is re-routed through one
    intermediate configuration: ``via`` (default: the arm's raised home configuration), else
    the first of ``random_vias`` random configurations around the midpoint (deterministic
    for ``random_seed``) with both legs free. Raises :class:`PathPlanningError` when no route
    is free, and :class:`ArmError` for an end point outside the joint limits.
    """
    q_from = arm.check_q(q_from)
    q_to = arm.check_q(q_to)
    if dt <= 0:
        raise ArmError(f"dt must be positive, got {dt}")
    for name, q in (("q_from", q_from), ("q_to", q_to)):
        if not arm.within_limits(q):
            raise ArmError(f"{name} {np.round(q, 4).tolist()} is outside the joint limits")
    if scene is None:
        scene = CollisionScene()
    if scene.in_collision(arm, q_to):
        raise PathPlanningError(f"goal configuration {np.round(q_to, 3).tolist()} is in collision")
    if segment_collision_free(arm, scene, q_from, q_to, resolution_rad):
        return _segment_samples(arm, q_from, q_to, dt)
    # One intermediate configuration: the raised home (or ``via``) first, then random ones.
    vias = [arm.home_array if via is None else arm.check_q(via)]
    rng = np.random.default_rng(random_seed)
    lo, hi = arm.lower_array, arm.upper_array
    mid = 0.5 * (q_from + q_to)
    span = np.maximum(np.abs(q_to - q_from), math.pi / 2)
    vias += [np.clip(mid + rng.uniform(-span, span), lo, hi) for _ in range(random_vias)]
    via_q = None
    for cand in vias:
        if (not scene.in_collision(arm, cand)
                and segment_collision_free(arm, scene, q_from, cand, resolution_rad)
                and segment_collision_free(arm, scene, cand, q_to, resolution_rad)):
            via_q = cand
            break
    if via_q is None:
        raise PathPlanningError(
            f"no collision-free path from {np.round(q_from, 3).tolist()} to {np.round(q_to, 3).tolist()} "
            f"(straight, via home and via {random_vias} random configurations)")
    log.debug("straight joint path collides; re-routing via %s", np.round(via_q, 3).tolist())
    first = _segment_samples(arm, q_from, via_q, dt)
    second = _segment_samples(arm, via_q, q_to, dt)
    return np.vstack([first, second[1:]])


# ---------------------------------------------------------------------------- workcell
def workcell_scene(workcell, margin: float = 0.05) -> CollisionScene:
    """Collision primitives of a scenario workcell: the table (full box), the part, the floor."""
    from ..scenario.schema import BoxSpec

    t = workcell.table
    obstacles: list[Obstacle] = [
        BoxObstacle("table", np.asarray(t.position, dtype=float),
                    np.asarray(t.size, dtype=float), math.radians(t.yaw_deg)),
        FloorObstacle(),
    ]
    part = workcell.part
    if isinstance(part, BoxSpec):
        obstacles.append(BoxObstacle("part", np.asarray(part.position, float), np.asarray(part.size, float),
                                     math.radians(part.yaw_deg)))
    else:
        obstacles.append(CylinderObstacle("part", np.asarray(part.base, float), float(part.radius),
                                          float(part.height)))
    return CollisionScene(tuple(obstacles), margin=margin)


def workcell_arm(workcell, height_above_part: float | None = None, **arm_kwargs) -> ArmModel:
    """The default arm of a scenario workcell: a UR5 hanging from an overhead frame above the part.

    Mounted upside down above the part's centre, the arm reaches a full hemisphere of
    viewpoints around the part at the workcell's standoff (a UR5 standing beside the table
    reaches only the near side: under half of the views at a 0.6 m standoff). The base is
    ``height_above_part`` above the part centre (default ``standoff + 0.2`` m, the height
    that reached the most views of a hemisphere at 15-85 deg elevation). The home
    configuration looks down at the part from the standoff at 80 deg elevation: it is the
    raised configuration that collision re-routing passes through.
    """
    from ..scenario.schema import BoxSpec
    from .ik import solve_ik

    part = workcell.part
    if isinstance(part, BoxSpec):
        centre = np.asarray(part.position, dtype=float)
    else:
        centre = np.asarray(part.base, dtype=float) + np.array([0.0, 0.0, part.height / 2.0])
    h = float(workcell.standoff) + 0.2 if height_above_part is None else float(height_above_part)
    if h <= 0:
        raise ArmError(f"height_above_part must be positive, got {h}")
    base = Pose.from_rotation(centre + np.array([0.0, 0.0, h]), _rot_x(math.pi))
    arm = ArmModel(base=base, **arm_kwargs)
    # Straight below the base the camera would need the wrist on the base axis, which the UR's
    # shoulder offset forbids: home looks down at the part from 80 deg elevation instead.
    el = math.radians(80.0)
    top_view = Pose.looking_at(centre + float(workcell.standoff) * np.array([math.cos(el), 0.0, math.sin(el)]), centre)
    res = solve_ik(arm, top_view, arm.home_array, workcell_scene(workcell), free_roll=True)
    if not res.success:
        raise ArmError(f"the overhead arm cannot look down at the part from {workcell.standoff} m; "
                       f"choose a smaller standoff or another height_above_part")
    return dataclasses.replace(arm, home=tuple(float(v) for v in res.q))


class ArmKinematics:
    """The manipulator for the simulator: follows camera target poses through IK and joint paths.

    Interface shared with the other simulated robots: ``command_type = "pose"``,
    :meth:`set_target`, :meth:`step`, :meth:`camera_pose`, :meth:`body_position`,
    ``collision_radius``. A new target is solved by IK (seeded with where the current motion
    ends), turned into a smooth collision-free joint path and followed in time; ``settled``
    becomes true ``settle_time_s`` after the path ends (the capture node waits for it).
    When no path leads to the IK solution nearest the current joints, the other solutions
    of the same camera pose are tried, nearest first. A target that cannot be reached is
    rejected: the arm keeps its motion and ``last_error`` says why.
    """

    command_type = "pose"

    def __init__(self, arm: ArmModel, scene: CollisionScene | None = None, q0: np.ndarray | None = None,
                 settle_time_s: float = 0.3, path_dt: float = 0.02, free_roll: bool = True) -> None:
        self.arm = arm
        self.scene = scene or CollisionScene()
        self.q = arm.check_q(arm.home_array if q0 is None else q0).copy()
        if not arm.within_limits(self.q):
            raise ArmError(f"initial joint vector {self.q.tolist()} is outside the joint limits")
        self.settle_time_s = float(settle_time_s)
        self.path_dt = float(path_dt)
        self.free_roll = free_roll
        self._path: np.ndarray | None = None
        self._t = 0.0
        self._since_stop = self.settle_time_s
        self.target: Pose | None = None
        self.last_error: str | None = None
        self.collision_radius = float(arm.camera_radius)
        #: random IK seeds tried for other solutions when no path leads to the first one
        self.alternative_seeds = 8
        self.alternative_solutions = 0

    @classmethod
    def for_workcell(cls, workcell, **kwargs) -> "ArmKinematics":
        """The default overhead arm of a scenario workcell, starting at its home configuration."""
        return cls(workcell_arm(workcell), workcell_scene(workcell), **kwargs)

    @property
    def joint_positions(self) -> np.ndarray:
        return self.q.copy()

    @property
    def moving(self) -> bool:
        return self._path is not None

    @property
    def settled(self) -> bool:
        """No motion in progress and the settle time has passed since the last one ended."""
        return self._path is None and self._since_stop >= self.settle_time_s

    def set_target(self, pose: Pose) -> bool:
        """Plan a move of the camera to ``pose``. Returns False (and sets ``last_error``) when
        the pose is unreachable or no collision-free path exists."""
        from .ik import solve_ik

        start = self.q if self._path is None else self._path[-1]
        res = solve_ik(self.arm, pose, start, self.scene, free_roll=self.free_roll)
        if not res.success:
            self.last_error = (f"target {np.round(pose.position, 3).tolist()} unreachable "
                               f"(best error {res.pos_err_m * 1e3:.1f} mm, {res.rot_err_deg:.2f} deg)")
            log.warning("arm: %s", self.last_error)
            return False
        path, error = None, ""
        for q_goal in self._ik_alternatives(pose, res.q):
            try:
                path = plan_joint_path(self.arm, self.q, q_goal, self.scene, dt=self.path_dt)
                break
            except PathPlanningError as exc:
                error = error or str(exc)
        if path is None:
            self.last_error = f"{error}; nor to {self.alternative_solutions} other IK solutions"
            log.warning("arm: %s", self.last_error)
            return False
        self.target = pose
        self.last_error = None
        self._path = path
        self._t = 0.0
        return True

    def _ik_alternatives(self, pose: Pose, first: np.ndarray):
        """``first``, then other collision-free IK solutions of ``pose`` nearest first (seeded from
        home and from random configurations): the solution nearest the current joints can lie
        where no collision-free path leads (the wrist wound up near its limits), while another
        arm configuration reaches the same camera pose freely. On the three shipped workcells 1-2
        of the mission's views were refused from one configuration before."""
        from .ik import random_configurations, solve_ik

        yield first
        found = [np.asarray(first)]
        seeds = [None] + random_configurations(self.arm, self.alternative_seeds)
        others = []
        for q0 in seeds:
            res = solve_ik(self.arm, pose, q0, self.scene, free_roll=self.free_roll, restarts=0)
            if res.success and all(np.max(np.abs(res.q - q)) > 0.1 for q in found):
                found.append(res.q)
                others.append(res.q)
        self.alternative_solutions = len(others)
        yield from sorted(others, key=lambda q: float(np.max(np.abs(q - self.q))))

    def set_target_pose(self, pose: Pose) -> bool:
        """Alias of :meth:`set_target`."""
        return self.set_target(pose)

    def step(self, dt: float) -> None:
        """Advance ``dt`` seconds along the current joint path (no-op when at rest)."""
        if dt <= 0:
            raise ValueError(f"dt must be positive, got {dt}")
        if self._path is None:
            self._since_stop += dt
            return
        self._t += dt
        pos = self._t / self.path_dt
        k = int(math.floor(pos))
        if k >= len(self._path) - 1:
            self.q = self._path[-1].copy()
            self._path = None
            self._since_stop = 0.0
            return
        frac = pos - k
        self.q = self._path[k] + frac * (self._path[k + 1] - self._path[k])

    def camera_pose(self) -> Pose:
        return self.arm.camera_pose(self.q)

    def body_position(self) -> np.ndarray:
        """The camera position: the part of the arm that comes closest to what it inspects."""
        return self.arm.camera_matrix(self.q)[:3, 3].copy()
