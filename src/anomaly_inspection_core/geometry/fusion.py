"""Fuse per-frame 3D detections into physical defects with stable ids.

Each :class:`FusedDefect` is a track of observations (one :class:`Detection3D` per frame at
most, or several fragments of one frame merged). Association, per frame:

1. every (track, detection) pair with compatible types and a 3D distance within the gate is
   a candidate; the gate grows with the track's size so that a large defect seen as fragments
   still associates (``gate_m + size_gate_factor * half the track's largest extent``, capped);
2. candidates are taken greedily by distance, a detection goes to one track, and a track
   takes a second detection of the same frame only when it lies within ``fragment_m`` of the
   first (one defect split into fragments by the detector), never a nearby second defect;
3. unmatched detections start new tentative tracks;
4. tracks that end up closer than ``merge_m`` are merged (keeping the older id), which catches
   duplicates when an area is revisited with drift.

Estimates are quality-weighted over the observations after rejecting those far from the
weighted median (a mis-association or a bad depth), so one poor view does not drag a defect.
A track is *confirmed* (reported) once it has ``min_views`` distinct frames (``min_whole_views``
of them not cut by the image edge or the detector's border band) and its fused score is at
least ``min_score`` (or, with ``weak_min_views``, while it has that many frames and is detected
in ``weak_min_hit_ratio`` of the frames that saw it, whatever its score; or, with
``brief_min_views``, with fewer frames than ``min_views`` while it scores at least
``brief_min_score`` and is detected in ``brief_min_hit_ratio`` of the frames that saw it);
with ``max_size_m`` it must also be no larger than that (its regions' extent, or with
``size_rule="size"`` its estimated size; an anomalous area metres long is an
unfamiliar view of the asset, e.g. an elbow seen from an angle the teach pass never flew, not a
surface defect; sizes are kept on every track), and with ``min_hit_ratio`` it must be detected
in that share of the frames that saw it.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import numpy as np

from anomaly_inspection_core.geometry.camera import CameraIntrinsics, Pose, matrix_to_quaternion
from anomaly_inspection_core.geometry.localization import Detection3D, Evidence

logger = logging.getLogger(__name__)

UNLABELLED_TYPE = "anomaly"


@dataclass
class FusionConfig:
    """Parameters of :class:`DefectFuser` (lengths in metres)."""

    gate_m: float = 0.08
    size_gate_factor: float = 0.5
    max_gate_m: float = 0.25
    merge_m: float = 0.05
    fragment_m: float = 0.05  # same-frame detections closer than this may join one track
    min_views: int = 2
    min_score: float = 0.5
    min_confidence: float = 0.0
    min_quality: float = 0.0  # detections below this view quality are ignored
    use_labels: bool = True  # different non-empty labels never associate
    outlier_m: float = 0.05  # observations farther than this from the weighted median are ignored
    max_observations: int = 200  # per track; the lowest-quality ones are dropped beyond this
    confidence_scale: float = 1.0  # confidence = 1 - exp(-sum(quality) / confidence_scale)
    max_size_m: float = 0.0  # tracks larger than this (see size_rule) are not confirmed; 0 = no limit
    # What max_size_m is compared with: "extent", the anomalous regions' own extent (the defect
    # plus the anomaly map's blur all round), or "size", the defect's estimated size (the blur
    # taken out). The blur is a fixed number of pixels, so in metres it grows with range and
    # obliquity: an AGV's 20 cm floor stain seen 2.2 m off at 56 deg fused to a 0.85-1.08 m
    # extent but a 0.34 m size.
    size_rule: str = "extent"
    # Whole views: a track must have been seen in at least this many frames without being cut
    # by the image edge or the detector's border band (Detection3D.truncated); 0 = off. A patch
    # only ever seen cut, e.g. floor at the bottom band of an AGV's frames, cannot be placed.
    min_whole_views: int = 0
    # Inspection volume: detections outside this axis-aligned box (min xyz, max xyz) are ignored,
    # e.g. the fixtured part of a workcell rather than the table and floor around it; None = anywhere.
    inspection_box: tuple[tuple[float, float, float], tuple[float, float, float]] | None = None
    # Consistency: a track must be detected in at least this share of the frames that saw its
    # position in view and unoccluded (DefectFuser.observe_frame); 0 = off. A real defect shows up
    # in most views of it, a false positive of an unfamiliar view in a few.
    min_hit_ratio: float = 0.0
    # Weak but consistent: a track whose views average below ``min_score`` is confirmed anyway
    # while it has at least this many frames and is detected in ``weak_min_hit_ratio`` of the
    # frames that saw it (DefectFuser.observe_frame). A small defect scoring just above the region
    # threshold in most of 100 views is real; the false patches of unfamiliar views come and go.
    # 0 = off.
    weak_min_views: int = 0
    weak_min_hit_ratio: float = 0.6
    # Strong but brief: a track with fewer than ``min_views`` frames (but at least this many) is
    # confirmed anyway while its score is at least ``brief_min_score`` and it is detected in
    # ``brief_min_hit_ratio`` of the frames that saw it. A robot driving past a defect may have it
    # in view in only a few frames; seen clearly in every one of them it is real, while the false
    # patches of unfamiliar views score low or come and go. Like the consistency rules, "the frames
    # that saw it" are those since the track was first detected (DefectFuser.observe_frame).
    # 0 = off.
    brief_min_views: int = 0
    brief_min_score: float = 0.8
    brief_min_hit_ratio: float = 1.0

    def __post_init__(self) -> None:
        if self.inspection_box is not None:
            lo, hi = (np.asarray(v, dtype=float) for v in self.inspection_box)
            if lo.shape != (3,) or hi.shape != (3,) or not (np.all(np.isfinite(lo)) and np.all(lo < hi)):
                raise ValueError(f"FusionConfig.inspection_box must be ((xmin, ymin, zmin), (xmax, ymax, zmax)) "
                                 f"with min < max, got {self.inspection_box}")
        if self.size_rule not in ("extent", "size"):
            raise ValueError(f"FusionConfig.size_rule must be 'extent' or 'size', got {self.size_rule!r}")
        if self.gate_m <= 0:
            raise ValueError(f"FusionConfig.gate_m must be positive, got {self.gate_m}")
        if self.max_gate_m < self.gate_m:
            raise ValueError("FusionConfig.max_gate_m must be >= gate_m")
        if self.min_views < 1:
            raise ValueError(f"FusionConfig.min_views must be >= 1, got {self.min_views}")
        if self.min_whole_views < 0:
            raise ValueError(f"FusionConfig.min_whole_views must be >= 0, got {self.min_whole_views}")
        if self.merge_m < 0 or self.outlier_m <= 0:
            raise ValueError("FusionConfig.merge_m must be >= 0 and outlier_m > 0")
        if self.confidence_scale <= 0:
            raise ValueError("FusionConfig.confidence_scale must be positive")
        if not 0.0 <= self.min_hit_ratio <= 1.0:
            raise ValueError(f"FusionConfig.min_hit_ratio must be in [0, 1], got {self.min_hit_ratio}")
        if self.weak_min_views < 0:
            raise ValueError(f"FusionConfig.weak_min_views must be >= 0, got {self.weak_min_views}")
        if not 0.0 < self.weak_min_hit_ratio <= 1.0:
            raise ValueError(f"FusionConfig.weak_min_hit_ratio must be in (0, 1], got {self.weak_min_hit_ratio}")
        if self.brief_min_views < 0:
            raise ValueError(f"FusionConfig.brief_min_views must be >= 0, got {self.brief_min_views}")
        if self.brief_min_views and not 1 <= self.brief_min_views < self.min_views:
            raise ValueError(f"FusionConfig.brief_min_views must be in [1, min_views) or 0 (off), "
                             f"got {self.brief_min_views} with min_views {self.min_views}")
        if not 0.0 < self.brief_min_hit_ratio <= 1.0:
            raise ValueError(f"FusionConfig.brief_min_hit_ratio must be in (0, 1], got {self.brief_min_hit_ratio}")


@dataclass
class FusedDefect:
    """One physical defect fused over views, in the ``map`` frame."""

    id: int
    type: str
    position: np.ndarray
    size: np.ndarray  # (3,) estimated defect size along axes: major, minor (surface), thickness
    axes: np.ndarray  # (3, 3) columns: major, minor, normal
    normal: np.ndarray
    score: float
    confidence: float
    views: int
    first_seen: float
    last_seen: float
    confirmed: bool = False
    # Frames (told through DefectFuser.observe_frame) in which the track was in view and
    # unoccluded, and those of them in which it was detected.
    visible: int = 0
    hits: int = 0
    passed: bool = False  # met the views/score/confidence rules once (those do not retract)
    best_quality: float = 0.0
    whole_views: int = 0  # distinct frames with an observation not cut by the image edge or band
    best_view: Detection3D | None = field(default=None, repr=False)
    observations: list[Detection3D] = field(default_factory=list, repr=False)
    # (3,) the anomalous region's extent along axes (wider than the defect by the anomaly map's
    # blur): what association gates and the max_size_m rule use; ``size`` when not given
    extent: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.extent is None:
            self.extent = np.asarray(self.size, dtype=np.float64).copy()

    @property
    def orientation(self) -> np.ndarray:
        """Quaternion (x, y, z, w) of the extent box; its z axis is the surface normal."""
        return matrix_to_quaternion(self.axes)

    @property
    def evidence(self) -> Evidence | None:
        """Crop and heatmap overlay of the best-quality view that had an image."""
        with_images = [o for o in self.observations if o.evidence is not None]
        if not with_images:
            return None
        return max(with_images, key=lambda o: o.quality).evidence

    def to_dict(self) -> dict:
        """Plain-JSON summary (no images)."""
        best = self.best_view
        return {
            "id": int(self.id),
            "type": self.type,
            "position_m": [float(v) for v in self.position],
            "size_m": [float(v) for v in self.size],
            "extent_m": [float(v) for v in self.extent],
            "orientation_xyzw": [float(v) for v in self.orientation],
            "normal": [float(v) for v in self.normal],
            "score": float(self.score),
            "confidence": float(self.confidence),
            "views": int(self.views),
            "visible_views": int(self.visible),
            "first_seen": float(self.first_seen),
            "last_seen": float(self.last_seen),
            "confirmed": bool(self.confirmed),
            "best_view": None if best is None else {
                "stamp": float(best.stamp),
                "distance_m": float(best.view_distance),
                "incidence_deg": float(best.incidence_deg),
                "camera_position_m": [float(v) for v in best.camera_position],
            },
        }


def _weighted_median(values: np.ndarray, weights: np.ndarray) -> float:
    order = np.argsort(values)
    v, w = values[order], weights[order]
    c = np.cumsum(w)
    return float(v[np.searchsorted(c, 0.5 * c[-1])])


def visible_from(points: np.ndarray, normals: np.ndarray | None, pose: Pose, intrinsics: CameraIntrinsics,
                 depth: np.ndarray, border_px: int = 0, depth_tolerance_m: float = 0.05,
                 max_depth_m: float = math.inf, max_incidence_deg: float = 75.0) -> np.ndarray:
    """Which surface points (N, 3) this camera saw: inside the image less ``border_px``, nearer
    than ``max_depth_m``, unoccluded (the depth at their pixel within ``depth_tolerance_m`` of
    theirs) and at most ``max_incidence_deg`` off their outward ``normals`` (None: not tested).
    ``depth`` may have another size than ``intrinsics`` (it is sampled at the scaled pixel)."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    out = np.zeros(len(pts), dtype=bool)
    if not len(pts):
        return out
    cam = pose.inverse().transform_points(pts)
    uv, in_front = intrinsics.project(cam)
    h_d, w_d = depth.shape[:2]
    w, h = intrinsics.width, intrinsics.height
    b = max(int(border_px), 0)
    inside = (in_front & (uv[:, 0] >= b) & (uv[:, 0] < w - b) & (uv[:, 1] >= b) & (uv[:, 1] < h - b)
              & (cam[:, 2] <= max_depth_m))
    cos_max = math.cos(math.radians(max_incidence_deg))
    for k in np.flatnonzero(inside):
        col = min(int(uv[k, 0] * w_d / w), w_d - 1)
        row = min(int(uv[k, 1] * h_d / h), h_d - 1)
        d = float(depth[row, col])
        if not (math.isfinite(d) and abs(d - cam[k, 2]) <= depth_tolerance_m):
            continue
        if normals is not None:
            to_cam = pose.position - pts[k]
            if float(np.asarray(normals[k], float) @ to_cam) / max(float(np.linalg.norm(to_cam)), 1e-9) < cos_max:
                continue
        out[k] = True
    return out


class DefectFuser:
    """Associates per-frame detections into stable defects. Not thread-safe."""

    def __init__(self, config: FusionConfig | None = None) -> None:
        self.config = config or FusionConfig()
        self._tracks: dict[int, FusedDefect] = {}
        self._next_id = 1
        self.last_removed_ids: list[int] = []

    # ------------------------------------------------------------------ public API
    def in_inspection_box(self, position: np.ndarray) -> bool:
        box = self.config.inspection_box
        if box is None:
            return True
        return bool(np.all(position >= np.asarray(box[0])) and np.all(position <= np.asarray(box[1])))

    def update(self, detections: list[Detection3D]) -> list[FusedDefect]:
        """Add the detections of one frame; returns the defects created or changed by it.

        Ids of defects merged into others by this update are in :attr:`last_removed_ids`.
        """
        cfg = self.config
        self.last_removed_ids = []
        dets = [d for d in detections if d.quality >= cfg.min_quality and np.all(np.isfinite(d.position))
                and self.in_inspection_box(d.position)]
        changed: dict[int, FusedDefect] = {}
        pairs = []
        for j, det in enumerate(dets):
            for tid, track in self._tracks.items():
                if not self._types_compatible(track, det):
                    continue
                dist = float(np.linalg.norm(track.position - det.position))
                if dist <= self._gate(track, det):
                    pairs.append((dist, tid, j))
        pairs.sort()
        assigned: dict[int, int] = {}
        taken: dict[int, list[int]] = {}
        for dist, tid, j in pairs:
            if j in assigned:
                continue
            # A second detection of the same frame joins a track only as a fragment of the
            # first (close to it); otherwise it is another defect near this one.
            if tid in taken and min(
                float(np.linalg.norm(dets[j].position - dets[k].position)) for k in taken[tid]
            ) > cfg.fragment_m:
                continue
            assigned[j] = tid
            taken.setdefault(tid, []).append(j)
        for j, det in enumerate(dets):
            tid = assigned.get(j)
            if tid is None:
                track = self._new_track(det)
            else:
                track = self._tracks[tid]
                track.observations.append(det)
                self._refresh(track)
            changed[track.id] = track
        for track in self._merge_duplicates():
            changed[track.id] = track
        for rid in self.last_removed_ids:
            changed.pop(rid, None)
        return list(changed.values())

    def confirmed(self) -> list[FusedDefect]:
        """Defects that passed the confirmation rules, by id."""
        return [t for t in self.all() if t.confirmed]

    def rule_size(self, track: FusedDefect) -> float:
        """The track's largest extent or estimated size (``size_rule``), what ``max_size_m`` limits."""
        return float(np.max(track.size if self.config.size_rule == "size" else track.extent))

    def too_large(self, track: FusedDefect) -> bool:
        """Whether the track is larger than ``max_size_m`` (never confirmed then)."""
        return self.config.max_size_m > 0 and self.rule_size(track) > self.config.max_size_m

    def all(self) -> list[FusedDefect]:
        """Every track, tentative ones included, by id."""
        return [self._tracks[k] for k in sorted(self._tracks)]

    def reset(self) -> None:
        self._tracks.clear()
        self._next_id = 1
        self.last_removed_ids = []

    # ------------------------------------------------------------------ internals
    def _types_compatible(self, track: FusedDefect, det: Detection3D) -> bool:
        if not self.config.use_labels or not det.label or track.type == UNLABELLED_TYPE:
            return True
        return det.label == track.type

    def _gate(self, track: FusedDefect, det: Detection3D) -> float:
        cfg = self.config
        half = 0.5 * max(float(np.max(track.extent[:2])), float(np.max(det.extent[:2])))
        return min(cfg.max_gate_m, cfg.gate_m + cfg.size_gate_factor * half)

    def _new_track(self, det: Detection3D) -> FusedDefect:
        track = FusedDefect(
            id=self._next_id, type=det.label or UNLABELLED_TYPE, position=det.position.copy(),
            size=det.size.copy(), extent=det.extent.copy(), axes=det.axes.copy(), normal=det.normal.copy(),
            score=det.score, confidence=0.0, views=1, first_seen=det.stamp, last_seen=det.stamp,
            observations=[det],
        )
        self._next_id += 1
        self._tracks[track.id] = track
        self._refresh(track)
        return track

    def _refresh(self, track: FusedDefect) -> None:
        cfg = self.config
        obs = track.observations
        if len(obs) > cfg.max_observations:
            obs.sort(key=lambda o: (o.quality, o.stamp))
            del obs[: len(obs) - cfg.max_observations]
            obs.sort(key=lambda o: o.stamp)
        pos = np.array([o.position for o in obs])
        w = np.array([max(o.quality, 1e-6) for o in obs])
        # Position from whole views when there are any: a region cut by the image edge (or the
        # detector's border band) keeps only one side of the defect, and its centroid shifts to
        # that side (floor defects cut by an AGV frame's bottom band: 8-25 cm farther away,
        # whole views of the same defects 1-3.5 cm).
        whole = np.array([not o.truncated for o in obs])
        use = whole if whole.any() else np.ones(len(obs), dtype=bool)
        med = np.array([_weighted_median(pos[use, k], w[use]) for k in range(3)])
        good = np.linalg.norm(pos - med, axis=1) <= max(cfg.outlier_m, 1e-6)
        if not good.any():
            good = np.ones(len(obs), dtype=bool)
        wg = w[good]
        placed = good & use if (good & use).any() else good
        wp = w[placed]
        track.position = (pos[placed] * wp[:, None]).sum(axis=0) / wp.sum()

        normals = np.array([o.normal for o in obs])[good]
        n = (normals * wg[:, None]).sum(axis=0)
        track.normal = n / np.linalg.norm(n) if np.linalg.norm(n) > 1e-9 else normals[0]

        best = max(obs, key=lambda o: o.quality)
        track.best_view = best
        track.best_quality = float(best.quality)
        major = best.axes[:, 0] - (best.axes[:, 0] @ track.normal) * track.normal
        if np.linalg.norm(major) < 1e-6:
            major = best.axes[:, 1] - (best.axes[:, 1] @ track.normal) * track.normal
        major /= np.linalg.norm(major)
        track.axes = np.stack([major, np.cross(track.normal, major), track.normal], axis=1)

        # Size from whole views when there are any: a truncated view sees only part of it.
        sized = [o for o, g in zip(obs, good) if g and not o.truncated] or [o for o, g in zip(obs, good) if g]
        ws = np.array([max(o.quality, 1e-6) for o in sized])
        for name in ("extent", "size"):
            v = np.array([np.sort(getattr(o, name)[:2])[::-1].tolist() + [getattr(o, name)[2]] for o in sized])
            setattr(track, name, np.array([_weighted_median(v[:, k], ws) for k in range(3)]))

        track.score = float((np.array([o.score for o in obs])[good] * wg).sum() / wg.sum())
        stamps = {round(o.stamp, 6) for o in obs}
        track.views = len(stamps)
        track.whole_views = len({round(o.stamp, 6) for o in obs if not o.truncated})
        track.first_seen = float(min(o.stamp for o in obs))
        track.last_seen = float(max(o.stamp for o in obs))
        # one term per distinct frame: fragments of one frame do not add confidence
        per_frame: dict[float, float] = {}
        for o in obs:
            key = round(o.stamp, 6)
            per_frame[key] = max(per_frame.get(key, 0.0), o.quality)
        track.confidence = float(1.0 - math.exp(-sum(per_frame.values()) / cfg.confidence_scale))
        labels = [o.label for o in obs if o.label]
        if labels:
            track.type = max(set(labels), key=labels.count)
        # a defect that passed is not retracted by a later weak view...
        track.passed = track.passed or (
            track.views >= cfg.min_views and track.score >= cfg.min_score
            and track.confidence >= cfg.min_confidence and track.whole_views >= cfg.min_whole_views
        )
        self._decide(track)

    def _decide(self, track: FusedDefect) -> None:
        # ...but it is once its extent shows it is no defect, or while most views of it miss it
        track.confirmed = ((track.passed or self._weak_ok(track) or self._brief_ok(track))
                           and not self.too_large(track) and self.consistent(track))

    def unmet_rules(self, track: FusedDefect) -> list[str]:
        """The confirmation rules the track fails now, in words (empty for a confirmed one).

        The views, whole-views, score and confidence rules count only until they are met once
        (they do not retract); size and consistency are tested on the current estimate."""
        cfg = self.config
        out = []
        if not track.passed and not self._brief_ok(track):
            if track.views < cfg.min_views:
                rule = f"{track.views} views < {cfg.min_views}"
                if cfg.brief_min_views > 0:  # ...and what the strong-but-brief rule lacks
                    rule += self._lacks(track, cfg.brief_min_views, cfg.brief_min_hit_ratio, cfg.brief_min_score)
                out.append(rule)
            if track.whole_views < cfg.min_whole_views:
                out.append(f"{track.whole_views} whole views < {cfg.min_whole_views}")
            if track.score < cfg.min_score and not self._weak_ok(track):
                rule = f"score {track.score:.2f} < {cfg.min_score:.2f}"
                if cfg.weak_min_views > 0:  # ...and what the weak-but-consistent rule lacks
                    rule += self._lacks(track, cfg.weak_min_views, cfg.weak_min_hit_ratio)
                out.append(rule)
            if track.confidence < cfg.min_confidence:
                out.append(f"confidence {track.confidence:.2f} < {cfg.min_confidence:.2f}")
        if self.too_large(track):
            out.append(f"{cfg.size_rule} {self.rule_size(track):.2f} m > {cfg.max_size_m:.2f} m")
        if not self.consistent(track):
            out.append(f"detected in {track.hits} of {track.visible} views in which it was visible "
                       f"< {cfg.min_hit_ratio:.2f}")
        return out

    @staticmethod
    def _lacks(track: FusedDefect, views: int, hit_ratio: float, score: float | None = None) -> str:
        """What a track lacks for a fallback rule (weak or brief), as `` and ...`` ('' if nothing)."""
        lacks = []
        if track.views < views:
            lacks.append(f"{track.views} views < {views}")
        if score is not None and track.score < score:
            lacks.append(f"score {track.score:.2f} < {score:.2f}")
        if track.visible == 0 or track.hits < hit_ratio * track.visible:
            lacks.append(f"detected in {track.hits} of {track.visible} < {hit_ratio:.2f}")
        return f" and {', '.join(lacks)}" if lacks else ""

    def describe(self, track: FusedDefect) -> dict:
        """Plain-JSON facts of a track, tentative or confirmed, for report.json's ``tracks``: where,
        how large, how strong, how often seen and detected, and the rules it fails now."""
        return {"id": int(track.id), "type": track.type, "position_m": [float(v) for v in track.position],
                "size_m": float(np.max(track.size)), "extent_m": float(np.max(track.extent)),
                "score": float(track.score), "views": int(track.views),
                "whole_views": int(track.whole_views), "visible_views": int(track.visible), "hits": int(track.hits),
                "confirmed": bool(track.confirmed), "unmet_rules": self.unmet_rules(track)}

    @property
    def counts_visibility(self) -> bool:
        """Whether a rule needs :meth:`observe_frame` (the frames that saw each track)."""
        return self.config.min_hit_ratio > 0 or self.config.weak_min_views > 0 or self.config.brief_min_views > 0

    def _weak_ok(self, track: FusedDefect) -> bool:
        """The weak-but-consistent rule, tested live (a weak track is retracted when it fails it)."""
        cfg = self.config
        return (cfg.weak_min_views > 0 and track.views >= cfg.weak_min_views and track.visible > 0
                and track.whole_views >= cfg.min_whole_views and track.hits >= cfg.weak_min_hit_ratio * track.visible)

    def _brief_ok(self, track: FusedDefect) -> bool:
        """The strong-but-brief rule, tested live (retracted when a later frame sees it and misses it)."""
        cfg = self.config
        return (cfg.brief_min_views > 0 and track.views >= cfg.brief_min_views and track.visible > 0
                and track.score >= cfg.brief_min_score and track.confidence >= cfg.min_confidence
                and track.whole_views >= cfg.min_whole_views
                and track.hits >= cfg.brief_min_hit_ratio * track.visible)

    def consistent(self, track: FusedDefect) -> bool:
        """Detected in at least ``min_hit_ratio`` of the frames that saw it (true when none was told)."""
        ratio = self.config.min_hit_ratio
        return ratio <= 0 or track.visible == 0 or track.hits >= ratio * track.visible

    def observe_frame(self, stamp: float, pose: Pose, intrinsics: CameraIntrinsics, depth: np.ndarray,
                      border_px: int = 0, depth_tolerance_m: float = 0.05, max_depth_m: float = math.inf,
                      max_incidence_deg: float = 75.0) -> None:
        """Count a frame (call it after :meth:`update` with that frame's detections, if any) for the
        consistency rule: every track whose position this camera saw, inside the image less
        ``border_px``, unoccluded (depth within ``depth_tolerance_m``), nearer than
        ``max_depth_m`` and at most ``max_incidence_deg`` off its normal, gains a visible frame;
        a track detected in this frame gains a hit. ``depth`` may have another size than
        ``intrinsics`` (it is sampled at the scaled pixel)."""
        tracks = self.all()
        if not tracks:
            return
        seen = visible_from(np.array([t.position for t in tracks]), np.array([t.normal for t in tracks]), pose,
                            intrinsics, depth, border_px=border_px, depth_tolerance_m=depth_tolerance_m,
                            max_depth_m=max_depth_m, max_incidence_deg=max_incidence_deg)
        for k, track in enumerate(tracks):
            if abs(track.last_seen - stamp) < 1e-6:
                track.hits += 1
                track.visible += 1
            elif seen[k]:
                track.visible += 1
            self._decide(track)

    def _merge_duplicates(self) -> list[FusedDefect]:
        cfg = self.config
        merged: list[FusedDefect] = []
        if cfg.merge_m <= 0:
            return merged
        again = True
        while again:
            again = False
            ids = sorted(self._tracks)
            for a_i, a in enumerate(ids):
                for b in ids[a_i + 1:]:
                    ta, tb = self._tracks[a], self._tracks[b]
                    if ta.type != tb.type and UNLABELLED_TYPE not in (ta.type, tb.type):
                        continue
                    if np.linalg.norm(ta.position - tb.position) > cfg.merge_m:
                        continue
                    ta.observations.extend(tb.observations)
                    ta.observations.sort(key=lambda o: o.stamp)
                    ta.passed = ta.passed or tb.passed
                    ta.visible, ta.hits = max(ta.visible, tb.visible), max(ta.hits, tb.hits)
                    del self._tracks[b]
                    self.last_removed_ids.append(b)
                    self._refresh(ta)
                    merged.append(ta)
                    logger.debug("merged defect %d into %d", b, a)
                    again = True
                    break
                if again:
                    break
        return [t for t in merged if t.id in self._tracks]
