"""View planning around a workcell part, reachability, tour order and surface coverage."""

from __future__ import annotations

import math

import numpy as np
import pytest

from anomaly_inspection_core.control.arm import workcell_arm, workcell_scene
from anomaly_inspection_core.geometry.camera import rotation_angle_deg
from anomaly_inspection_core.control.coverage import compute_coverage, sample_part_surface, visible_from
from anomaly_inspection_core.control.ik import solve_ik
from anomaly_inspection_core.control.view_planner import plan_views, plan_views_filled, tour_time, view_directions
from anomaly_inspection_core.geometry.camera import CameraIntrinsics, Pose
from anomaly_inspection_core.scenario import load_scenario
from anomaly_inspection_core.scenario.schema import BoxSpec, CylinderSpec

K = CameraIntrinsics.from_fov(640, 480, 50.0)
BOX = BoxSpec("part", np.array([0.0, 0.0, 0.85]), np.array([0.4, 0.3, 0.2]))


@pytest.fixture(scope="module")
def cell():
    wc = load_scenario("workcell_casting").workcell
    arm = workcell_arm(wc)
    scene = workcell_scene(wc)
    views = plan_views(wc.part, wc.standoff, 16, arm, pattern="spiral", scene=scene)
    return wc, arm, scene, views


def _face_views(distance: float = 0.5) -> dict[str, Pose]:
    c = BOX.position
    h = BOX.size / 2.0
    out = {}
    for name, n in (("top", [0, 0, 1]), ("+x", [1, 0, 0]), ("-x", [-1, 0, 0]), ("+y", [0, 1, 0]), ("-y", [0, -1, 0])):
        n = np.asarray(n, float)
        face_centre = c + n * h[np.argmax(np.abs(n))]
        up = (1.0, 0.0, 0.0) if name == "top" else (0.0, 0.0, 1.0)
        out[name] = Pose.looking_at(face_centre + distance * n, face_centre, up=up)
    return out


def test_five_faces_each_seen_by_one_view_is_full_coverage():
    res = compute_coverage(BOX, list(_face_views().values()), K)
    assert res.fraction == pytest.approx(1.0, abs=1e-12)
    assert res.total_area_m2 == pytest.approx(0.4 * 0.3 + 2 * 0.4 * 0.2 + 2 * 0.3 * 0.2, rel=1e-12)
    # Straight-on views see only their own face (neighbours at 90 deg incidence).
    np.testing.assert_allclose(sorted(res.per_view), sorted([0.3, 0.15, 0.15, 0.2, 0.2]), atol=1e-12)


def test_only_the_top_view_covers_the_top_share():
    res = compute_coverage(BOX, [_face_views()["top"]], K)
    assert res.fraction == pytest.approx(0.12 / 0.40, abs=1e-12)
    assert res.per_face == {"top": 1.0, "+x": 0.0, "-x": 0.0, "+y": 0.0, "-y": 0.0}


def test_coverage_by_at_least_n_views_counts_only_cells_seen_that_often():
    views = _face_views()
    oblique = Pose.looking_at(BOX.position + np.array([0.5, 0.0, 0.5]), BOX.position, up=(0.0, 0.0, 1.0))
    poses = list(views.values()) + [oblique]  # the oblique view sees the top and +x (45 deg) again
    once = compute_coverage(BOX, poses, K)
    twice = compute_coverage(BOX, poses, K, min_views=2)
    assert once.fraction == pytest.approx(1.0, abs=1e-12)
    assert twice.per_face["-x"] == 0.0 and twice.per_face["+y"] == 0.0
    assert twice.per_face["top"] > 0.9 and twice.per_face["+x"] > 0.5
    top_x = 0.12 * twice.per_face["top"] + 0.06 * twice.per_face["+x"]
    assert twice.fraction == pytest.approx(top_x / 0.40, abs=1e-9)
    with pytest.raises(ValueError, match="min_views"):
        compute_coverage(BOX, poses, K, min_views=0)


def test_resolution_and_incidence_thresholds_reject_views():
    far = Pose.looking_at(BOX.position + [0.0, 0.0, 3.0], BOX.position, up=(1.0, 0.0, 0.0))
    # At 2.9 m a 640 px, 50 deg camera gives ~1.8 px/cm: below 4, enough for 1.
    assert compute_coverage(BOX, [far], K).fraction == 0.0
    assert compute_coverage(BOX, [far], K, min_px_per_cm=1.0).fraction == pytest.approx(0.3, abs=1e-12)
    # A grazing view of the top face (80 deg incidence) is rejected at 60, accepted at 85.
    eye = BOX.position + [0.0, 0.0, 0.1] + 0.6 * np.array([math.cos(math.radians(10)), 0.0, math.sin(math.radians(10))])
    graze = Pose.looking_at(eye, BOX.position + [0.0, 0.0, 0.1])
    samples = sample_part_surface(BOX)
    top = samples.faces == samples.face_names.index("top")
    assert not visible_from(samples, graze, K)[top].any()
    assert visible_from(samples, graze, K, max_incidence_deg=85.0)[top].mean() > 0.5


def test_cylinder_samples_have_the_analytic_area():
    cyl = CylinderSpec("c", np.array([0.0, 0.0, 0.75]), 0.15, 0.3)
    s = sample_part_surface(cyl, spacing_m=0.01)
    assert s.total_area == pytest.approx(2 * math.pi * 0.15 * 0.3 + math.pi * 0.15 ** 2, rel=1e-12)
    assert set(s.face_names) == {"side", "top"}


def test_view_directions_patterns():
    for pattern in ("hemisphere", "spiral"):
        d = view_directions(20, pattern, 20.0, 85.0)
        assert d.shape == (20, 3)
        np.testing.assert_allclose(np.linalg.norm(d, axis=1), 1.0)
        el = np.degrees(np.arcsin(d[:, 2]))
        assert el.min() >= 20.0 - 1e-9 and el.max() <= 85.0 + 1e-9
    with pytest.raises(ValueError, match="pattern"):
        view_directions(5, "zigzag")


def test_planned_views_are_reached_by_ik_within_1mm_and_half_degree(cell):
    wc, arm, scene, views = cell
    assert len(views) >= 14
    for v in views:
        assert v.reachable
        # Look where planned, from where planned.
        assert np.linalg.norm(v.pose.position - v.planned_pose.position) < 1e-3
        res = solve_ik(arm, v.pose, arm.home_array, scene)
        assert res.success
        got = arm.camera_pose(res.q)
        assert np.linalg.norm(got.position - v.pose.position) < 1e-3
        assert rotation_angle_deg(got.rotation, v.pose.rotation) < 0.5
        assert not scene.in_collision(arm, res.q)


def test_default_plan_covers_at_least_95_percent(cell):
    wc, arm, scene, views = cell
    res = compute_coverage(wc.part, [v.pose for v in views], K)
    assert res.fraction >= 0.95
    assert min(res.per_face.values()) >= 0.9


def test_tour_order_is_shorter_than_candidate_order(cell):
    wc, arm, scene, views = cell
    by_index = sorted(views, key=lambda v: v.index)
    rng = np.random.default_rng(0)
    shuffled = [views[i] for i in rng.permutation(len(views))]
    assert tour_time(arm, views) <= tour_time(arm, by_index) + 1e-9
    assert tour_time(arm, views) < tour_time(arm, shuffled)


def test_unreachable_views_are_dropped(cell):
    wc, arm, scene, _ = cell
    views = plan_views(wc.part, 1.6, 4, arm, scene=scene, keep_unreachable=True)
    assert len(views) == 4 and not any(v.reachable for v in views)
    assert plan_views(wc.part, 1.6, 4, arm, scene=scene) == []


def test_close_views_are_filled_in_from_farther_where_they_leave_gaps(cell):
    wc, arm, scene, _ = cell
    surface = sample_part_surface(wc.part)

    def coverage(poses):
        return compute_coverage(surface, poses, K).fraction

    plan = dict(pattern="spiral", scene=scene)
    close = plan_views(wc.part, 0.45, 16, arm, **plan)
    close_cov = coverage([v.pose for v in close])
    assert close_cov < 0.9  # the casting's long faces do not fit into views from 0.45 m
    views, n_fill, cov = plan_views_filled(wc.part, 0.45, 0.6, 16, arm, coverage, 0.97, **plan)
    assert 0 < n_fill <= 8 and len(views) == len(close) + n_fill and cov >= 0.97
    assert cov == pytest.approx(coverage([v.pose for v in views]))
    assert sorted(v.index for v in views) == sorted([v.index for v in close] + list(range(16, 16 + n_fill)))
    assert tour_time(arm, views) <= tour_time(arm, sorted(views, key=lambda v: v.index)) + 1e-9
    # enough already, or no fill standoff: the close views alone
    views, n_fill, cov = plan_views_filled(wc.part, 0.45, 0.6, 16, arm, coverage, 0.8, **plan)
    assert n_fill == 0 and cov == pytest.approx(close_cov)
    assert plan_views_filled(wc.part, 0.45, 0.0, 16, arm, coverage, 0.97, **plan)[1] == 0
