"""PatchCore detector: separation of planted anomalies, model files, regions, coreset, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from anomaly_inspection_core.detection import (
    BackboneError,
    ModelFileError,
    PatchCoreConfig,
    PatchCoreModel,
    build_feature_extractor,
    extract_regions,
    parse_layers,
)
from anomaly_inspection_core.detection.coreset import greedy_coreset_indices

IMAGE_SIZE = 128


def texture(rng: np.random.Generator, h: int = 160, w: int = 160) -> np.ndarray:
    """A woven-looking RGB texture with random phase and mild noise."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    phase = rng.uniform(0, 2 * np.pi, 2)
    grid = np.sin(xx * 0.6 + phase[0]) * np.sin(yy * 0.6 + phase[1])
    noise = cv2.GaussianBlur(rng.normal(0, 1, (h, w)).astype(np.float32), (0, 0), 1.5)
    gray = 128 + 40 * grid + 10 * noise
    return np.clip(np.stack([gray, gray * 0.85, gray * 0.6], -1), 0, 255).astype(np.uint8)


def plant_defect(image: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, tuple[int, int]]:
    """A dark stain of radius ~8% of the width at a random place; returns image and centre (x, y)."""
    h, w = image.shape[:2]
    cx, cy = int(rng.uniform(0.25, 0.75) * w), int(rng.uniform(0.25, 0.75) * h)
    out = image.copy()
    cv2.circle(out, (cx, cy), max(4, w // 12), (40, 30, 20), -1)
    return out, (cx, cy)


@pytest.fixture(scope="module")
def fitted() -> dict:
    rng = np.random.default_rng(7)
    train = [texture(rng) for _ in range(14)]
    model = PatchCoreModel(PatchCoreConfig(image_size=IMAGE_SIZE, max_bank_size=2000))
    model.fit(train, holdout_fraction=0.2)
    normals = [texture(rng) for _ in range(5)]
    anomalies, centres = zip(*(plant_defect(texture(rng), rng) for _ in range(5)))
    return {"model": model, "normals": normals, "anomalies": list(anomalies), "centres": list(centres)}


def test_fit_separates_planted_anomalies(fitted):
    model = fitted["model"]
    normal = model.predict_batch(fitted["normals"])
    anomalous = model.predict_batch(fitted["anomalies"])
    assert max(p.raw_score for p in normal) < min(p.raw_score for p in anomalous)
    assert all(p.is_anomalous and p.score > 0.5 for p in anomalous)
    assert sum(p.is_anomalous for p in normal) <= 1
    for pred, (cx, cy) in zip(anomalous, fitted["centres"]):
        assert pred.regions, "an anomalous image must yield a region"
        px, py = pred.regions[0].peak_xy
        assert abs(px - cx) <= 16 and abs(py - cy) <= 16


def test_prediction_shapes_any_size_and_grayscale(fitted):
    model = fitted["model"]
    rng = np.random.default_rng(3)
    rgb = texture(rng, 120, 200)
    pred = model.predict(rgb)
    assert pred.anomaly_map.shape == (120, 200) and pred.anomaly_map.dtype == np.float32
    assert 0.0 <= pred.score <= 1.0
    assert {"preprocess", "backbone", "search", "postprocess", "total"} <= set(pred.timings_ms)
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    pred_gray = model.predict(gray)
    assert pred_gray.anomaly_map.shape == (120, 200)
    pred_gray1 = model.predict(gray[:, :, None])
    assert pred_gray1.raw_score == pytest.approx(pred_gray.raw_score)


def test_normalisation_puts_threshold_at_half(fitted):
    th = fitted["model"].thresholds
    assert th.normalise_image(th.image_threshold) == pytest.approx(0.5)
    assert th.normalise_pixels(np.array([th.pixel_threshold], np.float32))[0] == pytest.approx(0.5)
    assert th.normalise_image(th.image_threshold + th.image_scale) > 0.5 > th.normalise_image(th.image_threshold - th.image_scale)


def test_save_load_gives_identical_scores(fitted, tmp_path):
    model = fitted["model"]
    model.save(tmp_path / "m")
    loaded = PatchCoreModel.load(tmp_path / "m")
    assert loaded.is_fitted and loaded.model_id == model.model_id
    images = fitted["normals"][:2] + fitted["anomalies"][:2]
    for a, b in zip(model.predict_batch(images), loaded.predict_batch(images)):
        assert a.raw_score == b.raw_score
        np.testing.assert_array_equal(a.anomaly_map, b.anomaly_map)
    meta = json.loads((tmp_path / "m" / "metadata.json").read_text())
    for key in ("format_version", "layers", "input_size", "thresholds", "normalisation", "feature_dim"):
        assert key in meta
    assert len(meta["train"]["dataset_sha256"]) == 64


def test_corrupt_or_incompatible_model_is_rejected(fitted, tmp_path):
    model_dir = fitted["model"].save(tmp_path / "m")
    bank = model_dir / "memory_bank.safetensors"
    meta_path = model_dir / "metadata.json"
    original_bank, original_meta = bank.read_bytes(), meta_path.read_text()

    bank.write_bytes(original_bank[: len(original_bank) // 2])
    with pytest.raises(ModelFileError, match="corrupt memory bank"):
        PatchCoreModel.load(model_dir)
    data = bytearray(original_bank)
    data[-5] ^= 0xFF  # flip bits inside the tensor payload
    bank.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="checksum"):
        PatchCoreModel.load(model_dir)
    bank.write_bytes(original_bank)

    meta = json.loads(original_meta)
    meta["format_version"] = 99
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(ModelFileError, match="format version 99"):
        PatchCoreModel.load(model_dir)
    meta_path.write_text("{not json")
    with pytest.raises(ModelFileError, match="corrupt model metadata"):
        PatchCoreModel.load(model_dir)
    meta_path.unlink()
    with pytest.raises(ModelFileError, match="lacks metadata.json"):
        PatchCoreModel.load(model_dir)
    with pytest.raises(ModelFileError, match="not found"):
        PatchCoreModel.load(tmp_path / "nothing")


def test_unfitted_model_and_bad_config_fail_clearly():
    with pytest.raises(RuntimeError, match="not fitted"):
        PatchCoreModel().predict(np.zeros((32, 32, 3), np.uint8))
    with pytest.raises(ValueError, match="coreset_ratio"):
        PatchCoreConfig(coreset_ratio=0.0)
    with pytest.raises(ValueError, match="at least 2"):
        PatchCoreModel(PatchCoreConfig(image_size=64)).fit([np.zeros((64, 64, 3), np.uint8)])


def test_backbone_errors_name_the_problem(tmp_path):
    with pytest.raises(BackboneError, match="unknown backbone"):
        build_feature_extractor("vgg99")
    with pytest.raises(BackboneError, match="no layer"):
        build_feature_extractor("efficientnet_lite0", ("blocks.99",))
    with pytest.raises(BackboneError, match="no ImageNet weights for resnet18"):
        build_feature_extractor("resnet18", weights_path=tmp_path / "missing.pth")


def test_lite0_features_have_three_scales_pooled_onto_the_stride_8_grid():
    extractor = build_feature_extractor("efficientnet_lite0")
    with torch.inference_mode():
        maps = extractor(torch.zeros(1, 3, 128, 128))
    assert [tuple(m.shape[1:]) for m in maps] == [(24, 32, 32), (40, 16, 16), (112, 8, 8)]
    model = PatchCoreModel(PatchCoreConfig(image_size=128))
    tensor = model.preprocess([texture(np.random.default_rng(0))])
    features = model.embed(tensor)
    assert tuple(features.shape) == (1, 16, 16, 24 + 40 + 112)
    # Lite0 averages over no neighbourhood: the stride-4 layer's part of a patch is the mean of its
    # 2x2 block of cells, the stride-8 layer's part is its own cell
    assert model.neighbourhoods == (1, 1, 1)
    with torch.inference_mode():
        maps = model.extractor(tensor)
        expected = torch.nn.functional.avg_pool2d(maps[0], 2).permute(0, 2, 3, 1)
    torch.testing.assert_close(features[..., :24], expected)
    torch.testing.assert_close(features[..., 24:64], maps[1].permute(0, 2, 3, 1))
    # with 3 for the first layer, 1 for the others: its cells are 3x3-averaged first
    model3 = PatchCoreModel(PatchCoreConfig(image_size=128, neighbourhood=(3, 1, 1)))
    features3 = model3.embed(tensor)
    with torch.inference_mode():
        fine = torch.nn.functional.avg_pool2d(maps[0], 3, 1, 1, count_include_pad=False)
    torch.testing.assert_close(features3[..., :24], torch.nn.functional.avg_pool2d(fine, 2).permute(0, 2, 3, 1))
    torch.testing.assert_close(features3[..., 24:], features[..., 24:])


def test_neighbourhood_is_checked_and_parsed():
    from anomaly_inspection_core.detection.backbones import default_neighbourhood, parse_neighbourhood

    assert parse_neighbourhood("1, 1,3") == (1, 1, 3) and parse_neighbourhood("") is None
    assert default_neighbourhood("efficientnet_lite0") == 1 and default_neighbourhood("wide_resnet50_2") == 3
    with pytest.raises(ValueError, match="odd integers"):
        parse_neighbourhood("a,3")
    for bad in ((2,), (0,), (11,), (3, 4)):
        with pytest.raises(ValueError, match="neighbourhood must be odd"):
            PatchCoreConfig(neighbourhood=bad)
    assert PatchCoreConfig(neighbourhood=3).neighbourhood == (3,)
    assert PatchCoreModel(PatchCoreConfig(image_size=64, neighbourhood=3)).neighbourhoods == (3, 3, 3)
    with pytest.raises(ValueError, match="gives 3 sizes for 2 layers"):
        PatchCoreConfig(layers=("blocks.4", "blocks.10"), neighbourhood=(1, 1, 3))
    with pytest.raises(ValueError, match="gives 2 sizes for 3 layers"):  # Lite0's default layers are three
        PatchCoreConfig(neighbourhood=(1, 3))


def test_parse_layers_reads_a_comma_list_and_empty_means_the_default():
    assert parse_layers("blocks.4, blocks.10,") == ("blocks.4", "blocks.10")
    assert parse_layers("") is None and parse_layers(None) is None and parse_layers(" , ") is None


def test_layer_names_match_the_networks_the_extractor_builds():
    from anomaly_inspection_core.detection import BackboneError, check_layers
    from anomaly_inspection_core.detection.backbones import layer_names

    names = layer_names("efficientnet_lite0")
    assert names[0] == "stem" and names[-1] == "blocks.15" and len(names) == 17
    extractor = build_feature_extractor("efficientnet_lite0", ("blocks.15",))  # the last one builds
    assert extractor.layers == ("blocks.15",)
    check_layers("efficientnet_lite0", ("blocks.2", "blocks.4", "blocks.10"))
    check_layers("efficientnet_lite0", None)
    with pytest.raises(BackboneError, match="no layer 'blocks.16'"):
        check_layers("efficientnet_lite0", ("blocks.16",))
    with pytest.raises(BackboneError, match="unknown backbone"):
        check_layers("lenet", None)


def test_model_fitted_on_two_layers_before_patch_stride_loads_with_its_own_grid(fitted, tmp_path):
    """Models written before the default gained a stride-4 layer keep their layers, grid and 3x3
    neighbourhood."""
    rng = np.random.default_rng(5)
    old = PatchCoreModel(PatchCoreConfig(image_size=IMAGE_SIZE, layers=("blocks.4", "blocks.10"), max_bank_size=500,
                                         neighbourhood=3))
    old.fit([texture(rng) for _ in range(6)], holdout_fraction=0.2)
    model_dir = old.save(tmp_path / "old")
    meta_path = model_dir / "metadata.json"
    meta = json.loads(meta_path.read_text())
    del meta["config"]["patch_stride"], meta["config"]["neighbourhood"], meta["neighbourhood"]
    meta["config"]["layers"] = None  # as the old default was stored
    meta_path.write_text(json.dumps(meta))
    loaded = PatchCoreModel.load(model_dir)
    assert loaded.config.layers == ("blocks.4", "blocks.10") and loaded.config.patch_stride == 8
    assert loaded.neighbourhoods == (3, 3)
    image = fitted["anomalies"][0]
    assert loaded.predict(image).raw_score == old.predict(image).raw_score


def test_greedy_coreset_covers_every_cluster():
    gen = torch.Generator().manual_seed(0)
    centres = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    points = torch.cat([c + 0.1 * torch.randn(50, 2, generator=gen) for c in centres])
    idx = greedy_coreset_indices(points, 3, projection_dim=0)
    assert len(set(idx.tolist())) == 3
    assert sorted((idx // 50).tolist()) == [0, 1, 2]
    assert len(greedy_coreset_indices(points, 500)) == 150


@pytest.mark.parametrize("park_every", [7, 50])
def test_parking_coreset_picks_what_the_plain_greedy_picks(park_every):
    """Parking points that cannot be picked soon (and bringing them back up to date) changes
    the work, not the selection: the same points as scanning every point at every pick, on
    clusters of very different spreads, with parkings often enough to bring points back."""
    gen = torch.Generator().manual_seed(3)
    scales = torch.tensor([0.05, 0.3, 1.0, 3.0])
    centres = 8.0 * torch.randn(40, 16, generator=gen)
    points = torch.cat([c + scales[k % 4] * torch.randn(500, 16, generator=gen) for k, c in enumerate(centres)])
    plain = greedy_coreset_indices(points, 600, projection_dim=8, park_ratio=0.0)
    parked = greedy_coreset_indices(points, 600, projection_dim=8, park_ratio=0.8, park_every=park_every)
    assert len(set(parked.tolist())) == 600
    assert set(parked.tolist()) == set(plain.tolist())
    with pytest.raises(ValueError, match="park_ratio"):
        greedy_coreset_indices(points, 10, park_ratio=1.0)


def test_extract_regions_finds_blobs_and_drops_noise():
    amap = np.zeros((50, 60), np.float32)
    amap[10:20, 5:15] = 0.8
    amap[12, 8] = 0.95
    amap[40, 50] = 0.9  # single pixel: below min area
    regions = extract_regions(amap, 0.5, min_area_px=4)
    assert len(regions) == 1
    r = regions[0]
    assert r.bbox == (5, 10, 10, 10) and r.area_px == 100
    assert r.peak_xy == (8, 12) and r.peak_score == pytest.approx(0.95)
    assert r.mask.shape == (10, 10) and r.full_mask(50, 60).sum() == 100


def test_cli_fit_predict_evaluate(tmp_path):
    from anomaly_inspection_core.cli import main

    rng = np.random.default_rng(11)
    root = tmp_path / "ds"
    for sub in ("train/good", "test/good", "test/stain", "ground_truth/stain"):
        (root / sub).mkdir(parents=True)
    for i in range(10):
        cv2.imwrite(str(root / "train/good" / f"{i:03d}.png"), texture(rng)[:, :, ::-1])
    for i in range(3):
        cv2.imwrite(str(root / "test/good" / f"{i:03d}.jpg"), texture(rng)[:, :, ::-1])
        image, (cx, cy) = plant_defect(texture(rng), rng)
        cv2.imwrite(str(root / "test/stain" / f"{i:03d}.png"), cv2.cvtColor(image, cv2.COLOR_RGB2GRAY))
        mask = np.zeros(image.shape[:2], np.uint8)
        cv2.circle(mask, (cx, cy), max(4, image.shape[1] // 12), 255, -1)
        cv2.imwrite(str(root / "ground_truth/stain" / f"{i:03d}_mask.png"), mask)
    model_dir = tmp_path / "model"
    assert main(["fit", "--dataset", str(root), "--out", str(model_dir), "--image-size", "96"]) == 0
    assert main(["predict", "--model", str(model_dir), str(root / "test/stain"), "--out", str(tmp_path / "pred")]) == 0
    record = json.loads((tmp_path / "pred" / "000_regions.json").read_text())
    assert {"score", "is_anomalous", "regions"} <= set(record)
    assert (tmp_path / "pred" / "000_overlay.png").is_file()
    assert main(["evaluate", "--model", str(model_dir), "--dataset", str(root), "--out", str(tmp_path / "ev")]) == 0
    result = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    for key in ("image_auroc", "pixel_auroc", "aupro", "f1_max", "ms_per_image"):
        assert key in result
    assert result["image_auroc"] >= 0.9
    rows = (tmp_path / "ev" / "scores.csv").read_text().splitlines()
    assert rows[0] == "path,label,score,predicted" and len(rows) == 7
    assert (tmp_path / "ev" / "roc.png").is_file() and (tmp_path / "ev" / "pr.png").is_file()
    assert main(["predict", "--model", str(tmp_path / "nope"), str(root), "--out", str(tmp_path / "x")]) == 2
    # a bad neighbourhood is a clear error before any work (exit 2), for fit and the benchmark alike
    assert main(["fit", "--dataset", str(root), "--out", str(tmp_path / "m2"), "--neighbourhood", "2"]) == 2
    assert not (tmp_path / "m2").exists()
    assert main(["benchmark", "detector", "--no-elpv", "--proxy", "none", "--neighbourhood", "1,3"]) == 2
    assert main(["benchmark", "detector", "--no-elpv", "--proxy", "none", "--max-bank-size", "-1"]) == 2


def test_mvtec_layout_variants_hidden_files_and_mask_names(tmp_path):
    from anomaly_inspection_core.detection.datasets import test_samples, train_images

    root = tmp_path / "ds"
    for sub in ("train/good", "test/good", "test/crack", "ground_truth/crack"):
        (root / sub).mkdir(parents=True)
    img = np.full((20, 20, 3), 128, np.uint8)
    cv2.imwrite(str(root / "train/good/000.PNG"), img)
    (root / "train/good/._000.PNG").write_bytes(b"\x00\x05\x16\x07 resource fork")  # macOS copy debris
    cv2.imwrite(str(root / "test/good/000.jpg"), img)
    for name in ("000", "001", "002", "003"):
        cv2.imwrite(str(root / "test/crack" / f"{name}.jpg"), img)
    mask = np.zeros((20, 20), np.uint8)
    cv2.imwrite(str(root / "ground_truth/crack/000_mask.png"), mask)
    cv2.imwrite(str(root / "ground_truth/crack/001_mask.bmp"), mask)
    cv2.imwrite(str(root / "ground_truth/crack/002.png"), mask)
    assert [p.name for p in train_images(root)] == ["000.PNG"]
    found = {s.path.stem: (s.mask_path.name if s.mask_path else None) for s in test_samples(root) if s.label}
    assert found == {"000": "000_mask.png", "001": "001_mask.bmp", "002": "002.png", "003": None}
    # mask values: 0/255, 0/1 and 16-bit all read as the same defect area
    sample = next(s for s in test_samples(root) if s.path.stem == "002")
    for values, dtype in (((0, 255), np.uint8), ((0, 1), np.uint8), ((0, 65535), np.uint16)):
        m = np.full((10, 10), values[0], dtype)
        m[2:5, 3:7] = values[1]
        cv2.imwrite(str(sample.mask_path), m)
        got = sample.read_mask((20, 20))
        assert got.sum() == 12 * 4, (values, got.sum())  # 12 pixels, scaled 2x each way


def test_calibration_rules():
    from anomaly_inspection_core.detection import calibrate_threshold

    values = np.array([1.0, 1.0, 1.0, 1.0, 5.0])  # mean 1.8, std 1.6
    thr, scale = calibrate_threshold(values, typical=1.0, sigmas=2.0, at_least_max=False)
    assert thr == pytest.approx(1.8 + 2 * 1.6) and scale == pytest.approx((thr - 1.0) / 2)
    thr_floor, _ = calibrate_threshold(values, typical=1.0, sigmas=1.0, at_least_max=True)
    assert thr_floor == 5.0
    with pytest.raises(ValueError, match="at least one"):
        calibrate_threshold(np.array([]), typical=0.0, sigmas=2.0)
    with pytest.raises(ValueError, match="image_threshold_sigmas"):
        PatchCoreConfig(image_threshold_sigmas=-1.0)


def test_border_margin_ignores_edge_responses_but_keeps_the_map():
    rng = np.random.default_rng(11)
    train = [texture(rng) for _ in range(12)]
    # 3x3 neighbourhoods: fitted on these 10 images of this periodic texture without averaging, the
    # normal surface sits near the pixel threshold (regions on 2 of 5 new normal images; none with
    # 38 training images), and the stain's region swallowed the interior
    model = PatchCoreModel(PatchCoreConfig(image_size=IMAGE_SIZE, max_bank_size=2000, border_margin=0.15,
                                           neighbourhood=3))
    model.fit(train, holdout_fraction=0.2)

    image = texture(rng)
    cv2.circle(image, (5, 80), 10, (40, 30, 20), -1)  # a stain on the left edge only
    pred = model.predict(image)
    assert pred.anomaly_map[70:90, 0:12].max() > 0.5  # the map still shows it
    band = round(0.15 * image.shape[1])
    assert all(r.bbox[0] >= band and r.peak_xy[0] >= band for r in pred.regions)  # never in the ignored band
    centre = texture(rng)
    cv2.circle(centre, (80, 80), 10, (40, 30, 20), -1)
    assert len(model.predict(centre).regions) == 1
    with pytest.raises(ValueError, match="border_margin"):
        PatchCoreConfig(border_margin=0.3)


def test_point_spread_predicts_the_half_maximum_width_of_a_planted_stain(fitted):
    """The map widens a defect by its own blur. The blur measured at fit time with small probes,
    removed from a stain's half-maximum width, brings the width close to the stain's diameter."""
    from anomaly_inspection_core.detection.blur import deblurred_width, half_maximum_level

    model = fitted["model"]
    spread = model.point_spread_px
    assert spread is not None and 2.0 < spread < IMAGE_SIZE / 2
    rng = np.random.default_rng(11)
    estimates = []
    for diameter in (16, 40):  # pixels of the 160 px image (128 px model input)
        image = texture(rng)
        cv2.circle(image, (80, 80), diameter // 2, (40, 30, 20), -1)
        amap = model.predict(image).anomaly_map
        row = amap[80] >= half_maximum_level(float(amap.max()), model.normal_level)
        off = np.flatnonzero(~row)
        width = int(off[off > 80][0] - off[off < 80][-1] - 1)
        estimate = deblurred_width(width, spread * image.shape[1] / IMAGE_SIZE)
        # measured here: 16 -> 42 -> 25 px, 40 -> 58 -> 47 px (these stains saturate the map)
        assert abs(estimate - diameter) < 0.5 * abs(width - diameter), (diameter, width, estimate)
        estimates.append(estimate)
    assert estimates[1] > estimates[0] + 12


def test_deblurred_width_inverts_the_blur_and_halves_what_it_cannot_resolve():
    from anomaly_inspection_core.detection.blur import deblurred_width, point_spread_from_probe

    assert deblurred_width(50.0, 30.0) == pytest.approx(40.0)  # 30-40-50: quadrature
    assert deblurred_width(30.0, 30.0) == pytest.approx(15.0)  # unresolved: half what is seen
    assert deblurred_width(20.0, 0.0) == pytest.approx(20.0)  # no blur known
    assert deblurred_width(0.5, 30.0) == 1.0  # at least a pixel
    widths = [deblurred_width(w, 30.0) for w in np.linspace(1.0, 90.0, 200)]
    assert all(b >= a - 1e-9 for a, b in zip(widths, widths[1:]))  # never shrinks as the region grows
    assert point_spread_from_probe(50.0, 30.0) == pytest.approx(40.0) and point_spread_from_probe(20.0, 30.0) == 0.0


def test_non_square_input_keeps_the_cameras_aspect(tmp_path):
    """``image_height`` gives a W x H input (a 4:3 camera's own aspect, no vertical stretch): the
    grid, the saved input size, the point spread and the decisions all follow it."""
    rng = np.random.default_rng(5)
    config = PatchCoreConfig(image_size=128, image_height=96, max_bank_size=1500)
    assert config.input_hw == (96, 128) and PatchCoreConfig(image_size=64).input_hw == (64, 64)
    model = PatchCoreModel(config).fit([texture(rng, 120, 160) for _ in range(12)], holdout_fraction=0.25)
    assert tuple(model.preprocess([texture(rng, 120, 160)]).shape) == (1, 3, 96, 128)
    assert model.metadata["input_size"] == [96, 128] and model.metadata["feature_grid"] == [12, 16]
    assert model.point_spread_px is not None
    normal = model.predict_batch([texture(rng, 120, 160) for _ in range(4)])
    anomalous, centres = zip(*(plant_defect(texture(rng, 120, 160), rng) for _ in range(4)))
    flagged = model.predict_batch(list(anomalous))
    assert max(p.raw_score for p in normal) < min(p.raw_score for p in flagged)
    for pred, (cx, cy) in zip(flagged, centres):
        assert pred.anomaly_map.shape == (120, 160)
        px, py = pred.regions[0].peak_xy
        assert abs(px - cx) <= 16 and abs(py - cy) <= 16
    loaded = PatchCoreModel.load(model.save(tmp_path / "m"))
    assert loaded.config.input_hw == (96, 128)
    assert loaded.predict(anomalous[0]).raw_score == flagged[0].raw_score
    with pytest.raises(ValueError, match="image_height"):
        PatchCoreConfig(image_height=16)
