"""The teach buffer keeps frames dense where the view changes fast and sparse along a uniform run."""

from __future__ import annotations

import numpy as np
import pytest

from anomaly_inspection_core.detection.teach import DiverseFrameBuffer


def _frame(level: float) -> np.ndarray:
    """A 48x64 RGB frame: a horizontal ramp shifted by ``level`` (0..1)."""
    ramp = np.linspace(0.0, 1.0, 64)[None, :].repeat(48, 0)
    grey = np.clip(ramp * 0.5 + level * 0.5, 0, 1)
    return (np.repeat(grey[..., None], 3, axis=2) * 255).astype(np.uint8)


def test_frames_stay_dense_where_the_image_changes():
    # a long uniform run (the image barely changes), then a fast turn, then a run again
    levels = [0.0 + 0.001 * i for i in range(100)] + [0.1 + 0.04 * i for i in range(20)] + [0.9] * 60
    buf = DiverseFrameBuffer(30)
    for lv in levels:
        buf.add(_frame(lv))
    assert len(buf) == 30
    kept = [float(f[0, 0, 0]) for f in buf.frames]  # the ramp's left end encodes the level
    turn = sum(1 for lv in kept if 0.1 * 127 <= lv <= 0.87 * 127 + 1)
    # thinning evenly in time would keep 30 * 20 / 180 = 3 frames of the turn
    assert turn >= 15, kept
    assert kept == sorted(kept)  # arrival order kept
    assert buf.frames[0] is not None and kept[0] == pytest.approx(0.0, abs=1)  # the first frame stays


def test_capacity_is_checked_and_clear_empties():
    with pytest.raises(ValueError, match="capacity"):
        DiverseFrameBuffer(2)
    buf = DiverseFrameBuffer(3)
    for lv in (0.0, 0.5, 1.0, 0.2):
        buf.add(_frame(lv))
    assert len(buf) == 3
    buf.clear()
    assert len(buf) == 0 and buf.frames == []
