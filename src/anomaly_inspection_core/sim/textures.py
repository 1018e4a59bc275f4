"""Procedural textures (tileable fractal noise): paint mottling, concrete, rust, bare metal, welds."""

from __future__ import annotations

import math

import cv2
import numpy as np


def fractal_noise(rng: np.random.Generator, size: int, beta: float = 2.0, aspect: float = 1.0) -> np.ndarray:
    """Tileable 1/f^beta noise in [0, 1], shape (size, size). ``aspect`` > 1 stretches it along axis 0."""
    white = rng.normal(size=(size, size))
    fy = np.fft.fftfreq(size)[:, None] * aspect
    fx = np.fft.fftfreq(size)[None, :]
    f = np.sqrt(fx * fx + fy * fy)
    f[0, 0] = 1.0
    spectrum = np.fft.fft2(white) / f ** (beta / 2.0)
    spectrum[0, 0] = 0.0
    out = np.real(np.fft.ifft2(spectrum))
    out -= out.min()
    return out / max(out.max(), 1e-12)


def _to_png(rgb01: np.ndarray) -> bytes:
    img = np.clip(rgb01 * 255.0 + 0.5, 0, 255).astype(np.uint8)
    ok, buf = cv2.imencode(".png", img[:, :, ::-1])
    if not ok:
        raise RuntimeError("PNG encoding of a texture failed")
    return buf.tobytes()


def paint(rng: np.random.Generator, color, size: int = 512, mottling: float = 0.10, grain: float = 0.05) -> bytes:
    """Painted metal: low-frequency mottling, fine grain and faint vertical weathering streaks."""
    c = np.asarray(color, dtype=np.float64)
    low = fractal_noise(rng, size, 2.6) - 0.5
    fine = fractal_noise(rng, size, 0.8) - 0.5
    streak = fractal_noise(rng, size, 2.0, aspect=8.0) - 0.5
    shade = 1.0 + mottling * 2 * low + grain * 2 * fine + 0.04 * streak
    tint = 1.0 + 0.03 * (fractal_noise(rng, size, 2.2)[..., None] - 0.5) * np.array([1.0, -0.5, -1.0])
    return _to_png(c[None, None] * shade[..., None] * tint)


def concrete(rng: np.random.Generator, size: int = 512, base: float = 0.55) -> bytes:
    low = fractal_noise(rng, size, 2.4) - 0.5
    fine = fractal_noise(rng, size, 0.3) - 0.5
    speck = (rng.random((size, size)) > 0.995) * -0.15
    g = base * (1.0 + 0.18 * low + 0.12 * fine + speck)
    return _to_png(np.stack([g, g * 0.98, g * 0.94], -1))


def rust(rng: np.random.Generator, size: int = 128) -> bytes:
    """Orange-brown corrosion with dark pits and lighter bloom."""
    n1 = fractal_noise(rng, size, 1.8)
    n2 = fractal_noise(rng, size, 1.0)
    orange = np.array([0.62, 0.30, 0.09]) * rng.uniform(0.85, 1.1)
    brown = np.array([0.33, 0.16, 0.06])
    dark = np.array([0.13, 0.07, 0.04])
    col = orange * n1[..., None] + brown * (1 - n1[..., None])
    col = np.where((n2 < 0.3)[..., None], dark * (0.7 + n2[..., None]), col)
    return _to_png(col)


def bare_metal(rng: np.random.Generator, size: int = 128, primer: bool = False) -> bytes:
    base = np.array([0.62, 0.25, 0.18]) if primer else np.array([0.74, 0.74, 0.76])
    n = fractal_noise(rng, size, 0.6, aspect=6.0) - 0.5
    return _to_png(base[None, None] * (1.0 + 0.12 * n[..., None]))


def stain(rng: np.random.Generator, size: int = 128) -> bytes:
    base = np.array([0.13, 0.10, 0.07]) * rng.uniform(0.7, 1.4)
    n = fractal_noise(rng, size, 2.0) - 0.5
    return _to_png(base[None, None] * (1.0 + 0.5 * n[..., None]))


def weld(rng: np.random.Generator, size: int = 256) -> bytes:
    """Weld bead: ripples across the bead with heat tint."""
    v = np.linspace(0, 1, size)[None, :]
    ripple = 0.5 + 0.5 * np.sin(2 * math.pi * (np.linspace(0, 40, size)[:, None] + 0.3 * fractal_noise(rng, size, 2.0)))
    base = np.array([0.42, 0.40, 0.37])
    tint = np.array([0.05, 0.0, -0.04]) * np.sin(math.pi * v)[..., None]
    col = base[None, None] * (0.8 + 0.3 * ripple[..., None]) + tint
    return _to_png(np.broadcast_to(col, (size, size, 3)))


def sky(size: int = 256) -> bytes:
    t = np.linspace(0, 1, size)[:, None, None]
    top = np.array([0.55, 0.68, 0.85])
    horizon = np.array([0.85, 0.88, 0.9])
    col = horizon * t + top * (1 - t)
    return _to_png(np.broadcast_to(col, (size, size, 3)))
