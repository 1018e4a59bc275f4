"""Threshold-free detection metrics: ROC/AUROC, PR/F1-max and AUPRO (per-region overlap).

Pure numpy, exact (ties are handled as one threshold step), no scikit-learn needed.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass
class Curve:
    """A curve sampled at each distinct score threshold, highest threshold first."""

    x: np.ndarray
    y: np.ndarray
    thresholds: np.ndarray


def _check_binary(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    labels = np.asarray(labels).ravel()
    scores = np.asarray(scores, dtype=np.float64).ravel()
    if labels.shape != scores.shape:
        raise ValueError(f"labels and scores differ in size: {labels.size} vs {scores.size}")
    if labels.size == 0:
        raise ValueError("metrics need at least one sample")
    if not np.all(np.isfinite(scores)):
        raise ValueError("scores contain NaN or infinity")
    labels = labels.astype(bool)
    if labels.all() or not labels.any():
        raise ValueError("metrics need both positive and negative samples")
    return labels, scores


def _cumulative_counts(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """True/false positive counts when predicting ``score >= t`` for each distinct t (descending)."""
    order = np.argsort(-scores, kind="mergesort")
    sorted_scores = scores[order]
    sorted_labels = labels[order]
    last_of_tie = np.r_[np.flatnonzero(np.diff(sorted_scores)), sorted_labels.size - 1]
    tps = np.cumsum(sorted_labels)[last_of_tie].astype(np.float64)
    fps = (last_of_tie + 1) - tps
    return tps, fps, sorted_scores[last_of_tie]


def roc_curve(labels: np.ndarray, scores: np.ndarray) -> Curve:
    """ROC curve: ``x`` = false-positive rate, ``y`` = true-positive rate, starting at (0, 0)."""
    labels, scores = _check_binary(labels, scores)
    tps, fps, thr = _cumulative_counts(labels, scores)
    fpr = np.r_[0.0, fps / fps[-1]]
    tpr = np.r_[0.0, tps / tps[-1]]
    return Curve(fpr, tpr, np.r_[np.inf, thr])


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve (probability a positive outscores a negative; ties count 1/2)."""
    curve = roc_curve(labels, scores)
    return float(np.trapezoid(curve.y, curve.x))


def precision_recall_curve(labels: np.ndarray, scores: np.ndarray) -> Curve:
    """PR curve: ``x`` = recall, ``y`` = precision, one point per distinct threshold."""
    labels, scores = _check_binary(labels, scores)
    tps, fps, thr = _cumulative_counts(labels, scores)
    precision = tps / (tps + fps)
    recall = tps / tps[-1]
    return Curve(recall, precision, thr)


def average_precision(labels: np.ndarray, scores: np.ndarray) -> float:
    """Average precision: sum over thresholds of (recall step) x precision."""
    curve = precision_recall_curve(labels, scores)
    recall_steps = np.diff(np.r_[0.0, curve.x])
    return float(np.sum(recall_steps * curve.y))


def f1_max(labels: np.ndarray, scores: np.ndarray) -> tuple[float, float]:
    """The best F1 over all thresholds ``score >= t``, and that threshold."""
    curve = precision_recall_curve(labels, scores)
    denom = curve.x + curve.y
    f1 = np.where(denom > 0, 2 * curve.x * curve.y / np.where(denom > 0, denom, 1.0), 0.0)
    best = int(np.argmax(f1))
    return float(f1[best]), float(curve.thresholds[best])


def pro_curve(masks: list[np.ndarray], anomaly_maps: list[np.ndarray]) -> Curve:
    """Per-region-overlap curve: ``x`` = pixel FPR on normal pixels, ``y`` = mean over all
    ground-truth connected components (8-connected) of the fraction of the component detected.

    Computed exactly at every distinct score: each defect pixel carries weight
    1 / (component size x number of components), each normal pixel 1 / (normal pixels).
    """
    if len(masks) != len(anomaly_maps) or not masks:
        raise ValueError(f"need equally many masks and maps (got {len(masks)} and {len(anomaly_maps)})")
    all_scores, pro_weights, fp_weights = [], [], []
    components: list[tuple[int, np.ndarray]] = []
    n_components = 0
    for mask, amap in zip(masks, anomaly_maps):
        mask = np.asarray(mask).astype(bool)
        amap = np.asarray(amap, dtype=np.float64)
        if mask.shape != amap.shape:
            raise ValueError(f"mask shape {mask.shape} differs from anomaly map shape {amap.shape}")
        count, labels = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
        n_components += count - 1
        components.append((count, labels))
    if n_components == 0:
        raise ValueError("AUPRO needs at least one defect region in the masks")
    n_normal = sum(int((labels == 0).sum()) for _, labels in components)
    if n_normal == 0:
        raise ValueError("AUPRO needs normal pixels")
    for (count, labels), amap in zip(components, anomaly_maps):
        sizes = np.bincount(labels.ravel(), minlength=count).astype(np.float64)
        per_pixel = np.where(labels > 0, 1.0 / (sizes[labels] * n_components), 0.0)
        all_scores.append(np.asarray(amap, dtype=np.float64).ravel())
        pro_weights.append(per_pixel.ravel())
        fp_weights.append((labels == 0).ravel() / n_normal)
    scores = np.concatenate(all_scores)
    pro_w = np.concatenate(pro_weights)
    fp_w = np.concatenate(fp_weights)
    order = np.argsort(-scores, kind="mergesort")
    scores, pro_w, fp_w = scores[order], pro_w[order], fp_w[order]
    last_of_tie = np.r_[np.flatnonzero(np.diff(scores)), scores.size - 1]
    pro = np.cumsum(pro_w)[last_of_tie]
    fpr = np.cumsum(fp_w)[last_of_tie]
    return Curve(np.r_[0.0, fpr], np.r_[0.0, pro], np.r_[np.inf, scores[last_of_tie]])


def aupro(masks: list[np.ndarray], anomaly_maps: list[np.ndarray], fpr_limit: float = 0.3) -> float:
    """Area under the PRO curve up to ``fpr_limit``, divided by ``fpr_limit`` (1.0 = perfect)."""
    if not 0.0 < fpr_limit <= 1.0:
        raise ValueError(f"fpr_limit must be in (0, 1], got {fpr_limit}")
    curve = pro_curve(masks, anomaly_maps)
    fpr, pro = curve.x, curve.y
    keep = fpr <= fpr_limit
    x, y = fpr[keep], pro[keep]
    if x[-1] < fpr_limit:
        nxt = int(np.argmax(fpr > fpr_limit))
        y_end = np.interp(fpr_limit, [fpr[nxt - 1], fpr[nxt]], [pro[nxt - 1], pro[nxt]])
        x, y = np.r_[x, fpr_limit], np.r_[y, y_end]
    return float(np.trapezoid(y, x) / fpr_limit)
