"""Procedural MVTec-like proxy sets: every category and defect, masks, layout, reproducibility."""

from __future__ import annotations

import numpy as np
import pytest

from anomaly_inspection_core.detection import datasets
from anomaly_inspection_core.detection.images import read_image_rgb
from anomaly_inspection_core.detection.proxy_dataset import PROXY_CATEGORIES, make_proxy_image, write_proxy_dataset


@pytest.mark.parametrize("category", sorted(PROXY_CATEGORIES))
def test_every_defect_changes_pixels_inside_its_mask(category):
    spec = PROXY_CATEGORIES[category]
    normal, mask = make_proxy_image(category, np.random.default_rng(5))
    assert mask is None
    assert normal.dtype == np.uint8 and normal.shape[:2] == spec.size
    assert normal.ndim == (2 if spec.grayscale else 3)
    for defect in spec.defects:
        clean, _ = make_proxy_image(category, np.random.default_rng(11))
        bad, mask = make_proxy_image(category, np.random.default_rng(11), defect)
        assert mask is not None and mask.dtype == bool and mask.shape == spec.size
        # subtle but real: 0.01 % .. 15 % of the image, and the pixels under the mask changed
        assert 1e-4 < mask.mean() < 0.15, (defect, mask.mean())
        diff = np.abs(bad.astype(np.int16) - clean.astype(np.int16))
        diff = diff if diff.ndim == 2 else diff.max(axis=2)
        assert diff[mask].mean() > 3.0, defect
        assert diff[mask].mean() > 3 * diff[~mask].mean(), defect


def test_unknown_names_are_errors():
    with pytest.raises(ValueError, match="unknown proxy category"):
        make_proxy_image("carpet!", np.random.default_rng(0))
    with pytest.raises(KeyError, match="unknown defect"):
        make_proxy_image("wood", np.random.default_rng(0), "melted")


def test_written_set_has_mvtec_layout_and_is_reused(tmp_path):
    folder = write_proxy_dataset(tmp_path, "pill", n_train=3, n_test_good=2, n_test_per_defect=1, seed=1)
    assert len(datasets.train_images(folder)) == 3
    samples = datasets.test_samples(folder)
    spec = PROXY_CATEGORIES["pill"]
    assert sum(s.label == 0 for s in samples) == 2
    defective = [s for s in samples if s.label == 1]
    assert sorted({s.defect_type for s in defective}) == sorted(spec.defects)
    for sample in defective:
        assert sample.path.suffix == ".jpg" and sample.mask_path is not None
        image = read_image_rgb(sample.path)
        assert image.shape == (*spec.size, 3)
        assert sample.read_mask(image.shape[:2]).any()
    stamp_time = (folder / ".complete").stat().st_mtime_ns
    assert write_proxy_dataset(tmp_path, "pill", n_train=3, n_test_good=2, n_test_per_defect=1, seed=1) == folder
    assert (folder / ".complete").stat().st_mtime_ns == stamp_time
