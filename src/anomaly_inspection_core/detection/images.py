"""Reading images of any format/channel count into RGB uint8 arrays, and listing image folders."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def to_rgb_uint8(image: np.ndarray) -> np.ndarray:
    """``image`` as ``(H, W, 3)`` uint8 RGB: grayscale is replicated, alpha dropped, 16-bit and float rescaled."""
    arr = np.asarray(image)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (3, 4)):
        raise ValueError(f"expected an HxW, HxWx1, HxWx3 or HxWx4 image, got shape {arr.shape}")
    if arr.shape[0] < 8 or arr.shape[1] < 8:
        raise ValueError(f"image too small: {arr.shape[:2]}")
    if arr.dtype == np.uint16:
        arr = (arr / 257.0).round().astype(np.uint8)
    elif arr.dtype.kind == "f":
        scale = 255.0 if float(np.nanmax(arr)) <= 1.0 else 1.0
        arr = np.clip(arr * scale, 0, 255).round().astype(np.uint8)
    elif arr.dtype != np.uint8:
        arr = np.clip(arr, 0, 255).astype(np.uint8)
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    elif arr.shape[2] == 4:
        arr = arr[:, :, :3]
    return np.ascontiguousarray(arr)


def read_image_rgb(path: str | os.PathLike) -> np.ndarray:
    """Read an image file (png/jpg/bmp/tiff, 8 or 16 bit, gray/RGB/RGBA) as RGB uint8."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image not found: {path}")
    data = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if data is None:
        raise ValueError(f"cannot decode image: {path}")
    if data.ndim == 3 and data.shape[2] >= 3:
        data = cv2.cvtColor(data, cv2.COLOR_BGRA2RGBA if data.shape[2] == 4 else cv2.COLOR_BGR2RGB)
    return to_rgb_uint8(data)


def list_images(directory: str | os.PathLike) -> list[Path]:
    """Image files directly inside ``directory``, sorted by name (any case of the suffix; hidden
    files such as macOS ``._name.png`` resource forks are not images and are skipped)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"not a directory: {directory}")
    return sorted(p for p in directory.iterdir()
                  if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_SUFFIXES)
