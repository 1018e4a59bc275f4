"""Rendering against analytic geometry: depth of a plane and a cylinder, defect masks, dents."""

from __future__ import annotations

import numpy as np
import pytest

from anomaly_inspection_core.geometry.camera import Pose
from anomaly_inspection_core.scenario import parse_scenario

pytest.importorskip("mujoco")

SCN = {
    "name": "render_test", "kind": "pipeline", "seed": 3,
    "camera": {"width": 160, "height": 120, "fov_y_deg": 50.0, "max_range": 8.0},
    "lighting": {"shadows": False},
    "pipeline": {"points": [[0, 0, 1.2], [6, 0, 1.2]], "radius": 0.15, "support_spacing": 10.0,
                 "weld_spacing": 2.5, "flange_spacing": 10.0},
    "defects": [
        {"type": "corrosion", "position": [2.0, 0.15, 1.2], "size": 0.08},
        {"type": "dent", "position": [3.0, 0.15, 1.2], "size": 0.1, "depth": 0.02},
    ],
}


@pytest.fixture(scope="module")
def worlds():
    from anomaly_inspection_core.sim import SimWorld

    scn = parse_scenario(SCN)
    world, clean = SimWorld(scn), SimWorld(scn.clean_twin())
    yield world, clean
    world.close()
    clean.close()


def _expected_depth(frame, radius=0.15, axis_z=1.2):
    """Analytic z-depth of each pixel: nearest hit of the ray with the pipe (axis along x) or ground."""
    rays_cam = frame.intrinsics.pixel_rays().reshape(-1, 3)
    rot, origin = frame.pose.rotation, frame.pose.position
    d = rays_cam @ rot.T  # map-frame direction per unit z-depth
    best = np.full(len(d), np.inf)
    with np.errstate(divide="ignore", invalid="ignore"):
        t_ground = -origin[2] / d[:, 2]
    best = np.where((t_ground > 0), t_ground, best)
    oy, oz = origin[1], origin[2] - axis_z
    a = d[:, 1] ** 2 + d[:, 2] ** 2
    b = 2 * (oy * d[:, 1] + oz * d[:, 2])
    c = oy ** 2 + oz ** 2 - radius ** 2
    disc = b * b - 4 * a * c
    with np.errstate(invalid="ignore"):
        t_cyl = (-b - np.sqrt(disc)) / (2 * a)
    hit = (disc > 0) & (t_cyl > 0)
    x_at = origin[0] + t_cyl * d[:, 0]
    hit &= (x_at > 0) & (x_at < 6)
    best = np.where(hit & (t_cyl < best), t_cyl, best)
    return best.reshape(frame.depth.shape), hit.reshape(frame.depth.shape)


def test_depth_matches_plane_and_cylinder(worlds):
    world, _ = worlds
    frame = world.render(Pose.looking_at([1.0, 1.0, 1.4], [1.0, 0.0, 1.0]))
    assert frame.rgb.shape == (120, 160, 3) and frame.depth.dtype == np.float32
    expected, on_pipe = _expected_depth(frame)
    finite = np.isfinite(frame.depth)
    # Pixels straddling a silhouette mix surfaces; compare the interior ones.
    interior = np.ones_like(on_pipe)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            interior &= np.roll(np.roll(on_pipe, dy, 0), dx, 1) == on_pipe
    cyl = finite & on_pipe & interior
    ground = finite & ~on_pipe & interior & np.isfinite(expected)
    assert cyl.sum() > 2000 and ground.sum() > 2000
    assert np.max(np.abs(frame.depth[cyl] - expected[cyl])) < 0.01
    assert np.max(np.abs(frame.depth[ground] - expected[ground])) < 0.01
    # Sky: no return.
    assert np.all(~finite[~np.isfinite(expected) & interior])


def test_defect_pixels_where_ground_truth_says(worlds):
    world, clean = worlds
    pose = Pose.looking_at([2.0, 1.0, 1.2], [2.0, 0.0, 1.2])
    frame = world.render(pose)
    assert frame.defects_in_view == [1]
    defect = world.defect_by_id[1]
    uv, _ = frame.intrinsics.project(pose.inverse().transform_points(defect.position))
    u, v = np.round(uv[0]).astype(int)
    assert frame.defect_ids[v, u] == 1
    vs, us = np.nonzero(frame.defect_ids == 1)
    assert len(vs) > 20
    pts = pose.transform_points(frame.intrinsics.backproject(us, vs, frame.depth[vs, us]))
    assert np.max(np.linalg.norm(pts - defect.position, axis=1)) < defect.size / 2 + 0.01
    twin = clean.render(pose)
    assert twin.defects_in_view == [] and not twin.defect_ids.any()
    assert np.abs(twin.rgb[vs, us].astype(int) - frame.rgb[vs, us].astype(int)).mean() > 20


def test_dent_changes_depth(worlds):
    world, clean = worlds
    pose = Pose.looking_at([3.0, 1.0, 1.2], [3.0, 0.0, 1.2])
    dented, smooth = world.render(pose), clean.render(pose)
    v, u = 60, 80  # optical axis hits the dent centre (cx, cy = 79.5, 59.5)
    assert smooth.depth[v, u] == pytest.approx(0.85, abs=0.003)
    assert dented.depth[v, u] - smooth.depth[v, u] == pytest.approx(0.02 - 0.0015, abs=0.003)
    assert dented.defect_ids[v, u] == 2


def test_dent_is_a_bowl_of_its_size_not_a_groove(worlds):
    """The dent changes depth and colour only inside its own footprint (on a straight run its rings
    were once built at the pipe's end: the dent was drawn with the 0.1 m rings, as a faceted
    groove 0.2 m long with shading streaks that the clean twin does not have)."""
    import cv2

    world, clean = worlds
    pose = Pose.looking_at([3.0, 0.6, 1.3], [3.0, 0.0, 1.2])
    dented, smooth = world.render(pose), clean.render(pose)
    pts = pose.transform_points(dented.intrinsics.backproject(
        *np.meshgrid(np.arange(160), np.arange(120)), smooth.depth)).reshape(120, 160, 3)
    lateral = np.linalg.norm((pts - np.array([3.0, 0.15, 1.2]))[..., [0, 2]], axis=-1)
    outside = np.isfinite(smooth.depth) & (lateral > 0.05 + 0.01)  # beyond the 0.1 m dent's rim
    depth_diff = np.abs(np.nan_to_num(dented.depth - smooth.depth))
    assert (depth_diff[outside] > 0.002).sum() == 0
    colour_diff = np.abs(dented.rgb.astype(int) - smooth.rgb.astype(int)).sum(axis=2)
    mask = cv2.dilate((dented.defect_ids == 2).astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    assert (colour_diff[outside & ~mask] > 12).sum() <= 5


def test_default_trajectory_views_pipe_from_inspection_side(worlds):
    world, _ = worlds
    poses = world.default_trajectory(5)
    assert len(poses) == 5
    for p in poses:
        assert p.position[1] == pytest.approx(1.0) and p.position[2] == pytest.approx(1.2)
        np.testing.assert_allclose(p.rotation[:, 2], [0, -1, 0], atol=1e-9)


def test_pipeline_shadow_map_follows_the_camera():
    """A pipeline's sun shadow map is 12 m wide and centred ahead of the camera (scene-wide it was
    7-12 mm per texel over a pipeline: weld beads and elbows cast jagged teeth); a workcell
    keeps MuJoCo's scene-wide map."""
    from anomaly_inspection_core.sim import SimWorld

    scn = parse_scenario({**SCN, "lighting": {"shadows": True},
                          "pipeline": {**SCN["pipeline"], "points": [[0, 0, 1.2], [30, 0, 1.2]]}})
    with SimWorld(scn) as world:
        extent = float(world.model.stat.extent)
        assert float(world.model.vis.map.shadowclip) * extent == pytest.approx(6.0)
        sun = world._sun_id
        for x in (2.0, 21.0):
            world.render(Pose.looking_at(np.array([x, 0.8, 1.5]), np.array([x, 0.0, 1.2])))
            sun_dir = world.model.light_dir[sun]
            centre = world.model.light_pos[sun] + 15.0 * sun_dir
            # 1.5 m ahead of the camera, on a 0.25 m grid
            ahead = np.array([x, 0.8, 1.5]) + 1.5 * (np.array([0, -0.8, -0.3]) / np.linalg.norm([0, -0.8, -0.3]))
            assert np.abs(centre - ahead).max() <= 0.125 + 1e-6
    from anomaly_inspection_core.scenario import load_scenario

    with SimWorld(load_scenario("workcell_plate"), 64, 48) as world:
        assert not world._shadow_follows_camera
        assert float(world.model.vis.map.shadowclip) == pytest.approx(0.8)


def test_a_weld_bead_changes_the_image_only_where_it_is():
    """Weld beads cast no shadow (the 5.9 mm shadow texels drew a bead's true few-mm shadow as
    jagged teeth beside it that crawl as the sun drifts, read as anomalies at welds): a pipe with
    a weld looks like the same pipe without one everywhere but on the bead itself."""
    from anomaly_inspection_core.scenario.loader import weld_half_width
    from anomaly_inspection_core.sim import SimWorld

    lighting = {"shadows": True, "sun_azimuth_deg": 0.0, "sun_elevation_deg": 40.0, "variation": 0.0}
    base = {**SCN, "camera": {**SCN["camera"], "width": 320, "height": 240}, "lighting": lighting, "defects": []}
    welded = parse_scenario({**base, "pipeline": {**SCN["pipeline"], "weld_spacing": 3.0}})
    plain = parse_scenario({**base, "pipeline": {**SCN["pipeline"], "weld_spacing": 10.0}})
    pose = Pose.looking_at([3.0, 0.55, 1.45], [3.0, 0.0, 1.2])
    with SimWorld(welded) as w, SimWorld(plain) as p:
        a, b = w.render(pose), p.render(pose)
    ys, xs = np.meshgrid(np.arange(240), np.arange(320), indexing="ij")
    pts = pose.transform_points(a.intrinsics.backproject(xs, ys, b.depth)).reshape(240, 320, 3)
    beyond_bead = np.isfinite(b.depth) & (np.abs(pts[..., 0] - 3.0) > weld_half_width(0.15) + 0.004)
    assert beyond_bead.sum() > 20000
    colour_diff = np.abs(a.rgb.astype(int) - b.rgb.astype(int)).sum(axis=2)
    assert (colour_diff[beyond_bead] > 12).sum() <= 10


def test_ground_shows_no_shadow_acne():
    """The ground shadowed itself with acne: rings of dark dots that moved with the sun, seen
    beyond a pipe's end (generated pipeline 4, where the detector read them as anomalies). It
    casts no shadow now. Counted: pixels 20 levels darker than their 5x5 median, looking at the
    pipe's end from 0.77 m, 30 deg up (942-1483 before, at three sun positions; 139-154 now)."""
    import cv2

    from anomaly_inspection_core.scenario.generate import random_pipeline_scenario
    from anomaly_inspection_core.scenario.surfaces import pipe_centreline
    from anomaly_inspection_core.sim import SimWorld

    scn = parse_scenario(random_pipeline_scenario(4)).clean_twin()
    cl = pipe_centreline(scn.pipeline.points, scn.pipeline.bend_radius)
    end, along = (v[0] for v in cl.at(np.array([cl.length])))
    side = np.cross([0.0, 0.0, 1.0], along)
    side /= np.linalg.norm(side)
    pose = Pose.looking_at(end + 0.77 * (np.cos(np.pi / 6) * side + np.array([0.0, 0.0, 0.5])), end + 0.15 * along)
    dots = []
    with SimWorld(scn, 320, 240) as world:
        for t in (0.0, 20.0, 40.0):
            grey = cv2.cvtColor(world.render(pose, time_s=t).rgb, cv2.COLOR_RGB2GRAY)
            dots.append(int(((cv2.medianBlur(grey, 5).astype(int) - grey.astype(int)) > 20).sum()))
    assert max(dots) <= 200, dots


def test_a_world_dropped_after_another_was_built_leaves_that_one_rendering():
    # two live worlds (a script switching scenarios): freeing the old world's render context
    # used to delete the new world's GL objects, whose renders then came out black, no depth
    import gc

    from anomaly_inspection_core.sim import SimWorld

    scn = parse_scenario(SCN)
    pose = Pose.looking_at(np.array([2.0, 1.0, 1.2]), np.array([2.0, 0.0, 1.2]))
    with SimWorld(scn) as ref:
        expected = ref.render(pose)
    old = SimWorld(scn.clean_twin())
    old.render(pose)
    new = SimWorld(scn)
    del old
    gc.collect()
    got = new.render(pose)
    new.close()
    assert np.isfinite(expected.depth).mean() > 0.5
    np.testing.assert_array_equal(got.rgb, expected.rgb)
    np.testing.assert_allclose(got.depth, expected.depth, equal_nan=True)
