"""report.json against its schema, report.html self-contained, ground-truth matching."""

from __future__ import annotations

import json
import re

import jsonschema
import numpy as np
import pytest

from anomaly_inspection_core.evaluation.matching import hungarian, match_defects
from anomaly_inspection_core.geometry.fusion import DefectFuser, FusionConfig
from anomaly_inspection_core.geometry.localization import Detection3D, Evidence
from anomaly_inspection_core.report import build_report, load_schema, write_report
from anomaly_inspection_core.report.asset import describe_location, parse_asset
from anomaly_inspection_core.report.writer import atomic_write_bytes

ASSET = [
    {"kind": "cylinder", "name": "pipe_A", "start": [0, 0, 1], "end": [4, 0, 1], "radius": 0.15},
    {"kind": "box", "name": "tank", "center": [2, 2, 1], "size": [1, 1, 2]},
    {"kind": "polyline", "name": "weld_seam", "points": [[0, 3, 0], [4, 3, 0]]},
]
GT = [
    {"id": "g1", "type": "corrosion", "position": [1.0, -0.15, 1.0], "size": [0.04, 0.04, 0.0]},
    {"id": "g2", "type": "crack", "position": [2.5, -0.15, 1.0]},
    {"id": "g3", "type": "crack", "position": [3.5, 0.0, 1.15]},
]


def _det(p, stamp, quality=0.5, with_image=True) -> Detection3D:
    p = np.asarray(p, float)
    img = np.zeros((20, 24, 3), np.uint8)
    img[5:15, 6:18] = (200, 60, 30)
    ev = Evidence(crop=img, overlay=255 - img, stamp=stamp) if with_image else None
    return Detection3D(
        position=p, extent=np.array([0.05, 0.03, 0.002]), axes=np.eye(3), normal=np.array([0, -1.0, 0]),
        score=1.1, mean_score=0.8, label="", stamp=stamp, view_distance=0.9, incidence_deg=12.0,
        n_points=80, quality=quality, truncated=False, camera_position=p + [0, -0.9, 0],
        pixel_bbox=(1, 1, 5, 5), evidence=ev,
    )


def _defects():
    fuser = DefectFuser(FusionConfig())
    for k in range(3):
        fuser.update([_det([1.0, -0.16, 1.0], k), _det([2.52, -0.15, 1.0], k, with_image=False),
                      _det([3.0, -0.15, 1.0], k)])
    return fuser.confirmed()


def test_report_validates_against_schema_and_html_is_self_contained(tmp_path) -> None:
    path = np.stack([np.linspace(0, 4, 30), np.full(30, -1.0), np.full(30, 1.1)], axis=1)
    json_path, html_path = write_report(
        tmp_path / "out", {"name": "patrol_1", "duration_s": np.float64(42.0), "robot": "ugv"},
        "pipe_demo", _defects(), robot_path=path, ground_truth=GT, asset_geometry=ASSET)
    doc = json.loads(json_path.read_text())
    jsonschema.validate(doc, load_schema())
    assert doc["scenario"] == "pipe_demo" and doc["summary"]["n_defects"] == 3
    d1 = doc["defects"][0]
    assert d1["id"] == 1 and d1["views"] == 3 and d1["type"] == "anomaly"
    assert d1["position_m"] == pytest.approx([1.0, -0.16, 1.0])
    assert d1["location"].startswith("on pipe_A, 1.00 m from its start") and "3 o'clock" in d1["location"]
    assert (json_path.parent / d1["evidence"]["crop_png"]).is_file()
    assert doc["defects"][1]["evidence"]["crop_png"] is None  # no image for that one
    ev = doc["evaluation"]
    assert ev["recall"] == pytest.approx(2 / 3) and ev["precision"] == pytest.approx(2 / 3)
    assert ev["missed_ground_truth_ids"] == ["g3"] and ev["unmatched_predicted_ids"] == [3]
    assert ev["per_type"]["crack"]["recall"] == 0.5 and ev["per_type"]["corrosion"]["recall"] == 1.0
    assert doc["robot_path"]["length_m"] == pytest.approx(4.0)

    html = html_path.read_text()
    assert html.startswith("<!DOCTYPE html>") and "Defect #1" in html and "pipe_A" in html
    assert not re.search(r"""(src|href)=['"](?!data:)""", html), "external resource in the HTML"
    assert html.count("data:image/png;base64,") == 2 + 2 * 2  # two maps, two defects with images
    assert not [p for p in (tmp_path / "out").rglob("*.tmp")]


def test_report_without_ground_truth_or_defects(tmp_path) -> None:
    json_path, html_path = write_report(tmp_path, {"name": "empty"}, "s", [])
    doc = json.loads(json_path.read_text())
    jsonschema.validate(doc, load_schema())
    assert "evaluation" not in doc and doc["defects"] == [] and doc["robot_path"] is None
    assert "No defects found" in html_path.read_text()


def test_schema_rejects_broken_reports() -> None:
    doc, _ = build_report({"name": "m"}, "s", _defects())
    schema = load_schema()
    jsonschema.validate(doc, schema)
    bad = json.loads(json.dumps(doc))
    bad["defects"][0]["position_m"] = [1.0, 2.0]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema)
    bad = json.loads(json.dumps(doc))
    del bad["defects"][0]["views"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema)


def test_bad_report_inputs_name_the_problem(tmp_path) -> None:
    with pytest.raises(ValueError, match="mission.duration_s is not finite"):
        write_report(tmp_path, {"duration_s": float("nan")}, "s", [])
    with pytest.raises(ValueError, match=r"robot_path must have shape"):
        write_report(tmp_path, {}, "s", [], robot_path=np.zeros((4, 2)))
    with pytest.raises(ValueError, match=r"asset_geometry\[0\].kind"):
        write_report(tmp_path, {}, "s", [], asset_geometry=[{"kind": "sphere"}])
    with pytest.raises(ValueError, match=r"defects\[0\] lacks"):
        write_report(tmp_path, {}, "s", [{"id": 1}])
    assert not (tmp_path / "report.json").exists()


def test_atomic_write_keeps_the_old_file_on_failure(tmp_path, monkeypatch) -> None:
    target = tmp_path / "report.json"
    atomic_write_bytes(target, b"old")

    def disk_full(fd: int) -> None:
        raise OSError("disk full")

    monkeypatch.setattr("anomaly_inspection_core.report.writer.os.fsync", disk_full)
    with pytest.raises(OSError, match="disk full"):
        atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"old" and list(tmp_path.iterdir()) == [target]


def test_location_descriptions() -> None:
    prims = parse_asset(ASSET)
    assert "12 o'clock" in describe_location(prims, np.array([2.0, 0.0, 1.15]))
    assert "6 o'clock" in describe_location(prims, np.array([2.0, 0.0, 0.85]))
    assert describe_location(prims, np.array([2.0, 1.5, 1.0])) == "on tank, -y face"
    assert describe_location(prims, np.array([1.5, 3.01, 0.0])).startswith("along weld_seam, 1.50 m")
    assert describe_location([], np.zeros(3)) is None


def test_matching_counts_errors_and_is_one_to_one() -> None:
    pred = [{"id": 1, "type": "anomaly", "position_m": [1.0, 0.0, 0.0]},
            {"id": 2, "type": "anomaly", "position_m": [1.03, 0.0, 0.0]},  # duplicate of 1
            {"id": 3, "type": "anomaly", "position_m": [5.0, 0.0, 0.0]}]
    gt = [{"id": "a", "type": "dent", "position": [1.02, 0.0, 0.0]},
          {"id": "b", "type": "dent", "position": [1.09, 0.0, 0.0]},
          {"id": "c", "type": "crack", "position": [3.0, 0.0, 0.0]}]
    ev = match_defects(pred, gt, gate_m=0.10)
    # optimal: 1<->a (0.02) and 2<->b (0.06), not 2<->a greedily leaving b unmatched
    assert {(m.predicted_id, m.ground_truth_id) for m in ev.matches} == {(1, "a"), (2, "b")}
    assert ev.true_positives == 2 and ev.false_positives == 1 and ev.false_negatives == 1
    assert ev.recall == pytest.approx(2 / 3) and ev.precision == pytest.approx(2 / 3)
    assert ev.median_error_m == pytest.approx(0.04)
    assert ev.per_type["dent"].recall == 1.0 and ev.per_type["crack"].recall == 0.0
    empty = match_defects([], gt)
    assert empty.recall == 0.0 and empty.precision is None and empty.median_error_m is None
    with pytest.raises(ValueError, match=r"ground_truth\[0\] position"):
        match_defects(pred, [{"id": 1, "position": [0, 0]}])
    assert hungarian(np.array([[4.0, 1.0, 3.0], [2.0, 0.0, 5.0]])) == [(0, 1), (1, 0)]
    assert ev.median_size_error_m is None  # no sizes given


def test_matching_compares_the_largest_in_surface_size() -> None:
    pred = [{"id": 1, "position_m": [1.0, 0.0, 0.0], "size_m": [0.06, 0.02, 0.5]},  # thickness ignored
            {"id": 2, "position_m": [2.0, 0.0, 0.0], "size_m": [0.30, 0.20, 0.0]},
            {"id": 3, "position_m": [3.0, 0.0, 0.0]}]
    gt = [{"id": "a", "type": "crack", "position": [1.0, 0.0, 0.0], "size": 0.05},
          {"id": "b", "type": "stain", "position": [2.0, 0.0, 0.0], "size": 0.10},
          {"id": "c", "type": "dent", "position": [3.0, 0.0, 0.0], "size": 0.08}]
    ev = match_defects(pred, gt)
    by_gt = {m.ground_truth_id: m for m in ev.matches}
    assert by_gt["a"].size_m == pytest.approx(0.06) and by_gt["a"].ground_truth_size_m == pytest.approx(0.05)
    assert by_gt["c"].size_m is None
    assert ev.median_size_error_m == pytest.approx((0.01 + 0.20) / 2)
    assert ev.median_size_ratio == pytest.approx((1.2 + 3.0) / 2)
