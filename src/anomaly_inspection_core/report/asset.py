"""Drawable asset geometry for reports, and a human description of where a point is on it.

The asset is a list of primitives given as plain dicts (easy to build from a scenario file):

* ``{"kind": "cylinder", "name": "pipe_a", "start": [x, y, z], "end": [x, y, z], "radius": r}``
* ``{"kind": "box", "name": "tank", "center": [x, y, z], "size": [sx, sy, sz], "yaw": rad}``
  (``yaw`` about z, optional)
* ``{"kind": "polyline", "name": "weld", "points": [[x, y, z], ...]}``
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

_KINDS = ("cylinder", "box", "polyline")


@dataclass(frozen=True)
class AssetPrimitive:
    """One validated primitive of the asset."""

    kind: str
    name: str
    data: dict

    def distance(self, p: np.ndarray) -> float:
        """Distance from point ``p`` to the primitive's surface (polyline: to the line)."""
        if self.kind == "cylinder":
            a, b, r = self.data["start"], self.data["end"], self.data["radius"]
            axis = b - a
            s = float(np.clip((p - a) @ axis / (axis @ axis), 0.0, 1.0))
            radial = float(np.linalg.norm(p - (a + s * axis)))
            return abs(radial - r)
        if self.kind == "box":
            local = _box_local(self.data, p)
            half = self.data["size"] / 2.0
            outside = np.maximum(np.abs(local) - half, 0.0)
            if np.any(outside > 0):
                return float(np.linalg.norm(outside))
            return float(np.min(half - np.abs(local)))
        pts = self.data["points"]
        return min(_segment_distance(p, pts[i], pts[i + 1])[0] for i in range(len(pts) - 1))

    def describe(self, p: np.ndarray) -> str:
        """Where ``p`` is on this primitive, in words a maintenance engineer can use."""
        if self.kind == "cylinder":
            a, b = self.data["start"], self.data["end"]
            axis = b - a
            length = float(np.linalg.norm(axis))
            u = axis / length
            along = float(np.clip((p - a) @ u, 0.0, length))
            return (f"on {self.name}, {along:.2f} m from its start ({length:.2f} m long), "
                    f"at {_clock_position(p - a, u)} o'clock looking from start to end")
        if self.kind == "box":
            local = _box_local(self.data, p)
            half = self.data["size"] / 2.0
            k = int(np.argmax(np.abs(local) / np.maximum(half, 1e-9)))
            face = ("+" if local[k] >= 0 else "-") + "xyz"[k]
            return f"on {self.name}, {face} face"
        pts = self.data["points"]
        best, along_total, acc = math.inf, 0.0, 0.0
        for i in range(len(pts) - 1):
            d, s = _segment_distance(p, pts[i], pts[i + 1])
            seg = float(np.linalg.norm(pts[i + 1] - pts[i]))
            if d < best:
                best, along_total = d, acc + s * seg
            acc += seg
        return f"along {self.name}, {along_total:.2f} m from its first point"


def _box_local(data: dict, p: np.ndarray) -> np.ndarray:
    c, yaw = data["center"], data.get("yaw", 0.0)
    cy, sy = math.cos(yaw), math.sin(yaw)
    d = p - c
    return np.array([cy * d[0] + sy * d[1], -sy * d[0] + cy * d[1], d[2]])


def _segment_distance(p: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    ab = b - a
    denom = float(ab @ ab)
    s = 0.0 if denom < 1e-12 else float(np.clip((p - a) @ ab / denom, 0.0, 1.0))
    return float(np.linalg.norm(p - (a + s * ab))), s


def _clock_position(rel: np.ndarray, axis: np.ndarray) -> int:
    """Pipe-inspection clock position: 12 is up (+z), clockwise looking along ``axis``."""
    up = np.array([0.0, 0.0, 1.0]) - axis[2] * axis
    if np.linalg.norm(up) < 1e-6:  # vertical pipe: 12 o'clock towards +x
        up = np.array([1.0, 0.0, 0.0]) - axis[0] * axis
    up /= np.linalg.norm(up)
    right = np.cross(axis, up)  # clockwise when looking along the axis
    r = rel - (rel @ axis) * axis
    angle = math.degrees(math.atan2(float(r @ right), float(r @ up))) % 360.0
    hour = round(angle / 30.0) % 12
    return 12 if hour == 0 else hour


def parse_asset(asset_geometry: list[dict] | None) -> list[AssetPrimitive]:
    """Validate the asset's primitives; errors name the primitive and the field."""
    out: list[AssetPrimitive] = []
    for i, item in enumerate(asset_geometry or []):
        if not isinstance(item, dict):
            raise ValueError(f"asset_geometry[{i}] must be a dict, got {type(item).__name__}")
        kind = item.get("kind")
        if kind not in _KINDS:
            raise ValueError(f"asset_geometry[{i}].kind must be one of {_KINDS}, got {kind!r}")
        name = str(item.get("name") or f"{kind}_{i}")

        def vec(key: str, n: int = 3) -> np.ndarray:
            if key not in item:
                raise ValueError(f"asset_geometry[{i}] ({name}) lacks '{key}'")
            v = np.asarray(item[key], dtype=float)
            if v.shape != (n,) or not np.all(np.isfinite(v)):
                raise ValueError(f"asset_geometry[{i}].{key} ({name}) must be {n} finite numbers")
            return v

        if kind == "cylinder":
            data = {"start": vec("start"), "end": vec("end"), "radius": float(item.get("radius", 0))}
            if data["radius"] <= 0 or np.linalg.norm(data["end"] - data["start"]) < 1e-9:
                raise ValueError(f"asset_geometry[{i}] ({name}) needs radius > 0 and start != end")
        elif kind == "box":
            data = {"center": vec("center"), "size": vec("size"), "yaw": float(item.get("yaw", 0.0))}
            if np.any(data["size"] <= 0):
                raise ValueError(f"asset_geometry[{i}].size ({name}) must be positive")
        else:
            pts = np.asarray(item.get("points", []), dtype=float)
            if pts.ndim != 2 or pts.shape[1] != 3 or len(pts) < 2 or not np.all(np.isfinite(pts)):
                raise ValueError(f"asset_geometry[{i}].points ({name}) must be >= 2 finite xyz rows")
            data = {"points": pts}
        out.append(AssetPrimitive(kind, name, data))
    return out


def describe_location(primitives: list[AssetPrimitive], position: np.ndarray) -> str | None:
    """Description relative to the nearest primitive, None without an asset."""
    if not primitives:
        return None
    p = np.asarray(position, dtype=float)
    nearest = min(primitives, key=lambda prim: prim.distance(p))
    return nearest.describe(p)


def asset_from_scenario(scenario) -> list[dict]:
    """Drawable primitives of a scenario's asset (pipe runs, part and table, tanks, machines, racks).

    Only for drawing and describing locations in a report: the maintenance engineer's plant
    drawing, not something the robot's perception uses.
    """
    prims: list[dict] = []

    def box(spec) -> dict:
        return {"kind": "box", "name": spec.name, "center": [float(v) for v in spec.position],
                "size": [float(v) for v in spec.size], "yaw": math.radians(float(spec.yaw_deg))}

    def cylinder(spec) -> dict:
        base = np.asarray(spec.base, dtype=float)
        return {"kind": "cylinder", "name": spec.name, "start": base.tolist(),
                "end": (base + np.array([0.0, 0.0, spec.height])).tolist(), "radius": float(spec.radius)}

    if scenario.pipeline is not None:
        pts = np.asarray(scenario.pipeline.points, dtype=float)
        for i in range(len(pts) - 1):
            prims.append({"kind": "cylinder", "name": f"pipe run {i + 1}", "start": pts[i].tolist(),
                          "end": pts[i + 1].tolist(), "radius": float(scenario.pipeline.radius)})
    if scenario.workcell is not None:
        prims.append(box(scenario.workcell.table))
        part = scenario.workcell.part
        prims.append(cylinder(part) if hasattr(part, "radius") else box(part))
    if scenario.factory is not None:
        prims += [cylinder(t) for t in scenario.factory.tanks]
        prims += [box(m) for m in scenario.factory.machines]
        prims += [box(r) for r in scenario.factory.racks]
    return prims
