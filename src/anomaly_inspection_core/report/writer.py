"""Write ``report.json`` (schema: report.schema.json, docs/report_schema.md) and ``report.html``.

Every file is written to a temporary name in the output folder and renamed into place, so a
crash never leaves a half-written report: readers see the previous report or the new one.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import math
import os
import tempfile
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from anomaly_inspection_core.evaluation.coverage import explain_misses
from anomaly_inspection_core.evaluation.matching import match_defects
from anomaly_inspection_core.geometry.fusion import FusedDefect
from anomaly_inspection_core.report.asset import describe_location, parse_asset

logger = logging.getLogger(__name__)

SCHEMA_VERSION = "1.0"
SCHEMA_PATH = Path(__file__).with_name("report.schema.json")


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and an atomic rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def png_bytes(rgb: np.ndarray) -> bytes:
    """PNG encoding of an RGB (or grey) uint8 image."""
    img = np.asarray(rgb)
    if img.ndim == 3:
        img = cv2.cvtColor(np.ascontiguousarray(img[..., :3]).astype(np.uint8), cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(".png", img)
    if not ok:
        raise ValueError(f"cannot encode image of shape {img.shape} as PNG")
    return buf.tobytes()


def _jsonable(value: Any, where: str) -> Any:
    """Convert numpy scalars/arrays and paths; reject NaN/inf (not valid JSON)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist(), where)
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, (float, np.floating)):
        f = float(value)
        if not math.isfinite(f):
            raise ValueError(f"{where} is not finite ({f}); JSON cannot hold it")
        return f
    if isinstance(value, Path):
        return str(value)
    if value is None or isinstance(value, (str, int)):
        return value
    raise ValueError(f"{where} has a value of type {type(value).__name__} that JSON cannot hold")


def _defect_entry(d: FusedDefect | dict, index: int) -> dict:
    if isinstance(d, FusedDefect):
        return d.to_dict()
    if not isinstance(d, dict):
        raise ValueError(f"defects[{index}] must be a FusedDefect or dict, got {type(d).__name__}")
    missing = [k for k in ("id", "type", "position_m", "size_m", "score", "views",
                           "first_seen", "last_seen") if k not in d]
    if missing:
        raise ValueError(f"defects[{index}] lacks {missing}")
    return dict(d)


def _track_entry(t: dict) -> dict:
    if not isinstance(t, dict):
        raise ValueError(f"tracks must hold dicts (DefectFuser.describe), got {type(t).__name__}")
    missing = [k for k in ("id", "position_m", "views", "confirmed") if k not in t]
    if missing:
        raise ValueError(f"track {t.get('id')} lacks {missing}")
    return dict(t)


def build_report(
    mission: dict,
    scenario_name: str,
    defects: list,
    robot_path: np.ndarray | None = None,
    ground_truth: list[dict] | None = None,
    asset_geometry: list[dict] | None = None,
    gate_m: float = 0.10,
    frame_id: str = "map",
    ground_truth_views: dict | None = None,
    tracks: list | None = None,
) -> tuple[dict, dict[int, Any]]:
    """The report.json document and, per defect id, its evidence images (or None).

    ``tracks`` (:meth:`DefectFuser.describe` of every fused track, tentative ones included) go
    into the report's ``tracks``; with ``ground_truth_views`` (:meth:`GroundTruthViews.counts`)
    as well, the evaluation also says why each missed defect was missed.
    """
    if not isinstance(mission, dict):
        raise ValueError(f"mission must be a dict, got {type(mission).__name__}")
    primitives = parse_asset(asset_geometry)
    entries, evidence = [], {}
    for i, d in enumerate(defects):
        entry = _defect_entry(d, i)
        ev = d.evidence if isinstance(d, FusedDefect) else None
        evidence[int(entry["id"])] = ev
        best = entry.pop("best_view", None) or {}
        entry.pop("confirmed", None)
        entry["location"] = describe_location(primitives, np.asarray(entry["position_m"], float))
        entry["evidence"] = None if not best and ev is None else {
            "view_stamp": best.get("stamp"),
            "view_distance_m": best.get("distance_m"),
            "incidence_deg": best.get("incidence_deg"),
            "camera_position_m": best.get("camera_position_m"),
            "crop_png": None if ev is None else f"evidence/defect_{int(entry['id']):04d}_crop.png",
            "overlay_png": None if ev is None else
            f"evidence/defect_{int(entry['id']):04d}_overlay.png",
        }
        entries.append(entry)
    entries.sort(key=lambda e: e["id"])
    by_type: dict[str, int] = {}
    for e in entries:
        by_type[e["type"]] = by_type.get(e["type"], 0) + 1
    path_info = None
    if robot_path is not None:
        path = np.asarray(robot_path, dtype=float)
        if path.ndim != 2 or path.shape[1] != 3:
            raise ValueError(f"robot_path must have shape (N, 3), got {path.shape}")
        path = path[np.all(np.isfinite(path), axis=1)]
        path_info = {
            "n_poses": int(len(path)),
            "length_m": float(np.linalg.norm(np.diff(path, axis=0), axis=1).sum()) if len(path) > 1 else 0.0,
        }
    doc = {
        "schema_version": SCHEMA_VERSION,
        "generated_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "frame_id": frame_id,
        "mission": mission,
        "scenario": str(scenario_name),
        "summary": {"n_defects": len(entries), "by_type": by_type},
        "robot_path": path_info,
        "defects": entries,
    }
    if tracks is not None:
        doc["tracks"] = [_track_entry(t) for t in tracks]
    if ground_truth is not None:
        doc["evaluation"] = match_defects(entries, ground_truth, gate_m=gate_m).to_dict()
        if ground_truth_views is not None:
            ev = doc["evaluation"]
            ev["ground_truth_views"] = [{"id": g["id"], **ground_truth_views.get(
                g["id"], {"frames_in_view": 0, "frames_flagged": 0})} for g in ground_truth]
            ev["missed"] = explain_misses(ev, ground_truth, ground_truth_views, tracks or [], gate_m)
    return _jsonable(doc, "report"), evidence


def write_report(
    out_dir: str | os.PathLike,
    mission: dict,
    scenario_name: str,
    defects: list,
    robot_path: np.ndarray | None = None,
    ground_truth: list[dict] | None = None,
    asset_geometry: list[dict] | None = None,
    gate_m: float = 0.10,
    frame_id: str = "map",
    ground_truth_views: dict | None = None,
    tracks: list | None = None,
) -> tuple[Path, Path]:
    """Write report.json, report.html and evidence/*.png into ``out_dir``.

    Args:
        out_dir: output folder (created if needed).
        mission: free-form mission facts (name, start/end times, robot, ...), JSON-serialisable.
        scenario_name: scenario the mission ran.
        defects: the defects to report (normally ``DefectFuser.confirmed()``), FusedDefect or
            dicts shaped like report.json defect entries.
        robot_path: (N, 3) robot positions in ``frame_id`` for the maps, or None.
        ground_truth: known defects (dicts with id, type, position[, size]) to evaluate against.
        asset_geometry: primitives to draw and to describe locations (see report.asset).
        gate_m: matching distance for the evaluation.
        ground_truth_views, tracks: per ground-truth defect, frames in view / flagged, and every
            fused track: the evaluation then explains each miss (see :func:`build_report`).

    Returns:
        Paths of report.json and report.html.
    """
    from anomaly_inspection_core.report.html import render_html

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    doc, evidence = build_report(mission, scenario_name, defects, robot_path, ground_truth,
                                 asset_geometry, gate_m, frame_id, ground_truth_views, tracks)
    for entry in doc["defects"]:
        ev = evidence.get(entry["id"])
        if ev is not None:
            atomic_write_bytes(out / entry["evidence"]["crop_png"], png_bytes(ev.crop))
            atomic_write_bytes(out / entry["evidence"]["overlay_png"], png_bytes(ev.overlay))
    json_path, html_path = out / "report.json", out / "report.html"
    html = render_html(doc, evidence, robot_path, ground_truth, parse_asset(asset_geometry))
    atomic_write_bytes(json_path, (json.dumps(doc, indent=2) + "\n").encode())
    atomic_write_bytes(html_path, html.encode())
    logger.info("report with %d defects written to %s", len(doc["defects"]), out)
    return json_path, html_path


def load_schema() -> dict:
    """The JSON Schema of report.json."""
    return json.loads(SCHEMA_PATH.read_text())
