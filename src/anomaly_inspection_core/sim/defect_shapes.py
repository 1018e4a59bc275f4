"""Appearance of each defect type: conforming patch meshes and materials, varied by the defect seed."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..scenario.schema import DefectSpec
from ..scenario.surfaces import Surface
from . import textures
from .meshes import Mesh, blob_outline, blob_patch, ribbon_patch


@dataclass
class PatchMaterial:
    """MuJoCo material of a defect patch: colour, optional texture (PNG bytes), shading."""

    rgba: tuple[float, float, float, float]
    texture_png: bytes | None = None
    specular: float = 0.2
    shininess: float = 0.2


def _crack_path(rng: np.random.Generator, length: float, step: float = 0.003) -> np.ndarray:
    n = max(6, int(length / step))
    heading = 0.0
    pts = [np.zeros(2)]
    for _ in range(n):
        heading = 0.7 * heading + rng.normal(0, 0.45)
        heading = float(np.clip(heading, -1.0, 1.0))
        pts.append(pts[-1] + step * np.array([math.cos(heading), math.sin(heading)]))
    p = np.array(pts)
    return p - p.mean(axis=0)


def defect_patches(defect: DefectSpec, host: Surface, dents: list[DefectSpec],
                   host_rgb: tuple[float, float, float]) -> list[tuple[Mesh, PatchMaterial]]:
    """Meshes and materials that render ``defect`` on ``host`` (all share the defect's id)."""
    rng = np.random.default_rng(defect.seed)
    angle = math.radians(defect.orientation_deg) if defect.orientation_deg is not None else rng.uniform(0, math.pi)
    rad = defect.size / 2.0
    out: list[tuple[Mesh, PatchMaterial]] = []
    if defect.type == "corrosion":
        tex = textures.rust(rng)
        out.append((blob_patch(defect, host, rad, blob_outline(rng, 64, 0.35), angle, dents),
                    PatchMaterial((1, 1, 1, 1), tex, 0.05, 0.05)))
        for _ in range(int(rng.integers(0, 3))):  # satellite pits
            centre = rng.uniform(-0.6, 0.6, 2) * rad
            r2 = rad * rng.uniform(0.2, 0.4)
            out.append((blob_patch(defect, host, r2, blob_outline(rng, 32, 0.4), angle, dents, centre_2d=centre,
                                   rings=3, offset=0.0018), PatchMaterial((1, 1, 1, 1), tex, 0.05, 0.05)))
    elif defect.type == "missing_coating":
        primer = bool(rng.random() < 0.4)
        out.append((blob_patch(defect, host, rad, blob_outline(rng, 72, 0.5), angle, dents),
                    PatchMaterial((1, 1, 1, 1), textures.bare_metal(rng, primer=primer), 0.5 if not primer else 0.1, 0.6)))
    elif defect.type == "stain":
        elong = rng.uniform(1.0, 1.8)
        out.append((blob_patch(defect, host, rad, blob_outline(rng, 64, 0.25, elongation=elong), angle, dents),
                    PatchMaterial((1, 1, 1, 1), textures.stain(rng), 0.4, 0.7)))
    elif defect.type == "dent":
        shade = rng.uniform(0.72, 0.85)
        rgba = (host_rgb[0] * shade, host_rgb[1] * shade, host_rgb[2] * shade, 1.0)
        out.append((blob_patch(defect, host, rad, blob_outline(rng, 48, 0.08), angle, dents, rings=10),
                    PatchMaterial(rgba, None, 0.6, 0.5)))
    elif defect.type == "crack":
        path = _crack_path(rng, defect.size)
        w = rng.uniform(0.0025, 0.0045)
        taper = np.clip(np.minimum(np.arange(len(path)), np.arange(len(path))[::-1]) / 6.0, 0.3, 1.0)
        dark = rng.uniform(0.04, 0.1)
        mat = PatchMaterial((dark, dark * 0.95, dark * 0.9, 1.0), None, 0.0, 0.0)
        out.append((ribbon_patch(defect, host, path, w * taper, angle, dents), mat))
        for _ in range(int(rng.integers(0, 3))):  # branches
            start = path[int(rng.integers(len(path) // 4, 3 * len(path) // 4))]
            branch = _crack_path(rng, defect.size * rng.uniform(0.2, 0.4))
            branch = branch - branch[0]
            rot = rng.uniform(0.5, 1.2) * rng.choice([-1, 1])
            c, s = math.cos(rot), math.sin(rot)
            branch = branch @ np.array([[c, s], [-s, c]]) + start
            bt = np.linspace(1.0, 0.3, len(branch))
            out.append((ribbon_patch(defect, host, branch, 0.7 * w * bt, angle, dents), mat))
    elif defect.type == "scratch":
        bright = rng.uniform(0.8, 0.92)
        mat = PatchMaterial((bright, bright, bright * 1.02 if bright < 0.98 else 1.0, 1.0), None, 0.8, 0.9)
        for k in range(int(rng.integers(1, 4))):
            length = defect.size * (1.0 if k == 0 else rng.uniform(0.4, 0.8))
            t = np.linspace(-0.5, 0.5, 24)[:, None] * length
            curve = rng.normal(0, 0.03) * length * (1 - (2 * t[:, 0] / length) ** 2)
            lateral = (k * 0.006 * rng.choice([-1, 1])) + curve
            path = np.hstack([t, lateral[:, None] if np.ndim(lateral) else np.full_like(t, lateral)])
            w = rng.uniform(0.0018, 0.0032) * np.ones(len(path))
            out.append((ribbon_patch(defect, host, path, w, angle, dents), mat))
    else:  # the loader rejects unknown types; this guards a hand-built DefectSpec
        raise ValueError(f"unknown defect type {defect.type!r}")
    return out
