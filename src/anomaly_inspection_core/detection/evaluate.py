"""Evaluating a fitted model on an MVTec-layout test set: metrics, per-image scores, plots."""

from __future__ import annotations

import csv
import json
import logging
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from ..evaluation import metrics
from .datasets import TestSample, test_samples
from .images import read_image_rgb
from .patchcore import PatchCoreModel

logger = logging.getLogger(__name__)


@dataclass
class EvaluationResult:
    """Metrics of one evaluation (``pixel_auroc``/``aupro`` are None without defect masks)."""

    image_auroc: float
    pixel_auroc: float | None
    aupro: float | None
    f1_max: float
    f1_threshold: float
    average_precision: float
    accuracy_at_threshold: float
    ms_per_image: float
    ms_per_image_p95: float
    num_good: int
    num_defective: int
    model_id: str

    def to_dict(self) -> dict:
        return asdict(self)


def _metric_resize(mask: np.ndarray, amap: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    h, w = mask.shape
    scale = size / max(h, w)
    if scale >= 1.0:
        return mask, amap
    dsize = (max(1, round(w * scale)), max(1, round(h * scale)))
    small_mask = cv2.resize(mask.astype(np.uint8), dsize, interpolation=cv2.INTER_NEAREST).astype(bool)
    return small_mask, cv2.resize(amap, dsize, interpolation=cv2.INTER_AREA)


def evaluate_model(
    model: PatchCoreModel,
    dataset_dir: str | os.PathLike,
    out_dir: str | os.PathLike | None = None,
    metric_size: int = 256,
    progress: bool = False,
) -> EvaluationResult:
    """Score every test image of ``dataset_dir`` and compute image and pixel metrics.

    Pixel metrics use masks and maps downscaled so their longer side is ``metric_size``
    (as usual for MVTec AD; full-resolution 1024 px maps change the numbers little but cost a lot).
    With ``out_dir``: writes ``metrics.json``, ``scores.csv``, ``roc.png`` and ``pr.png``.
    """
    samples: list[TestSample] = test_samples(dataset_dir)
    labels, scores, predicted, times = [], [], [], []
    masks, maps = [], []
    have_masks = any(s.mask_path is not None for s in samples)
    for sample in tqdm(samples, desc="evaluate", unit="img", disable=not progress):
        image = read_image_rgb(sample.path)
        t0 = time.perf_counter()
        pred = model.predict(image)
        times.append((time.perf_counter() - t0) * 1e3)
        labels.append(sample.label)
        scores.append(pred.score)
        predicted.append(int(pred.is_anomalous))
        if have_masks and (sample.label == 0 or sample.mask_path is not None):
            mask = sample.read_mask(image.shape[:2])
            small_mask, small_map = _metric_resize(mask, pred.anomaly_map, metric_size)
            masks.append(small_mask)
            maps.append(small_map)
    labels_arr, scores_arr = np.asarray(labels), np.asarray(scores)
    # Normalised scores are a monotonic function of raw scores, so rankings (AUROC) are the same.
    image_auroc = metrics.roc_auc(labels_arr, scores_arr)
    f1, f1_thr = metrics.f1_max(labels_arr, scores_arr)
    pixel_auroc = aupro = None
    if masks and any(m.any() for m in masks):
        pixel_auroc = metrics.roc_auc(np.concatenate([m.ravel() for m in masks]), np.concatenate([a.ravel() for a in maps]))
        aupro = metrics.aupro(masks, maps, fpr_limit=0.3)
    result = EvaluationResult(
        image_auroc=image_auroc,
        pixel_auroc=pixel_auroc,
        aupro=aupro,
        f1_max=f1,
        f1_threshold=f1_thr,
        average_precision=metrics.average_precision(labels_arr, scores_arr),
        accuracy_at_threshold=float(np.mean(np.asarray(predicted) == labels_arr)),
        ms_per_image=float(np.median(times)),
        ms_per_image_p95=float(np.percentile(times, 95)),
        num_good=int((labels_arr == 0).sum()),
        num_defective=int((labels_arr == 1).sum()),
        model_id=model.model_id,
    )
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / "metrics.json").write_text(json.dumps(result.to_dict(), indent=2) + "\n")
        with open(out / "scores.csv", "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["path", "label", "score", "predicted"])
            for sample, score, pred_label in zip(samples, scores, predicted):
                writer.writerow([str(sample.path), sample.label, f"{score:.6f}", pred_label])
        save_curve_plots(labels_arr, scores_arr, out)
    return result


def save_curve_plots(labels: np.ndarray, scores: np.ndarray, out_dir: Path) -> None:
    """``roc.png`` and ``pr.png`` for image-level scores."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    roc = metrics.roc_curve(labels, scores)
    pr = metrics.precision_recall_curve(labels, scores)
    for name, x, y, xl, yl, title in (
        ("roc.png", roc.x, roc.y, "false positive rate", "true positive rate", f"ROC (AUROC {metrics.roc_auc(labels, scores):.3f})"),
        ("pr.png", pr.x, pr.y, "recall", "precision", f"PR (F1-max {metrics.f1_max(labels, scores)[0]:.3f})"),
    ):
        fig, ax = plt.subplots(figsize=(4.5, 4.5))
        ax.plot(x, y, lw=2)
        if name == "roc.png":
            ax.plot([0, 1], [0, 1], "--", color="grey", lw=1)
        ax.set(xlabel=xl, ylabel=yl, title=title, xlim=(0, 1), ylim=(0, 1.02))
        ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(out_dir / name, dpi=100)
        plt.close(fig)
