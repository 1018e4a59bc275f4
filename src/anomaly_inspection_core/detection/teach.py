"""A bounded buffer of taught frames that keeps the most varied views.

A robot teaching online streams far more normal frames than a fit can use. Thinning them evenly
in time keeps a long straight run in many near-identical frames and a turn, where the view
changes fast, in a few: on the UAV's pipelines a 90 deg elbow was taught from 4-5 frames
20 deg apart, and the inspection pass, slower, saw the elbow's welds and bend from the views
in between as unfamiliar. :class:`DiverseFrameBuffer` instead drops, whenever it is full, the
frame whose neighbours in time look most alike (a small grey thumbnail's mean absolute
difference), so frames stay dense where the image changes and sparse where it does not.
"""

from __future__ import annotations

import cv2
import numpy as np

THUMB_SIZE = (32, 24)  # (width, height) of the comparison thumbnail


def thumbnail(rgb: np.ndarray, size: tuple[int, int] = THUMB_SIZE) -> np.ndarray:
    """Small float32 grey image (0..1) for comparing frames."""
    grey = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY) if rgb.ndim == 3 else rgb
    return cv2.resize(grey, size, interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0


def _difference(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean(np.abs(a - b)))


class DiverseFrameBuffer:
    """At most ``capacity`` frames in arrival order; when one more arrives, the frame (never the
    first or the last) whose removal leaves the smallest difference between its neighbours goes."""

    def __init__(self, capacity: int) -> None:
        if capacity < 3:
            raise ValueError(f"capacity must be >= 3, got {capacity}")
        self.capacity = int(capacity)
        self._frames: list[np.ndarray] = []
        self._thumbs: list[np.ndarray] = []

    def __len__(self) -> int:
        return len(self._frames)

    @property
    def frames(self) -> list[np.ndarray]:
        return list(self._frames)

    def clear(self) -> None:
        self._frames, self._thumbs = [], []

    def add(self, rgb: np.ndarray) -> None:
        self._frames.append(rgb)
        self._thumbs.append(thumbnail(rgb))
        if len(self._frames) > self.capacity:
            t = self._thumbs
            gaps = [_difference(t[i - 1], t[i + 1]) for i in range(1, len(t) - 1)]
            drop = 1 + int(np.argmin(gaps))
            del self._frames[drop], self._thumbs[drop]
