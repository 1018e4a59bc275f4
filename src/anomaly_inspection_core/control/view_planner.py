"""Viewpoint planning for the manipulator: candidate views around a part, reachability, order.

Candidates lie on a sphere of radius ``standoff_m`` around the part's centre, between a minimum
and a maximum elevation (85 deg by default: a UR-class arm cannot put its camera exactly below
its base, where an overhead arm would look straight down), all looking at the centre:

* ``hemisphere``: a Fibonacci lattice on the spherical band (equal area per view, so the views
  spread evenly whatever their number);
* ``spiral``: one continuous spiral from the zenith down to the minimum elevation (the natural
  order is already a short tour).

Every candidate goes through IK (with the scene's collision check); unreachable ones are
dropped. The reachable ones are ordered by a nearest-neighbour tour in joint space, improved by
2-opt, with the move time (the slowest joint at its speed limit) as the distance.
"""

from __future__ import annotations

import logging
import math
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..geometry.camera import Pose
from ..scenario.schema import BoxSpec, CylinderSpec
from .arm import ArmModel, CollisionScene
from .ik import solve_ik

log = logging.getLogger(__name__)

PATTERNS = ("hemisphere", "spiral")


@dataclass(frozen=True)
class Viewpoint:
    """A planned camera view: the pose the arm reaches (``pose``, from forward kinematics at
    ``q``), the planned pose it was solved for, and whether it is reachable."""

    pose: Pose
    q: np.ndarray
    reachable: bool
    planned_pose: Pose
    index: int  # position in the candidate list before ordering


def part_centre(part: BoxSpec | CylinderSpec) -> np.ndarray:
    """Geometric centre of a part primitive (box centre; mid-height of a cylinder's axis)."""
    if isinstance(part, BoxSpec):
        return np.asarray(part.position, dtype=float)
    if isinstance(part, CylinderSpec):
        return np.asarray(part.base, dtype=float) + np.array([0.0, 0.0, part.height / 2.0])
    raise TypeError(f"part must be a BoxSpec or CylinderSpec, got {type(part).__name__}")


def part_bounds(part: BoxSpec | CylinderSpec, margin_m: float = 0.0,
                below_m: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Axis-aligned bounding box (min xyz, max xyz) of a part primitive, grown by ``margin_m``
    (below the part by ``below_m`` instead when given; negative: starts above the part's bottom)."""
    if isinstance(part, BoxSpec):
        yaw = math.radians(part.yaw_deg)
        c, s = abs(math.cos(yaw)), abs(math.sin(yaw))
        sx, sy, sz = (float(v) / 2.0 for v in part.size)
        half = np.array([c * sx + s * sy, s * sx + c * sy, sz])
        centre = np.asarray(part.position, dtype=float)
    elif isinstance(part, CylinderSpec):
        half = np.array([part.radius, part.radius, part.height / 2.0])
        centre = part_centre(part)
    else:
        raise TypeError(f"part must be a BoxSpec or CylinderSpec, got {type(part).__name__}")
    lo, hi = centre - half - margin_m, centre + half + margin_m
    if below_m is not None:
        lo[2] = centre[2] - half[2] - below_m
    return lo, hi


def view_directions(n_views: int, pattern: str = "hemisphere", min_elevation_deg: float = 20.0,
                    max_elevation_deg: float = 90.0, turns: float = 2.5) -> np.ndarray:
    """Unit directions (n_views, 3) from the part centre to the candidate cameras."""
    if n_views < 1:
        raise ValueError(f"n_views must be >= 1, got {n_views}")
    if pattern not in PATTERNS:
        raise ValueError(f"pattern must be one of {PATTERNS}, got {pattern!r}")
    if not -90.0 < min_elevation_deg < max_elevation_deg <= 90.0:
        raise ValueError(f"need -90 < min_elevation_deg < max_elevation_deg <= 90, got "
                         f"{min_elevation_deg}, {max_elevation_deg}")
    z_lo, z_hi = math.sin(math.radians(min_elevation_deg)), math.sin(math.radians(max_elevation_deg))
    i = np.arange(n_views)
    if pattern == "hemisphere":
        z = z_hi - (i + 0.5) / n_views * (z_hi - z_lo)
        az = i * math.pi * (3.0 - math.sqrt(5.0))  # golden angle
    else:
        t = i / max(n_views - 1, 1)
        # Equal-area spacing in z keeps the spiral's views evenly spread.
        z = z_hi - t * (z_hi - z_lo) if n_views > 1 else np.array([z_hi])
        az = 2 * math.pi * turns * t
    r = np.sqrt(np.clip(1.0 - z ** 2, 0.0, None))
    return np.stack([r * np.cos(az), r * np.sin(az), z], axis=1)


def move_time(arm: ArmModel, q_a: np.ndarray, q_b: np.ndarray) -> float:
    """Seconds of a joint move at the speed limits (the slowest joint decides)."""
    return float(np.max(np.abs(np.asarray(q_b) - np.asarray(q_a)) / np.asarray(arm.max_joint_speed)))


def order_tour(cost: np.ndarray, start_cost: np.ndarray) -> list[int]:
    """Open tour over all nodes from a fixed start: nearest neighbour, then 2-opt.

    ``cost`` (N, N) is between nodes, ``start_cost`` (N,) from the start to each node.
    """
    n = len(start_cost)
    if n == 0:
        return []
    order = [int(np.argmin(start_cost))]
    left = set(range(n)) - {order[0]}
    while left:
        last = order[-1]
        nxt = min(left, key=lambda j: cost[last, j])
        order.append(nxt)
        left.remove(nxt)

    def length(seq: list[int]) -> float:
        return float(start_cost[seq[0]] + sum(cost[a, b] for a, b in zip(seq[:-1], seq[1:])))

    improved = True
    while improved:
        improved = False
        for i in range(n - 1):
            for k in range(i + 1, n):
                cand = order[:i] + order[i:k + 1][::-1] + order[k + 1:]
                if length(cand) < length(order) - 1e-9:
                    order = cand
                    improved = True
    return order


def plan_views(part: BoxSpec | CylinderSpec, standoff_m: float, n_views: int, arm: ArmModel,
               pattern: str = "hemisphere", min_elevation_deg: float = 20.0, max_elevation_deg: float = 85.0,
               scene: CollisionScene | None = None, q_start: np.ndarray | None = None,
               keep_unreachable: bool = False, look_at_offset: np.ndarray | None = None) -> list[Viewpoint]:
    """Viewpoints around ``part`` at ``standoff_m`` from its centre, reachable by ``arm``.

    Returns the reachable viewpoints in tour order starting near ``q_start`` (default: the
    arm's home); with ``keep_unreachable`` the dropped candidates follow, flagged
    ``reachable=False``. The roll about the optical axis is left to the IK (free roll), so a
    viewpoint's ``pose`` has the planned position and viewing direction but may be rolled.
    """
    if not (standoff_m > 0 and math.isfinite(standoff_m)):
        raise ValueError(f"standoff_m must be positive, got {standoff_m}")
    centre = part_centre(part)
    target = centre + (np.zeros(3) if look_at_offset is None else np.asarray(look_at_offset, dtype=float))
    dirs = view_directions(n_views, pattern, min_elevation_deg, max_elevation_deg)
    q_start = arm.home_array if q_start is None else arm.check_q(q_start)

    shoulder = arm.shoulder_position()
    reachable: list[Viewpoint] = []
    dropped: list[Viewpoint] = []
    for k, d in enumerate(dirs):
        eye = centre + standoff_m * d
        # Views from straight above have no horizontal forward direction: use +x as "up".
        up = (0.0, 0.0, 1.0) if abs(d[2]) < 0.999 else (1.0, 0.0, 0.0)
        planned = Pose.looking_at(eye, target, up=up)
        if np.linalg.norm(eye - shoulder) > arm.reach:  # out of reach whatever the joints do
            dropped.append(Viewpoint(planned, q_start.copy(), False, planned, k))
            continue
        res = solve_ik(arm, planned, q_start, scene, free_roll=True, seed=k)
        if res.success:
            reachable.append(Viewpoint(arm.camera_pose(res.q), res.q, True, planned, k))
        else:
            dropped.append(Viewpoint(planned, res.q, False, planned, k))
    if dropped:
        log.info("view planner: %d of %d candidate views unreachable, dropped", len(dropped), len(dirs))
    return _in_tour_order(reachable, arm, q_start) + (dropped if keep_unreachable else [])


def _in_tour_order(views: list[Viewpoint], arm: ArmModel, q_start: np.ndarray) -> list[Viewpoint]:
    """``views`` reordered into a short tour in joint space from ``q_start`` (move time as cost)."""
    if not views:
        return []
    qs = np.array([v.q for v in views])
    speed = np.asarray(arm.max_joint_speed)
    cost = np.max(np.abs(qs[:, None, :] - qs[None, :, :]) / speed, axis=2)
    start_cost = np.max(np.abs(qs - q_start) / speed, axis=1)
    return [views[i] for i in order_tour(cost, start_cost)]


def plan_views_filled(part: BoxSpec | CylinderSpec, standoff_m: float, fill_standoff_m: float, n_views: int,
                      arm: ArmModel, coverage_of: Callable[[list[Pose]], float], min_coverage: float,
                      n_fill_candidates: int = 16, q_start: np.ndarray | None = None,
                      **plan_kwargs) -> tuple[list[Viewpoint], int, float]:
    """Close views for resolution, farther ones where they leave gaps.

    Plans ``n_views`` at ``standoff_m``; while their coverage (``coverage_of(poses)``, e.g.
    :func:`compute_coverage`'s fraction) is under ``min_coverage``, adds the one of
    ``n_fill_candidates`` views at ``fill_standoff_m`` (0 = none) that gains the most, until it
    is reached or nothing gains. Close views image small defects larger; from farther away
    more of the part fits into a view (the sides of a wide plate, a casting's long faces).
    Returns (reachable views in tour order, how many are fill views, coverage); fill views'
    ``index`` follows the close ones'. ``plan_kwargs`` go to :func:`plan_views`."""
    if not 0.0 <= min_coverage <= 1.0:
        raise ValueError(f"min_coverage must be in [0, 1], got {min_coverage}")
    q_start = arm.home_array if q_start is None else arm.check_q(q_start)
    if plan_kwargs.get("keep_unreachable"):
        raise ValueError("plan_views_filled plans reachable views only (keep_unreachable is not supported)")
    views = plan_views(part, standoff_m, n_views, arm, q_start=q_start, **plan_kwargs)
    poses = [v.pose for v in views]
    coverage = close_coverage = float(coverage_of(poses)) if poses else 0.0
    fill: list[Viewpoint] = []
    if fill_standoff_m > 0 and coverage < min_coverage:
        candidates = plan_views(part, fill_standoff_m, n_fill_candidates, arm, q_start=q_start, **plan_kwargs)
        while coverage < min_coverage and candidates:
            gains = [float(coverage_of(poses + [c.pose])) for c in candidates]
            k = int(np.argmax(gains))
            if gains[k] <= coverage + 1e-4:
                break
            coverage = gains[k]
            poses.append(candidates[k].pose)
            fill.append(dataclasses.replace(candidates.pop(k), index=n_views + len(fill)))
    if fill:
        log.info("view planner: %d views at %.2f m cover %.1f %%; with %d at %.2f m %.1f %%", len(views),
                 standoff_m, 100 * close_coverage, len(fill), fill_standoff_m, 100 * coverage)
        views = _in_tour_order(views + fill, arm, q_start)
    return views, len(fill), coverage


def tour_time(arm: ArmModel, views: list[Viewpoint], q_start: np.ndarray | None = None) -> float:
    """Total joint move time (s, speed-limited, no acceleration) of visiting ``views`` in order."""
    q = arm.home_array if q_start is None else np.asarray(q_start, dtype=float)
    total = 0.0
    for v in views:
        if v.reachable:
            total += move_time(arm, q, v.q)
            q = v.q
    return total
