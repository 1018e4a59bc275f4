"""Reading image sets in the MVTec AD layout.

``DIR/train/good/*`` normal training images; ``DIR/test/<type>/*`` test images (``good`` =
normal); ``DIR/ground_truth/<type>/<name>_mask.png`` defect masks (none for ``good``). Masks
saved in another image format (``<name>_mask.bmp``, ``.jpg``, ...) or named like their image
(``<name>.png``, as some MVTec-style sets do) are found too.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .images import IMAGE_SUFFIXES, list_images


@dataclass
class TestSample:
    """One test image: its path, defect type, label (0 good, 1 defective) and mask path."""

    path: Path
    defect_type: str
    label: int
    mask_path: Path | None

    def read_mask(self, shape: tuple[int, int]) -> np.ndarray:
        """Boolean ``shape`` mask (all False for good images or a defect without a mask file)."""
        if self.mask_path is None:
            return np.zeros(shape, dtype=bool)
        mask = cv2.imread(str(self.mask_path), cv2.IMREAD_UNCHANGED)
        if mask is None:
            raise ValueError(f"cannot decode mask {self.mask_path}")
        if mask.ndim == 3:
            mask = mask[..., :3].max(axis=2)
        if mask.shape != shape:
            mask = cv2.resize(mask, (shape[1], shape[0]), interpolation=cv2.INTER_NEAREST)
        # defect pixels are the bright ones: 255 in 8-bit masks, 65535 in 16-bit ones, and 1 in
        # the 0/1 masks some sets store (a fixed 127 would read those as empty)
        top = float(mask.max())
        return mask > top / 2 if top > 0 else np.zeros(shape, dtype=bool)


def train_images(dataset_dir: str | os.PathLike) -> list[Path]:
    """``DIR/train/good`` images; clear error when the layout is wrong."""
    good = Path(dataset_dir) / "train" / "good"
    if not good.is_dir():
        raise FileNotFoundError(f"{dataset_dir} is not in the MVTec layout: missing {good}")
    paths = list_images(good)
    if not paths:
        raise FileNotFoundError(f"no images in {good}")
    return paths


def find_mask(mask_dir: Path, stem: str) -> Path | None:
    """The mask of test image ``stem``: ``<stem>_mask.png`` first (MVTec), then ``<stem>_mask`` or
    ``<stem>`` with any image suffix (either case); None when there is none."""
    for name in (f"{stem}_mask", stem):
        for suffix in IMAGE_SUFFIXES:
            for candidate in (mask_dir / f"{name}{suffix}", mask_dir / f"{name}{suffix.upper()}"):
                if candidate.is_file():
                    return candidate
    return None


def test_samples(dataset_dir: str | os.PathLike) -> list[TestSample]:
    """All ``DIR/test/<type>/*`` images with labels and mask paths, sorted by type then name."""
    root = Path(dataset_dir)
    test_dir = root / "test"
    if not test_dir.is_dir():
        raise FileNotFoundError(f"{dataset_dir} is not in the MVTec layout: missing {test_dir}")
    samples: list[TestSample] = []
    for type_dir in sorted(p for p in test_dir.iterdir() if p.is_dir()):
        for path in list_images(type_dir):
            if type_dir.name == "good":
                samples.append(TestSample(path, "good", 0, None))
                continue
            samples.append(TestSample(path, type_dir.name, 1, find_mask(root / "ground_truth" / type_dir.name, path.stem)))
    if not samples:
        raise FileNotFoundError(f"no test images under {test_dir}")
    return samples
