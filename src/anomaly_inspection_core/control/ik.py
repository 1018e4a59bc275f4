"""Numerical inverse kinematics of the wrist camera: damped least squares with joint limits.

The solver iterates ``dq = J^T (J J^T + lambda^2 I)^-1 e`` on the 6-D camera pose error
(position in metres, rotation vector in radians), clips every iterate to the joint limits and
restarts from other seeds (the arm's home, then random configurations) when it stalls, e.g. in
a joint-limit corner or near a singularity. With ``free_roll`` the rotation about the optical
axis is left free: only where the camera is and where it looks are constrained, which is what
a viewpoint needs and which makes many more viewpoints reachable.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..geometry.camera import Pose
from ..geometry.camera import rotation_angle_deg
from .arm import ArmError, ArmModel, CollisionScene, rotation_error


@dataclass(frozen=True)
class IkResult:
    """Outcome of :func:`solve_ik`. ``q`` is the best configuration found even on failure."""

    q: np.ndarray
    success: bool
    pos_err_m: float
    rot_err_deg: float
    iterations: int
    restarts: int = 0
    collision_free: bool = True


def _pose_error(arm: ArmModel, q: np.ndarray, p_t: np.ndarray, r_t: np.ndarray,
                free_roll: bool) -> tuple[np.ndarray, np.ndarray, float, float]:
    """(error 6-vector, Jacobian, position error m, rotation error deg) at ``q``."""
    frames = arm.joint_frames(q)
    cam = frames[6] @ arm.camera_mount.matrix()
    p, r = cam[:3, 3], cam[:3, :3]
    jac = arm.jacobian(q, frames)
    e = np.empty(6)
    e[:3] = p_t - p
    if free_roll:
        z, z_t = r[:, 2], r_t[:, 2]
        axis = np.cross(z, z_t)
        s, c = float(np.linalg.norm(axis)), float(np.clip(z @ z_t, -1.0, 1.0))
        angle = math.atan2(s, c)
        if s > 1e-12:
            e[3:] = axis / s * angle
        elif c < 0:  # pointing exactly away: any perpendicular axis does
            perp = np.cross(z, [1.0, 0.0, 0.0] if abs(z[0]) < 0.9 else [0.0, 1.0, 0.0])
            e[3:] = perp / np.linalg.norm(perp) * math.pi
        else:
            e[3:] = 0.0
        # Spinning about the optical axis changes nothing that matters: drop that direction.
        proj = np.eye(3) - np.outer(z, z)
        jac = jac.copy()
        jac[3:] = proj @ jac[3:]
        rot_deg = math.degrees(angle)
    else:
        e[3:] = rotation_error(r_t, r)
        rot_deg = rotation_angle_deg(r_t, r)
    return e, jac, float(np.linalg.norm(e[:3])), rot_deg


def wrap_near(arm: ArmModel, q: np.ndarray, q_ref: np.ndarray) -> np.ndarray:
    """``q`` with each joint shifted by whole turns to lie closest to ``q_ref`` within the limits.

    The camera pose is unchanged; the joint motion from ``q_ref`` gets as short as it can.
    """
    out = np.asarray(q, dtype=np.float64).copy()
    for i in range(6):
        best = out[i]
        for k in range(-2, 3):
            cand = q[i] + 2.0 * math.pi * k
            if arm.lower[i] <= cand <= arm.upper[i] and abs(cand - q_ref[i]) < abs(best - q_ref[i]):
                best = cand
        out[i] = best
    return out


def _dls(arm: ArmModel, q0: np.ndarray, p_t: np.ndarray, r_t: np.ndarray, free_roll: bool, max_iterations: int,
         pos_tol: float, rot_tol_deg: float, damping: float, max_step: float
         ) -> tuple[np.ndarray, float, float, int]:
    q = arm.clip(q0.copy())
    e, jac, pos_err, rot_err = _pose_error(arm, q, p_t, r_t, free_roll)
    it = 0
    # A rotation error of 1 rad weighs like 0.2 m of position error; balances both scales.
    w = np.array([1.0, 1.0, 1.0, 0.2, 0.2, 0.2])
    for it in range(1, max_iterations + 1):
        if pos_err <= pos_tol and rot_err <= rot_tol_deg:
            return q, pos_err, rot_err, it - 1
        jw = jac * w[:, None]
        ew = e * w
        # Damping grows with the error: large steps far away, Gauss-Newton accuracy close in.
        lam2 = damping ** 2 * min(1.0, float(ew @ ew) * 10.0) + 1e-9
        dq = jw.T @ np.linalg.solve(jw @ jw.T + lam2 * np.eye(6), ew)
        n = float(np.max(np.abs(dq)))
        if n > max_step:
            dq *= max_step / n
        q_new = arm.clip(q + dq)
        e_new, jac_new, pos_new, rot_new = _pose_error(arm, q_new, p_t, r_t, free_roll)
        q, e, jac, pos_err, rot_err = q_new, e_new, jac_new, pos_new, rot_new
    return q, pos_err, rot_err, it


def random_configurations(arm: ArmModel, n: int, seed: int = 0) -> list[np.ndarray]:
    """``n`` joint vectors drawn uniformly within the joint limits (clipped to +-pi), the same
    for a given ``seed``: IK restarts."""
    rng = np.random.default_rng(seed)
    lo = np.maximum(arm.lower_array, -math.pi)
    hi = np.minimum(arm.upper_array, math.pi)
    return [rng.uniform(lo, hi) for _ in range(n)]


def solve_ik(arm: ArmModel, target_camera_pose: Pose, q_seed: np.ndarray | None = None,
             scene: CollisionScene | None = None, *, free_roll: bool = False, max_iterations: int = 150,
             pos_tol_m: float = 1e-4, rot_tol_deg: float = 0.05, damping: float = 0.1,
             max_step_rad: float = 0.4, restarts: int = 12, seed: int = 0) -> IkResult:
    """Joint configuration that puts the wrist camera at ``target_camera_pose``.

    Tries ``q_seed`` first, then the arm's home, then ``restarts`` random configurations
    (deterministic for a given ``seed``). A solution counts when it is within ``pos_tol_m`` and
    ``rot_tol_deg`` of the target, inside the joint limits and, with a ``scene``, free of
    collisions. The returned :class:`IkResult` carries the best attempt when none succeeds.
    """
    if not isinstance(target_camera_pose, Pose):
        raise ArmError(f"target_camera_pose must be a Pose, got {type(target_camera_pose).__name__}")
    p_t = target_camera_pose.position
    r_t = target_camera_pose.rotation
    seeds: list[np.ndarray] = []
    if q_seed is not None:
        seeds.append(arm.check_q(q_seed))
    seeds.append(arm.home_array)
    seeds += random_configurations(arm, restarts, seed)

    best: IkResult | None = None
    total_iter = 0
    for k, q0 in enumerate(seeds):
        q, pos_err, rot_err, it = _dls(arm, q0, p_t, r_t, free_roll, max_iterations, pos_tol_m, rot_tol_deg,
                                       damping, max_step_rad)
        total_iter += it
        q = wrap_near(arm, q, seeds[0])
        converged = pos_err <= pos_tol_m and rot_err <= rot_tol_deg and arm.within_limits(q)
        free = True
        if converged and scene is not None:
            free = not scene.in_collision(arm, q)
        result = IkResult(q, converged and free, pos_err, rot_err, total_iter, k, free)
        if result.success:
            return result
        if best is None or (pos_err + 0.01 * rot_err) < (best.pos_err_m + 0.01 * best.rot_err_deg):
            best = result
    assert best is not None
    return IkResult(best.q, False, best.pos_err_m, best.rot_err_deg, total_iter, len(seeds) - 1,
                    best.collision_free)
