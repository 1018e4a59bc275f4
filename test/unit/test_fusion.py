"""Cross-view fusion: synthetic views along a pipe, and hand-built detections."""

from __future__ import annotations

import json

import numpy as np
import pytest

from anomaly_inspection_core.evaluation.matching import match_defects
from anomaly_inspection_core.geometry.camera import CameraIntrinsics, Pose
from anomaly_inspection_core.geometry.fusion import DefectFuser, FusionConfig
from anomaly_inspection_core.geometry.localization import Detection3D, localize_regions, regions_from_anomaly_map
from anomaly_inspection_core.geometry.synthetic import (
    CylinderSurface,
    PlaneSurface,
    gaussian_anomaly_map,
    render_depth,
)

K = CameraIntrinsics.from_fov(640, 480, 60.0).scaled(160, 120)
R = 0.15
PIPE = CylinderSurface(np.array([0.0, 0.0, 1.0]), np.array([3.0, 0.0, 1.0]), R)
GROUND = PlaneSurface(np.array([0.0, 0.0, 0.0]), np.array([0.0, 0.0, 1.0]))


def on_pipe(x: float, angle_deg: float) -> np.ndarray:
    a = np.radians(angle_deg)
    return np.array([x, -R * np.cos(a), 1.0 + R * np.sin(a)])


def det(position, stamp, score=1.0, quality=0.5, label="", extent=0.04, truncated=False, size=None) -> Detection3D:
    p = np.asarray(position, float)
    return Detection3D(
        position=p, extent=np.array([extent, extent, 0.0]), axes=np.eye(3), normal=np.array([0, 0, 1.0]),
        score=score, mean_score=score, label=label, stamp=stamp, view_distance=1.0, incidence_deg=0.0,
        n_points=50, quality=quality, truncated=truncated, camera_position=p + [0, 0, 1.0],
        pixel_bbox=(0, 0, 5, 5), size=None if size is None else np.array([size, size, 0.0]),
    )


def test_two_views_of_one_defect_give_one_fused_defect() -> None:
    fuser = DefectFuser(FusionConfig(min_views=2))
    first = fuser.update([det([1.0, 0.0, 0.0], 0.0, quality=0.2)])
    assert len(first) == 1 and fuser.confirmed() == []
    fuser.update([det([1.02, 0.0, 0.0], 1.0, quality=0.6)])
    (fused,) = fuser.all()
    assert fused.confirmed and fused.views == 2 and fused.id == first[0].id
    assert fused.first_seen == 0.0 and fused.last_seen == 1.0
    # quality-weighted: closer to the better view
    assert fused.position[0] == pytest.approx((1.0 * 0.2 + 1.02 * 0.6) / 0.8)
    assert fused.type == "anomaly" and 0.0 < fused.confidence < 1.0


def test_position_comes_from_whole_views_when_there_are_any() -> None:
    # a floor stain at y = 1.5 seen mostly cut by the frame's bottom band: the cut views place it
    # 4-8 cm farther (y larger), the two whole views within 1 cm
    fuser = DefectFuser(FusionConfig(min_views=2, outlier_m=0.05))
    t = 0.0
    for dy in (0.04, 0.06, 0.08, 0.05, 0.07):
        fuser.update([det([1.0, 1.5 + dy, 0.0], t, truncated=True)])
        t += 1.0
    (track,) = fuser.all()
    assert track.position[1] > 1.53  # only cut views so far: the best there is
    fuser.update([det([1.0, 1.51, 0.0], t)])
    fuser.update([det([1.0, 1.495, 0.0], t + 1.0)])
    (track,) = fuser.all()
    assert track.views == 7
    assert track.position[1] == pytest.approx(1.5025, abs=0.003)


def test_a_patch_only_ever_seen_cut_is_not_confirmed_with_min_whole_views() -> None:
    fuser = DefectFuser(FusionConfig(min_views=2, min_whole_views=1))
    for t in range(4):
        fuser.update([det([1.0, 1.25, 0.0], float(t), truncated=True)])
    (track,) = fuser.all()
    assert track.views == 4 and track.whole_views == 0 and not track.confirmed
    fuser.update([det([1.0, 1.26, 0.0], 4.0)])
    assert fuser.confirmed() and fuser.all()[0].whole_views == 1
    with pytest.raises(ValueError, match="min_whole_views"):
        FusionConfig(min_whole_views=-1)


def test_one_frame_false_positive_is_not_reported() -> None:
    fuser = DefectFuser(FusionConfig(min_views=2))
    fuser.update([det([1.0, 0.0, 0.0], 0.0), det([2.0, 0.0, 0.0], 0.0)])
    fuser.update([det([1.0, 0.01, 0.0], 1.0)])
    assert [d.position[0] for d in fuser.confirmed()] == [pytest.approx(1.0, abs=0.01)]
    assert len(fuser.all()) == 2


def test_low_score_and_label_rules() -> None:
    fuser = DefectFuser(FusionConfig(min_views=2, min_score=0.8))
    fuser.update([det([0, 0, 0], 0.0, score=0.6, label="crack")])
    fuser.update([det([0, 0, 0.01], 1.0, score=0.6, label="crack"),
                  det([0.01, 0, 0], 1.0, score=0.9, label="dent")])
    tracks = fuser.all()
    assert sorted(t.type for t in tracks) == ["crack", "dent"]  # types never associate
    assert fuser.confirmed() == []  # crack seen twice but below min_score; dent once


def test_revisit_with_drift_does_not_duplicate_and_ids_are_stable() -> None:
    fuser = DefectFuser(FusionConfig())
    for k in range(5):
        fuser.update([det([1.0 + 0.005 * k, 0, 0], float(k)), det([1.5, 0, 0.004 * k], float(k))])
    ids = [d.id for d in fuser.confirmed()]
    for k in range(5):  # came back later, localisation drifted by 3 cm
        fuser.update([det([1.03, 0.0, 0.0], 100.0 + k), det([1.5, 0.03, 0.0], 100.0 + k)])
    assert [d.id for d in fuser.confirmed()] == ids
    assert all(d.views == 10 and d.last_seen == 104.0 for d in fuser.confirmed())


def test_duplicate_tracks_are_merged_keeping_the_older_id() -> None:
    fuser = DefectFuser(FusionConfig(gate_m=0.03, merge_m=0.035, size_gate_factor=0.0))
    fuser.update([det([0.0, 0, 0], 0.0)])
    fuser.update([det([0.04, 0, 0], 1.0)])  # outside the 3 cm gate: a second track
    assert len(fuser.all()) == 2
    changed = fuser.update([det([0.02, 0, 0], 2.0)])  # pulls track 1 towards track 2
    assert [t.id for t in fuser.all()] == [1] and fuser.last_removed_ids == [2]
    assert [t.id for t in changed] == [1] and fuser.all()[0].views == 3


def test_same_frame_fragments_join_but_a_nearby_second_defect_does_not() -> None:
    fuser = DefectFuser(FusionConfig(gate_m=0.08, fragment_m=0.04))
    fuser.update([det([0.0, 0, 0], 0.0)])
    fuser.update([det([0.01, 0, 0], 1.0), det([0.03, 0, 0], 1.0)])  # fragments of one defect
    assert len(fuser.all()) == 1 and fuser.all()[0].views == 2
    fuser.update([det([0.0, 0, 0], 2.0), det([0.07, 0, 0], 2.0)])  # a neighbour 7 cm away
    assert len(fuser.all()) == 2


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="gate_m"):
        FusionConfig(gate_m=0.0)
    with pytest.raises(ValueError, match="min_views"):
        FusionConfig(min_views=0)


def test_pass_along_pipe_meets_mission_targets() -> None:
    """Camera moving along a pipe at 1 m: noisy detections, a false positive, nearby defects."""
    rng = np.random.default_rng(3)
    truth = [on_pipe(0.5, 0), on_pipe(1.2, 30), on_pipe(2.0, -25), on_pipe(2.5, 10), on_pipe(2.57, 10),
             np.array([1.6, 0.6, 0.0])]
    gt = [{"id": f"d{i}", "type": "corrosion" if i % 2 else "crack", "position": p.tolist()}
          for i, p in enumerate(truth)]
    fuser = DefectFuser(FusionConfig())
    stamps = np.arange(0.0, 3.01, 0.15)
    for k, x in enumerate(np.concatenate([stamps, stamps[::-2]])):  # there and partly back
        pose = Pose.looking_at(np.array([x, -1.0, 1.1]), np.array([x, 0.0, 0.9]))
        depth, pts, idx = render_depth([PIPE, GROUND], K, pose)
        depth = depth + rng.normal(0, 0.003, depth.shape).astype(np.float32)
        # the last one, a stain on the floor, is larger and seen from farther away
        bumps = [(p + rng.normal(0, 0.01, 3), 0.05 if i == 5 else 0.025, 1.0 + 0.5 * rng.random())
                 for i, p in enumerate(truth)]
        if k == 7:
            bumps.append((np.array([x + 0.1, 0.5, 0.0]), 0.04, 1.3))  # one-frame false positive
        amap = gaussian_anomaly_map(pts, idx, bumps)
        dets = localize_regions(regions_from_anomaly_map(amap, 0.5, 3), depth, K, pose, float(k),
                                anomaly_map=amap)
        fuser.update(dets)
    ev = match_defects(fuser.confirmed(), gt, gate_m=0.10)
    assert ev.recall >= 0.9 and ev.precision >= 0.9, (ev.recall, ev.precision, ev.missed_ground_truth_ids)
    assert ev.median_error_m <= 0.03
    assert len(fuser.confirmed()) == len(truth)


def test_areas_larger_than_max_size_are_not_confirmed() -> None:
    fuser = DefectFuser(FusionConfig(min_views=2, max_size_m=0.5))
    for k in range(3):
        fuser.update([det([1.0, 0.0, 0.0], float(k), extent=0.06), det([3.0, 0.0, 0.0], float(k), extent=1.1)])
    assert [round(d.position[0]) for d in fuser.confirmed()] == [1]  # the metre-long area is dropped
    assert len(fuser.all()) == 2  # but kept as a track
    small, large = fuser.all()
    assert fuser.unmet_rules(small) == [] and fuser.unmet_rules(large) == ["extent 1.10 m > 0.50 m"]
    unlimited = DefectFuser(FusionConfig(min_views=2))
    for k in range(2):
        unlimited.update([det([3.0, 0.0, 0.0], float(k), extent=1.1)])
    assert len(unlimited.confirmed()) == 1


def test_detections_outside_the_inspection_box_are_ignored() -> None:
    box = ((-0.2, -0.2, 0.7), (0.2, 0.2, 1.1))
    fuser = DefectFuser(FusionConfig(min_views=2, inspection_box=box))
    for k in range(3):
        fuser.update([det([0.1, 0.0, 0.9], float(k)), det([0.5, 0.0, 0.75], float(k)), det([-1.0, 2.0, 0.0], float(k))])
    assert [d.position.round(2).tolist() for d in fuser.all()] == [[0.1, 0.0, 0.9]]
    assert len(fuser.confirmed()) == 1
    for bad in (((0, 0, 0), (1, 1)), ((0, 0, 0), (0, 1, 1)), ((0, 0, float("nan")), (1, 1, 1))):
        with pytest.raises(ValueError, match="inspection_box"):
            FusionConfig(inspection_box=bad)


def test_part_bounds_of_boxes_and_cylinders() -> None:
    from anomaly_inspection_core.control.view_planner import part_bounds
    from anomaly_inspection_core.scenario import load_scenario

    lo, hi = part_bounds(load_scenario("workcell_cylinder").workcell.part, margin_m=0.03)
    assert lo == pytest.approx([-0.15, -0.15, 0.72]) and hi == pytest.approx([0.15, 0.15, 1.08])
    lo, hi = part_bounds(load_scenario("workcell_cylinder").workcell.part, margin_m=0.03, below_m=-0.003)
    assert lo == pytest.approx([-0.15, -0.15, 0.753]) and hi == pytest.approx([0.15, 0.15, 1.08])
    part = load_scenario("workcell_casting").workcell.part
    lo, hi = part_bounds(part)
    assert (hi - lo) == pytest.approx(_rotated_extent(part), abs=1e-9)
    # every defect of the shipped cells lies inside its part's box
    for name in ("workcell_casting", "workcell_cylinder", "workcell_plate"):
        scenario = load_scenario(name)
        lo, hi = part_bounds(scenario.workcell.part, margin_m=0.03)
        for d in scenario.defects:
            assert np.all(d.position >= lo) and np.all(d.position <= hi), (name, d.position)


def _rotated_extent(part) -> np.ndarray:
    yaw = np.radians(part.yaw_deg)
    corners = np.array([[sx, sy] for sx in (-0.5, 0.5) for sy in (-0.5, 0.5)]) * np.asarray(part.size[:2])
    rot = np.array([[np.cos(yaw), -np.sin(yaw)], [np.sin(yaw), np.cos(yaw)]])
    xy = corners @ rot.T
    return np.array([np.ptp(xy[:, 0]), np.ptp(xy[:, 1]), part.size[2]])


def test_consistency_rule_needs_detections_in_most_frames_that_saw_the_spot() -> None:
    intr = CameraIntrinsics(160, 120, 100.0, 100.0, 80.0, 60.0)
    spot = np.array([1.0, 0.0, 0.0])  # on the floor z = 0, normal +z (see det())
    above = Pose.looking_at(spot + [0.0, 0.0, 1.0], spot, up=(0.0, 1.0, 0.0))
    floor = np.ones((120, 160), np.float32)  # z-depth of the floor 1 m below a downward camera
    fuser = DefectFuser(FusionConfig(min_views=2, min_hit_ratio=0.5))
    for k in range(2):
        fuser.update([det(spot, float(k))])
        fuser.observe_frame(float(k), above, intr, floor)
    (track,) = fuser.all()
    assert (track.hits, track.visible, track.confirmed) == (2, 2, True)
    # in view but not detected: two more frames keep it (2 of 4), a third retracts it (2 of 5)
    for k in range(2, 5):
        fuser.observe_frame(float(k), above, intr, floor)
    assert (track.hits, track.visible, track.confirmed) == (2, 5, False)
    # frames that could not have seen it do not count against it: occluded, out of the image,
    # inside the ignored border band, beyond max depth
    occluded = np.full((120, 160), 0.5, np.float32)
    aside = Pose.looking_at(spot + [3.0, 0.0, 1.0], spot + [3.0, 0.0, 0.0], up=(0.0, 1.0, 0.0))
    fuser.observe_frame(5.0, above, intr, occluded)
    fuser.observe_frame(6.0, aside, intr, floor)
    fuser.observe_frame(7.0, above, intr, floor, border_px=61)
    fuser.observe_frame(8.0, above, intr, floor, max_depth_m=0.9)
    assert track.visible == 5
    # detected again: 4 hits of 7 frames that saw it, confirmed again
    for k in (9, 10):
        fuser.update([det(spot, float(k))])
        fuser.observe_frame(float(k), above, intr, floor)
    assert (track.hits, track.visible, track.confirmed) == (4, 7, True)
    assert track.to_dict()["visible_views"] == 7
    # without the rule (the default) visibility is counted but never retracts
    off = DefectFuser(FusionConfig(min_views=2))
    for k in range(2):
        off.update([det(spot, float(k))])
    for k in range(2, 9):
        off.observe_frame(float(k), above, intr, floor)
    assert off.confirmed()


def test_unmet_rules_name_what_a_tentative_track_lacks() -> None:
    fuser = DefectFuser(FusionConfig(min_views=4, min_score=0.45))
    fuser.update([det([1.0, 0.0, 0.0], 0.0, score=0.40)])
    fuser.update([det([1.0, 0.0, 0.0], 1.0, score=0.40)])
    (track,) = fuser.all()
    assert fuser.unmet_rules(track) == ["2 views < 4", "score 0.40 < 0.45"]


def test_describe_gives_a_tracks_facts_and_unmet_rules_as_plain_json() -> None:
    fuser = DefectFuser(FusionConfig(min_views=2, min_score=0.45))
    fuser.update([det([1.0, 0.0, 0.0], 0.0, score=0.40)])
    fuser.update([det([1.0, 0.0, 0.0], 1.0, score=0.40)])
    (track,) = fuser.all()
    d = fuser.describe(track)
    assert json.loads(json.dumps(d)) == d
    assert d["position_m"] == pytest.approx([1.0, 0.0, 0.0]) and d["views"] == 2 and not d["confirmed"]
    assert d["score"] == pytest.approx(0.40) and d["unmet_rules"] == ["score 0.40 < 0.45"]


def test_weak_but_consistent_track_is_confirmed_after_many_views_and_only_while_consistent() -> None:
    """A small plate defect's views averaged 0.34-0.38 against the 0.4 score rule while it was
    detected in 61-79 % of the 160 frames that saw it; false tracks that consistent were rare."""
    intr = CameraIntrinsics(160, 120, 100.0, 100.0, 80.0, 60.0)
    spot = np.array([1.0, 0.0, 0.0])
    above = Pose.looking_at(spot + [0.0, 0.0, 1.0], spot, up=(0.0, 1.0, 0.0))
    floor = np.ones((120, 160), np.float32)
    cfg = dict(min_views=2, min_score=0.4, min_hit_ratio=0.4)
    weak, strict = DefectFuser(FusionConfig(**cfg, weak_min_views=6)), DefectFuser(FusionConfig(**cfg))
    for k in range(6):
        for fuser in (weak, strict):
            fuser.update([det(spot, float(k), score=0.34)])
            fuser.observe_frame(float(k), above, intr, floor)
        if k < 5:
            assert not weak.confirmed()
            assert weak.unmet_rules(weak.all()[0])[-1] == f"score 0.34 < 0.40 and {k + 1} views < 6"
    assert weak.confirmed() and not strict.confirmed()
    assert strict.unmet_rules(strict.all()[0]) == ["score 0.34 < 0.40"]
    # it needs its own, stronger consistency (weak_min_hit_ratio 0.6): seen but missed in 3 more
    # frames (6 of 9 = 0.67) it stays, in a 4th (6 of 10) too, in a 5th (6 of 11) it is retracted,
    # while min_hit_ratio (0.4) alone would keep it
    for k in range(6, 10):
        weak.observe_frame(float(k), above, intr, floor)
    assert weak.confirmed()
    weak.observe_frame(10.0, above, intr, floor)
    assert not weak.confirmed() and weak.consistent(weak.all()[0])
    assert weak.unmet_rules(weak.all()[0]) == ["score 0.34 < 0.40 and detected in 6 of 11 < 0.60"]
    # detected again in two frames (8 of 13), it is back
    for k in (11, 12):
        weak.update([det(spot, float(k), score=0.34)])
        weak.observe_frame(float(k), above, intr, floor)
    assert weak.confirmed()
    with pytest.raises(ValueError, match="weak_min_hit_ratio"):
        FusionConfig(min_views=2, weak_min_views=6, weak_min_hit_ratio=0.0)


def test_strong_but_brief_track_is_confirmed_with_few_views_and_only_while_detected_in_each() -> None:
    """An AGV passing a 10 cm dent had it in view in 4 frames and flagged it in all 4 (score 0.99),
    under the 6-view rule; false tracks of unfamiliar views scored 0.47-0.64 or came and went."""
    intr = CameraIntrinsics(160, 120, 100.0, 100.0, 80.0, 60.0)
    spot, faint = np.array([1.0, 0.0, 0.0]), np.array([1.5, 0.0, 0.0])
    above = Pose.looking_at(np.array([1.25, 0.0, 1.0]), np.array([1.25, 0.0, 0.0]), up=(0.0, 1.0, 0.0))
    floor = np.ones((120, 160), np.float32)
    cfg = dict(min_views=6, min_score=0.45, min_hit_ratio=0.4)
    brief, strict = DefectFuser(FusionConfig(**cfg, brief_min_views=3)), DefectFuser(FusionConfig(**cfg))
    for k in range(3):
        for fuser in (brief, strict):
            fuser.update([det(spot, float(k), score=0.95), det(faint, float(k), score=0.6)])
            fuser.observe_frame(float(k), above, intr, floor)
        if k < 2:
            assert not brief.confirmed()
    strong = min(brief.all(), key=lambda t: np.linalg.norm(t.position - spot))
    weak = min(brief.all(), key=lambda t: np.linalg.norm(t.position - faint))
    assert [t.id for t in brief.confirmed()] == [strong.id] and not strict.confirmed()
    assert brief.unmet_rules(strong) == []
    assert brief.unmet_rules(weak) == ["3 views < 6 and score 0.60 < 0.80"]
    assert strict.unmet_rules(strict.all()[0]) == ["3 views < 6"]
    # a 4th frame that sees it and misses it retracts it (3 of 4 < 1.0)...
    brief.observe_frame(3.0, above, intr, floor)
    assert not brief.confirmed()
    assert brief.unmet_rules(strong) == ["3 views < 6 and detected in 3 of 4 < 1.00"]
    # ...and the 6-view rule, once met, does not retract
    for k in range(4, 7):
        brief.update([det(spot, float(k), score=0.95)])
        brief.observe_frame(float(k), above, intr, floor)
    assert [t.id for t in brief.confirmed()] == [strong.id]
    for bad in (dict(brief_min_views=6), dict(brief_min_views=-1), dict(brief_min_views=3, brief_min_hit_ratio=0.0)):
        with pytest.raises(ValueError, match="brief_min"):
            FusionConfig(**cfg | bad)


def test_a_track_reports_the_defects_size_and_gates_on_its_regions_extent() -> None:
    """Regions are a blur's width wider than the defect: association and the max-size rule use
    the regions' extent, the report the estimated size."""
    fuser = DefectFuser(FusionConfig(min_views=2, max_size_m=0.2))
    for k, dx in enumerate((0.0, 0.11, 0.0)):  # 11 cm: within the gate of the 16 cm region (12 cm), not of a 6 cm one
        fuser.update([det([1.0 + dx, 0.0, 0.0], float(k), extent=0.16, size=0.06)])
    (track,) = fuser.all()
    assert track.views == 3 and track.confirmed
    assert track.extent[0] == pytest.approx(0.16) and track.size[0] == pytest.approx(0.06)
    assert fuser.describe(track)["size_m"] == pytest.approx(0.06)
    assert fuser.describe(track)["extent_m"] == pytest.approx(0.16)
    assert track.to_dict()["size_m"][0] == pytest.approx(0.06)
    big = DefectFuser(FusionConfig(min_views=2, max_size_m=0.2))
    for k in range(3):
        big.update([det([1.0, 0.0, 0.0], float(k), extent=0.4, size=0.1)])
    assert big.confirmed() == []  # its region is too large, whatever the size estimate


def test_the_max_size_rule_can_limit_the_estimated_size_instead_of_the_regions_extent() -> None:
    """A far, oblique floor stain: its regions are wide in metres (the blur's pixels at range),
    its estimated size is not. With size_rule 'size' it is confirmed; a metre-wide area is not."""
    by_size = DefectFuser(FusionConfig(min_views=2, max_size_m=0.6, size_rule="size"))
    by_extent = DefectFuser(FusionConfig(min_views=2, max_size_m=0.6))
    for k in range(3):
        frame = [det([1.0, 0.0, 0.0], float(k), extent=0.9, size=0.34),
                 det([3.0, 0.0, 0.0], float(k), extent=1.6, size=1.2)]
        by_size.update(frame)
        by_extent.update(frame)
    assert [round(d.position[0]) for d in by_size.confirmed()] == [1]
    assert by_size.unmet_rules(by_size.all()[1]) == ["size 1.20 m > 0.60 m"]
    assert by_extent.confirmed() == []
    assert by_extent.unmet_rules(by_extent.all()[0]) == ["extent 0.90 m > 0.60 m"]
    with pytest.raises(ValueError, match="size_rule"):
        FusionConfig(size_rule="area")
