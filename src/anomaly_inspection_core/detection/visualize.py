"""Heat-map overlays of anomaly maps for humans."""

from __future__ import annotations

import cv2
import numpy as np

from .regions import Region


def overlay_heatmap(
    image_rgb: np.ndarray,
    anomaly_map: np.ndarray,
    regions: list[Region] | None = None,
    alpha: float = 0.45,
    label: str | None = None,
) -> np.ndarray:
    """RGB image with the normalised map (0..1, 0.5 = threshold) as a JET overlay,
    region boxes in white, and an optional text label in the corner."""
    if image_rgb.shape[:2] != anomaly_map.shape:
        raise ValueError(f"image {image_rgb.shape[:2]} and map {anomaly_map.shape} differ in size")
    heat = np.clip(anomaly_map, 0.0, 1.0)
    colored = cv2.applyColorMap((heat * 255).astype(np.uint8), cv2.COLORMAP_JET)[:, :, ::-1]
    out = cv2.addWeighted(image_rgb, 1.0 - alpha, colored, alpha, 0.0)
    for region in regions or []:
        x, y, w, h = region.bbox
        cv2.rectangle(out, (x, y), (x + w - 1, y + h - 1), (255, 255, 255), 2)
    if label:
        scale = max(0.4, image_rgb.shape[1] / 640.0)
        cv2.putText(out, label, (5, int(22 * scale)), cv2.FONT_HERSHEY_SIMPLEX, 0.6 * scale, (255, 255, 255), 2)
    return np.ascontiguousarray(out)
