"""Metric functions against hand-computed cases."""

import numpy as np
import pytest

from anomaly_inspection_core.evaluation import metrics


def test_auroc_hand_computed():
    # pairs (pos, neg): 0.35>0.1 yes, 0.35>0.4 no, 0.8>both yes -> 3/4
    assert metrics.roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.75)


def test_auroc_perfect_inverted_and_ties():
    assert metrics.roc_auc([0, 0, 1], [0.1, 0.2, 0.9]) == pytest.approx(1.0)
    assert metrics.roc_auc([0, 0, 1], [0.9, 0.8, 0.1]) == pytest.approx(0.0)
    assert metrics.roc_auc([0, 1, 0, 1], [0.5, 0.5, 0.5, 0.5]) == pytest.approx(0.5)
    # one tied pair counts 1/2: pairs (0.7 vs 0.2)=1, (0.7 vs 0.7)=0.5 -> 0.75
    assert metrics.roc_auc([0, 0, 1], [0.2, 0.7, 0.7]) == pytest.approx(0.75)


def test_roc_curve_points():
    curve = metrics.roc_curve([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    np.testing.assert_allclose(curve.x, [0, 0, 0.5, 0.5, 1.0])
    np.testing.assert_allclose(curve.y, [0, 0.5, 0.5, 1.0, 1.0])


def test_f1_max_hand_computed():
    # threshold 0.35: tp=2, fp=1 -> p=2/3, r=1 -> f1=0.8 (threshold 0.8: p=1, r=0.5 -> 0.667)
    f1, thr = metrics.f1_max([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    assert f1 == pytest.approx(0.8)
    assert thr == pytest.approx(0.35)


def test_average_precision_hand_computed():
    # ranks: 0.8(+) p=1 r=.5; 0.4(-); 0.35(+) p=2/3 r=1 -> AP = .5*1 + .5*2/3
    assert metrics.average_precision([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.5 + 1 / 3)


def test_aupro_hand_computed():
    mask = np.zeros((4, 4), bool)
    mask[0, 0] = mask[0, 1] = True
    amap = np.zeros((4, 4))
    amap[0, 0] = 1.0
    # PRO curve: (0,0) -> (fpr 0, pro .5) at t=1 -> (1, 1) at t=0; at fpr .3: pro .65
    # area to .3 = .3 * (.5 + .65) / 2 = .1725, normalised by .3 -> .575
    assert metrics.aupro([mask], [amap], fpr_limit=0.3) == pytest.approx(0.575)


def test_aupro_averages_regions_not_pixels():
    mask = np.zeros((10, 10), bool)
    mask[0, 0:8] = True  # large region: 8 px, none detected
    mask[9, 9] = True  # small region: 1 px, detected
    amap = np.zeros((10, 10))
    amap[9, 9] = 1.0
    curve = metrics.pro_curve([mask], [amap])
    # at the first threshold the detected region is half of the regions, not 1/9 of the pixels
    assert curve.y[1] == pytest.approx(0.5)
    assert curve.x[1] == pytest.approx(0.0)


def test_perfect_segmentation_scores_one():
    mask = np.zeros((8, 8), bool)
    mask[2:4, 2:5] = True
    amap = mask.astype(float) + 0.01 * np.arange(64).reshape(8, 8) / 64
    assert metrics.aupro([mask], [amap]) == pytest.approx(1.0)
    assert metrics.roc_auc(mask.ravel(), amap.ravel()) == pytest.approx(1.0)


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="both positive and negative"):
        metrics.roc_auc([1, 1], [0.1, 0.2])
    with pytest.raises(ValueError, match="differ in size"):
        metrics.roc_auc([0, 1], [0.1])
    with pytest.raises(ValueError, match="NaN"):
        metrics.roc_auc([0, 1], [0.1, float("nan")])
    with pytest.raises(ValueError, match="at least one defect region"):
        metrics.aupro([np.zeros((4, 4), bool)], [np.zeros((4, 4))])
