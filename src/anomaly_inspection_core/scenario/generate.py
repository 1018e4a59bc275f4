"""Random scenarios for robustness tests on worlds nobody has tuned for.

:func:`random_pipeline_scenario` gives a YAML-able mapping (load it with
:func:`~.loader.parse_scenario` or write it with :func:`write_scenario`): a pipe along a random
polyline with 1-4 elbows (horizontal turns and vertical risers), 6-15 defects of mixed types and
sizes (1-10 cm) on the surface the UAV sees (the inspection side and the top), and random
lighting. The same seed always gives the same scenario; every result passes the loader.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import yaml

from .loader import parse_scenario, pipe_side_vectors
from .schema import DEFECT_TYPES, ScenarioError
from .surfaces import pipe_centreline

GENERATOR_KINDS: tuple[str, ...] = ("pipeline",)


def _segments_too_close(points: np.ndarray, min_gap: float) -> bool:
    """True when two non-adjacent runs of the polyline pass closer than ``min_gap``."""
    segs = list(zip(points[:-1], points[1:]))
    t = np.linspace(0.0, 1.0, 25)
    for i in range(len(segs)):
        a = segs[i][0] + t[:, None] * (segs[i][1] - segs[i][0])
        for j in range(i + 2, len(segs)):
            b = segs[j][0] + t[:, None] * (segs[j][1] - segs[j][0])
            if np.min(np.linalg.norm(a[:, None] - b[None], axis=2)) < min_gap:
                return True
    return False


def _random_polyline(rng: np.random.Generator, radius: float, n_elbows: int) -> np.ndarray:
    bend = 3.0 * radius
    for _ in range(200):
        z0 = float(rng.uniform(0.8, 2.0))
        pts = [np.array([0.0, 0.0, z0])]
        heading = float(rng.uniform(0, 2 * math.pi))
        d = np.array([math.cos(heading), math.sin(heading), 0.0])
        last_vertical = False
        for k in range(n_elbows + 1):
            if last_vertical:
                length = float(rng.uniform(3.0, 7.0))
            else:
                length = float(rng.uniform(3.0, 7.0)) if d[2] == 0 else float(rng.uniform(1.5, 3.0))
            pts.append(pts[-1] + d * max(length, 2.5 * bend))
            if k == n_elbows:
                break
            if d[2] != 0:  # after a riser: back to horizontal, turned left or right of the old heading
                heading += float(rng.choice([-1.0, 0.0, 1.0])) * math.pi / 2
                d = np.array([math.cos(heading), math.sin(heading), 0.0])
                last_vertical = True
                continue
            last_vertical = False
            up_ok = pts[-1][2] + 3.0 < 6.0
            down_ok = pts[-1][2] - 3.0 > radius + 0.3
            choice = rng.choice(["left", "right", "riser"], p=[0.35, 0.35, 0.3])
            if choice == "riser" and (up_ok or down_ok):
                d = np.array([0.0, 0.0, 1.0 if (up_ok and (not down_ok or rng.random() < 0.7)) else -1.0])
            else:
                heading += (math.pi / 2) * (1.0 if choice == "left" else -1.0)
                d = np.array([math.cos(heading), math.sin(heading), 0.0])
        p = np.array(pts)
        if d[2] != 0:  # never end on a riser: one more horizontal run
            continue
        if np.min(p[:, 2]) < radius + 0.3 or _segments_too_close(p, 1.5):
            continue
        return p
    raise RuntimeError("could not draw a non-self-intersecting pipe polyline")


def random_pipeline_scenario(seed: int, name: str | None = None) -> dict:
    """A random pipeline scenario as a YAML-able mapping (validated by the loader)."""
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
    rng = np.random.default_rng(seed)
    radius = round(float(rng.uniform(0.1, 0.2)), 3)
    side = str(rng.choice(["left", "right"]))
    pts = _random_polyline(rng, radius, int(rng.integers(1, 5)))
    cl = pipe_centreline(pts, 3.0 * radius)
    sides = pipe_side_vectors(cl, side)
    n_defects = int(rng.integers(6, 16))
    defects: list[dict] = []
    placed: list[tuple[float, float]] = []  # (arclength, size)
    tries = 0
    while len(defects) < n_defects and tries < 500:
        tries += 1
        size = round(float(rng.uniform(0.01, 0.10)), 3)
        s = float(rng.uniform(0.4, cl.length - 0.4))
        if any(abs(s - s2) < 0.6 * (size + sz2) + 0.05 for s2, sz2 in placed):
            continue
        c, t = cl.at(np.array([s]))
        c, t = c[0], t[0]
        k = int(np.clip(np.searchsorted(cl.arclength, s), 0, len(sides) - 1))
        out = sides[k] - (sides[k] @ t) * t
        out /= np.linalg.norm(out)
        up = np.array([0.0, 0.0, 1.0]) - t[2] * t
        if np.linalg.norm(up) > 0.3:  # horizontal: anywhere from the side up to the top
            up /= np.linalg.norm(up)
            a = math.radians(float(rng.uniform(-15.0, 80.0)))
            normal = math.cos(a) * out + math.sin(a) * up
        else:  # riser: around the side facing the UAV
            other = np.cross(t, out)
            a = math.radians(float(rng.uniform(-35.0, 35.0)))
            normal = math.cos(a) * out + math.sin(a) * other
        dtype = str(rng.choice(DEFECT_TYPES))
        item = {"type": dtype, "position": [round(float(v), 4) for v in c + radius * normal], "size": size,
                "surface": "pipe"}
        if dtype == "dent":
            item["depth"] = round(min(0.25 * size, 0.4 * radius), 4)
        defects.append(item)
        placed.append((s, size))
    scn = {
        "name": name or f"random_pipeline_{seed}",
        "description": f"Random pipeline (seed {seed}): {len(pts) - 2} elbows, {len(defects)} defects.",
        "kind": "pipeline",
        "seed": int(seed),
        "camera": {"width": 640, "height": 480, "fov_y_deg": 50.0, "min_range": 0.1, "max_range": 12.0},
        "lighting": {
            "sun_azimuth_deg": round(float(rng.uniform(0, 360)), 1),
            "sun_elevation_deg": round(float(rng.uniform(25, 80)), 1),
            "intensity": round(float(rng.uniform(0.55, 0.9)), 2),
            "ambient": round(float(rng.uniform(0.25, 0.45)), 2),
            "variation": round(float(rng.uniform(0.0, 0.2)), 2),
        },
        "pipeline": {
            "points": [[round(float(v), 3) for v in p] for p in pts],
            "radius": radius,
            "inspection_side": side,
            "standoff": round(float(rng.uniform(0.8, 1.3)), 2),
            "color": [round(float(v), 2) for v in rng.uniform(0.3, 0.75, 3)],
        },
        "defects": defects,
    }
    parse_scenario(scn)  # the generator's output must always load
    return scn


def random_scenario(kind: str, seed: int, name: str | None = None) -> dict:
    """A random scenario of ``kind`` (one of :data:`GENERATOR_KINDS`)."""
    if kind == "pipeline":
        return random_pipeline_scenario(seed, name)
    raise ScenarioError(f"kind: no random generator for {kind!r}; available: {', '.join(GENERATOR_KINDS)}")


def write_scenario(data: dict, path: str | Path) -> Path:
    """Write a scenario mapping as YAML (creating the folder)."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(yaml.safe_dump(data, sort_keys=False, default_flow_style=None), encoding="utf-8")
    return out


__all__ = ["random_pipeline_scenario", "random_scenario", "write_scenario", "GENERATOR_KINDS"]
