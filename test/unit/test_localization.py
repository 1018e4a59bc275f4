"""Back-projection of planted regions on an analytic plane and cylinder from known poses."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from anomaly_inspection_core.geometry.camera import CameraIntrinsics, Pose
from anomaly_inspection_core.geometry.localization import (
    LocalizationConfig,
    RegionObservation,
    align_depth,
    localize_regions,
    regions_from_anomaly_map,
    split_region_mask,
)
from anomaly_inspection_core.geometry.synthetic import (
    CylinderSurface,
    PlaneSurface,
    defect_mask,
    gaussian_anomaly_map,
    render_depth,
)

K = CameraIntrinsics.from_fov(320, 240, 60.0)
PLANE = PlaneSurface(np.array([0.0, 0.0, 0.0]), np.array([0.0, 0.0, 1.0]))
RADIUS = 0.15
CYL = CylinderSurface(np.array([-2.0, 1.0, 0.3]), np.array([2.0, 1.0, 0.3]), RADIUS)
PLANE_DEFECT = np.array([0.3, 0.0, 0.0])
ANGLE = 0.5  # rad from +z towards -y on the cylinder
CYL_DEFECT = np.array([0.1, 1.0 - RADIUS * np.sin(ANGLE), 0.3 + RADIUS * np.cos(ANGLE)])
CYL_NORMAL = np.array([0.0, -np.sin(ANGLE), np.cos(ANGLE)])
POSES = [
    Pose.looking_at(np.array([0.2, -0.8, 1.0]), np.array([0.2, 0.4, 0.2])),
    Pose.looking_at(np.array([0.5, -0.5, 0.9]), np.array([0.2, 0.4, 0.2])),
    Pose.looking_at(np.array([-0.3, -0.2, 1.2]), np.array([0.2, 0.5, 0.1])),
]


def _frame(pose: Pose, noise_m: float = 0.0, seed: int = 0):
    depth, pts, idx = render_depth([PLANE, CYL], K, pose)
    if noise_m:
        depth = depth + np.random.default_rng(seed).normal(0, noise_m, depth.shape).astype(np.float32)
    regions = [
        RegionObservation(mask=defect_mask(pts, idx, PLANE_DEFECT, 0.03, 0), peak_score=1.2,
                          mean_score=0.8),
        RegionObservation(mask=defect_mask(pts, idx, CYL_DEFECT, 0.03, 1), peak_score=1.2,
                          mean_score=0.8),
    ]
    return depth, pts, idx, regions


@pytest.mark.parametrize("pose", POSES)
@pytest.mark.parametrize("noise_m", [0.0, 0.005])
def test_plane_and_cylinder_positions_within_1cm_plus_noise(pose: Pose, noise_m: float) -> None:
    depth, _, _, regions = _frame(pose, noise_m)
    dets = localize_regions(regions, depth, K, pose, stamp=1.0)
    assert len(dets) == 2
    plane, cyl = dets
    tol = 0.01 + noise_m
    assert np.linalg.norm(plane.position - PLANE_DEFECT) < tol
    assert np.linalg.norm(cyl.position - CYL_DEFECT) < tol
    # normals: the plane's exactly +z, the cylinder's radial direction within a few degrees
    assert np.degrees(np.arccos(plane.normal @ np.array([0, 0, 1.0]))) < 2.0 + 400 * noise_m
    assert np.degrees(np.arccos(cyl.normal @ CYL_NORMAL)) < 5.0 + 400 * noise_m
    # a 6 cm disc: in-surface extents close to 6 cm
    assert plane.extent[:2] == pytest.approx([0.06, 0.06], abs=0.008)
    assert cyl.extent[:2] == pytest.approx([0.06, 0.06], abs=0.012)
    for det in dets:
        assert det.stamp == 1.0 and 0.0 < det.quality <= 1.0 and not det.truncated
        assert det.view_distance == pytest.approx(np.linalg.norm(det.position - pose.position))
        assert np.allclose(det.axes.T @ det.axes, np.eye(3), atol=1e-9)
        assert np.linalg.det(det.axes) == pytest.approx(1.0)
        assert np.allclose(det.axes[:, 2], det.normal)


def test_background_pixels_in_mask_are_rejected() -> None:
    """A mask spilling over the cylinder's silhouette onto the floor keeps the cylinder depth."""
    pose = POSES[0]
    depth, pts, idx, _ = _frame(pose)
    on_cyl = defect_mask(pts, idx, CYL_DEFECT, 0.03, 1)
    ys, xs = np.nonzero(on_cyl)
    leak = np.zeros_like(on_cyl)
    leak[ys.min():ys.max() + 1, xs.min():xs.max() + 1] = True
    floor_pixels = np.argwhere(idx == 0)[:40]
    leak[floor_pixels[:, 0], floor_pixels[:, 1]] = True  # 40 far-away background pixels
    dets = localize_regions([RegionObservation(mask=leak)], depth, K, pose, 0.0)
    assert len(dets) == 1
    assert np.linalg.norm(dets[0].position - CYL_DEFECT) < 0.015


def test_invalid_depth_and_bbox_cropped_masks() -> None:
    pose = POSES[1]
    depth, pts, idx, regions = _frame(pose)
    full = regions[0].mask
    ys, xs = np.nonzero(full)
    x, y, w, h = xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1
    cropped = RegionObservation(bbox=(x, y, w, h), mask=full[y:y + h, x:x + w], peak_score=1.0)
    depth = depth.copy()
    depth[y:y + h // 2, x:x + w] = np.nan  # half the region has no depth
    depth[y + h // 2, x:x + w] = 50.0  # out of range
    det = localize_regions([cropped], depth, K, pose, 0.0)[0]
    # only the lower half is measured: the centroid moves down the disc but stays on the plane
    assert abs(det.position[2]) < 1e-3
    all_nan = np.full_like(depth, np.nan)
    assert localize_regions([cropped], all_nan, K, pose, 0.0) == []


def test_depth_of_another_resolution_is_resampled_or_refused(caplog) -> None:
    pose = POSES[0]
    k_half = K.scaled(160, 120)
    depth_half, _, _ = render_depth([PLANE, CYL], k_half, pose)
    _, _, _, regions = _frame(pose)
    dets = localize_regions(regions, depth_half, K, pose, 0.0)
    assert len(dets) == 2
    assert np.linalg.norm(dets[0].position - PLANE_DEFECT) < 0.015
    assert np.linalg.norm(dets[1].position - CYL_DEFECT) < 0.015
    with caplog.at_level(logging.WARNING):
        assert localize_regions(regions, np.ones((100, 100), np.float32), K, pose, 0.0) == []
    assert "100x100" in caplog.text and "refused" in caplog.text
    # same size but a different camera (not registered): refused too
    other = CameraIntrinsics(320, 240, K.fx * 1.2, K.fy * 1.2, K.cx, K.cy)
    with caplog.at_level(logging.WARNING):
        assert align_depth(np.ones((240, 320)), K, other) is None
    # consistent depth intrinsics at half size: accepted
    assert align_depth(np.ones((120, 160)), K, k_half).shape == (240, 320)


def test_truncated_region_has_lower_quality() -> None:
    pose = POSES[0]
    depth, _, _, _ = _frame(pose)
    inside = RegionObservation(bbox=(100, 100, 20, 20))
    border = RegionObservation(bbox=(0, 100, 20, 20))
    a, b = localize_regions([inside, border], depth, K, pose, 0.0)
    assert not a.truncated and b.truncated
    assert b.quality < 0.5 * a.quality
    # the detector's border band (10 % of each side here: 32 px left/right, 24 px top/bottom)
    # cuts regions like the edge does: a partial view, with its quality kept
    cfg = LocalizationConfig(border_margin=0.1)
    band = RegionObservation(bbox=(100, 200, 20, 20))  # reaches y = 219 >= 240 - 2 - 24
    a, c = localize_regions([inside, band], depth, K, pose, 0.0, config=cfg)
    assert not a.truncated and c.truncated
    (c0,) = localize_regions([band], depth, K, pose, 0.0)
    assert not c0.truncated and c.quality == pytest.approx(c0.quality)


def test_region_covering_two_defects_is_split() -> None:
    pose = Pose.looking_at(np.array([0.0, -0.6, 0.8]), np.array([0.0, 0.0, 0.0]))
    depth, pts, idx = render_depth([PLANE], K, pose)
    c1, c2 = np.array([-0.035, 0.0, 0.0]), np.array([0.035, 0.0, 0.0])
    amap = gaussian_anomaly_map(pts, idx, [(c1, 0.03, 1.2), (c2, 0.03, 1.2)])
    blob = (amap >= 0.2)  # a low threshold: one region spanning both
    regions = regions_from_anomaly_map(np.where(blob, 1.0, 0.0), 0.5)
    assert len(regions) == 1
    dets = localize_regions(regions, depth, K, pose, 0.0, anomaly_map=amap)
    assert len(dets) == 2
    got = sorted(d.position[0] for d in dets)
    assert got == pytest.approx([-0.035, 0.035], abs=0.01)
    # without the anomaly map, no split
    assert len(localize_regions(regions, depth, K, pose, 0.0)) == 1
    assert len(split_region_mask(blob, np.zeros_like(amap))) == 1


def test_evidence_crop_and_overlay() -> None:
    pose = POSES[0]
    depth, pts, idx, regions = _frame(pose)
    rgb = np.full((240, 320, 3), 90, np.uint8)
    amap = gaussian_anomaly_map(pts, idx, [(PLANE_DEFECT, 0.03, 1.2)])
    det = localize_regions(regions[:1], depth, K, pose, 2.5, rgb=rgb, anomaly_map=amap)[0]
    ev = det.evidence
    assert ev is not None and ev.stamp == 2.5
    assert ev.crop.dtype == np.uint8 and ev.crop.shape == ev.overlay.shape and ev.crop.shape[2] == 3
    assert max(ev.crop.shape[:2]) <= LocalizationConfig().evidence_max_px
    assert not np.array_equal(ev.crop, ev.overlay)


def test_bad_inputs_raise_clear_errors() -> None:
    with pytest.raises(ValueError, match="bbox, a mask"):
        RegionObservation()
    with pytest.raises(ValueError, match="non-positive"):
        RegionObservation(bbox=(0, 0, 0, 5))
    with pytest.raises(ValueError, match="depth must be a 2-D"):
        localize_regions([], np.zeros((2, 2, 2)), K, POSES[0], 0.0)
    with pytest.raises(ValueError, match="matches neither"):
        RegionObservation(bbox=(0, 0, 5, 5), mask=np.ones((7, 3), bool)).full_mask(240, 320)
    with pytest.raises(ValueError, match="min_depth_m"):
        LocalizationConfig(min_depth_m=2.0, max_depth_m=1.0)


def test_region_along_a_silhouette_is_not_localised() -> None:
    """With ``silhouette_band_px``, a strip along the cylinder's silhouette (features there mix in
    the floor behind it) is dropped; a defect mid-surface is kept; with 0 both are localised."""
    import cv2

    pose = Pose.looking_at(CYL_DEFECT + 0.45 * CYL_NORMAL + np.array([0.0, -0.05, 0.0]), CYL_DEFECT)
    depth, pts, idx, regions = _frame(pose)  # the cylinder spans rows 74-175
    cyl = idx == 1
    near_edge = cv2.dilate((~cyl).astype(np.uint8), np.ones((7, 7), np.uint8)).astype(bool)
    strip = cyl & near_edge
    cols = np.nonzero(strip.any(axis=0))[0]
    strip[:, : cols[len(cols) // 2 - 20]] = False  # a 40-column piece of the edge, like a region
    strip[:, cols[len(cols) // 2 + 20]:] = False
    assert strip.sum() > 40
    obs = [RegionObservation(mask=strip, peak_score=1.0), regions[1]]
    off = localize_regions(obs, depth, K, pose, 0.0, config=LocalizationConfig())
    assert len(off) == 2
    on = localize_regions(obs, depth, K, pose, 0.0, config=LocalizationConfig(silhouette_band_px=8))
    assert len(on) == 1
    assert np.linalg.norm(on[0].position - CYL_DEFECT) < 0.015
    with pytest.raises(ValueError, match="silhouette_band_px"):
        LocalizationConfig(silhouette_band_px=-1)


def test_a_blob_symmetric_in_the_image_is_placed_at_its_centre_on_an_oblique_floor() -> None:
    """The detector's anomaly map blurs a defect symmetrically in the image. Seen obliquely (an
    AGV's floor at 2.5-3.5 m), perspective stretches the far half of such a region over more
    metres, and the mean of its back-projected points lay 2-4 cm beyond the defect."""
    k = CameraIntrinsics.from_fov(640, 480, 60.0)
    for eye, target in (([0.0, 0.0, 1.5], [3.5, 0.0, 0.0]), ([0.0, 0.0, 1.0], [2.0, 0.6, 0.0])):
        target = np.array(target)
        pose = Pose.looking_at(np.array(eye), target)
        depth, _, _ = render_depth([PLANE], k, pose)
        p = pose.rotation.T @ (target - pose.position)
        u0, v0 = k.fx * p[0] / p[2] + k.cx, k.fy * p[1] / p[2] + k.cy
        vs, us = np.mgrid[0:480, 0:640]
        amap = (1.2 * np.exp(-((us - u0) ** 2 + (vs - v0) ** 2) / (2 * 20.0 ** 2))).astype(np.float32)
        regions = regions_from_anomaly_map(amap, threshold=0.3)
        assert len(regions) == 1
        (det,) = localize_regions(regions, depth, k, pose, stamp=1.0, anomaly_map=amap)
        assert det.extent[0] > 0.25  # the region is far larger than the 1 px defect centre
        assert np.linalg.norm(det.position - target) < 0.005


@pytest.mark.parametrize("eye, target, diameter", [([0.0, 0.0, 1.0], [0.4, 0.0, 0.0], 0.08),
                                                   ([0.0, 0.0, 1.5], [2.5, 0.5, 0.0], 0.25)])
def test_the_defect_size_removes_the_maps_blur_from_the_region(eye, target, diameter) -> None:
    """A detector's map is the defect's response blurred by the map's own point spread, and a
    region cut at a low level is a blur's width wider all round (a 3-10 cm defect at 0.77 m:
    11-18 cm regions). The size is the half-maximum extent with that blur removed."""
    import cv2

    from anomaly_inspection_core.detection.blur import point_spread_from_probe

    k = CameraIntrinsics.from_fov(640, 480, 60.0)
    target = np.array(target)
    pose = Pose.looking_at(np.array(eye), target)
    depth, pts, idx = render_depth([PLANE], k, pose)
    sigma = 10.0  # pixels: the map's blur
    # the defect's own response: a bump on the surface whose full width at half maximum is its diameter
    d2 = np.sum((pts - target) ** 2, axis=-1)
    own = np.where(idx >= 0, np.exp(-4.0 * np.log(2.0) * d2 / diameter ** 2), 0.0).astype(np.float32)
    raw = cv2.GaussianBlur(own, (0, 0), sigma)
    raw /= float(raw.max())
    # the point spread as the detector measures it at fit time (PatchCoreModel._measure_point_spread):
    # a small square's half-maximum width, its side removed
    side = 12
    probe = np.zeros((200, 200), np.float32)
    probe[94:94 + side, 94:94 + side] = 1.0
    probe = cv2.GaussianBlur(probe, (0, 0), sigma)
    spread = point_spread_from_probe(int((probe[100] >= 0.5 * probe.max()).sum()), side)
    amap = (1.0 / (1.0 + np.exp(-(-2.0 + 6.0 * raw)))).astype(np.float32)  # normal 0.12, peak 0.98
    normal_level = 1.0 / (1.0 + np.exp(2.0))
    regions = regions_from_anomaly_map(amap, threshold=0.3)
    assert len(regions) == 1
    (det,) = localize_regions(regions, depth, k, pose, stamp=1.0, anomaly_map=amap,
                              normal_level=normal_level, point_spread_px=(spread, spread))
    (plain,) = localize_regions(regions, depth, k, pose, stamp=1.0, anomaly_map=amap)
    assert det.extent[0] > 1.5 * diameter  # the region
    for axis in (0, 1):
        assert abs(det.size[axis] - diameter) < 0.15 * diameter, (axis, det.size, det.extent)
    assert det.size[0] < plain.size[0] < plain.extent[0]  # the half maximum alone lies between


def _logistic_blobs(peaks: list[tuple[float, float, float, float]], shape: tuple[int, int] = (120, 200),
                    normal_logit: float = -2.0) -> np.ndarray:
    """A normalised map (a logistic of the raw distance) with Gaussian bumps in logit space:
    ``(x, y, height in logits, sigma in px)`` each."""
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]].astype(np.float64)
    logit = np.full(shape, normal_logit)
    for x, y, h, sigma in peaks:
        logit += h * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * sigma ** 2))
    return (1.0 / (1.0 + np.exp(-logit))).astype(np.float32)


def test_a_weaker_defect_next_to_a_strong_one_is_split_by_its_prominence() -> None:
    # a strong defect (0.99) and a weaker one (0.90) 30 px apart, the saddle between them at
    # 0.64: over 0.6 x the strong peak, so a level relative to the highest peak saw one seed
    amap = _logistic_blobs([(80, 60, 6.6, 9.0), (110, 60, 4.2, 9.0)])
    region = amap >= 0.3
    assert len(regions_from_anomaly_map(amap, 0.3)) == 1
    saddle = amap[60, 80:111].min()
    assert 0.6 * amap.max() < saddle < amap[60, 110] - 0.2
    parts = split_region_mask(region, amap)
    assert len(parts) == 2
    strong, weak = sorted(parts, key=lambda m: -amap[m].max())
    assert strong[60, 80] and weak[60, 110]
    assert not (strong & weak).any() and ((strong | weak) == region).all()
    # the boundary between the parts runs through the saddle
    assert abs(int(np.argmin(amap[60, 80:111])) + 80 - (np.nonzero(weak[60])[0].min())) <= 3
    # a higher bar on prominence keeps them together
    assert len(split_region_mask(region, amap, min_prominence=3.0)) == 1


def test_a_ripple_on_one_defect_does_not_split_it() -> None:
    # a bump on a defect's flank rising 0.46 logits above its saddle: not a defect of its own
    amap = _logistic_blobs([(80, 60, 6.0, 9.0), (96, 60, 2.6, 3.0)])
    row = amap[60, 80:].astype(float)
    assert any(row[j] > row[j - 1] and row[j] >= row[j + 1] for j in range(1, 30))  # a local maximum
    region = amap >= 0.3
    assert len(split_region_mask(region, amap)) == 1
    assert len(split_region_mask(region, amap, min_prominence=0.3)) == 2
    assert len(split_region_mask(region, np.zeros_like(amap))) == 1


def test_a_region_mask_in_separate_pieces_splits_into_them() -> None:
    amap = _logistic_blobs([(50, 60, 5.0, 6.0), (150, 60, 5.0, 6.0)])
    region = amap >= 0.3
    parts = split_region_mask(region, amap)
    assert len(parts) == 2 and sorted(int(np.nonzero(p)[1].mean()) for p in parts) == [50, 150]
