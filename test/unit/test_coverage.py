"""Why missed defects were missed: ground-truth visibility counts and the reasons in the report."""

from __future__ import annotations

import json

import jsonschema
import numpy as np
import pytest

from anomaly_inspection_core.evaluation.coverage import GroundTruthViews, explain_misses
from anomaly_inspection_core.geometry.camera import CameraIntrinsics, Pose, look_at
from anomaly_inspection_core.geometry.fusion import visible_from
from anomaly_inspection_core.report import load_schema, write_report

K = CameraIntrinsics.from_fov(160, 120, 60.0)


def _wall_view(distance: float = 1.0) -> tuple[Pose, np.ndarray]:
    """A camera at the origin looking along +y at a wall (the plane y = distance)."""
    eye = np.zeros(3)
    pose = Pose.from_rotation(eye, look_at(eye, np.array([0.0, 1.0, 0.0])))
    depth = np.full((K.height, K.width), distance, np.float32)  # optical z = range along +y
    return pose, depth


def test_visible_from_tests_image_bounds_occlusion_depth_and_facing() -> None:
    pose, depth = _wall_view(1.0)
    facing = np.array([0.0, -1.0, 0.0])
    pts = np.array([[0.0, 1.0, 0.0],     # on the wall, centre: visible
                    [0.0, 1.5, 0.0],     # behind the wall: occluded
                    [5.0, 1.0, 0.0],     # outside the image
                    [0.0, -1.0, 0.0],    # behind the camera
                    [0.0, 1.0, 0.0]])    # on the wall, but facing away
    normals = np.array([facing, facing, facing, facing, -facing])
    assert visible_from(pts, normals, pose, K, depth).tolist() == [True, False, False, False, False]
    assert visible_from(pts, None, pose, K, depth).tolist() == [True, False, False, False, True]
    assert not visible_from(pts[:1], None, pose, K, depth, max_depth_m=0.5)[0]
    # near the image edge: only without a border
    edge = np.array([[0.68, 1.0, 0.0]])  # ~9 px from the right edge of 160
    assert visible_from(edge, None, pose, K, depth)[0]
    assert not visible_from(edge, None, pose, K, depth, border_px=12)[0]
    # depth of another size than the intrinsics is sampled at the scaled pixel
    assert visible_from(pts[:1], None, pose, K, np.full((60, 80), 1.0, np.float32))[0]


def test_ground_truth_views_count_frames_in_view_and_flagged() -> None:
    gt = [{"id": 1, "position": [0.0, 1.0, 0.0], "normal": [0.0, -1.0, 0.0]},
          {"id": 2, "position": [0.3, 1.0, 0.1], "normal": [0.0, -1.0, 0.0]},
          {"id": 3, "position": [9.0, 1.0, 0.0], "normal": [0.0, -1.0, 0.0]}]
    views = GroundTruthViews(gt, gate_m=0.1)
    pose, depth = _wall_view(1.0)
    views.observe(pose, K, depth, np.array([[0.02, 1.0, 0.01]]))  # a detection 2 cm from defect 1
    views.observe(pose, K, depth, None)
    views.observe(pose, K, depth, np.array([[0.3, 1.0, 0.25]]))  # 15 cm from defect 2: outside the gate
    c = views.counts()
    assert c[1] == {"frames_in_view": 3, "frames_flagged": 1}
    assert c[2] == {"frames_in_view": 3, "frames_flagged": 0}
    assert c[3] == {"frames_in_view": 0, "frames_flagged": 0}
    views.reset()
    assert views.counts()[1] == {"frames_in_view": 0, "frames_flagged": 0}
    with pytest.raises(ValueError, match="gate_m"):
        GroundTruthViews(gt, gate_m=0.0)


def test_each_miss_gets_its_reason() -> None:
    gt = [{"id": i, "type": "crack", "position": [float(i), 0.0, 0.0], "size": 0.03} for i in range(1, 7)]
    views = {1: {"frames_in_view": 0, "frames_flagged": 0},     # never in view
             2: {"frames_in_view": 12, "frames_flagged": 0},    # in view, never flagged
             3: {"frames_in_view": 12, "frames_flagged": 2},    # flagged, tentative track only
             4: {"frames_in_view": 9, "frames_flagged": 9},     # flagged, merged into the defect of 6
             5: {"frames_in_view": 9, "frames_flagged": 4},     # flagged, but placed far away
             6: {"frames_in_view": 9, "frames_flagged": 9}}
    tracks = [{"id": 30, "position_m": [3.02, 0.0, 0.0], "views": 2, "confirmed": False,
               "unmet_rules": ["2 views < 4"]},
              {"id": 60, "position_m": [5.97, 0.0, 0.0], "views": 15, "confirmed": True},
              {"id": 61, "position_m": [4.05, 0.0, 0.0], "views": 15, "confirmed": True},
              {"id": 50, "position_m": [5.4, 0.0, 0.0], "views": 5, "confirmed": False}]
    evaluation = {"matches": [{"predicted_id": 60, "ground_truth_id": 6},
                              {"predicted_id": 61, "ground_truth_id": 4}],
                  "missed_ground_truth_ids": [1, 2, 3, 5]}
    out = {m["id"]: m for m in explain_misses(evaluation, gt, views, tracks, gate_m=0.1)}
    assert out[1]["reason"] == "not_in_view"
    assert out[2]["reason"] == "not_flagged" and "12 frames" in out[2]["explanation"]
    assert out[3]["reason"] == "not_confirmed" and out[3]["nearest_track"]["views"] == 2
    assert out[3]["nearest_track"]["unmet_rules"] == ["2 views < 4"] and out[3]["explanation"].endswith(": 2 views < 4")
    assert out[5]["reason"] == "misplaced" and out[5]["nearest_track"]["distance_m"] == pytest.approx(0.4)
    merged = explain_misses({"matches": [{"predicted_id": 61, "ground_truth_id": 6}],
                             "missed_ground_truth_ids": [4]}, gt, views, tracks, gate_m=0.1)
    assert merged[0]["reason"] == "merged" and "ground truth 6" in merged[0]["explanation"]


def test_report_carries_views_and_reasons_and_validates(tmp_path) -> None:
    gt = [{"id": 1, "type": "crack", "position": [0.0, 1.0, 0.0], "size": 0.03},
          {"id": 2, "type": "dent", "position": [2.0, 1.0, 0.0], "size": 0.05}]
    defects = [{"id": 7, "type": "anomaly", "position_m": [0.01, 1.0, 0.0], "size_m": [0.03, 0.02, 0.0],
                "score": 0.9, "views": 5, "first_seen": 0.0, "last_seen": 1.0}]
    views = {1: {"frames_in_view": 10, "frames_flagged": 5}, 2: {"frames_in_view": 8, "frames_flagged": 0}}
    json_path, html_path = write_report(tmp_path, {"name": "t"}, "demo", defects, ground_truth=gt,
                                        ground_truth_views=views,
                                        tracks=[{"id": 7, "position_m": [0.01, 1.0, 0.0], "views": 5, "confirmed": True}])
    doc = json.loads(json_path.read_text())
    jsonschema.validate(doc, load_schema())
    ev = doc["evaluation"]
    assert ev["ground_truth_views"] == [{"id": 1, "frames_in_view": 10, "frames_flagged": 5},
                                        {"id": 2, "frames_in_view": 8, "frames_flagged": 0}]
    assert [m["id"] for m in ev["missed"]] == [2] and ev["missed"][0]["reason"] == "not_flagged"
    assert "never flagged by the detector" in html_path.read_text()
    assert doc["tracks"] == [{"id": 7, "position_m": [0.01, 1.0, 0.0], "views": 5, "confirmed": True}]
    with pytest.raises(ValueError, match="lacks"):
        write_report(tmp_path / "bad", {"name": "t"}, "demo", defects, tracks=[{"id": 7}])
