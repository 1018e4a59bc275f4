"""Bounded buffers of taught frames: which of a teach pass's frames a model is fitted on.

A robot teaching online streams far more normal frames than a fit can use. Two policies:

* ``even`` (:class:`EvenFrameBuffer`): frames at least ``min_interval_s`` apart; when full,
  every other frame goes and the interval doubles. Even in time, and 50-100 % of the capacity.
* ``diverse`` (:class:`DiverseFrameBuffer`): when full, the frame whose neighbours in time look
  most alike goes (mean absolute difference of small grey thumbnails), never the first or the
  last, so frames stay dense where the view changes fast and sparse where it does not. On the
  UAV's pipelines thinning evenly kept a 90 deg elbow in 4-5 frames about 20 deg of view apart,
  and the slower inspection pass saw the elbow's bend and welds from the views in between as
  unfamiliar.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import cv2
import numpy as np

THUMB_SIZE = (32, 24)  # (width, height) of the comparison thumbnail
THINNING = ("even", "diverse")


def thumbnail(rgb: np.ndarray, size: tuple[int, int] = THUMB_SIZE) -> np.ndarray:
    """Small float32 grey image (0..1) for comparing frames."""
    grey = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY) if rgb.ndim == 3 else rgb
    return cv2.resize(grey, size, interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0


def _difference(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean(np.abs(a - b)))


class _FrameBuffer(ABC):
    """At most ``capacity`` frames, in arrival order, at least ``min_interval_s`` apart in stamp."""

    def __init__(self, capacity: int, min_interval_s: float = 0.0) -> None:
        if capacity < 3:
            raise ValueError(f"capacity must be >= 3, got {capacity}")
        if min_interval_s < 0:
            raise ValueError(f"min_interval_s must be >= 0, got {min_interval_s}")
        self.capacity = int(capacity)
        self.base_interval_s = self.min_interval_s = float(min_interval_s)
        self._frames: list[np.ndarray] = []
        self._last_stamp = -np.inf

    def __len__(self) -> int:
        return len(self._frames)

    @property
    def frames(self) -> list[np.ndarray]:
        return list(self._frames)

    def clear(self) -> None:
        self._frames, self._last_stamp = [], -np.inf
        self.min_interval_s = self.base_interval_s

    def due(self, stamp: float) -> bool:
        """Whether a frame stamped ``stamp`` (s) would be taken (far enough after the last one kept)."""
        return stamp - self._last_stamp >= self.min_interval_s

    def add(self, rgb: np.ndarray, stamp: float) -> bool:
        """Take a frame stamped ``stamp`` (s); False when it came too soon after the last one kept."""
        if not self.due(stamp):
            return False
        self._last_stamp = float(stamp)
        self._frames.append(rgb)
        self._added(rgb)
        if len(self._frames) > self.capacity:
            self._thin()
        return True

    def _added(self, rgb: np.ndarray) -> None:
        pass

    @abstractmethod
    def _thin(self) -> None:
        """Drop frames (and what they keep per frame) to get back to ``capacity``."""


class EvenFrameBuffer(_FrameBuffer):
    """When full, every other frame goes and the minimum interval doubles."""

    def _thin(self) -> None:
        self._frames = self._frames[::2]
        self.min_interval_s = 2.0 * max(self.min_interval_s, 1e-3)


class DiverseFrameBuffer(_FrameBuffer):
    """When full, the frame (never the first or the last) whose removal leaves the smallest
    difference between its neighbours goes."""

    def __init__(self, capacity: int, min_interval_s: float = 0.0) -> None:
        super().__init__(capacity, min_interval_s)
        self._thumbs: list[np.ndarray] = []

    def clear(self) -> None:
        super().clear()
        self._thumbs = []

    def _added(self, rgb: np.ndarray) -> None:
        self._thumbs.append(thumbnail(rgb))

    def _thin(self) -> None:
        t = self._thumbs
        gaps = [_difference(t[i - 1], t[i + 1]) for i in range(1, len(t) - 1)]
        drop = 1 + int(np.argmin(gaps))
        del self._frames[drop], self._thumbs[drop]


def make_frame_buffer(thinning: str, capacity: int, min_interval_s: float = 0.0) -> _FrameBuffer:
    """The buffer for ``thinning`` (one of :data:`THINNING`)."""
    if thinning == "even":
        return EvenFrameBuffer(capacity, min_interval_s)
    if thinning == "diverse":
        return DiverseFrameBuffer(capacity, min_interval_s)
    raise ValueError(f"teach thinning must be one of {', '.join(THINNING)}, got '{thinning}'")
