"""Procedural MVTec-AD-like evaluation sets with pixel masks (a proxy for real industrial images).

Each category imitates one kind of MVTec AD subject: textures (brushed metal, wood, woven
fabric, wire grid, leather) and objects placed with pose jitter (a hexagonal metal nut, a pill).
Defects are subtle and varied: scratches, cracks, stains, contamination, colour changes, local
deformations, holes, broken wires and missing parts. Every defective test image has an exact
mask. Categories differ in image size, file format (png/jpg) and colour (grayscale/RGB), like
the real benchmark.

:func:`write_proxy_dataset` writes one category in the MVTec layout
(``train/good``, ``test/<type>``, ``ground_truth/<type>/<name>_mask.png``).
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

logger = logging.getLogger(__name__)

Rng = np.random.Generator


@dataclass(frozen=True)
class ProxyCategory:
    """How one proxy category looks: size (h, w), file format, colour, generator and defects."""

    name: str
    size: tuple[int, int]
    suffix: str
    grayscale: bool
    defects: tuple[str, ...]


# ----------------------------------------------------------------------------- noise helpers
def _noise(rng: Rng, shape: tuple[int, int], sigma: float) -> np.ndarray:
    """Gaussian-blurred white noise scaled to unit std."""
    n = rng.normal(0.0, 1.0, shape).astype(np.float32)
    if sigma > 0:
        n = cv2.GaussianBlur(n, (0, 0), sigma)
    return n / (n.std() + 1e-6)


def _fractal(rng: Rng, shape: tuple[int, int], scales: tuple[float, ...], weights: tuple[float, ...]) -> np.ndarray:
    out = np.zeros(shape, np.float32)
    for s, w in zip(scales, weights):
        out += w * _noise(rng, shape, s)
    return out


def _blob_mask(rng: Rng, shape: tuple[int, int], centre: tuple[float, float], radius: float) -> np.ndarray:
    """An irregular filled blob (noisy ellipse) as a float mask in [0, 1]."""
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    angle = rng.uniform(0, math.pi)
    ax, ay = radius * rng.uniform(0.6, 1.4), radius * rng.uniform(0.5, 1.0)
    dx, dy = xx - centre[0], yy - centre[1]
    u = (dx * math.cos(angle) + dy * math.sin(angle)) / ax
    v = (-dx * math.sin(angle) + dy * math.cos(angle)) / ay
    r = np.sqrt(u * u + v * v) + 0.25 * _noise(rng, shape, max(1.0, radius / 4))
    return np.clip((1.0 - r) * 3.0, 0.0, 1.0)


def _random_curve(rng: Rng, shape: tuple[int, int], length: float, wiggle: float) -> np.ndarray:
    """Points of a smooth random curve of about ``length`` pixels inside the image."""
    h, w = shape
    x, y = rng.uniform(0.15 * w, 0.85 * w), rng.uniform(0.15 * h, 0.85 * h)
    heading = rng.uniform(0, 2 * math.pi)
    pts = [(x, y)]
    step = 2.0
    for _ in range(int(length / step)):
        heading += rng.normal(0, wiggle)
        x, y = x + step * math.cos(heading), y + step * math.sin(heading)
        if not (2 <= x < w - 2 and 2 <= y < h - 2):
            break
        pts.append((x, y))
    return np.asarray(pts, np.float32)


def _draw_curve(shape: tuple[int, int], pts: np.ndarray, thickness: int) -> np.ndarray:
    canvas = np.zeros(shape, np.uint8)
    cv2.polylines(canvas, [np.round(pts * 4).astype(np.int32)], False, 255, thickness, cv2.LINE_AA, shift=2)
    return canvas.astype(np.float32) / 255.0


# ----------------------------------------------------------------------------- normal images
def _brushed_metal(rng: Rng, shape: tuple[int, int]) -> np.ndarray:
    h, w = shape
    streaks = cv2.GaussianBlur(rng.normal(0, 1, (h, w)).astype(np.float32), (0, 0), sigmaX=25, sigmaY=0.7)
    streaks /= streaks.std() + 1e-6
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    light = 12 * np.cos((xx / w - rng.uniform(0.3, 0.7)) * 2.2) + 6 * (yy / h)
    gray = 150 + 9 * streaks + light + 3 * _noise(rng, shape, 0.6)
    return np.repeat(gray[:, :, None], 3, 2)


def _wood(rng: Rng, shape: tuple[int, int]) -> np.ndarray:
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    cx, cy = rng.uniform(-2.0, -1.0) * w, rng.uniform(0.2, 0.8) * h
    r = np.sqrt(((xx - cx) * 0.25) ** 2 + (yy - cy) ** 2)
    r += 6.0 * _fractal(rng, shape, (20.0, 6.0), (1.0, 0.3))
    rings = 0.5 + 0.5 * np.sin(r / rng.uniform(5.5, 7.0) * 2 * math.pi / 6.0)
    grain = cv2.GaussianBlur(rng.normal(0, 1, shape).astype(np.float32), (0, 0), sigmaX=0.6, sigmaY=6)
    grain /= grain.std() + 1e-6
    t = 0.65 * rings + 0.08 * grain
    base = np.array([150, 105, 65], np.float32)
    dark = np.array([110, 70, 40], np.float32)
    return base[None, None] * (1 - t[..., None]) + dark[None, None] * t[..., None] + 4 * _noise(rng, shape, 0.7)[..., None]


def _fabric(rng: Rng, shape: tuple[int, int]) -> np.ndarray:
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    period = 7.0
    jitter_x = 1.2 * _noise(rng, shape, 8.0)
    jitter_y = 1.2 * _noise(rng, shape, 8.0)
    warp = np.sin(2 * math.pi * (xx + jitter_x) / period)
    weft = np.sin(2 * math.pi * (yy + jitter_y) / period)
    checker = np.sign(np.sin(math.pi * (xx + jitter_x) / period) * np.sin(math.pi * (yy + jitter_y) / period))
    yarn = np.where(checker > 0, np.abs(warp), np.abs(weft))
    fuzz = _noise(rng, shape, 0.8)
    t = 0.6 * yarn + 0.12 * fuzz + 0.1 * _noise(rng, shape, 25.0)
    colour = np.array([70, 95, 150], np.float32)
    return colour[None, None] * (0.7 + 0.5 * t[..., None])


def _grid(rng: Rng, shape: tuple[int, int]) -> np.ndarray:
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    period = 18.0
    ox, oy = rng.uniform(0, period, 2)
    wx = xx + 0.8 * _noise(rng, shape, 30.0) + ox
    wy = yy + 0.8 * _noise(rng, shape, 30.0) + oy
    dx = np.abs(((wx + period / 2) % period) - period / 2)
    dy = np.abs(((wy + period / 2) % period) - period / 2)
    wire = np.maximum(np.exp(-(dx / 1.6) ** 2), np.exp(-(dy / 1.6) ** 2))
    background = 40 + 10 * _fractal(rng, shape, (12.0, 3.0), (1.0, 0.4))
    gray = background + 120 * wire * (0.85 + 0.15 * _noise(rng, shape, 4.0)) + 4 * _noise(rng, shape, 0.6)
    return np.repeat(gray[:, :, None], 3, 2)


def _leather(rng: Rng, shape: tuple[int, int]) -> np.ndarray:
    cells = _noise(rng, shape, 2.2)
    grain = 1.0 - np.exp(-np.abs(cells) * 2.0)  # thin dark valleys where the field crosses zero
    t = 0.55 * grain + 0.15 * _noise(rng, shape, 20.0) + 0.08 * _noise(rng, shape, 0.8)
    colour = np.array([120, 70, 50], np.float32)
    return colour[None, None] * (0.75 + 0.45 * t[..., None])


def _object_canvas(rng: Rng, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    background = 35 + 8 * _fractal(rng, shape, (40.0, 2.0), (1.0, 0.2))
    return np.repeat(background[:, :, None], 3, 2), xx, yy


def _metal_nut(rng: Rng, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """A hexagonal nut with a threaded hole, rotated and shifted; also returns its mask."""
    h, w = shape
    image, xx, yy = _object_canvas(rng, shape)
    cx = w / 2 + rng.uniform(-0.04, 0.04) * w
    cy = h / 2 + rng.uniform(-0.04, 0.04) * h
    angle = rng.uniform(0, 2 * math.pi)
    radius = 0.34 * min(h, w)
    corners = [(cx + radius * math.cos(angle + k * math.pi / 3), cy + radius * math.sin(angle + k * math.pi / 3)) for k in range(6)]
    body = np.zeros(shape, np.uint8)
    cv2.fillPoly(body, [np.round(np.asarray(corners) * 4).astype(np.int32)], 255, cv2.LINE_AA, shift=2)
    body_f = body.astype(np.float32) / 255.0
    r = np.sqrt((xx - cx) ** 2 + (yy - cy) ** 2)
    theta = np.arctan2(yy - cy, xx - cx)
    hole = np.clip((0.42 * radius - r) / 1.5, 0, 1)
    chamfer = np.clip((r - 0.42 * radius) / (0.2 * radius), 0, 1)
    metal = 150 + 35 * np.cos(theta - angle) * (1 - chamfer) * 0.6 + 20 * chamfer
    metal += 5 * _noise(rng, shape, 0.8) + 8 * _noise(rng, shape, 10.0)
    threads = 0.5 + 0.5 * np.sin(r * 2 * math.pi / 4.0)
    inner = 60 + 30 * threads
    obj = metal * (1 - hole) + inner * hole
    tint = np.array([1.0, 0.97, 0.9], np.float32)
    image = image * (1 - body_f[..., None]) + (obj[..., None] * tint) * body_f[..., None]
    return image, body_f > 0.5


def _pill(rng: Rng, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """A white capsule-shaped pill with red speckles and an imprint, small pose jitter."""
    h, w = shape
    image, xx, yy = _object_canvas(rng, shape)
    image = image * 0 + np.array([60, 65, 70], np.float32) + 6 * _noise(rng, shape, 30.0)[..., None]
    cx = w / 2 + rng.uniform(-0.03, 0.03) * w
    cy = h / 2 + rng.uniform(-0.03, 0.03) * h
    angle = rng.uniform(-0.08, 0.08)
    dx, dy = xx - cx, yy - cy
    u = dx * math.cos(angle) + dy * math.sin(angle)
    v = -dx * math.sin(angle) + dy * math.cos(angle)
    half_len, half_wid = 0.36 * w, 0.16 * h
    du = np.maximum(np.abs(u) - (half_len - half_wid), 0)
    d = np.sqrt(du**2 + v**2) - half_wid
    body = np.clip(-d / 1.2, 0, 1)
    shade = 1.0 - 0.25 * (v / half_wid) ** 2
    white = 225 * shade + 3 * _noise(rng, shape, 0.7)
    pill = np.repeat(white[..., None], 3, 2)
    speck = (rng.random(shape) < 0.004).astype(np.float32)
    speck = cv2.GaussianBlur(speck, (0, 0), 0.8) * 8
    speck = np.clip(speck, 0, 1) * body
    pill = pill * (1 - speck[..., None]) + np.array([190, 80, 70], np.float32) * speck[..., None]
    imprint = np.zeros(shape, np.uint8)
    cv2.putText(imprint, "FF", (int(cx - 0.08 * w), int(cy + 0.05 * h)), cv2.FONT_HERSHEY_SIMPLEX, 0.004 * w, 255, max(1, w // 160), cv2.LINE_AA)
    imp = imprint.astype(np.float32) / 255.0 * 0.25
    pill = pill * (1 - imp[..., None])
    image = image * (1 - body[..., None]) + pill * body[..., None]
    return image, body > 0.5


# ----------------------------------------------------------------------------- defects
def _pick_centre(rng: Rng, region: np.ndarray | None, shape: tuple[int, int], margin: float) -> tuple[float, float]:
    h, w = shape
    if region is not None:
        ys, xs = np.nonzero(region)
        k = int(rng.integers(len(xs)))
        return float(xs[k]), float(ys[k])
    return float(rng.uniform(margin * w, (1 - margin) * w)), float(rng.uniform(margin * h, (1 - margin) * h))


def _defect(name: str, rng: Rng, image: np.ndarray, region: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Apply defect ``name`` to a float image; returns (image, boolean mask)."""
    shape = image.shape[:2]
    h, w = shape
    size = min(h, w)
    out = image.copy()
    if name in ("scratch", "crack"):
        length = rng.uniform(0.15, 0.4) * size
        pts = _random_curve(rng, shape, length, 0.05 if name == "scratch" else 0.35)
        if region is not None:
            c = _pick_centre(rng, region, shape, 0.2)
            pts = pts - pts.mean(0) + np.asarray(c, np.float32)
        thickness = max(1, int(round(size / 300 * (1 if name == "scratch" else 1.5))))
        line = _draw_curve(shape, pts, thickness)
        delta = rng.uniform(25, 45) * (1 if name == "scratch" and rng.random() < 0.5 else -1)
        alpha = line[..., None]
        out = out + delta * alpha
        mask = line > 0.3
    elif name in ("stain", "color", "contamination", "spot"):
        radius = rng.uniform(0.025, 0.06) * size if name != "spot" else rng.uniform(0.012, 0.025) * size
        c = _pick_centre(rng, region, shape, 0.15)
        blob = _blob_mask(rng, shape, c, radius)
        if name == "stain":
            target = out * rng.uniform(0.6, 0.8)
            strength = rng.uniform(0.5, 0.8)
        elif name == "color":
            shift = rng.normal(0, 1, 3)
            shift = shift / np.linalg.norm(shift) * rng.uniform(25, 40)
            target = out + shift.astype(np.float32)
            strength = 1.0
        elif name == "contamination":
            tex = 40 * _noise(rng, shape, 1.2)
            colour = rng.uniform(60, 200, 3).astype(np.float32)
            target = colour[None, None] + tex[..., None]
            strength = rng.uniform(0.5, 0.8)
        else:  # small dark/bright spot
            target = out + rng.choice([-1, 1]) * rng.uniform(35, 60)
            strength = 0.9
        a = blob[..., None] * strength
        out = out * (1 - a) + target * a
        mask = blob > 0.35
    elif name == "deformation":
        radius = rng.uniform(0.05, 0.1) * size
        c = _pick_centre(rng, region, shape, 0.2)
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        g = np.exp(-((xx - c[0]) ** 2 + (yy - c[1]) ** 2) / (2 * radius**2))
        ang = rng.uniform(0, 2 * math.pi)
        amp = rng.uniform(0.25, 0.45) * radius
        map_x = (xx + amp * g * math.cos(ang)).astype(np.float32)
        map_y = (yy + amp * g * math.sin(ang)).astype(np.float32)
        out = cv2.remap(out.astype(np.float32), map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        mask = (amp * g) > 1.5
    elif name in ("hole", "missing"):
        radius = rng.uniform(0.02, 0.045) * size
        if region is not None:
            # a chip off the object's outline
            ys, xs = np.nonzero(cv2.morphologyEx(region.astype(np.uint8), cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8)))
            k = int(rng.integers(len(xs)))
            c = (float(xs[k]), float(ys[k]))
            radius *= 1.6
        else:
            c = _pick_centre(rng, None, shape, 0.15)
        blob = _blob_mask(rng, shape, c, radius)
        fill = np.full_like(out, 30.0) + 5 * _noise(rng, shape, 3.0)[..., None]
        out = out * (1 - blob[..., None]) + fill * blob[..., None]
        mask = blob > 0.35
        if region is not None:
            mask &= region
    elif name == "broken":
        # a short stretch of the image replaced by its blurred surroundings: a wire/thread gap
        c = _pick_centre(rng, None, shape, 0.15)
        half = rng.uniform(0.015, 0.03) * size
        blob = np.zeros(shape, np.float32)
        cv2.rectangle(blob, (int(c[0] - half), int(c[1] - half)), (int(c[0] + half), int(c[1] + half)), 1.0, -1)
        blob = cv2.GaussianBlur(blob, (0, 0), 1.0)
        dark = cv2.GaussianBlur(np.minimum(out, np.percentile(out, 30)), (0, 0), 2.0)
        out = out * (1 - blob[..., None]) + dark * blob[..., None]
        mask = blob > 0.35
    else:
        raise KeyError(f"unknown defect type {name!r}")
    if region is not None and name != "missing":
        # defects of an object lie on the object, not on the background around it
        inside = region.astype(np.float32)[..., None]
        out = image + (out - image) * inside
        mask &= region
    if not mask.any():
        raise ValueError("empty defect mask")
    return out, mask


# ----------------------------------------------------------------------------- categories
_TEXTURES: dict[str, Callable[[Rng, tuple[int, int]], np.ndarray]] = {
    "brushed_metal": _brushed_metal,
    "wood": _wood,
    "fabric": _fabric,
    "grid": _grid,
    "leather": _leather,
}
_OBJECTS: dict[str, Callable[[Rng, tuple[int, int]], tuple[np.ndarray, np.ndarray]]] = {
    "metal_nut": _metal_nut,
    "pill": _pill,
}

PROXY_CATEGORIES: dict[str, ProxyCategory] = {
    c.name: c
    for c in (
        ProxyCategory("brushed_metal", (320, 320), ".png", True, ("scratch", "stain", "deformation", "spot")),
        ProxyCategory("wood", (384, 512), ".jpg", False, ("crack", "color", "hole", "scratch")),
        ProxyCategory("fabric", (300, 300), ".png", False, ("hole", "contamination", "color", "deformation")),
        ProxyCategory("grid", (400, 400), ".png", True, ("broken", "deformation", "contamination", "spot")),
        ProxyCategory("leather", (352, 352), ".jpg", False, ("scratch", "color", "hole", "stain")),
        ProxyCategory("metal_nut", (300, 300), ".png", False, ("missing", "scratch", "color", "stain")),
        ProxyCategory("pill", (256, 448), ".jpg", False, ("crack", "contamination", "color", "spot")),
    )
}


def make_proxy_image(
    category: str, rng: Rng, defect: str | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """One uint8 image of ``category`` (gray ``(h, w)`` or RGB ``(h, w, 3)``) and its defect mask.

    ``defect=None`` gives a normal image and mask ``None``.
    """
    if category not in PROXY_CATEGORIES:
        raise ValueError(f"unknown proxy category {category!r}; known: {', '.join(PROXY_CATEGORIES)}")
    spec = PROXY_CATEGORIES[category]
    if category in _TEXTURES:
        image, region = _TEXTURES[category](rng, spec.size), None
    else:
        image, region = _OBJECTS[category](rng, spec.size)
    mask = None
    if defect is not None:
        for attempt in range(10):
            try:
                image, mask = _defect(defect, rng, image, region)
                break
            except ValueError:
                if attempt == 9:
                    raise
    image = np.clip(image, 0, 255).astype(np.uint8)
    if spec.grayscale:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    return image, mask


def _write(path: Path, image: np.ndarray) -> None:
    out = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    params = [cv2.IMWRITE_JPEG_QUALITY, 92] if path.suffix == ".jpg" else []
    if not cv2.imwrite(str(path), out, params):
        raise OSError(f"cannot write {path}")


def write_proxy_dataset(
    root: str | os.PathLike,
    category: str,
    n_train: int = 200,
    n_test_good: int = 40,
    n_test_per_defect: int = 15,
    seed: int = 0,
) -> Path:
    """Write one proxy category in the MVTec layout under ``root/category``; returns that folder.

    An existing complete folder (same counts) is reused, so repeated benchmarks cost nothing.
    """
    if category not in PROXY_CATEGORIES:
        raise ValueError(f"unknown proxy category {category!r}; known: {', '.join(PROXY_CATEGORIES)}")
    spec = PROXY_CATEGORIES[category]
    base = Path(root) / category
    stamp = base / ".complete"
    signature = f"{n_train},{n_test_good},{n_test_per_defect},{seed},v2"
    if stamp.is_file() and stamp.read_text() == signature:
        return base
    rng = np.random.default_rng([seed, sorted(PROXY_CATEGORIES).index(category)])
    for sub in ("train/good", "test/good"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    for i in range(n_train):
        _write(base / "train/good" / f"{i:03d}{spec.suffix}", make_proxy_image(category, rng)[0])
    for i in range(n_test_good):
        _write(base / "test/good" / f"{i:03d}{spec.suffix}", make_proxy_image(category, rng)[0])
    for defect in spec.defects:
        (base / "test" / defect).mkdir(parents=True, exist_ok=True)
        (base / "ground_truth" / defect).mkdir(parents=True, exist_ok=True)
        for i in range(n_test_per_defect):
            image, mask = make_proxy_image(category, rng, defect)
            assert mask is not None
            _write(base / "test" / defect / f"{i:03d}{spec.suffix}", image)
            cv2.imwrite(str(base / "ground_truth" / defect / f"{i:03d}_mask.png"), mask.astype(np.uint8) * 255)
    stamp.write_text(signature)
    logger.info("wrote proxy category %s to %s", category, base)
    return base
