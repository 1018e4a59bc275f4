"""Random scenarios for robustness tests on worlds nobody has tuned for.

:func:`random_pipeline_scenario` gives a YAML-able mapping (load it with
:func:`~.loader.parse_scenario` or write it with :func:`write_scenario`): a pipe along a random
polyline with 1-4 elbows (horizontal turns and vertical risers), 6-15 defects of mixed types and
sizes (1-10 cm) on the surface the UAV sees (the inspection side and the top), and random
lighting. :func:`random_workcell_scenario` gives a manipulator workcell: a box casting, a
cylindrical housing or a plate with bolt holes, of random size, pose and colour, with 4-7
defects of 1.5-6 cm on its top and sides (a cylinder's defects lie on its mantle, where the
loader places them). :func:`random_factory_scenario` gives an AGV factory floor (see its
docstring). The same seed always gives the same scenario; every result passes the loader.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import yaml

from .loader import (FLANGE_HALF_LENGTH_M, hole_tile_half, parse_scenario, pipe_joints, pipe_side_vectors,
                     weld_half_width)
from .schema import DEFECT_TYPES, PipelineSpec, ScenarioError


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
    _check_seed(seed)
    rng = np.random.default_rng(seed)
    radius = round(float(rng.uniform(0.1, 0.2)), 3)
    side = str(rng.choice(["left", "right"]))
    pts = _random_polyline(rng, radius, int(rng.integers(1, 5)))
    spec = PipelineSpec(points=pts, radius=radius, bend_radius=3.0 * radius)  # as the loader builds it
    cl = spec.centreline
    sides = pipe_side_vectors(cl, side)
    welds, flanges = pipe_joints(spec, cl)
    # (arclength, half-length) of the weld beads and flanges: a defect under one is hidden
    joints = [(w, weld_half_width(radius)) for w in welds] + [(f, FLANGE_HALF_LENGTH_M) for f in flanges]
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
        if any(abs(s - s2) < half + 0.5 * size + 0.01 for s2, half in joints):
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
        "lighting": _random_lighting(rng, (25.0, 80.0), 0.2),
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


def _random_lighting(rng: np.random.Generator, elevation: tuple[float, float], variation: float) -> dict:
    return {
        "sun_azimuth_deg": round(float(rng.uniform(0, 360)), 1),
        "sun_elevation_deg": round(float(rng.uniform(*elevation)), 1),
        "intensity": round(float(rng.uniform(0.55, 0.9)), 2),
        "ambient": round(float(rng.uniform(0.25, 0.45)), 2),
        "variation": round(float(rng.uniform(0.0, variation)), 2),
    }


def _check_seed(seed: int) -> None:
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")


TABLE_TOP = 0.75  # m: the workcell table's top (the loader's default table)


def _plate_holes(rng: np.random.Generator, size: np.ndarray) -> list[dict]:
    """Bolt holes near the corners, optionally two more on the long axis and a central bore."""
    r = round(float(rng.uniform(0.008, 0.014)), 4)
    inset = 0.05
    hx, hy = float(size[0]) / 2 - inset, float(size[1]) / 2 - inset
    holes = [{"position": [sx * hx, sy * hy], "radius": r} for sx in (-1, 1) for sy in (-1, 1)]
    if rng.random() < 0.5:
        holes += [{"position": [0.0, sy * hy], "radius": r} for sy in (-1, 1)]
    if rng.random() < 0.6:
        bore = round(float(rng.uniform(0.025, 0.05)), 3)
        if all(max(abs(h["position"][0]), abs(h["position"][1])) > hole_tile_half(bore) + hole_tile_half(h["radius"])
               for h in holes):
            holes.append({"position": [0.0, 0.0], "radius": bore})
    return [{"position": [round(v, 4) for v in h["position"]], "radius": h["radius"]} for h in holes]


def _workcell_defect_site(rng: np.random.Generator, part: dict, size: float) -> tuple[np.ndarray, bool] | None:
    """A random point on the part's top or sides (world frame) with room for a defect of ``size``,
    and whether a dent may go there; ``None`` when the drawn face has no room."""
    margin = size / 2.0 + 0.012
    if part["shape"] == "cylinder":
        r, h = part["radius"], part["height"]
        c = np.array([*part["position"], TABLE_TOP])
        if h < 2 * margin:
            return None
        a = float(rng.uniform(0, 2 * math.pi))
        z = float(rng.uniform(margin, h - margin))
        return c + [r * math.cos(a), r * math.sin(a), z], True
    sx, sy, sz = part["size"]
    yaw = math.radians(part["yaw_deg"])
    rot = np.array([[math.cos(yaw), -math.sin(yaw)], [math.sin(yaw), math.cos(yaw)]])
    faces = ["top", "+x", "-x", "+y", "-y"]
    face = "top" if part["shape"] == "plate" and rng.random() < 0.8 else str(rng.choice(faces))
    if face == "top":
        if sx < 2 * margin or sy < 2 * margin:
            return None
        u, v, z = float(rng.uniform(-sx / 2 + margin, sx / 2 - margin)), float(rng.uniform(-sy / 2 + margin, sy / 2 - margin)), sz
    else:
        along = sy if face[1] == "x" else sx
        edge_margin = size / 2.0 + 0.004
        if sz < 2 * edge_margin or along < 2 * margin:
            return None
        w = float(rng.uniform(-along / 2 + margin, along / 2 - margin))
        z = float(rng.uniform(edge_margin, sz - edge_margin))
        sign = 1.0 if face[0] == "+" else -1.0
        u, v = (sign * sx / 2, w) if face[1] == "x" else (w, sign * sy / 2)
    xy = rot @ [u, v] + part["position"]
    if part["shape"] == "plate":
        for hole in part["holes"]:
            centre = rot @ hole["position"] + part["position"]
            if np.linalg.norm(centre - xy) < hole["radius"] + size / 2 + 0.008:
                return None
    return np.array([xy[0], xy[1], TABLE_TOP + z]), part["shape"] == "box"


def random_workcell_scenario(seed: int, name: str | None = None) -> dict:
    """A random manipulator workcell scenario as a YAML-able mapping (validated by the loader)."""
    _check_seed(seed)
    rng = np.random.default_rng(seed)
    shape = str(rng.choice(["box", "cylinder", "plate"]))
    grey = float(rng.uniform(0.35, 0.7))
    color = [round(float(np.clip(grey + rng.uniform(-0.08, 0.08), 0.1, 0.9)), 2) for _ in range(3)]
    position = [round(float(v), 3) for v in rng.uniform(-0.04, 0.04, 2)]
    part: dict = {"shape": shape, "position": position}
    if shape == "cylinder":
        part.update(radius=round(float(rng.uniform(0.08, 0.15)), 3), height=round(float(rng.uniform(0.18, 0.34)), 3))
        label = f"cylindrical housing (radius {part['radius']} m, height {part['height']} m)"
    elif shape == "box":
        part.update(size=[round(float(rng.uniform(lo, hi)), 3) for lo, hi in ((0.28, 0.44), (0.2, 0.34), (0.12, 0.24))],
                    yaw_deg=round(float(rng.uniform(-30, 30)), 1))
        label = "box casting ({} x {} x {} m)".format(*part["size"])
    else:
        part.update(size=[round(float(rng.uniform(lo, hi)), 3) for lo, hi in ((0.36, 0.52), (0.26, 0.38), (0.02, 0.03))],
                    yaw_deg=round(float(rng.uniform(-30, 30)), 1))
        part["holes"] = _plate_holes(rng, np.asarray(part["size"]))
        label = "plate ({} x {} x {} m) with {} holes".format(*part["size"], len(part["holes"]))
    part["color"] = color
    n_defects = int(rng.integers(4, 8))
    defects: list[dict] = []
    positions: list[np.ndarray] = []
    tries = 0
    while len(defects) < n_defects and tries < 1000:
        tries += 1
        size = round(float(rng.uniform(0.015, 0.06)), 3)
        site = _workcell_defect_site(rng, part, size)
        if site is None:
            continue
        pos, dentable = site
        if any(np.linalg.norm(pos - p) < 0.6 * (size + d["size"]) + 0.03 for p, d in zip(positions, defects)):
            continue
        types = [t for t in DEFECT_TYPES if dentable or t != "dent"]
        defects.append({"type": str(rng.choice(types)), "position": [round(float(v), 4) for v in pos],
                        "size": size, "surface": "part"})
        positions.append(pos)
    scn = {
        "name": name or f"random_workcell_{seed}",
        "description": f"Random workcell (seed {seed}): {label}, {len(defects)} defects.",
        "kind": "workcell",
        "robot": "manipulator",
        "seed": int(seed),
        "camera": {"width": 640, "height": 480, "fov_y_deg": 50.0, "min_range": 0.05, "max_range": 5.0,
                   "rate_hz": 10.0},
        "lighting": _random_lighting(rng, (40.0, 75.0), 0.12),
        "workcell": {"table": {"position": [0.0, 0.0], "size": [1.2, 0.8, TABLE_TOP]}, "part": part,
                     "standoff": 0.6},
        "defects": defects,
    }
    parse_scenario(scn)  # the generator's output must always load
    return scn


def _factory_row(rng: np.random.Generator, side: float, aisle_y: float, x0: float, x1: float,
                 counts: dict[str, int]) -> list[tuple[str, dict, float]]:
    """Objects along one side of an aisle: (kind, spec, near-face distance from the aisle)."""
    out: list[tuple[str, dict, float]] = []
    x = x0 + float(rng.uniform(0.3, 1.2))
    while True:
        kind = str(rng.choice(["tank", "machine", "rack"], p=[0.35, 0.5, 0.15]))
        gap = float(rng.uniform(1.6, 2.1))  # aisle line to the object's near face
        if kind == "tank":
            r = float(rng.uniform(0.5, 1.0))
            width, depth = 2 * r, 2 * r
            spec = {"radius": round(r, 2), "height": round(float(rng.uniform(1.8, 3.0)), 2),
                    "color": [round(float(v), 2) for v in rng.uniform(0.5, 0.75, 3)]}
        elif kind == "machine":
            width, depth = float(rng.uniform(1.2, 2.0)), float(rng.uniform(0.9, 1.5))
            spec = {"size": [round(width, 2), round(depth, 2), round(float(rng.uniform(1.0, 2.0)), 2)],
                    "color": [round(float(v), 2) for v in rng.uniform(0.2, 0.6, 3)]}
        else:
            width, depth = float(rng.uniform(2.0, 2.6)), 0.8
            spec = {"size": [round(width, 2), depth, 2.0]}
        if x + width > x1:
            return out
        counts[kind] += 1
        spec = {"name": f"{kind}_{counts[kind]}", "position": [round(x + width / 2, 3),
                round(aisle_y + side * (gap + depth / 2), 3)], **spec}
        out.append((kind, spec, gap))
        x += width + float(rng.uniform(0.6, 1.6))


def _factory_defect(rng: np.random.Generator, kind: str, spec: dict, gap: float, side: float,
                    aisle_y: float) -> tuple[dict, np.ndarray] | None:
    """A defect on the aisle-facing side of one object or on the floor in front of it."""
    cx, cy = spec["position"]
    if rng.random() < 0.3:  # a leak or crack on the floor between the aisle and the object
        size = float(rng.uniform(0.12, 0.3))
        hi = gap - size / 2 - 0.05
        if hi <= 1.4:
            return None
        half = (spec["radius"] if kind == "tank" else spec["size"][0] / 2) + 0.3
        pos = np.array([cx + rng.uniform(-half, half), aisle_y + side * rng.uniform(1.4, hi), 0.0])
        return {"type": str(rng.choice(["stain", "stain", "crack"])), "surface": "floor", "size": size}, pos
    if kind == "rack":
        return None
    size = float(rng.uniform(0.05, 0.15))
    if kind == "tank":
        r, h = spec["radius"], spec["height"]
        a = float(rng.uniform(-35.0, 35.0)) * math.pi / 180 + math.atan2(-side, 0.0)
        z = float(rng.uniform(0.3, min(h - 0.2, 1.6)))
        pos = np.array([cx + r * math.cos(a), cy + r * math.sin(a), z])
        dtype = str(rng.choice(["corrosion", "corrosion", "missing_coating", "stain", "dent"]))
    else:
        w, d, h = spec["size"]
        u = w / 2 - size / 2 - 0.05
        z_hi = min(h - size / 2 - 0.05, 1.5)
        if u <= 0 or z_hi <= 0.3:
            return None
        pos = np.array([cx + rng.uniform(-u, u), cy - side * d / 2, rng.uniform(0.3, z_hi)])
        dtype = str(rng.choice(["dent", "dent", "scratch", "missing_coating", "corrosion", "crack"]))
    item = {"type": dtype, "surface": spec["name"], "size": size}
    if dtype == "dent":
        item["depth"] = round(0.2 * size, 4)
    return item, pos


def random_factory_scenario(seed: int, name: str | None = None) -> dict:
    """A random AGV factory-floor scenario as a YAML-able mapping (validated by the loader).

    A straight aisle with a row of tanks, machines and racks on the camera's side, or a loop (out
    and back) with a row on each side; 5-10 defects on the objects' aisle-facing sides (dents,
    scratches, corrosion, missing coating) and leaks or cracks on the floor in front of them.
    """
    _check_seed(seed)
    rng = np.random.default_rng(seed)
    length = float(rng.uniform(10.0, 15.0))
    x0, x1 = -length / 2, length / 2
    loop = bool(rng.random() < 0.5)
    width = float(rng.uniform(1.3, 1.8))  # between the out and back legs of a loop
    rows = [(1.0, 0.0)] + ([(-1.0, -width)] if loop else [])
    counts = {"tank": 0, "machine": 0, "rack": 0}
    objects = [(obj, side, aisle) for side, aisle in rows for obj in _factory_row(rng, side, aisle, x0, x1, counts)]
    patrol = [[x0, 0.0], [x1, 0.0]] + ([[x1, -width], [x0, -width]] if loop else [])
    n_defects = int(rng.integers(5, 11))
    defects: list[dict] = []
    positions: list[np.ndarray] = []
    tries = 0
    while len(defects) < n_defects and tries < 1000:
        tries += 1
        (kind, spec, gap), side, aisle = objects[int(rng.integers(len(objects)))]
        drawn = _factory_defect(rng, kind, spec, gap, side, aisle)
        if drawn is None:
            continue
        item, pos = drawn
        if any(np.linalg.norm(pos - p) < 0.6 * (item["size"] + d["size"]) + 0.1 for p, d in zip(positions, defects)):
            continue
        item["size"] = round(item["size"], 3)
        defects.append({"type": item.pop("type"), "position": [round(float(v), 4) for v in pos], **item})
        positions.append(pos)
    extent = max(abs(o[0][1]["position"][1]) + 1.5 for o in objects) if objects else 3.0
    scn = {
        "name": name or f"random_factory_{seed}",
        "description": (f"Random factory floor (seed {seed}): a {'loop' if loop else 'straight aisle'} past "
                        + ", ".join(f"{n} {k}{'' if n == 1 else 's'}" for k, n in counts.items())
                        + f"; {len(defects)} defects."),
        "kind": "factory",
        "robot": "agv",
        "seed": int(seed),
        "camera": {"width": 640, "height": 480, "fov_y_deg": 55.0, "min_range": 0.1, "max_range": 15.0,
                   "rate_hz": 10.0},
        "lighting": _random_lighting(rng, (50.0, 80.0), 0.12),
        "factory": {
            "floor_size": [round(length + 6.0, 1), round(2 * extent + 4.0, 1)],
            "tanks": [o[0][1] for o in objects if o[0][0] == "tank"],
            "machines": [o[0][1] for o in objects if o[0][0] == "machine"],
            "racks": [o[0][1] for o in objects if o[0][0] == "rack"],
            "patrol": [[round(float(v), 3) for v in p] for p in patrol],
            "camera_height": round(float(rng.uniform(1.1, 1.25)), 2),
            "camera_pitch_deg": round(float(rng.uniform(12.0, 18.0)), 1),
            "look_side": "left",
            "camera_yaw_deg": round(float(rng.uniform(45.0, 90.0)), 1),
        },
        "defects": defects,
    }
    parse_scenario(scn)  # the generator's output must always load
    return scn


_GENERATORS = {"pipeline": random_pipeline_scenario, "workcell": random_workcell_scenario,
               "factory": random_factory_scenario}
GENERATOR_KINDS: tuple[str, ...] = tuple(_GENERATORS)


def random_scenario(kind: str, seed: int, name: str | None = None) -> dict:
    """A random scenario of ``kind`` (one of :data:`GENERATOR_KINDS`)."""
    if kind in _GENERATORS:
        return _GENERATORS[kind](seed, name)
    raise ScenarioError(f"kind: no random generator for {kind!r}; available: {', '.join(GENERATOR_KINDS)}")


def write_scenario(data: dict, path: str | Path) -> Path:
    """Write a scenario mapping as YAML (creating the folder)."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(yaml.safe_dump(data, sort_keys=False, default_flow_style=None), encoding="utf-8")
    return out


__all__ = ["random_pipeline_scenario", "random_workcell_scenario", "random_factory_scenario", "random_scenario",
           "write_scenario", "GENERATOR_KINDS"]
