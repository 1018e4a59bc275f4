"""Teach buffers: ``diverse`` keeps frames dense where the view changes fast and sparse along a
uniform run; ``even`` thins evenly in time; both respect the minimum interval."""

from __future__ import annotations

import numpy as np
import pytest

from anomaly_inspection_core.detection.teach import DiverseFrameBuffer, EvenFrameBuffer, make_frame_buffer


def _frame(level: float) -> np.ndarray:
    """A 48x64 RGB frame: a horizontal ramp shifted by ``level`` (0..1)."""
    ramp = np.linspace(0.0, 1.0, 64)[None, :].repeat(48, 0)
    grey = np.clip(ramp * 0.5 + level * 0.5, 0, 1)
    return (np.repeat(grey[..., None], 3, axis=2) * 255).astype(np.uint8)


# a long uniform run (the image barely changes), then a fast turn, then a run again
LEVELS = [0.0 + 0.001 * i for i in range(100)] + [0.1 + 0.04 * i for i in range(20)] + [0.9] * 60


def _turn_frames(buf) -> int:
    kept = [float(f[0, 0, 0]) for f in buf.frames]  # the ramp's left end encodes the level
    assert kept == sorted(kept)  # arrival order kept
    return sum(1 for lv in kept if 0.1 * 127 <= lv <= 0.87 * 127 + 1)


def test_diverse_frames_stay_dense_where_the_image_changes():
    buf = make_frame_buffer("diverse", 30)
    for k, lv in enumerate(LEVELS):
        buf.add(_frame(lv), 0.2 * k)
    assert len(buf) == 30
    assert _turn_frames(buf) >= 15  # evenly in time: 30 * 20 / 180 = 3
    assert float(buf.frames[0][0, 0, 0]) == 0.0  # the first frame stays


def test_even_thinning_halves_and_doubles_the_interval():
    buf = make_frame_buffer("even", 30, 0.2)
    assert isinstance(buf, EvenFrameBuffer)
    for k, lv in enumerate(LEVELS):
        buf.add(_frame(lv), 0.2 * k)
    assert 15 <= len(buf) <= 30
    assert _turn_frames(buf) <= 6
    assert buf.min_interval_s > 0.2
    buf.clear()
    assert len(buf) == 0 and buf.min_interval_s == 0.2


def test_minimum_interval_and_bad_arguments():
    buf = DiverseFrameBuffer(3, min_interval_s=0.5)
    assert buf.add(_frame(0.0), 1.0)
    assert not buf.add(_frame(0.5), 1.2)  # too soon
    for k, lv in enumerate((0.5, 1.0, 0.2)):
        assert buf.add(_frame(lv), 2.0 + k)
    assert len(buf) == 3
    buf.clear()
    assert len(buf) == 0 and buf.frames == []
    with pytest.raises(ValueError, match="capacity"):
        DiverseFrameBuffer(2)
    with pytest.raises(ValueError, match="even, diverse"):
        make_frame_buffer("random", 10)
