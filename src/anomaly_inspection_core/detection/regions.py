"""Connected anomalous regions from a normalised anomaly map."""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np


@dataclass
class Region:
    """One connected area of the anomaly map above the pixel threshold.

    Coordinates are pixels of the input image. ``mask`` is bbox-cropped: shape ``(h, w)``,
    aligned with ``bbox`` (``x, y, w, h``). Scores are normalised (0.5 = pixel threshold).
    """

    bbox: tuple[int, int, int, int]
    peak_xy: tuple[int, int]
    peak_score: float
    mean_score: float
    area_px: int
    mask: np.ndarray = field(repr=False)

    def full_mask(self, height: int, width: int) -> np.ndarray:
        """The region's mask pasted into a ``(height, width)`` boolean image."""
        out = np.zeros((height, width), dtype=bool)
        x, y, w, h = self.bbox
        out[y : y + h, x : x + w] = self.mask
        return out

    def to_dict(self) -> dict:
        """JSON-friendly summary (without the mask)."""
        return {
            "bbox": list(self.bbox),
            "peak_xy": list(self.peak_xy),
            "peak_score": self.peak_score,
            "mean_score": self.mean_score,
            "area_px": self.area_px,
        }


def extract_regions(anomaly_map: np.ndarray, threshold: float = 0.5, min_area_px: int = 16) -> list[Region]:
    """Regions where ``anomaly_map > threshold`` (8-connected), strongest first.

    Components smaller than ``min_area_px`` are dropped as noise.
    """
    if anomaly_map.ndim != 2:
        raise ValueError(f"anomaly_map must be 2-D, got shape {anomaly_map.shape}")
    binary = (anomaly_map > threshold).astype(np.uint8)
    if not binary.any():
        return []
    count, labels, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
    regions: list[Region] = []
    for label in range(1, count):
        x, y, w, h, area = (int(v) for v in stats[label])
        if area < min_area_px:
            continue
        crop_labels = labels[y : y + h, x : x + w]
        mask = crop_labels == label
        values = anomaly_map[y : y + h, x : x + w]
        masked = np.where(mask, values, -np.inf)
        py, px = np.unravel_index(int(np.argmax(masked)), masked.shape)
        regions.append(
            Region(
                bbox=(x, y, w, h),
                peak_xy=(x + int(px), y + int(py)),
                peak_score=float(values[py, px]),
                mean_score=float(values[mask].mean()),
                area_px=area,
                mask=mask,
            )
        )
    regions.sort(key=lambda r: r.peak_score, reverse=True)
    return regions
