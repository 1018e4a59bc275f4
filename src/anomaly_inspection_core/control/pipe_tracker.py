"""Depth-only pipeline tracker for a UAV flying beside a pipe.

The tracker sees only depth images and the UAV's own odometry (the camera pose), never
ground-truth geometry. Each frame it fits a cylinder to the back-projected depth
(:mod:`.cylinder_fit`), fuses it into a map-frame model of the pipe segment it follows and
commands a velocity that keeps the camera at ``standoff_m`` from the pipe *surface*, level
with the axis and looking at it perpendicularly, while moving along the pipe at
``speed_mps``.

Frames and conventions:

* camera: ROS optical frame (x right, y down, z forward); the camera pose is
  ``T_map_camera`` and is treated as odometry. The camera is mounted level on the body
  looking along body +x, so the body yaw is the heading of the optical axis.
* commands: velocity in the level body frame (x forward, y left, z up, m/s) + yaw rate
  (rad/s, positive counter-clockwise seen from above).
* stand-off: distance from the camera centre to the pipe surface (axis distance - radius).

Behaviour:

* start: the first pipe seen is followed in ``start_direction`` ("left", "right", "up" or
  "down" in the image).
* elbows: when the followed piece ends inside the view and another cylinder of similar
  radius continues from it, the tracker turns onto it at the corner (orbiting the corner on
  the outside of a turn, switching early on the inside, climbing/descending for risers).
* end: when the piece ends inside the view with no continuation, the UAV flies to the end,
  looks ahead with a yaw scan (an inside turn is invisible until then), hovers and reports
  ``DONE``.
* lost: without a fit for ``lost_timeout_s`` it stops and searches (holds the last target,
  backs off along its path and sweeps yaw); without re-acquisition within
  ``search_timeout_s`` it hovers and reports ``ABORTED`` with the reason.
"""

from __future__ import annotations

import enum
import logging
import math
import time
from dataclasses import dataclass, field, replace

import numpy as np

from anomaly_inspection_core.control.cylinder_fit import (
    CylinderEstimate,
    CylinderFitConfig,
    CylinderPrior,
    OrientedPoints,
    depth_to_oriented_points,
    estimate_normals,
    fit_cylinder_oriented,
)
from anomaly_inspection_core.geometry.camera import CameraIntrinsics, Pose

__all__ = [
    "CylinderEstimate",
    "CylinderFitConfig",
    "PipeTracker",
    "PipeTrackerConfig",
    "TrackerCommand",
    "TrackerState",
    "fit_cylinder",
]

_LOG = logging.getLogger(__name__)
_UP = np.array([0.0, 0.0, 1.0])
#: image directions in the camera optical frame
_IMAGE_DIRECTIONS = {
    "left": np.array([-1.0, 0.0, 0.0]),
    "right": np.array([1.0, 0.0, 0.0]),
    "up": np.array([0.0, -1.0, 0.0]),
    "down": np.array([0.0, 1.0, 0.0]),
}


class TrackerState(enum.Enum):
    """Mission state of the tracker."""

    IDLE = "IDLE"  # no pipe seen yet
    TRACKING = "TRACKING"
    SEARCHING = "SEARCHING"
    DONE = "DONE"  # reached the pipe's end, hovering
    ABORTED = "ABORTED"  # lost the pipe and could not recover, hovering


@dataclass(frozen=True)
class PipeTrackerConfig:
    """Tracker parameters (SI units; angles in degrees)."""

    standoff_m: float = 1.0
    standoff_tolerance_m: float = 0.25
    speed_mps: float = 0.3
    max_speed_mps: float = 0.6
    max_yaw_rate: float = 0.6
    position_gain: float = 1.2
    yaw_gain: float = 1.5
    start_direction: str = "auto"
    #: the side of horizontal pieces to inspect, relative to the direction of travel ("left" or
    #: "right"; "auto": wherever continuity puts the UAV). After a riser the UAV can come out
    #: on the other side; with a side given it then crosses over the pipe's top (at the
    #: stand-off, the camera pitched to keep the axis centred) before going on.
    inspection_side: str = "auto"
    depth_stride: int = 4
    min_range_m: float = 0.2
    max_range_m: float = 6.0
    #: oriented points kept per frame (random subset): bounds the cost of a frame
    max_points: int = 3000
    fit: CylinderFitConfig = field(default_factory=CylinderFitConfig)
    #: weight of a new measurement in the fused map-frame model (0..1)
    smoothing: float = 0.35
    lost_timeout_s: float = 0.8
    search_timeout_s: float = 20.0
    search_yaw_deg: float = 35.0
    search_yaw_rate: float = 0.35
    search_backoff_m: float = 0.6
    search_speed_mps: float = 0.15
    #: smallest angle between two pieces to count as an elbow
    elbow_min_angle_deg: float = 25.0
    #: largest distance between the followed piece's end and the corner of an elbow
    corner_max_gap_m: float = 0.7
    #: frames a continuation or an end must be seen in before acting on it
    confirm_frames: int = 2
    #: a continuation is acted on only once a stretch of it this many of its radii long has
    #: been seen beyond the corner: at a pipe's end, looked at from round the end, stubs of a
    #: "second cylinder" 1.1-1.3 radii long were confirmed and flown onto; real continuations
    #: measured 1.9-4 radii when first confirmed, many more later
    continuation_min_length_radii: float = 1.6
    #: yaw of the camera towards the direction of travel on horizontal runs: widens the
    #: look-ahead so that a turn towards the UAV is seen before the UAV is too close to it
    lead_yaw_deg: float = 15.0
    #: a fit further than this from a model that 15 fits in a row agreed with is not fused into it
    #: (still counts as seeing the pipe): at a riser's top the next piece pulls the fits off
    #: the riser, and fused one after another they turned the model onto the next piece
    fuse_max_angle_deg: float = 6.0
    #: how far round an apparent end the UAV flies looking for a hidden continuation
    end_probe_deg: float = 90.0
    #: how far beyond the end of a riser the UAV climbs (descends) to look for one
    end_probe_overshoot_m: float = 0.6
    #: at a riser's end whose next piece turns away from the UAV or sideways, the UAV goes this
    #: far beyond the corner before going round it: seen from the corner's own level the next
    #: piece hides behind its elbow and is measured as a steep stub of the bend
    riser_turn_overshoot_m: float = 0.3
    #: after crossing over to the wanted side, fly back to this far past the piece's corner
    #: (the crossing waits until it clears the corner's pieces) and see that part; < 0: never
    revisit_margin_m: float = 0.3
    #: > 0: a riser going up from a run is climbed on the run's side, where the defects of
    #: its lower part face, with the camera pitched this far up to see its end early; once the
    #: end is in view the UAV moves round to the turned side (clear of a next piece that comes
    #: back over it) and levels the camera. 0, and risers going down: the turned side throughout
    #: (pitched down at the top of a descending riser, the first fits took in the run before
    #: and the end was latched too early: DONE after 0.8 m of a 1.9 m riser, unseen seed 13).
    riser_look_ahead_deg: float = 0.0
    #: the UAV is pushed away from any pipe piece it knows of that is closer than this
    min_clearance_m: float = 0.8
    #: depth safety: the UAV never moves towards any depth point closer than this to the camera
    #: and is pushed back from it (an obstacle the pipe model does not know yet, such as the
    #: next piece of an inside turn seen late); 0 = off
    obstacle_m: float = 0.45
    #: depth points that came within ``obstacle_m`` + ``max_speed_mps`` x 1 s of the camera are
    #: remembered (map frame, by odometry) this long and kept in the depth guard after they
    #: leave the view: a pipe under a UAV that has drifted over it, or behind it in a search's
    #: yaw sweep, is out of a forward camera's view (a CI mission collided that way after
    #: re-acquiring the pipe at its end, the guard having seen it at 0.44 m); 0 = current frame only
    obstacle_memory_s: float = 5.0
    #: stall recovery: when the depth guard has held the UAV within 0.25 m for this long while
    #: tracking (something the pipe model does not explain blocks the way, e.g. the next piece
    #: of an inside turn seen too late to be recognised), back off along the pipe by
    #: ``stall_backoff_m`` to look again from farther away; 0 = off
    stall_timeout_s: float = 6.0
    #: the same back-off (and abort) when the UAV has been held within 0.25 m this long while
    #: tracking *without* the depth guard acting: the controller itself cannot resolve the pose,
    #: e.g. a riser's fused model leaning towards the next piece puts the follow target behind
    #: the UAV (random_pipeline_9: a teach pass hovering below the riser's top until the mission's
    #: pass timeout). Must exceed any deliberate hold (the detector pacing the start); 0 = off
    no_progress_timeout_s: float = 0.0
    stall_backoff_m: float = 0.7
    #: blocked again this many times within 1.5 m: hover and report ABORTED
    max_stalls: int = 3
    min_altitude_m: float = 0.3
    max_altitude_m: float = 30.0
    #: on horizontal pieces the UAV flies this far round the pipe above the level of its axis
    #: (same distance from the axis) and pitches its camera gimbal down to match, so that the
    #: pipe's upper half is seen at a moderate incidence instead of grazing (a level camera
    #: sees a defect 75 degrees up the pipe at 75 degrees incidence). Risers are flown level.
    #: The commanded pitch (TrackerCommand.gimbal_pitch_deg) is the UAV's actual elevation
    #: above the axis, so the axis stays centred while the UAV climbs to it; 0 = level flight
    view_elevation_deg: float = 0.0

    @property
    def uses_gimbal(self) -> bool:
        """Whether the commands' ``gimbal_pitch_deg`` must be applied (view elevation, the riser
        look-ahead, crossing over a pipe to the inspection side)."""
        return self.view_elevation_deg > 0 or self.riser_look_ahead_deg > 0 or self.inspection_side != "auto"

    def __post_init__(self) -> None:
        if self.standoff_m <= 0:
            raise ValueError(f"standoff_m must be positive, got {self.standoff_m}")
        if not 0 < self.speed_mps <= self.max_speed_mps:
            raise ValueError(
                f"need 0 < speed_mps <= max_speed_mps, got {self.speed_mps}, {self.max_speed_mps}")
        if self.inspection_side not in ("auto", "left", "right"):
            raise ValueError(f"inspection_side must be 'auto', 'left' or 'right', got {self.inspection_side!r}")
        if self.start_direction != "auto" and self.start_direction not in _IMAGE_DIRECTIONS:
            raise ValueError(f"start_direction must be 'auto' or one of {sorted(_IMAGE_DIRECTIONS)}, "
                             f"got {self.start_direction!r}")
        if not 0 < self.smoothing <= 1:
            raise ValueError(f"smoothing must be in (0, 1], got {self.smoothing}")
        if self.depth_stride < 1:
            raise ValueError(f"depth_stride must be >= 1, got {self.depth_stride}")
        if self.min_altitude_m >= self.max_altitude_m:
            raise ValueError("min_altitude_m must be below max_altitude_m")
        if not 0.0 <= self.view_elevation_deg <= 60.0:
            raise ValueError(f"view_elevation_deg must be in [0, 60], got {self.view_elevation_deg}")
        if not 0.0 <= self.riser_look_ahead_deg <= 30.0:
            raise ValueError(f"riser_look_ahead_deg must be in [0, 30], got {self.riser_look_ahead_deg}")
        if not (self.obstacle_memory_s >= 0 and math.isfinite(self.obstacle_memory_s)):
            raise ValueError(f"obstacle_memory_s must be finite and >= 0, got {self.obstacle_memory_s}")
        if self.stall_timeout_s < 0 or self.stall_backoff_m <= 0 or self.max_stalls < 1:
            raise ValueError("need stall_timeout_s >= 0, stall_backoff_m > 0 and max_stalls >= 1")
        if not math.isfinite(self.revisit_margin_m):
            raise ValueError(f"revisit_margin_m must be finite, got {self.revisit_margin_m}")
        if not 0.0 <= self.continuation_min_length_radii < 10.0:
            raise ValueError(f"continuation_min_length_radii must be in [0, 10), got {self.continuation_min_length_radii}")
        if self.no_progress_timeout_s < 0:
            raise ValueError(f"no_progress_timeout_s must be >= 0, got {self.no_progress_timeout_s}")
        for name in ("lost_timeout_s", "search_timeout_s", "max_yaw_rate", "position_gain",
                     "yaw_gain", "search_yaw_rate"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")

    @classmethod
    def from_dict(cls, data: dict, ignore_unknown: bool = False) -> "PipeTrackerConfig":
        """Build from a flat mapping (e.g. YAML); a nested ``fit`` mapping sets the fit.

        ``ignore_unknown`` drops keys that are not tracker parameters (a tracker node's own
        parameters, e.g. ``image_qos``); otherwise they are an error."""
        data = dict(data)
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown and ignore_unknown:
            data = {k: v for k, v in data.items() if k in known}
        elif unknown:
            raise ValueError(f"unknown pipe tracker parameter(s): {', '.join(unknown)}")
        if isinstance(data.get("fit"), dict):
            fit_known = set(CylinderFitConfig.__dataclass_fields__)
            bad = sorted(set(data["fit"]) - fit_known)
            if bad:
                raise ValueError(f"unknown cylinder fit parameter(s): {', '.join(bad)}")
            data["fit"] = CylinderFitConfig(**data["fit"])
        return cls(**data)


@dataclass(frozen=True)
class TrackerCommand:
    """One tracker output.

    ``estimate`` is this frame's cylinder fit in the camera frame (None when none was
    found); ``estimate_map`` the fused model of the followed piece in the map frame.
    ``standoff`` is the measured camera-to-surface distance and ``lateral_offset`` the
    distance between the pipe axis and the optical axis (0 = centred), both from this
    frame's fit (NaN without one). ``timing_ms`` is the processing time of this update.
    ``gimbal_pitch_deg`` is the camera pitch (degrees down) to command: the UAV's elevation
    above the followed horizontal piece's axis (``view_elevation_deg``), else 0.
    ``inspecting`` is True while the UAV follows the pipe (elbows included): frames taken
    then are inspection views. It is False while searching, once done, and while the UAV
    looks round the pipe's end for a continuation (views of the end from above, below or
    behind that no inspection pass is meant to judge).
    """

    linear_body: np.ndarray
    yaw_rate: float
    state: TrackerState
    message: str
    estimate: CylinderEstimate | None
    estimate_map: CylinderEstimate | None
    standoff: float
    lateral_offset: float
    distance_travelled: float
    timing_ms: float = 0.0
    inspecting: bool = False
    gimbal_pitch_deg: float = 0.0


def fit_cylinder(points_cam: np.ndarray, config: CylinderFitConfig | PipeTrackerConfig | None = None,
                 normals: np.ndarray | None = None,
                 prior: CylinderPrior | None = None) -> CylinderEstimate | None:
    """Fit one cylinder (RANSAC + refinement) to camera-frame points (N, 3).

    Normals are estimated from nearest neighbours when not given (the tracker passes
    normals computed from the depth grid, which is much cheaper). Returns None when no
    cylinder with enough inliers and a radius within the configured range is found.
    """
    cfg = config.fit if isinstance(config, PipeTrackerConfig) else (config or CylinderFitConfig())
    pts = np.asarray(points_cam, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 3:
        raise ValueError(f"points_cam must have shape (N, 3), got {pts.shape}")
    if normals is None:
        op = estimate_normals(pts)
    else:
        nrm = np.asarray(normals, dtype=np.float64)
        if nrm.shape != pts.shape:
            raise ValueError(f"normals shape {nrm.shape} does not match points {pts.shape}")
        ok = np.all(np.isfinite(pts), axis=1) & np.all(np.isfinite(nrm), axis=1)
        nrm = nrm[ok] / np.linalg.norm(nrm[ok], axis=1, keepdims=True)
        op = OrientedPoints(pts[ok], nrm)
    result = fit_cylinder_oriented(op, cfg, prior=prior)
    return None if result is None else result[0]


def _angle_deg(a: np.ndarray, b: np.ndarray) -> float:
    """Angle between two axis lines (unsigned directions), degrees."""
    c = abs(float(np.dot(a, b))) / (float(np.linalg.norm(a)) * float(np.linalg.norm(b)))
    return math.degrees(math.acos(min(1.0, c)))


def _unit(v: np.ndarray) -> np.ndarray:
    return np.asarray(v, float) / np.linalg.norm(v)


def _horizontal_unit(v: np.ndarray) -> np.ndarray | None:
    h = np.array([v[0], v[1], 0.0])
    n = np.linalg.norm(h)
    return h / n if n > 1e-6 else None


def _camera_yaw(pose: Pose) -> float:
    fwd = pose.rotation[:, 2]
    return math.atan2(fwd[1], fwd[0])


def _wrap(a: float) -> float:
    return (a + math.pi) % (2 * math.pi) - math.pi


@dataclass
class _Segment:
    """Fused map-frame model of one straight piece of pipe, oriented along travel."""

    point: np.ndarray  # on the axis
    direction: np.ndarray  # unit, travel direction
    radius: float
    side: np.ndarray  # horizontal unit vector from the axis towards the UAV
    t_hi: float = -math.inf  # farthest seen axial coordinate (relative to point) ahead
    end_seen: int = 0  # frames in which the end ahead was inside the view
    end_t: float = -math.inf  # t_hi when the end was last inside the view
    fits: int = 0  # frames fused into this model
    #: of them, fits after which the model was level (not a riser): whether the piece *was* a run
    #: once its model drifts towards a riser going down at its end (see ``PipeTracker._side_for``)
    level_fits: int = 0
    #: a riser entered from a run: the side to move round to once its end is in view
    safe_side: np.ndarray | None = None
    #: the corner this piece was turned onto at (map frame); None for the first piece
    corner: np.ndarray | None = None
    agreed: int = 0  # fits in a row within ``fuse_max_angle_deg`` of the model
    #: fits in a row a settled model did not fuse, all within ``fuse_max_angle_deg`` of the first
    rejected: int = 0
    rejected_direction: np.ndarray | None = None
    #: a settled riser whose top is in view keeps its direction (see ``PipeTracker._fuse``)
    direction_locked: bool = False

    @property
    def is_riser(self) -> bool:
        """Steeper than |d_z| > 0.8, the one riser test used everywhere here."""
        return abs(float(self.direction[2])) > 0.8

    @property
    def mostly_level(self) -> bool:
        """Level (not a riser) after most of its fits, whatever its model's direction now."""
        return 2 * self.level_fits > self.fits

    def foot(self, p: np.ndarray) -> float:
        return float(np.dot(p - self.point, self.direction))

    def beside(self, t: float, dist: float, elevation_deg: float = 0.0) -> np.ndarray:
        """The point ``dist`` from the axis on the UAV's side, at axial coordinate ``t``;
        on a horizontal piece raised ``elevation_deg`` round the pipe above the axis's level."""
        # the side is kept horizontal on a riser; on a riser model that leans a little it is
        # not quite perpendicular to the axis, and the point "beside t" would lag behind t
        # (by ~0.2 m at 13 degrees), cancelling the climb's feed-forward
        offset = self.side - float(np.dot(self.side, self.direction)) * self.direction
        offset = offset / max(float(np.linalg.norm(offset)), 1e-9)
        up = self.up()
        if elevation_deg and up is not None:
            e = math.radians(elevation_deg)
            offset = math.cos(e) * self.side + math.sin(e) * up
        return self.point + t * self.direction + dist * offset

    def up(self) -> np.ndarray | None:
        """Unit vector perpendicular to the axis, upwards; None for a riser or any piece steeper than
        ~17 degrees (flown level: no top to look down on)."""
        if abs(float(self.direction[2])) > 0.3:
            return None
        u = np.array([0.0, 0.0, 1.0]) - float(self.direction[2]) * self.direction
        return u / np.linalg.norm(u)

    def elevation_of(self, p: np.ndarray, side: np.ndarray | None = None) -> float:
        """Elevation (degrees) of ``p`` above the axis's level, seen from the axis, counted from
        ``side`` (default: the piece's side); 0 on a riser."""
        up = self.up()
        if up is None:
            return 0.0
        u = p - self.point
        side = self.side if side is None else side
        return math.degrees(math.atan2(float(np.dot(u, up)), float(np.dot(u, side))))

    def level_side(self) -> np.ndarray:
        """The side made perpendicular to :meth:`up` as well as to the axis (the side itself on
        a riser). The side is projected onto each new model of the axis; projected onto the
        leaning axes of a young model after a turn it keeps a vertical part once the axis
        levels (z -0.13 on random pipeline 5)."""
        up = self.up()
        if up is None:
            return self.side
        s = self.side - float(np.dot(self.side, up)) * up
        n = float(np.linalg.norm(s))
        return s / n if n > 1e-6 else self.side

    def estimate(self, lo: float = -0.5) -> CylinderEstimate:
        hi = self.t_hi if math.isfinite(self.t_hi) else 0.5
        return CylinderEstimate(point=self.point.copy(), direction=self.direction.copy(),
                                radius=self.radius, inlier_ratio=1.0, num_inliers=0,
                                extent=(min(lo, hi), hi), rms_m=0.0, frame="map")


@dataclass
class _Continuation:
    """The next piece after an elbow: corner point, direction away from it, its side."""

    corner: np.ndarray
    direction: np.ndarray
    radius: float
    side: np.ndarray
    seen: int = 1
    #: the longest stretch of it seen beyond the corner (m)
    length: float = 0.0
    #: a riser entered from a run: the side it is flown on until its end comes into view is the
    #: run's (``side``), this one after (see :meth:`PipeTracker._side_for`)
    safe_side: np.ndarray | None = None
    #: going round the corner has begun (kept until the switch, so that the UAV does not
    #: dither between orbiting and following at the corner)
    orbiting: bool = False

    def confirmed(self, config: PipeTrackerConfig) -> bool:
        """Seen often enough, and long enough beyond the corner, to act on."""
        return self.seen >= config.confirm_frames and self.length >= config.continuation_min_length_radii * self.radius

    def is_inside_turn(self, seg: _Segment) -> bool:
        """Whether this piece leaves ``seg`` towards the UAV's side (an inside turn)."""
        return float(np.dot(seg.side, self.direction)) > 0.5


class PipeTracker:
    """Closed-loop pipe follower; feed it every depth frame with the camera pose."""

    def __init__(self, config: PipeTrackerConfig | None = None) -> None:
        self.config = config or PipeTrackerConfig()
        self._rng = np.random.default_rng(self.config.fit.seed)
        self.reset()

    # ------------------------------------------------------------------ public API
    def reset(self) -> None:
        """Forget the pipe and the path; the next update starts a new mission."""
        self.state = TrackerState.IDLE
        self.message = "waiting for the first pipe detection"
        self._speed = self.config.speed_mps  # progress speed along the pipe (update's speed_limit)
        self._segment: _Segment | None = None
        self._next: _Continuation | None = None
        #: the piece just left at the last turn if it was an inside one (its points are kept
        #: out of the fits of the piece turned onto: see ``_off_previous_piece``)
        self._previous: _Segment | None = None
        self._sigma = 1.0
        self._last_fit_stamp: float | None = None
        self._start_stamp: float | None = None
        self._search_start: float | None = None
        # searching time summed over repeated losses at about the same place: a pipe that is
        # re-acquired for a moment and lost again must not keep the UAV searching for ever
        self._searched_s = 0.0
        self._streak_origin: np.ndarray | None = None
        self._search_origin: np.ndarray | None = None
        self._search_yaw0 = 0.0
        self._probing = False
        self._end_probe = False
        # stall recovery: where and since when the depth guard has held the UAV, how often it
        # was blocked near ``_stall_place``, and the back-off target (axial coordinate) if any
        self._guard_acted = False
        #: near depth points of the last ``obstacle_memory_s``: (stamp, map-frame points) per frame
        self._near_memory: list[tuple[float, np.ndarray]] = []
        self._hold_pos: np.ndarray | None = None
        self._hold_since = 0.0
        self._stall_place: np.ndarray | None = None
        self._stalls = 0
        self._backoff_t: float | None = None
        self._backoff_until = 0.0
        self._side_move_t: float | None = None  # axial coordinate held while moving round a riser
        self._cross_t: float | None = None  # axial coordinate held while crossing over a pipe's top
        # after crossing over: the axial coordinate to fly back to, on the wanted side, to see
        # the part of the piece passed on the wrong side (from just past its corner)
        self._revisit_t: float | None = None
        self._path: list[np.ndarray] = []
        self._travelled = 0.0
        self._odometry_anchor: np.ndarray | None = None
        self._last_stamp: float | None = None
        self.frame_times_ms: list[float] = []

    @property
    def path(self) -> np.ndarray:
        """Flown camera positions (N, 3), map frame, one per update."""
        return np.array(self._path).reshape(-1, 3)

    @property
    def segment_estimate(self) -> CylinderEstimate | None:
        """The fused map-frame model of the piece being followed."""
        return None if self._segment is None else self._segment.estimate()

    def update(self, depth: np.ndarray, intrinsics: CameraIntrinsics, camera_pose: Pose,
               stamp: float, speed_limit: float | None = None) -> TrackerCommand:
        """Process one depth frame (metres, NaN = no return) and return the command.

        ``speed_limit`` (m/s, e.g. what lets a detector score every few centimetres) caps only
        the progress along the pipe, never the corrections that keep the stand-off and the
        clearance: a slow detector slows the UAV down without weakening its avoidance.
        ``0`` holds the UAV at its place beside the pipe; ``None`` or ``inf``: no limit.
        """
        t0 = time.perf_counter()
        if speed_limit is not None and not (speed_limit >= 0.0):
            raise ValueError(f"speed_limit must be >= 0 or None, got {speed_limit}")
        self._speed = min(self.config.speed_mps, float("inf") if speed_limit is None else float(speed_limit))
        self._intrinsics = intrinsics
        depth = np.asarray(depth)
        if depth.ndim != 2:
            raise ValueError(f"depth must be a 2-D image, got shape {depth.shape}")
        if not math.isfinite(stamp):
            raise ValueError(f"stamp must be finite, got {stamp}")
        if self._last_stamp is not None and stamp < self._last_stamp:
            raise ValueError(f"stamp went backwards: {stamp} < {self._last_stamp}")
        pos = camera_pose.position
        # distance flown, counted in steps of at least 5 cm: summing every frame's step also
        # counted a hover's centimetre oscillation (a UAV held in place "flew" 0.04 m/s)
        if self._odometry_anchor is None:
            self._odometry_anchor = pos.copy()
        step = float(np.linalg.norm(pos - self._odometry_anchor))
        if step >= 0.05:
            self._travelled += step
            self._odometry_anchor = pos.copy()
        self._path.append(pos.copy())
        if self._start_stamp is None:
            self._start_stamp = stamp
        self._last_stamp = stamp

        est_cam: CylinderEstimate | None = None
        if self.state in (TrackerState.DONE, TrackerState.ABORTED):
            v_map, yaw_rate = np.zeros(3), 0.0
        else:
            op = depth_to_oriented_points(depth, intrinsics, self.config.depth_stride,
                                          self.config.min_range_m, self.config.max_range_m)
            if len(op) > self.config.max_points:
                op = op.subset(np.sort(self._rng.choice(len(op), self.config.max_points,
                                                        replace=False)))
            est_cam, mask = self._measure(op, camera_pose)
            if est_cam is not None:
                self._last_fit_stamp = stamp
                self._find_continuation(op, mask, est_cam, camera_pose, intrinsics)
            v_map, yaw_rate = self._control(camera_pose, stamp, est_cam is not None)
            v_map = self._depth_guard(op, camera_pose, stamp, v_map)
            self._check_stall(camera_pose, stamp)

        yaw = _camera_yaw(camera_pose)
        c, s = math.cos(yaw), math.sin(yaw)
        linear_body = np.array([c * v_map[0] + s * v_map[1], -s * v_map[0] + c * v_map[1], v_map[2]])
        standoff, lateral = self._view_metrics(est_cam)
        gimbal = 0.0
        seg = self._segment
        if seg is not None and seg.safe_side is not None and self.config.riser_look_ahead_deg > 0:
            # climbing a riser on the run's side: look up along it, to see its end early
            gimbal = -self.config.riser_look_ahead_deg
        elif self._cross_t is not None and seg is not None:
            e = seg.elevation_of(pos, seg.level_side())  # 0..180 over the top; the camera faces the axis from either side
            gimbal = float(np.clip(min(e, 180.0 - e), 0.0, 90.0))
        elif self.config.view_elevation_deg > 0 and seg is not None:
            gimbal = float(np.clip(seg.elevation_of(pos), 0.0, self.config.view_elevation_deg))
        elapsed = (time.perf_counter() - t0) * 1000.0
        self.frame_times_ms.append(elapsed)
        return TrackerCommand(
            linear_body=linear_body, yaw_rate=float(yaw_rate), state=self.state,
            message=self.message, estimate=est_cam,
            estimate_map=self.segment_estimate, standoff=standoff, lateral_offset=lateral,
            distance_travelled=self._travelled, timing_ms=elapsed,
            inspecting=self.state == TrackerState.TRACKING and not self._end_probe, gimbal_pitch_deg=gimbal)

    def _depth_guard(self, op: OrientedPoints, pose: Pose, stamp: float, v_map: np.ndarray) -> np.ndarray:
        """Remove motion towards depth points closer than ``obstacle_m`` and push away from them.

        The points are this frame's and the remembered near ones of the last
        ``obstacle_memory_s`` (see :meth:`_remember_near`), so an obstacle that has left the
        view still holds the UAV off."""
        cfg = self.config
        self._guard_acted = False
        if cfg.obstacle_m <= 0:
            return v_map
        pts = self._remember_near(op, pose, stamp)
        if len(pts) == 0:
            return v_map
        rel = pts - pose.position
        dist = np.linalg.norm(rel, axis=1)
        near = dist < cfg.obstacle_m
        self._guard_acted = bool(near.any())
        if not near.any():
            return v_map
        weights = (cfg.obstacle_m - dist[near])[:, None]
        away = -np.sum(weights * rel[near] / np.maximum(dist[near, None], 1e-9), axis=0)
        norm = float(np.linalg.norm(away))
        if norm < 1e-9:
            return v_map
        away = away / norm  # map frame, unit
        toward = -float(np.dot(v_map, away))
        if toward > 0:
            v_map = v_map + toward * away
        depth_short = cfg.obstacle_m - float(dist[near].min())
        if self.state not in (TrackerState.DONE, TrackerState.ABORTED):
            self.message = f"obstacle {float(dist[near].min()):.2f} m away: backing off"
        return v_map + cfg.position_gain * depth_short * away

    def _remember_near(self, op: OrientedPoints, pose: Pose, stamp: float) -> np.ndarray:
        """This frame's depth points (map frame) plus the remembered near ones, newest first.

        Points within ``obstacle_m + max_speed_mps x 1 s`` of the camera (what the UAV can
        reach within a second) are kept for ``obstacle_memory_s``, thinned to one per 4 cm cell."""
        cfg = self.config
        cur = pose.transform_points(op.points) if len(op) else np.zeros((0, 3))
        if cfg.obstacle_memory_s <= 0:
            return cur
        keep = np.linalg.norm(cur - pose.position, axis=1) < cfg.obstacle_m + cfg.max_speed_mps
        near = cur[keep]
        if len(near):
            _, first = np.unique(np.floor(near / 0.04).astype(np.int64), axis=0, return_index=True)
            near = near[np.sort(first)]
        self._near_memory = [(t, p) for t, p in self._near_memory if stamp - t <= cfg.obstacle_memory_s]
        self._near_memory.append((stamp, near))
        return np.concatenate([cur] + [p for _, p in self._near_memory[:-1]], axis=0)

    def _check_stall(self, pose: Pose, stamp: float) -> None:
        """Start a back-off (or abort) when the UAV has been held in place too long while tracking.

        Held by the depth guard (acting in this frame): after ``stall_timeout_s``. Held with no
        guard acting: after ``no_progress_timeout_s`` (when set), which is longer than any
        deliberate hold (the detector pacing the flight, the approach to the pipe's end).
        """
        cfg = self.config
        c = pose.position
        if ((cfg.stall_timeout_s <= 0 and cfg.no_progress_timeout_s <= 0) or self.state != TrackerState.TRACKING
                or self._backoff_t is not None or self._segment is None):
            self._hold_pos = None
            return
        if self._hold_pos is None or float(np.linalg.norm(c - self._hold_pos)) > 0.25:
            self._hold_pos, self._hold_since = c.copy(), stamp
            return
        held = stamp - self._hold_since
        blocked = cfg.stall_timeout_s > 0 and self._guard_acted and held >= cfg.stall_timeout_s
        idle = cfg.no_progress_timeout_s > 0 and held >= cfg.no_progress_timeout_s
        if not (blocked or idle):
            return
        if self._stall_place is None or float(np.linalg.norm(c - self._stall_place)) > 1.5:
            self._stall_place, self._stalls = c.copy(), 0
        self._stalls += 1
        self._hold_pos = None
        why = (f"blocked by an obstacle closer than {cfg.obstacle_m:.2f} m for {held:.0f} s" if blocked
               else f"no progress along the pipe for {held:.0f} s")
        if self._stalls >= cfg.max_stalls:
            self.state = TrackerState.ABORTED
            self.message = (f"{why}, {self._stalls} times at the same place (backed off and looked "
                            f"again after each of the first {self._stalls - 1})")
            _LOG.error("ABORTED: %s", self.message)
            return
        seg = self._segment
        self._backoff_t = seg.foot(c) - cfg.stall_backoff_m
        self._backoff_until = stamp + 3.0 * cfg.stall_backoff_m / max(cfg.speed_mps, 0.05) + 2.0
        self._next = None  # look for the way on afresh from farther back
        self.message = (f"{why}, not explained by the pipe model: backing off "
                        f"{cfg.stall_backoff_m:.1f} m to look again")
        _LOG.warning(self.message)

    def _back_off(self, pose: Pose, stamp: float) -> tuple[np.ndarray, float] | None:
        """Velocity of a back-off in progress along the followed piece, None when there is none."""
        if self._backoff_t is None:
            return None
        cfg = self.config
        seg = self._segment
        c = pose.position
        target = seg.beside(self._backoff_t, cfg.standoff_m + seg.radius, cfg.view_elevation_deg)
        err = target - c
        if float(np.linalg.norm(err)) < 0.1 or stamp > self._backoff_until:
            self._backoff_t = None
            return None
        v = cfg.position_gain * err + self._clearance_push(c)
        return self._limit_altitude(pose, v), self._yaw_rate_to(pose, self._facing_yaw(seg.side))

    # ------------------------------------------------------------------ perception
    def _measure(self, op: OrientedPoints, pose: Pose
                 ) -> tuple[CylinderEstimate | None, np.ndarray | None]:
        """Fit the followed pipe (or any pipe before the first detection)."""
        cfg = self.config
        seg = self._segment
        prior = None
        if seg is not None:
            inv = pose.inverse()
            # a piece just turned onto was predicted from an oblique view of the elbow:
            # accept larger corrections until it has been seen a few times
            loose = self.state == TrackerState.SEARCHING or seg.fits < 5
            # a model fused from many frames is trusted more: at a riser's top the view holds
            # mostly the next piece, and fits 20 degrees off the riser, fused frame after
            # frame, turned the riser's model onto it within two seconds
            max_angle = 35.0 if loose else (20.0 if seg.agreed < 15 else 10.0)
            prior = CylinderPrior(
                point=inv.transform_points(seg.point)[0], direction=inv.rotation @ seg.direction,
                radius=seg.radius, max_angle_deg=max_angle,
                max_axis_offset_m=0.6 if loose else 0.3)
        keep = self._off_previous_piece(op, pose)
        result = None
        if keep is not None:
            result = fit_cylinder_oriented(op.subset(keep), cfg.fit, prior=prior, rng=self._rng)
            if result is None:
                # nothing but the old piece in view: the turn may have been a false one (a
                # "continuation" at a pipe's end), and fits on all points bring the model back
                keep = None
        if result is None:
            result = fit_cylinder_oriented(op, cfg.fit, prior=prior, rng=self._rng)
        if result is None:
            return None, None
        est, mask = result
        if keep is not None:
            full = np.zeros(len(op), dtype=bool)
            full[np.flatnonzero(keep)[mask]] = True
            mask = full
        est_map = est.transformed(pose)
        if seg is None:
            self._start(est, est_map, pose)
        else:
            agrees = _angle_deg(est_map.direction, seg.direction) <= cfg.fuse_max_angle_deg
            if not agrees and seg.agreed >= 15:
                # a model that 15 fits in a row have agreed with is settled: a fit this far off
                # is more likely a neighbouring piece pulling the fit than the followed piece
                # turning. The pipe is in view (not lost), but the fit is not fused... While
                # searching too: a run lost at a riser's foot was re-acquired on a fit that took
                # in the elbow, fused, it unsettled the run's model and the next fits turned it
                # 56 deg up onto the riser (seed 15, with the stored side levelled: the riser
                # then got no turned side and the UAV collided under the piece at its top)...
                same = (seg.rejected_direction is not None
                        and _angle_deg(est_map.direction, seg.rejected_direction) <= cfg.fuse_max_angle_deg)
                seg.rejected = seg.rejected + 1 if same else 1
                if not same:
                    seg.rejected_direction = est_map.direction.copy()
                if seg.rejected < 10:
                    return est, mask
                # ...unless 10 fits in a row agree with each other and not with the model: then
                # the model is what is off. A riser's model settled on the leaning fits of its
                # foot (the elbow in view) while it still converged, and its straight fits from
                # higher up were rejected for ever: the extent stopped growing, a false end.
                _LOG.debug("settled model unsettled: 10 fits in a row %.0f deg off it",
                           _angle_deg(est_map.direction, seg.direction))
            seg.rejected, seg.rejected_direction = 0, None
            seg.agreed = seg.agreed + 1 if agrees else 0
            self._fuse(seg, est_map)
        self._update_extent(est_map, pose)
        return est, mask

    def _off_previous_piece(self, op: OrientedPoints, pose: Pose) -> np.ndarray | None:
        """Mask of the points not on the piece just left at an inside turn (None: keep all).

        Just after an inside turn the view still holds mostly the piece left behind and the
        elbow. A young model is fused loosely (it was predicted from an oblique view of the
        elbow), so fits that took in the old piece's points leaned towards it, and fused frame
        after frame they turned the new model back onto the old piece within three frames (a
        command applied 0.2 s late, as in the ROS graph, gave them the time): the UAV then
        followed the old piece into the new one. The old model is settled; its points, up to
        the corner, are never the new piece's and are removed for as long as it is followed.
        """
        prev, seg = self._previous, self._segment
        if prev is None or seg is None or seg.corner is None:
            return None
        pts = pose.transform_points(op.points)
        u = pts - prev.point
        t = u @ prev.direction
        radial = np.linalg.norm(u - t[:, None] * prev.direction, axis=1)
        on_previous = (radial < prev.radius + 0.06) & (t < prev.foot(seg.corner))
        if not on_previous.any():
            return None
        return ~on_previous

    def _start(self, est: CylinderEstimate, est_map: CylinderEstimate, pose: Pose) -> None:
        if self.config.start_direction == "auto":
            # Start along the way where more pipe is visible beyond the camera: a UAV launched
            # at one end of a pipe sees it extend only one way.
            foot = -float(np.dot(est.point, est.direction))  # camera's foot on the axis
            ahead, behind = est.extent[1] - foot, foot - est.extent[0]
            d_cam = est.direction if ahead >= behind else -est.direction
        else:
            want = _IMAGE_DIRECTIONS[self.config.start_direction]
            d_cam = est.direction if np.dot(est.direction, want) >= 0 else -est.direction
        d = pose.rotation @ d_cam
        side = self._side_for(d, est_map.point, pose.position, previous=None)
        self._previous = None
        self._segment = _Segment(point=est_map.point.copy(), direction=_unit(d),
                                 radius=est.radius, side=side)
        self.state = TrackerState.TRACKING
        self.message = (f"pipe acquired: radius {est.radius:.3f} m, following it "
                        f"({self.config.start_direction} start direction)")
        _LOG.info(self.message)

    def _side_for(self, d: np.ndarray, axis_point: np.ndarray, uav: np.ndarray,
                  previous: np.ndarray | None,
                  previous_direction: np.ndarray | None = None,
                  radius: float = 0.0, previous_level: bool = False) -> np.ndarray:
        """Horizontal unit vector from the axis towards where the UAV should fly.

        A riser entered from a horizontal run is flown turned from the run's side towards
        the run's direction (beyond the corner, away from the run): a level camera sees
        only ~0.4 m above (below) itself at the stand-off, so a piece that turns over the
        UAV's head at the riser's end would be seen too late from straight beside the
        riser. Turned so that any continuation passes at least ``radius + 0.45 m``
        (horizontally) from the UAV, it cannot hit one and sees it at its own level; the
        angle is as small as that allows (at most 45 deg), which keeps the stand-off to a
        continuation along the run's direction. ``previous_level`` says whether the piece
        before was a run, judged from its fits (``_Segment.mostly_level``), not from
        ``previous_direction``: at a riser going down, the run's model drifts towards the
        riser as its end comes into view, steeper than a run.
        """
        h = np.cross(_UP, d)
        # a riser, as everywhere here, is a piece steeper than |d_z| > 0.8 (|h| < 0.6); the first
        # estimate of a riser seen from the run before it leans towards the run (24 degrees
        # on an unseen pipe), and a riser given a run's side was climbed without the turn
        # below, under a next piece that came back over the UAV
        if np.linalg.norm(h) >= 0.6:
            h = _unit(h)
            if previous is None:
                self._sigma = 1.0 if np.dot(uav - axis_point, h) >= 0 else -1.0
            elif abs(np.dot(h, previous)) > 0.3:
                # coming from a riser (or a shallow turn): stay on the same side
                self._sigma = 1.0 if np.dot(h, previous) >= 0 else -1.0
            return self._sigma * h
        # (near) vertical pipe: keep the horizontal offset we have
        ref = previous if previous is not None else (uav - axis_point)
        ahead = None if previous_direction is None else _horizontal_unit(previous_direction)
        if previous is not None and ahead is not None and previous_level:
            dist = self.config.standoff_m + radius
            sin_a = float(np.clip((radius + 0.45) / dist, math.sin(math.radians(20.0)),
                                  math.sin(math.radians(45.0))))
            ref = math.sqrt(1.0 - sin_a * sin_a) * _unit(previous) + sin_a * ahead
        s = _horizontal_unit(ref - np.dot(ref, d) * d)
        if s is None:
            raise RuntimeError("the UAV is directly above or below a vertical pipe")
        return s

    def _fuse(self, seg: _Segment, est_map: CylinderEstimate) -> None:
        a = self.config.smoothing if seg.fits >= 5 else max(0.7, self.config.smoothing)
        seg.fits += 1
        d_meas = est_map.direction if np.dot(est_map.direction, seg.direction) >= 0 else -est_map.direction
        old_point = seg.point
        # once a riser's top is in view, the view holds the elbow and the next piece too and
        # every fit leans a few degrees towards it: fused frame after frame (each fit within
        # the settled model's tolerance of the last, or loosely after a short loss) they
        # turned the riser's model 50 degrees onto the next piece during a slow, paced climb,
        # and the corner then never came closer. A straight riser does not bend: a settled
        # riser's direction is locked when its end comes into view (until the end is withdrawn).
        if seg.end_seen > 0 and seg.agreed >= 15 and seg.is_riser:
            seg.direction_locked = True
        if not seg.direction_locked:
            # the measured axis at the point nearest the current model point
            p_meas = est_map.point + np.dot(seg.point - est_map.point, d_meas) * d_meas
            seg.direction = _unit((1 - a) * seg.direction + a * d_meas)
            seg.point = (1 - a) * seg.point + a * p_meas
        else:
            # shifted sideways by the offset measured where the pipe is seen, not at the
            # model's point metres below, where a fit a few degrees off lies far off
            m = seg.point + np.dot(est_map.point - seg.point, seg.direction) * seg.direction
            q = est_map.point + np.dot(m - est_map.point, d_meas) * d_meas
            off = q - m
            seg.point = seg.point + a * (off - np.dot(off, seg.direction) * seg.direction)
        seg.radius = (1 - a) * seg.radius + a * est_map.radius
        seg.level_fits += int(not seg.is_riser)
        # keep t_hi referring to the same place along the pipe
        shift = float(np.dot(seg.point - old_point, seg.direction))
        if math.isfinite(seg.t_hi):
            seg.t_hi -= shift
        if math.isfinite(seg.end_t):
            seg.end_t -= shift
        # and the places held while moving round a riser or crossing over the pipe
        if self._side_move_t is not None:
            self._side_move_t -= shift
        if self._cross_t is not None:
            self._cross_t -= shift
        if self._revisit_t is not None:
            self._revisit_t -= shift
        # side stays perpendicular to the (refined) axis; a riser keeps its horizontal side
        # as chosen: re-projecting it on the tilted axes of its first, elbow-biased fits
        # would turn it back towards the run before
        if not seg.is_riser:
            s = seg.side - np.dot(seg.side, seg.direction) * seg.direction
            if np.linalg.norm(s) > 1e-6:
                seg.side = _unit(s)

    def _update_extent(self, est_map: CylinderEstimate, pose: Pose) -> None:
        seg = self._segment
        ends = est_map.endpoints
        t_far = max(seg.foot(ends[0]), seg.foot(ends[1]))
        seg.t_hi = max(seg.t_hi, t_far)
        if seg.end_seen and seg.t_hi > seg.end_t + max(0.3, 2.0 * seg.radius):
            # the pipe was since seen well beyond the "end" (an oblique or partial view
            # made it look short): it was no end, and a cylinder near the old extent (a
            # support under the pipe) must not be taken for a continuation
            _LOG.debug("end at %.2f m withdrawn: pipe seen to %.2f m", seg.end_t, seg.t_hi)
            seg.end_seen = 0
            seg.end_t = -math.inf
            seg.direction_locked = False
        nxt = self._next
        if (nxt is not None and float(nxt.direction[2]) < -0.8
                and seg.foot(nxt.corner) < seg.t_hi - max(0.6, 3.5 * seg.radius)):
            # nor is a "continuation" going down whose corner the pipe was since seen well
            # beyond (a support post under the pipe, taken for a piece going down at an
            # apparent end, was followed to the ground). Fits at a real elbow reach ~2 radii
            # past its corner; a run's model drifting onto the next piece at an inside turn
            # also "sees" the pipe beyond it, so level continuations are never dropped here.
            _LOG.debug("continuation at %.2f m dropped: pipe seen to %.2f m", seg.foot(nxt.corner), seg.t_hi)
            self._next = None

    def _end_in_view(self, pose: Pose, intrinsics: CameraIntrinsics) -> bool:
        """Whether the axis just beyond the farthest seen point projects inside the image."""
        seg = self._segment
        beyond = seg.point + (seg.t_hi + 0.1) * seg.direction
        # test the pipe's near surface too: a pipe beyond the end would show there
        probe = np.array([beyond, beyond + seg.radius * seg.side])
        p_cam = pose.inverse().transform_points(probe)
        uv, front = intrinsics.project(p_cam)
        mx, my = 0.06 * intrinsics.width, 0.06 * intrinsics.height
        inside = (front & (uv[:, 0] > mx) & (uv[:, 0] < intrinsics.width - mx)
                  & (uv[:, 1] > my) & (uv[:, 1] < intrinsics.height - my))
        return bool(np.all(inside))

    def _find_continuation(self, op: OrientedPoints, mask: np.ndarray, est: CylinderEstimate,
                           pose: Pose, intrinsics: CameraIntrinsics) -> None:
        """Look for the next piece of pipe once the followed one ends inside the view."""
        seg = self._segment
        if seg is None or self.state != TrackerState.TRACKING or self._cross_t is not None:
            return  # (looking down from over the top, the visible extent says nothing of the end)
        if self._end_in_view(pose, intrinsics):
            seg.end_seen += 1
            seg.end_t = seg.t_hi
        elif seg.end_seen < self.config.confirm_frames:
            return
        cfg = self.config
        # drop the followed piece (and flanges on it) before fitting the next one
        v = op.points - est.point
        along = v @ est.direction
        radial = np.linalg.norm(v - along[:, None] * est.direction, axis=1)
        near = (radial < 1.6 * est.radius + 0.03) & (along > est.extent[0] - 0.05) & (
            along < est.extent[1] + 0.05)
        rest = op.subset(~(mask | near))
        fit_cfg = replace(cfg.fit, radius_min_m=est.radius / 1.4, radius_max_m=est.radius * 1.4,
                          min_inliers=max(30, cfg.fit.min_inliers // 2), iterations=64)
        result = fit_cylinder_oriented(rest, fit_cfg, rng=self._rng)
        if result is None:
            _LOG.debug("continuation: no second cylinder")
            return
        b = result[0].transformed(pose)
        d = seg.direction
        cos = abs(float(np.dot(b.direction, d)))
        if cos > math.cos(math.radians(cfg.elbow_min_angle_deg)):
            _LOG.debug("continuation: parallel cylinder rejected")
            return
        # closest points of the two axis lines
        w = seg.point - b.point
        bd = b.direction
        den = 1.0 - cos * cos
        ta = (np.dot(d, bd) * np.dot(bd, w) - np.dot(d, w)) / den
        tb = (np.dot(bd, w) - np.dot(d, bd) * np.dot(d, w)) / den
        pa, pb = seg.point + ta * d, b.point + tb * bd
        if np.linalg.norm(pa - pb) > max(0.1, 0.5 * seg.radius) + 0.08:
            _LOG.debug("continuation: axes %.2f m apart", np.linalg.norm(pa - pb))
            return
        # a riser's next piece, seen from beside the riser, runs away from or towards the
        # camera: its oblique fit puts the corner up to a radius low (no supports stand on risers)
        slack = 0.15 + (seg.radius if seg.is_riser else 0.0)
        if not (seg.t_hi - slack <= ta <= seg.t_hi + cfg.corner_max_gap_m):
            # crosses the followed pipe elsewhere: a support or clutter
            _LOG.debug("continuation: corner at %.2f, end at %.2f", ta, seg.t_hi)
            return
        # visible extent of the other piece, measured from the corner along its axis
        rel_lo, rel_hi = b.extent[0] - tb, b.extent[1] - tb
        # orient the continuation away from the corner, towards its visible points
        if rel_lo >= -0.15:
            direction, length = bd, rel_hi
        elif rel_hi <= 0.15:
            direction, length = -bd, -rel_lo
        else:
            # the other cylinder runs through the corner: not a continuation
            _LOG.debug("continuation: extent %.2f..%.2f spans the corner", rel_lo, rel_hi)
            return
        corner = pa
        side = self._side_for(direction, corner, pose.position, previous=seg.side,
                             previous_direction=seg.direction, radius=b.radius,
                             previous_level=seg.mostly_level)
        safe_side = None
        if cfg.riser_look_ahead_deg > 0 and float(direction[2]) > 0.8 and not seg.is_riser:
            # a riser from a run: flown on the run's side (the defects of its lower part face
            # that way) until its end is in view, then on the turned side, clear of any piece
            # that comes back over the UAV at its end
            view = _horizontal_unit(seg.side)
            if view is not None:
                side, safe_side = view, side
        nxt = self._next
        if nxt is not None and np.linalg.norm(nxt.corner - corner) < 0.4 and np.dot(
                nxt.direction, direction) > 0.8:
            a = cfg.smoothing
            nxt.corner = (1 - a) * nxt.corner + a * corner
            nxt.direction = _unit((1 - a) * nxt.direction + a * direction)
            nxt.radius = (1 - a) * nxt.radius + a * b.radius
            nxt.side, nxt.safe_side = side, safe_side
            nxt.seen += 1
            nxt.length = max(nxt.length, float(length))
        else:
            self._next = _Continuation(corner=corner, direction=_unit(direction), radius=b.radius,
                                       side=side, safe_side=safe_side, length=float(length))

    # ------------------------------------------------------------------ control
    def _control(self, pose: Pose, stamp: float, fitted: bool) -> tuple[np.ndarray, float]:
        cfg = self.config
        if self._probing:
            # looking round the end turns the camera away on purpose: not a loss
            self._last_fit_stamp = stamp
        if self.state in (TrackerState.IDLE, TrackerState.TRACKING):
            last = self._last_fit_stamp if self._last_fit_stamp is not None else self._start_stamp
            if stamp - last > cfg.lost_timeout_s:
                if self._corner_at_hand(pose):
                    # the followed piece ends here and the way on is known: losing it is what
                    # the climb past a riser's top does (the camera rises above it; a command
                    # applied 0.2 s late let it rise before the orbit began), not a loss
                    self._next.orbiting = True
                    self._last_fit_stamp = stamp
                    _LOG.info("followed piece out of view at its corner: going round the elbow")
                else:
                    self._enter_search(pose, stamp)
        if self.state == TrackerState.SEARCHING:
            if fitted and self._segment is not None:
                self.state = TrackerState.TRACKING
                self.message = "pipe re-acquired"
                _LOG.info(self.message)
                self._searched_s += stamp - self._search_start
                self._search_start = None
            else:
                return self._search(pose, stamp)
        if self.state == TrackerState.IDLE:
            return np.zeros(3), 0.0
        backing = self._back_off(pose, stamp)
        if backing is not None:
            return backing
        return self._follow(pose)

    def _corner_at_hand(self, pose: Pose) -> bool:
        """Whether the UAV is at a riser's end, confirmed, with a confirmed outside turn there.

        Risers only: at the end of a run a false "continuation" is sometimes confirmed (the
        riser below, seen back from the run's end), and orbiting onto it on the first loss
        took the UAV back along the pipe; the search there re-acquires the run and probes its
        end."""
        cfg = self.config
        seg, nxt = self._segment, self._next
        if (seg is None or nxt is None or not seg.is_riser or not nxt.confirmed(cfg)
                or seg.end_seen < cfg.confirm_frames or nxt.is_inside_turn(seg)
                or self._cross_t is not None or self._side_move_t is not None):
            return False
        return seg.foot(pose.position) >= seg.foot(nxt.corner) - 0.1

    def _enter_search(self, pose: Pose, stamp: float) -> None:
        self.state = TrackerState.SEARCHING
        self._backoff_t = None
        if self._streak_origin is None or np.linalg.norm(pose.position - self._streak_origin) > 1.0:
            self._streak_origin = pose.position.copy()
            self._searched_s = 0.0
        self._search_start = stamp
        self._search_origin = pose.position.copy()
        self._search_yaw0 = _camera_yaw(pose)
        self.message = "pipe lost: hovering and searching"
        _LOG.warning(self.message)

    def _search(self, pose: Pose, stamp: float) -> tuple[np.ndarray, float]:
        cfg = self.config
        elapsed = stamp - self._search_start
        if self._searched_s + elapsed > cfg.search_timeout_s:
            self.state = TrackerState.ABORTED
            again = " (lost again and again within 1 m)" if self._searched_s > 0 else ""
            self.message = (f"pipe lost and not re-acquired within "
                            f"{cfg.search_timeout_s:.0f} s of searching{again} (yaw sweep +-{cfg.search_yaw_deg:.0f} deg, "
                            f"back-off {cfg.search_backoff_m:.2f} m)")
            _LOG.error("ABORTED: %s", self.message)
            return np.zeros(3), 0.0
        v = np.zeros(3)
        seg = self._segment
        if seg is not None:
            # back off along the way we came, where the pipe was last seen
            moved = float(np.linalg.norm(pose.position - self._search_origin))
            if moved < cfg.search_backoff_m:
                v = -cfg.search_speed_mps * seg.direction
        # triangle-wave yaw sweep around the heading at loss
        period = 4.0 * math.radians(cfg.search_yaw_deg) / cfg.search_yaw_rate
        phase = (elapsed % period) / period
        tri = 4 * phase if phase < 0.25 else (2 - 4 * phase if phase < 0.75 else 4 * phase - 4)
        target_yaw = self._search_yaw0 + math.radians(cfg.search_yaw_deg) * tri
        yaw_rate = self._yaw_rate_to(pose, target_yaw)
        return self._limit_altitude(pose, v), yaw_rate

    def _yaw_rate_to(self, pose: Pose, target_yaw: float) -> float:
        err = _wrap(target_yaw - _camera_yaw(pose))
        return float(np.clip(self.config.yaw_gain * err, -self.config.max_yaw_rate,
                             self.config.max_yaw_rate))

    def _limit_altitude(self, pose: Pose, v: np.ndarray) -> np.ndarray:
        cfg = self.config
        z = pose.position[2]
        v = v.copy()
        if z < cfg.min_altitude_m:
            v[2] = max(v[2], cfg.position_gain * (cfg.min_altitude_m - z))
        elif z > cfg.max_altitude_m:
            v[2] = min(v[2], cfg.position_gain * (cfg.max_altitude_m - z))
        elif v[2] < 0:
            v[2] = max(v[2], cfg.position_gain * (cfg.min_altitude_m - z))
        n = np.linalg.norm(v)
        return v * (cfg.max_speed_mps / n) if n > cfg.max_speed_mps else v

    def _follow(self, pose: Pose) -> tuple[np.ndarray, float]:
        cfg = self.config
        # set again by _probe_end / _orbit / _turn_under, which turn the camera away from the
        # followed piece on purpose; an end withdrawn meanwhile (the pipe goes on) must not
        # leave the loss detection switched off
        self._probing = False
        self._end_probe = False
        seg = self._segment
        c = pose.position
        dist = cfg.standoff_m + seg.radius
        nxt = self._next if (self._next is not None and self._next.confirmed(cfg)) else None
        if seg.safe_side is not None and (seg.end_seen >= cfg.confirm_frames or nxt is not None):
            seg.side, seg.safe_side = seg.safe_side, None
            self._side_move_t = seg.foot(c)
            self._next = None  # seen from the other side, the way on is measured afresh
            nxt = None
        if self._side_move_t is not None:
            target = seg.beside(self._side_move_t, dist)
            if float(np.linalg.norm(target - c)) > 0.12:
                self.message = "riser's end in view: moving round to the side clear of the way on"
                v = cfg.position_gain * (target - c) + self._clearance_push(c)
                return self._limit_altitude(pose, v), self._yaw_rate_to(pose, self._facing_yaw(seg.side))
            self._side_move_t = None
        want = self._wanted_side(seg)
        t_now = seg.foot(c)
        # away from both ends: the half circle over the top must clear the pieces at the corners
        clear = dist + 0.6
        away = ((seg.corner is None or t_now - seg.foot(seg.corner) > clear)
                and not (seg.end_seen >= cfg.confirm_frames and seg.t_hi - t_now < clear))
        if (self._cross_t is None and want is not None and nxt is None and seg.fits >= 5 and away
                and float(np.dot(want, seg.side)) < 0.0):
            self._cross_t = t_now
            self.message = f"on the wrong side of the pipe ({self.config.inspection_side} wanted): crossing over its top"
            _LOG.info(self.message)
        if self._cross_t is not None:
            return self._cross_over(pose, seg, dist)
        if self._revisit_t is not None:
            if nxt is None and t_now > self._revisit_t + 0.05:
                return self._revisit(pose, seg, dist, t_now)
            self._revisit_t = None
            self.message = "part passed on the wrong side seen: going on"
            _LOG.info(self.message)
        if nxt is not None:
            inside = nxt.is_inside_turn(seg)
            riser = seg.is_riser
            late = inside and not riser and seg.foot(c) >= seg.foot(nxt.corner) - dist - 0.1
            switched = self._maybe_switch(c, nxt, force=late)
            if switched:
                seg = self._segment
                dist = cfg.standoff_m + seg.radius
                nxt = None
        t = seg.foot(c)
        speed = self._speed
        side = seg.side
        if nxt is not None:
            t_corner = seg.foot(nxt.corner)
            inside = nxt.is_inside_turn(seg)
            if inside and seg.is_riser:
                return self._turn_under(pose, nxt)
            if not inside and (nxt.orbiting or t >= t_corner + self._turn_overshoot(seg, nxt)):
                nxt.orbiting = True
                return self._orbit(pose, nxt)
            self.message = f"elbow ahead in {max(t_corner - t, 0.0):.2f} m"
        else:
            end_confirmed = seg.end_seen >= cfg.confirm_frames
            if end_confirmed:
                remaining = seg.t_hi - t
                speed = min(speed, max(0.0, 0.8 * remaining))
                if remaining < 0.08:
                    return self._probe_end(pose, seg, dist)
                self.message = f"pipe end ahead in {remaining:.2f} m"
            else:
                self.message = "tracking"
        t_target = min(t, seg.t_hi) if seg.end_seen >= cfg.confirm_frames and nxt is None else t
        target = seg.beside(t_target, dist, cfg.view_elevation_deg)
        err = target - c
        ff = speed * max(0.0, 1.0 - float(np.linalg.norm(err)) / 0.5) * seg.direction
        v = ff + cfg.position_gain * err + self._clearance_push(c)
        yaw = self._facing_yaw(side)
        ahead = _horizontal_unit(seg.direction)
        if ahead is not None and abs(seg.direction[2]) < 0.8 and cfg.lead_yaw_deg:
            # look a little ahead along the pipe: an inside turn comes into view earlier
            sign = 1.0 if np.cross(-side, ahead)[2] >= 0 else -1.0
            yaw += sign * math.radians(cfg.lead_yaw_deg)
        return self._limit_altitude(pose, v), self._yaw_rate_to(pose, yaw)

    def _clearance_push(self, c: np.ndarray) -> np.ndarray:
        """Velocity away from any known piece closer than ``min_clearance_m`` (surface)."""
        cfg = self.config
        pieces = []
        seg = self._segment
        if seg is not None:
            pieces.append((seg.point, seg.direction, seg.radius, -math.inf, seg.t_hi))
        if self._next is not None and self._next.confirmed(cfg):
            # a continuation seen once may be clutter; pushing away from it could also
            # take the UAV out of the pose from which it would confirm it
            n = self._next
            pieces.append((n.corner, n.direction, n.radius, 0.0, math.inf))
        push = np.zeros(3)
        for p0, d, r, lo, hi in pieces:
            t = float(np.clip(np.dot(c - p0, d), lo, hi))
            away = c - (p0 + t * d)
            dist = float(np.linalg.norm(away))
            gap = dist - r
            if gap < cfg.min_clearance_m and dist > 1e-6:
                push += cfg.position_gain * 2.0 * (cfg.min_clearance_m - gap) * away / dist
        return push

    @staticmethod
    def _facing_yaw(side: np.ndarray) -> float:
        f = -side
        return math.atan2(f[1], f[0])

    def _maybe_switch(self, c: np.ndarray, nxt: _Continuation, force: bool = False) -> bool:
        """Switch to the continuation once the UAV is at a valid pose beside it.

        ``force`` switches regardless (an inside turn seen late: the pose beside the next
        piece is then behind the UAV, and going on along the current one would hit it).
        """
        cfg = self.config
        u = c - nxt.corner
        t_b = float(np.dot(u, nxt.direction))
        off = u - t_b * nxt.direction
        d_off = float(np.linalg.norm(off))
        want = cfg.standoff_m + nxt.radius
        if not force:
            if t_b < -0.05 or d_off < 1e-6 or abs(d_off - want) > 0.25:
                return False
            if float(np.dot(off / d_off, nxt.side)) < math.cos(math.radians(25.0)):
                return False
        old = self._segment
        # an inside turn: the UAV, on the side the next piece leaves towards, still faces the
        # old piece when it switches (see _off_previous_piece). Not after going round an
        # outside turn or a pipe's end, where the view is on the new piece already and where a
        # false "continuation" taken must be able to fall back onto the pipe it came from.
        self._previous = old if nxt.is_inside_turn(old) else None
        self._segment = _Segment(point=nxt.corner.copy(), direction=nxt.direction.copy(),
                                 radius=nxt.radius, side=nxt.side.copy(), t_hi=max(t_b, 0.3),
                                 safe_side=None if nxt.safe_side is None else nxt.safe_side.copy(),
                                 corner=nxt.corner.copy())
        self._side_move_t = None
        self._cross_t = None
        self._revisit_t = None
        self._next = None
        self._probing = False
        turn = math.degrees(math.acos(float(np.clip(np.dot(old.direction, nxt.direction), -1, 1))))
        self.message = f"turned onto the next piece ({turn:.0f} deg elbow)"
        _LOG.info(self.message)
        return True

    def _wanted_side(self, seg: _Segment) -> np.ndarray | None:
        """The horizontal side vector ``inspection_side`` asks for on this piece (None: any)."""
        if self.config.inspection_side == "auto" or seg.up() is None:
            return None
        left = _horizontal_unit(np.cross(_UP, seg.direction))
        if left is None:
            return None
        return left if self.config.inspection_side == "left" else -left

    def _revisit(self, pose: Pose, seg: _Segment, dist: float, t_now: float) -> tuple[np.ndarray, float]:
        """Fly back along the piece on the wanted side, facing it, to ``_revisit_t``."""
        cfg = self.config
        c = pose.position
        target = seg.beside(t_now, dist, cfg.view_elevation_deg)
        err = target - c
        back = -self._speed * max(0.0, 1.0 - float(np.linalg.norm(err)) / 0.5) * seg.direction
        v = back + cfg.position_gain * err + self._clearance_push(c)
        self.message = f"back along the part passed on the wrong side: {t_now - self._revisit_t:.2f} m to go"
        return self._limit_altitude(pose, v), self._yaw_rate_to(pose, self._facing_yaw(seg.side))

    def _cross_over(self, pose: Pose, seg: _Segment, dist: float) -> tuple[np.ndarray, float]:
        """Go over the top of a horizontal piece to its other side, at ``dist`` from the axis."""
        cfg = self.config
        c = pose.position
        up = seg.up()
        if up is None:
            # the model turned steep (a riser after all): no top to cross over
            self._cross_t = None
            self.message = "crossing over abandoned: the pipe is steep here"
            _LOG.warning(self.message)
            return self._follow(pose)
        goal = 180.0 - cfg.view_elevation_deg
        # counted from a level side: with the side's vertical part (a young model's, kept) the
        # half circle's target and the elevation counted along it disagreed, and the crossing
        # held 2 deg short of its goal until "no progress" aborted the flight (random pipeline 5)
        side = seg.level_side()
        e = seg.elevation_of(c, side)
        if e < -90.0:
            e += 360.0  # below the far side: count on past 180
        if e >= goal - 3.0:
            seg.side = -side  # now on the wanted side; its elevation counts from there
            if seg.corner is not None:
                # the crossing waits until the half circle over the top clears the corner's
                # pieces (1.5-1.6 m past it): that part was seen from the wrong side only
                back = seg.foot(seg.corner) + self.config.revisit_margin_m
                if self.config.revisit_margin_m >= 0 and self._cross_t - back > 0.3:
                    self._revisit_t = back
            self._cross_t = None
            seg.end_seen, seg.end_t = 0, -math.inf  # an end latched on the way over is not trusted
            self.message = "crossed over the pipe"
            _LOG.info(self.message)
            return self._follow(pose)
        # facing the axis from the side it starts on, then from the other: the yaw turns half
        # round while the UAV is over the top (the camera pitched straight down sees the pipe
        # whatever the yaw), and the UAV goes on down only once it has
        yaw_new = math.atan2(side[1], side[0])
        if e < 80.0:
            phi, yaw = min(max(e, 0.0) + 25.0, 90.0), self._facing_yaw(side)
        elif abs(_wrap(yaw_new - _camera_yaw(pose))) > math.radians(20.0):
            phi, yaw = 90.0, yaw_new
        else:
            phi, yaw = min(e + 25.0, goal), yaw_new
        phi = math.radians(phi)
        offset = math.cos(phi) * side + math.sin(phi) * up
        target = seg.point + self._cross_t * seg.direction + dist * offset
        v = cfg.position_gain * (target - c)
        self.message = "crossing over the pipe's top to the inspection side"
        return self._limit_altitude(pose, v), self._yaw_rate_to(pose, yaw)

    def _turn_overshoot(self, seg: _Segment, nxt: _Continuation) -> float:
        """How far beyond the corner (along the followed piece) the UAV goes before orbiting it."""
        cfg = self.config
        if not seg.is_riser:
            return 0.0
        if seg.direction[2] > 0:
            return cfg.riser_turn_overshoot_m
        # going down: not below the lowest altitude allowed
        room = float(nxt.corner[2]) - cfg.min_altitude_m - 0.1
        return float(np.clip(room, 0.0, cfg.riser_turn_overshoot_m))

    def _orbit(self, pose: Pose, nxt: _Continuation) -> tuple[np.ndarray, float]:
        """Go round the outside of a corner at the stand-off distance from the corner."""
        cfg = self.config
        self._probing = True
        seg = self._segment
        c = pose.position
        e1 = seg.side
        e2 = nxt.side - np.dot(nxt.side, e1) * e1
        total = math.acos(float(np.clip(np.dot(seg.side, nxt.side), -1.0, 1.0)))
        dist = cfg.standoff_m + 0.5 * (seg.radius + nxt.radius)
        if np.linalg.norm(e2) < 1e-6 or total < math.radians(10.0):
            target, tangent = nxt.corner + dist * nxt.side, np.zeros(3)
            look = nxt.side
        else:
            e2 = _unit(e2)
            u = c - nxt.corner
            phi = float(np.clip(math.atan2(np.dot(u, e2), np.dot(u, e1)), 0.0, total))
            look = math.cos(phi) * e1 + math.sin(phi) * e2
            target = nxt.corner + dist * look
            tangent = -math.sin(phi) * e1 + math.cos(phi) * e2
        err = target - c
        v = self._speed * max(0.0, 1.0 - float(np.linalg.norm(err)) / 0.5) * tangent
        v = v + cfg.position_gain * err
        self.message = "turning round the outside of an elbow"
        return self._limit_altitude(pose, v), self._yaw_rate_to(pose, self._facing_yaw(look))

    def _turn_under(self, pose: Pose, nxt: _Continuation) -> tuple[np.ndarray, float]:
        """Leave a riser for a piece that turns towards the UAV at its top (bottom).

        The next piece starts right above (below) the UAV, so neither climbing on nor
        orbiting the corner is possible: the UAV holds a stand-off short of the corner, goes
        round the riser to the next piece's side and then climbs (descends) beside the
        corner, where :meth:`_maybe_switch` hands over to the next piece.
        """
        cfg = self.config
        self._probing = True
        seg = self._segment
        c = pose.position
        dist = cfg.standoff_m + seg.radius
        t_hold = seg.foot(nxt.corner) - (cfg.standoff_m + seg.radius + nxt.radius)
        e1 = seg.side
        e2 = nxt.side - np.dot(nxt.side, e1) * e1
        total = math.acos(float(np.clip(np.dot(e1, nxt.side), -1.0, 1.0)))
        t = seg.foot(c)
        axis_at = seg.point + t * seg.direction
        u = c - axis_at
        if np.linalg.norm(e2) > 1e-6:
            e2 = _unit(e2)
            phi = float(np.clip(math.atan2(np.dot(u, e2), np.dot(u, e1)), 0.0, total))
        else:
            e2, phi = np.zeros(3), total
        # horizontal distance from the next piece's axis (where it runs): below it the UAV
        # must not climb (descend) towards the corner
        w = c - nxt.corner
        h_off = w - np.dot(w, nxt.direction) * nxt.direction
        h_off[2] = 0.0
        under = (float(np.dot(w, nxt.direction)) > -nxt.radius
                 and float(np.linalg.norm(h_off)) < nxt.radius + 0.45)
        if under and phi < total - math.radians(8.0):
            look = math.cos(phi) * e1 + math.sin(phi) * e2
            tangent = -math.sin(phi) * e1 + math.cos(phi) * e2
            target = seg.point + min(t, t_hold) * seg.direction + dist * look
            err = target - c
            v = self._speed * max(0.0, 1.0 - float(np.linalg.norm(err)) / 0.5) * tangent
            v = v + cfg.position_gain * err
            self.message = "elbow over the UAV: going round the riser below it"
        else:
            look = nxt.side
            target = nxt.corner + (cfg.standoff_m + nxt.radius) * nxt.side
            v = cfg.position_gain * (target - c)
            self.message = "elbow over the UAV: moving up (down) beside it"
        return self._limit_altitude(pose, v), self._yaw_rate_to(pose, self._facing_yaw(look))

    def _probe_end(self, pose: Pose, seg: _Segment, dist: float) -> tuple[np.ndarray, float]:
        """At the apparent end, look round it before reporting DONE.

        A pipe that turns away from the camera hides behind its own elbow from a level
        camera beside it, so the UAV goes round the end (up to ``end_probe_deg`` at the
        stand-off distance, looking at it) or, at the top or bottom of a riser, over- or
        undershoots it by ``end_probe_overshoot_m``. A continuation found meanwhile is taken
        by the elbow logic; otherwise the mission is DONE.
        """
        cfg = self.config
        self._probing = True
        end = seg.point + seg.t_hi * seg.direction
        ahead = _horizontal_unit(seg.direction)
        if ahead is None or abs(seg.direction[2]) > 0.8:
            goal_t = seg.t_hi + cfg.end_probe_overshoot_m
            t = seg.foot(pose.position)
            self._end_probe = t > seg.t_hi  # beyond the riser's end: looking at its top or bottom
            target = seg.beside(min(t + 0.3, goal_t), dist)
            if t >= goal_t - 0.05 or not self._in_view(pose, end, margin=0.2):
                return self._finish()
            v = cfg.position_gain * (target - pose.position)
            self.message = "at the end of a riser: looking beyond it for a continuation"
            return self._limit_altitude(pose, v), self._yaw_rate_to(pose, self._facing_yaw(seg.side))
        e1 = seg.side
        e2 = ahead - np.dot(ahead, e1) * e1
        e2 = _unit(e2)
        total = math.radians(cfg.end_probe_deg)
        u = pose.position - end
        phi_now = math.atan2(np.dot(u, e2), np.dot(u, e1))
        # gone noticeably round the end (an elbow turning away shows itself within the first degrees)
        self._end_probe = phi_now > math.radians(20.0)
        if phi_now >= total - math.radians(3.0):
            return self._finish()
        phi = float(np.clip(phi_now, 0.0, total))
        look = math.cos(phi) * e1 + math.sin(phi) * e2
        tangent = -math.sin(phi) * e1 + math.cos(phi) * e2
        target = end + dist * look
        err = target - pose.position
        v = self._speed * max(0.0, 1.0 - float(np.linalg.norm(err)) / 0.5) * tangent
        v = v + cfg.position_gain * err
        self.message = "at the apparent end: going round it to look for a continuation"
        return self._limit_altitude(pose, v), self._yaw_rate_to(pose, self._facing_yaw(look))

    def _in_view(self, pose: Pose, point: np.ndarray, margin: float) -> bool:
        """Whether a map point projects inside the image less ``margin`` (fraction) per side."""
        k = self._intrinsics
        uv, front = k.project(pose.inverse().transform_points(point))
        mx, my = margin * k.width, margin * k.height
        return bool(front[0] and mx <= uv[0, 0] <= k.width - mx and my <= uv[0, 1] <= k.height - my)

    def _finish(self) -> tuple[np.ndarray, float]:
        self.state = TrackerState.DONE
        self.message = (f"reached the end of the pipe after {self._travelled:.2f} m; "
                        "hovering")
        _LOG.info("DONE: %s", self.message)
        return np.zeros(3), 0.0

    def _view_metrics(self, est: CylinderEstimate | None) -> tuple[float, float]:
        if est is None:
            return float("nan"), float("nan")
        standoff = est.distance_to_axis(np.zeros(3)) - est.radius
        # distance between the axis line and the optical axis (camera z)
        z = np.array([0.0, 0.0, 1.0])
        n = np.cross(est.direction, z)
        nn = np.linalg.norm(n)
        if nn < 1e-6:
            lateral = float(np.linalg.norm(est.point[:2]))
        else:
            lateral = abs(float(np.dot(est.point, n / nn)))
        return float(standoff), lateral
