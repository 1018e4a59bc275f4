"""Why a ground-truth defect was missed: was it in view, was it flagged, where did its views go.

Recall alone says how many defects a mission missed, not why. While a mission runs,
:class:`GroundTruthViews` counts, per ground-truth defect, the inspected frames in which it was
in view (inside the image less a border, unoccluded, near enough, facing the camera: the same
test the fusion uses for its consistency rule) and the frames in which a 3D detection lay
within the report's gate of it. :func:`explain_misses` turns those counts and the fused tracks
(tentative ones included) into one reason per missed defect:

* ``not_in_view``: never in view while inspecting (the path or the view angle missed it);
* ``not_flagged``: in view, but the detector never flagged it (below its threshold);
* ``not_confirmed``: flagged, and its track failed the confirmation rules (too few views, a
  low hit ratio, too large);
* ``merged``: flagged, and its views went into a reported defect matched to another one;
* ``misplaced``: flagged, but no track lies within the gate (placed too far away).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from anomaly_inspection_core.geometry.camera import CameraIntrinsics, Pose
from anomaly_inspection_core.geometry.fusion import visible_from

__all__ = ["GroundTruthViews", "explain_misses"]


class GroundTruthViews:
    """Per ground-truth defect: frames in view and frames with a detection within ``gate_m``."""

    def __init__(self, ground_truth: list[dict], gate_m: float = 0.10) -> None:
        if not gate_m > 0:
            raise ValueError(f"gate_m must be positive, got {gate_m}")
        self.gate_m = float(gate_m)
        self.ids = [g["id"] for g in ground_truth]
        self.positions = np.array([np.asarray(g["position"], float) for g in ground_truth]).reshape(-1, 3)
        normals = [g.get("normal") for g in ground_truth]
        # a defect without a normal is treated as facing every camera
        self.normals = (np.array([np.asarray(n, float) for n in normals]).reshape(-1, 3)
                        if normals and all(n is not None for n in normals) else None)
        self.reset()

    def reset(self) -> None:
        self.in_view = np.zeros(len(self.ids), dtype=int)
        self.flagged = np.zeros(len(self.ids), dtype=int)
        self.frames = 0

    def observe(self, pose: Pose, intrinsics: CameraIntrinsics, depth: np.ndarray,
                detections: np.ndarray | None = None, border_px: int = 0,
                max_depth_m: float = np.inf, max_incidence_deg: float = 75.0) -> None:
        """Count one inspected frame; ``detections`` are its 3D detection positions (M, 3)."""
        if not self.ids:
            return
        self.frames += 1
        seen = visible_from(self.positions, self.normals, pose, intrinsics, depth, border_px=border_px,
                            max_depth_m=max_depth_m, max_incidence_deg=max_incidence_deg)
        hit = np.zeros(len(self.ids), dtype=bool)
        if detections is not None and len(detections):
            det = np.asarray(detections, float).reshape(-1, 3)
            d = np.linalg.norm(self.positions[:, None, :] - det[None, :, :], axis=-1)
            hit = d.min(axis=1) <= self.gate_m
        self.in_view += seen | hit  # flagged means it was seen, whatever the test says
        self.flagged += hit

    def counts(self) -> dict[Any, dict[str, int]]:
        return {i: {"frames_in_view": int(v), "frames_flagged": int(f)}
                for i, v, f in zip(self.ids, self.in_view, self.flagged)}


def explain_misses(evaluation: dict, ground_truth: list[dict], views: dict, tracks: list[dict],
                   gate_m: float) -> list[dict]:
    """One entry per missed ground-truth defect: its counts, nearest track and a reason.

    ``evaluation`` is :meth:`EvaluationResult.to_dict`; ``views`` maps ground-truth id to
    :meth:`GroundTruthViews.counts` entries; ``tracks`` are dicts with ``id``, ``position_m``,
    ``views``, ``confirmed`` and optionally ``unmet_rules`` (:meth:`DefectFuser.describe`), every
    fused track, tentative ones included.
    """
    by_id = {g["id"]: g for g in ground_truth}
    pred_to_gt = {m["predicted_id"]: m["ground_truth_id"] for m in evaluation.get("matches", [])}
    out = []
    for gid in evaluation.get("missed_ground_truth_ids", []):
        g = by_id[gid]
        p = np.asarray(g["position"], float)
        counts = views.get(gid, {"frames_in_view": 0, "frames_flagged": 0})
        entry: dict[str, Any] = {"id": gid, "type": g.get("type"), "size_m": g.get("size"), **counts}
        near = None
        if tracks:
            dist = [float(np.linalg.norm(np.asarray(t["position_m"], float) - p)) for t in tracks]
            k = int(np.argmin(dist))
            near = tracks[k]
            entry["nearest_track"] = {"id": near["id"], "distance_m": round(dist[k], 4),
                                      "views": int(near["views"]), "confirmed": bool(near["confirmed"])}
            if near.get("unmet_rules") is not None:
                entry["nearest_track"]["unmet_rules"] = [str(r) for r in near["unmet_rules"]]
        if counts["frames_in_view"] == 0:
            reason, text = "not_in_view", "never in view while inspecting"
        elif counts["frames_flagged"] == 0:
            reason, text = "not_flagged", (f"in view in {counts['frames_in_view']} frames, never flagged "
                                           "by the detector")
        elif near is None or entry["nearest_track"]["distance_m"] > gate_m:
            reason, text = "misplaced", (f"flagged in {counts['frames_flagged']} of {counts['frames_in_view']} "
                                         f"frames, but no track within {gate_m:.2f} m")
        elif near["confirmed"]:
            # a reported defect within the gate of a missed one is matched to another (an unmatched
            # pair within the gate would have been matched)
            reason, text = "merged", (f"flagged in {counts['frames_flagged']} frames; its views went into "
                                      f"defect {near['id']}, matched to ground truth {pred_to_gt.get(near['id'])}")
        else:
            unmet = entry["nearest_track"].get("unmet_rules")
            rules = f": {'; '.join(unmet)}" if unmet else ""
            reason, text = "not_confirmed", (f"flagged in {counts['frames_flagged']} of "
                                             f"{counts['frames_in_view']} frames; its track ({near['views']} "
                                             f"views) failed the confirmation rules{rules}")
        entry["reason"], entry["explanation"] = reason, text
        out.append(entry)
    return out
