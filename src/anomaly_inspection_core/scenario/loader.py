"""Load and validate scenario YAML files; every error names the offending field."""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from ..geometry.camera import Pose
from ..paths import resolve_config_file
from .schema import (
    DEFAULT_ROBOT, DEFECT_TYPES, ROBOTS, SCENE_KINDS, BoxSpec, CameraSpec, CylinderSpec, DefectSpec,
    FactorySpec, HoleSpec, LightingSpec, PipelineSpec, PlateSpec, Scenario, ScenarioError, WorkcellSpec,
)
from .surfaces import (
    BoxSurface, Centreline, PlaneSurface, Surface, TubeSurface, any_perpendicular, pipe_centreline,
)

log = logging.getLogger(__name__)

SURFACE_TOLERANCE = 0.03  # m: how far from a surface a defect position may be given


# ----------------------------------------------------------------------------- field readers
def _get(d: dict, key: str, path: str, default: Any = ..., ) -> Any:
    if key in d:
        return d[key]
    if default is ...:
        raise ScenarioError(f"{path}.{key}: required field is missing" if path else f"{key}: required field is missing")
    return default


def _mapping(value: Any, path: str, allowed: tuple[str, ...]) -> dict:
    if not isinstance(value, dict):
        raise ScenarioError(f"{path}: expected a mapping, got {type(value).__name__}")
    for key in value:
        if key not in allowed:
            raise ScenarioError(f"{path + '.' if path else ''}{key}: unknown field; expected one of {', '.join(allowed)}")
    return value


def _num(value: Any, path: str, lo: float | None = None, hi: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ScenarioError(f"{path}: expected a number, got {value!r}")
    x = float(value)
    if not math.isfinite(x):
        raise ScenarioError(f"{path}: must be finite, got {value!r}")
    if lo is not None and x < lo:
        raise ScenarioError(f"{path}: must be >= {lo}, got {value!r}")
    if hi is not None and x > hi:
        raise ScenarioError(f"{path}: must be <= {hi}, got {value!r}")
    return x


def _int(value: Any, path: str, lo: int | None = None, hi: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ScenarioError(f"{path}: expected an integer, got {value!r}")
    return int(_num(value, path, lo, hi))


def _vec(value: Any, path: str, n: int) -> np.ndarray:
    if not isinstance(value, (list, tuple)) or len(value) != n:
        raise ScenarioError(f"{path}: expected a list of {n} numbers, got {value!r}")
    return np.array([_num(v, f"{path}[{i}]") for i, v in enumerate(value)], dtype=np.float64)


def _choice(value: Any, path: str, choices: tuple[str, ...], what: str) -> str:
    if not isinstance(value, str) or value not in choices:
        raise ScenarioError(f"{path}: unknown {what} {value!r}; expected one of {', '.join(choices)}")
    return value


def _color(value: Any, path: str) -> tuple[float, float, float]:
    v = _vec(value, path, 3)
    if np.any(v < 0) or np.any(v > 1):
        raise ScenarioError(f"{path}: colour components must be in [0, 1], got {value!r}")
    return (float(v[0]), float(v[1]), float(v[2]))


def _bool(value: Any, path: str) -> bool:
    if not isinstance(value, bool):
        raise ScenarioError(f"{path}: expected true or false, got {value!r}")
    return value


# ----------------------------------------------------------------------------- sections
def _camera(d: Any) -> CameraSpec:
    d = _mapping(d, "camera", ("width", "height", "fov_y_deg", "min_range", "max_range", "rate_hz"))
    c = CameraSpec()
    cam = CameraSpec(
        width=_int(d.get("width", c.width), "camera.width", 16, 4096),
        height=_int(d.get("height", c.height), "camera.height", 16, 4096),
        fov_y_deg=_num(d.get("fov_y_deg", c.fov_y_deg), "camera.fov_y_deg", 5.0, 150.0),
        min_range=_num(d.get("min_range", c.min_range), "camera.min_range", 0.01),
        max_range=_num(d.get("max_range", c.max_range), "camera.max_range", 0.1, 1000.0),
        rate_hz=_num(d.get("rate_hz", c.rate_hz), "camera.rate_hz", 0.1, 1000.0),
    )
    if cam.max_range <= cam.min_range:
        raise ScenarioError(f"camera.max_range: must exceed camera.min_range ({cam.min_range})")
    return cam


def _lighting(d: Any) -> LightingSpec:
    fields = ("sun_azimuth_deg", "sun_elevation_deg", "intensity", "ambient", "variation", "period_s", "shadows")
    d = _mapping(d, "lighting", fields)
    base = LightingSpec()
    return LightingSpec(
        sun_azimuth_deg=_num(d.get("sun_azimuth_deg", base.sun_azimuth_deg), "lighting.sun_azimuth_deg"),
        sun_elevation_deg=_num(d.get("sun_elevation_deg", base.sun_elevation_deg), "lighting.sun_elevation_deg", 5.0, 90.0),
        intensity=_num(d.get("intensity", base.intensity), "lighting.intensity", 0.0, 2.0),
        ambient=_num(d.get("ambient", base.ambient), "lighting.ambient", 0.0, 1.0),
        variation=_num(d.get("variation", base.variation), "lighting.variation", 0.0, 0.9),
        period_s=_num(d.get("period_s", base.period_s), "lighting.period_s", 0.1),
        shadows=_bool(d.get("shadows", base.shadows), "lighting.shadows"),
    )


def _box(d: Any, path: str, name: str, default_color: tuple[float, float, float]) -> BoxSpec:
    d = _mapping(d, path, ("name", "position", "size", "yaw_deg", "color", "z"))
    size = _vec(_get(d, "size", path), f"{path}.size", 3)
    if np.any(size <= 0):
        raise ScenarioError(f"{path}.size: all extents must be positive, got {size.tolist()}")
    pos = _vec(_get(d, "position", path), f"{path}.position", 2)
    z = _num(d["z"], f"{path}.z") if "z" in d else size[2] / 2.0
    nm = d.get("name", name)
    if not isinstance(nm, str) or not nm:
        raise ScenarioError(f"{path}.name: expected a non-empty string")
    return BoxSpec(nm, np.array([pos[0], pos[1], z]), size, _num(d.get("yaw_deg", 0.0), f"{path}.yaw_deg"),
                   _color(d.get("color", default_color), f"{path}.color"))


def _cylinder(d: Any, path: str, name: str, base_z: float, default_color: tuple[float, float, float]) -> CylinderSpec:
    d = _mapping(d, path, ("name", "position", "radius", "height", "color", "shape"))
    pos = _vec(_get(d, "position", path), f"{path}.position", 2)
    nm = d.get("name", name)
    if not isinstance(nm, str) or not nm:
        raise ScenarioError(f"{path}.name: expected a non-empty string")
    return CylinderSpec(nm, np.array([pos[0], pos[1], base_z]),
                        _num(_get(d, "radius", path), f"{path}.radius", 0.01, 20.0),
                        _num(_get(d, "height", path), f"{path}.height", 0.01, 50.0),
                        _color(d.get("color", default_color), f"{path}.color"))


def _pipeline(d: Any) -> PipelineSpec:
    fields = ("points", "radius", "bend_radius", "inspection_side", "standoff", "support_spacing",
              "weld_spacing", "flange_spacing", "color")
    d = _mapping(d, "pipeline", fields)
    raw = _get(d, "points", "pipeline")
    if not isinstance(raw, list) or len(raw) < 2:
        raise ScenarioError("pipeline.points: expected a list of at least 2 [x, y, z] points")
    pts = np.array([_vec(p, f"pipeline.points[{i}]", 3) for i, p in enumerate(raw)])
    radius = _num(d.get("radius", 0.15), "pipeline.radius", 0.01, 3.0)
    bend = _num(d.get("bend_radius", 3.0 * radius), "pipeline.bend_radius", radius * 1.01)
    for i in range(len(pts) - 1):
        if np.linalg.norm(pts[i + 1] - pts[i]) < 1e-6:
            raise ScenarioError(f"pipeline.points[{i + 1}]: coincides with the previous point")
    if np.min(pts[:, 2]) < radius:
        raise ScenarioError(f"pipeline.points[{int(np.argmin(pts[:, 2]))}]: the pipe would cut the ground (z < radius)")
    try:
        pipe_centreline(pts, bend)
    except ValueError as exc:
        raise ScenarioError(f"pipeline.bend_radius: {exc}") from None
    return PipelineSpec(
        points=pts, radius=radius, bend_radius=bend,
        inspection_side=_choice(d.get("inspection_side", "left"), "pipeline.inspection_side", ("left", "right"), "side"),
        standoff=_num(d.get("standoff", 1.0), "pipeline.standoff", radius + 0.1, 10.0),
        support_spacing=_num(d.get("support_spacing", 3.0), "pipeline.support_spacing", 0.5),
        weld_spacing=_num(d.get("weld_spacing", 2.0), "pipeline.weld_spacing", 0.2),
        flange_spacing=_num(d.get("flange_spacing", 6.0), "pipeline.flange_spacing", 0.5),
        color=_color(d.get("color", (0.55, 0.58, 0.6)), "pipeline.color"),
    )


def _workcell(d: Any) -> WorkcellSpec:
    d = _mapping(d, "workcell", ("table", "part", "standoff"))
    table = _box(d.get("table", {"position": [0, 0], "size": [1.2, 0.8, 0.75]}), "workcell.table", "table", (0.35, 0.3, 0.25))
    part_d = _get(d, "part", "workcell")
    if not isinstance(part_d, dict):
        raise ScenarioError("workcell.part: expected a mapping")
    shape = _choice(part_d.get("shape", "box"), "workcell.part.shape", ("box", "cylinder", "plate"), "part shape")
    top = table.position[2] + table.size[2] / 2.0
    part: BoxSpec | CylinderSpec
    if shape in ("box", "plate"):
        pd = {k: v for k, v in part_d.items() if k not in ("shape", "holes")}
        if shape == "box" and "holes" in part_d:
            raise ScenarioError("workcell.part.holes: only a part of shape 'plate' has holes")
        b = _box(pd, "workcell.part", "part", (0.45, 0.47, 0.5))
        centre = np.array([b.position[0], b.position[1], top + b.size[2] / 2.0])
        if shape == "box":
            part = BoxSpec(b.name, centre, b.size, b.yaw_deg, b.color)
        else:
            part = PlateSpec(b.name, centre, b.size, b.yaw_deg, b.color, _holes(part_d.get("holes", []), b.size))
    else:
        part = _cylinder(part_d, "workcell.part", "part", top, (0.45, 0.47, 0.5))
    return WorkcellSpec(table=table, part=part, standoff=_num(d.get("standoff", 0.6), "workcell.standoff", 0.1, 5.0))


HOLE_RIM = 0.005  # m: least material between a hole and the plate edge or another hole


def hole_tile_half(radius: float) -> float:
    """Half side of the square around a hole that its mesh occupies (holes' tiles may not overlap)."""
    return 1.25 * radius + HOLE_RIM


def _holes(raw: Any, size: np.ndarray) -> tuple[HoleSpec, ...]:
    if not isinstance(raw, list):
        raise ScenarioError("workcell.part.holes: expected a list of {position: [u, v], radius}")
    out: list[HoleSpec] = []
    for i, item in enumerate(raw):
        path = f"workcell.part.holes[{i}]"
        h = _mapping(item, path, ("position", "radius"))
        uv = _vec(_get(h, "position", path), f"{path}.position", 2)
        r = _num(_get(h, "radius", path), f"{path}.radius", 0.002, 1.0)
        t = hole_tile_half(r)
        if abs(uv[0]) + t > size[0] / 2 or abs(uv[1]) + t > size[1] / 2:
            raise ScenarioError(f"{path}.position: the hole (radius {r} m plus a rim) runs over the plate edge "
                                f"(plate {size[0]} x {size[1]} m, centred on [0, 0])")
        for j, o in enumerate(out):
            to = hole_tile_half(o.radius)
            if abs(uv[0] - o.u) < t + to and abs(uv[1] - o.v) < t + to:
                raise ScenarioError(f"{path}.position: too close to holes[{j}] (keep 1.25 x radius + "
                                    f"{HOLE_RIM} m around each hole free)")
        out.append(HoleSpec(float(uv[0]), float(uv[1]), r))
    return tuple(out)


def _factory(d: Any) -> FactorySpec:
    d = _mapping(d, "factory", ("floor_size", "tanks", "machines", "racks", "patrol", "camera_height",
                                "camera_pitch_deg", "look_side", "camera_yaw_deg"))
    floor = _vec(d.get("floor_size", [20.0, 15.0]), "factory.floor_size", 2)
    if np.any(floor <= 0):
        raise ScenarioError("factory.floor_size: extents must be positive")
    tanks, machines, racks = [], [], []
    for key, out in (("tanks", tanks), ("machines", machines), ("racks", racks)):
        items = d.get(key, [])
        if not isinstance(items, list):
            raise ScenarioError(f"factory.{key}: expected a list")
        for i, item in enumerate(items):
            path = f"factory.{key}[{i}]"
            if key == "tanks":
                out.append(_cylinder(item, path, f"tank_{i}", 0.0, (0.62, 0.64, 0.62)))
            else:
                out.append(_box(item, path, f"{key[:-1]}_{i}", (0.3, 0.45, 0.6) if key == "machines" else (0.7, 0.45, 0.1)))
    patrol_raw = _get(d, "patrol", "factory")
    if not isinstance(patrol_raw, list) or len(patrol_raw) < 2:
        raise ScenarioError("factory.patrol: expected a list of at least 2 [x, y] waypoints")
    patrol = np.array([_vec(p, f"factory.patrol[{i}]", 2) for i, p in enumerate(patrol_raw)])
    for i in range(1, len(patrol)):
        if np.linalg.norm(patrol[i] - patrol[i - 1]) < 1e-6:
            raise ScenarioError(f"factory.patrol[{i}]: coincides with the previous waypoint")
    look_side = _choice(d.get("look_side", "left"), "factory.look_side", ("left", "right", "forward"), "side")
    yaw_default = {"left": 90.0, "right": -90.0, "forward": 0.0}[look_side]
    return FactorySpec(
        floor_size=(float(floor[0]), float(floor[1])), tanks=tuple(tanks), machines=tuple(machines),
        racks=tuple(racks), patrol=patrol,
        camera_height=_num(d.get("camera_height", 1.2), "factory.camera_height", 0.1, 5.0),
        camera_pitch_deg=_num(d.get("camera_pitch_deg", 20.0), "factory.camera_pitch_deg", -60.0, 89.0),
        look_side=look_side,
        camera_yaw_deg=_num(d.get("camera_yaw_deg", yaw_default), "factory.camera_yaw_deg", -180.0, 180.0),
    )


# ----------------------------------------------------------------------------- derived geometry
def pipe_side_vectors(centreline: Centreline, side: str) -> np.ndarray:
    """Unit horizontal vectors (N,3) from the pipe axis toward the inspection side, per centreline point.

    Horizontal runs: ``left``/``right`` of the direction of travel; vertical runs keep the side of
    the horizontal run before them, the one a UAV following the pipe arrives from and climbs
    (descends) beside (a pipe that starts vertical: the first horizontal run's side). The
    nearest run by index gave a riser's straight part (one centreline point at its far end)
    the next run's side, a quarter turn from where it is flown.
    """
    pts = centreline.points
    tang = np.diff(pts, axis=0)
    tang = np.vstack([tang, tang[-1:]])
    tang /= np.linalg.norm(tang, axis=1, keepdims=True)
    sign = 1.0 if side == "left" else -1.0
    out = np.full((len(pts), 3), np.nan)
    for i, t in enumerate(tang):
        h = np.array([-t[1], t[0], 0.0])  # z x t
        if np.linalg.norm(h) > 0.2:
            out[i] = sign * h / np.linalg.norm(h)
    valid = np.where(~np.isnan(out[:, 0]))[0]
    if len(valid) == 0:  # an entirely vertical pipe: look from -y
        out[:] = [0.0, -sign, 0.0]
        return out
    for i in range(len(pts)):
        if np.isnan(out[i, 0]):
            before = valid[valid < i]
            out[i] = out[before[-1] if len(before) else valid[0]]
    return out


def pipe_supports(spec: PipelineSpec, centreline: Centreline) -> tuple[BoxSpec, ...]:
    """Posts under horizontal runs, every ``support_spacing`` metres."""
    out: list[BoxSpec] = []
    r = spec.radius
    for a, b in centreline.runs:
        d = b - a
        length = float(np.linalg.norm(d))
        if length < 1e-6 or abs(d[2]) / length > 0.05:
            continue
        n = max(1, int(length // spec.support_spacing))
        yaw = math.degrees(math.atan2(d[1], d[0]))
        for k in range(n):
            c = a + d * ((k + 0.5) / n)
            bottom = c[2] - r
            if bottom < 0.1:
                continue
            out.append(BoxSpec(f"support_{len(out)}", np.array([c[0], c[1], bottom / 2.0]),
                               np.array([0.08, 0.08, bottom]), yaw, (0.3, 0.3, 0.32)))
            out.append(BoxSpec(f"saddle_{len(out)}", np.array([c[0], c[1], bottom - 0.03]),
                               np.array([0.1, 2.4 * r, 0.06]), yaw, (0.3, 0.3, 0.32)))
    return tuple(out)


#: half-length along the pipe of a flange pair with its bolts (the simulated world's geometry)
FLANGE_HALF_LENGTH_M = 0.04


def weld_half_width(radius: float) -> float:
    """Half the width along the pipe of a girth weld's bead on a pipe of ``radius`` (m)."""
    return 0.012 + 0.02 * radius


def pipe_joints(spec: PipelineSpec, centreline: Centreline) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Arclengths of welds (bend ends + every ``weld_spacing``) and flanges along the pipe."""
    welds: list[float] = []
    flanges: list[float] = []
    s_run = 0.0
    tube = TubeSurface("pipe", centreline, spec.radius)
    for a, b in centreline.runs:
        s0 = float(tube.arclength_of(a[None])[0])
        length = float(np.linalg.norm(b - a))
        if s0 > 1e-6:
            welds.append(s0)
        if s0 + length < centreline.length - 1e-6:
            welds.append(s0 + length)
        k = 1
        while k * spec.weld_spacing < length - 0.3:
            welds.append(s0 + k * spec.weld_spacing)
            k += 1
        k = 1
        while k * spec.flange_spacing < length - 0.5:
            flanges.append(s0 + k * spec.flange_spacing - 0.5 * spec.weld_spacing)
            k += 1
        s_run += length
    return tuple(sorted(set(round(w, 6) for w in welds))), tuple(flanges)


def _scene_surfaces(kind: str, scn: dict) -> tuple[list[Surface], list[Surface]]:
    """(defect host surfaces, collision obstacles) of a scene."""
    hosts: list[Surface] = []
    obstacles: list[Surface] = []
    if kind == "pipeline":
        spec: PipelineSpec = scn["pipeline"]
        cl = pipe_centreline(spec.points, spec.bend_radius)
        pipe = TubeSurface("pipe", cl, spec.radius, deformable=True, end_margin=0.02)
        hosts.append(pipe)
        obstacles.append(pipe)
        for sup in spec_supports(scn):
            obstacles.append(BoxSurface(sup.name, sup.position, sup.size / 2.0, math.radians(sup.yaw_deg)))
        ground = PlaneSurface("ground", 0.0, 200.0, 200.0)
        hosts.append(ground)
        obstacles.append(ground)
    elif kind == "workcell":
        wc: WorkcellSpec = scn["workcell"]
        t = wc.table
        table = BoxSurface(t.name, t.position, t.size / 2.0, math.radians(t.yaw_deg), deformable=False)
        part = _part_surface(wc.part)
        hosts += [part, table]
        floor = PlaneSurface("floor", 0.0, 20.0, 20.0)
        hosts.append(floor)
        obstacles += [part, table, floor]
    else:
        fac: FactorySpec = scn["factory"]
        floor = PlaneSurface("floor", 0.0, fac.floor_size[0] / 2.0, fac.floor_size[1] / 2.0)
        for tk in fac.tanks:
            s = _part_surface(tk)
            hosts.append(s)
            obstacles.append(s)
        for m in fac.machines:
            s = BoxSurface(m.name, m.position, m.size / 2.0, math.radians(m.yaw_deg), deformable=True)
            hosts.append(s)
            obstacles.append(s)
        for rk in fac.racks:
            obstacles.append(BoxSurface(rk.name, rk.position, rk.size / 2.0, math.radians(rk.yaw_deg), deformable=False))
        hosts.append(floor)
        obstacles.append(floor)
    return hosts, obstacles


def spec_supports(scn: dict) -> tuple[BoxSpec, ...]:
    spec: PipelineSpec = scn["pipeline"]
    return pipe_supports(spec, pipe_centreline(spec.points, spec.bend_radius))


def _part_surface(part: BoxSpec | CylinderSpec) -> Surface:
    if isinstance(part, PlateSpec):
        # The plate mesh is not refined for dents (its top is triangulated around the holes).
        return BoxSurface(part.name, part.position, part.size / 2.0, math.radians(part.yaw_deg), deformable=False)
    if isinstance(part, BoxSpec):
        return BoxSurface(part.name, part.position, part.size / 2.0, math.radians(part.yaw_deg), deformable=True)
    cl = pipe_centreline(np.array([part.base, part.base + [0.0, 0.0, part.height]]), part.radius * 2)
    return TubeSurface(part.name, cl, part.radius, deformable=True, end_margin=0.005, flat_ends=True)


def _defects(raw: Any, hosts: list[Surface], seed: int, pipeline: PipelineSpec | None,
             plate: PlateSpec | None = None) -> tuple[DefectSpec, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ScenarioError("defects: expected a list")
    out: list[DefectSpec] = []
    used_ids: set[int] = set()
    for i, item in enumerate(raw):
        path = f"defects[{i}]"
        d = _mapping(item, path, ("id", "type", "position", "size", "depth", "orientation_deg", "seed", "surface"))
        dtype = _choice(_get(d, "type", path), f"{path}.type", DEFECT_TYPES, "defect type")
        pos = _vec(_get(d, "position", path), f"{path}.position", 3)
        size = _num(_get(d, "size", path), f"{path}.size", 0.005, 1.0)
        did = _int(d.get("id", i + 1), f"{path}.id", 1, 65535)
        if did in used_ids:
            raise ScenarioError(f"{path}.id: duplicate defect id {did}")
        used_ids.add(did)
        candidates = hosts
        if "surface" in d:
            names = [h.name for h in hosts]
            _choice(d["surface"], f"{path}.surface", tuple(names), "surface")
            candidates = [h for h in hosts if h.name == d["surface"]]
        best = None
        nearest = (math.inf, "")
        for h in candidates:
            hit = h.closest(pos)
            dist = abs(hit.signed_distance)
            if dist < nearest[0]:
                nearest = (dist, h.name)
            if hit.on_surface and dist <= SURFACE_TOLERANCE and (best is None or dist < best[0]):
                best = (dist, h, hit)
        if best is None:
            raise ScenarioError(
                f"{path}.position: {pos.tolist()} is not on any surface (nearest: {nearest[1]!r} at "
                f"{nearest[0]:.3f} m; tolerance {SURFACE_TOLERANCE} m)"
            )
        _, host, hit = best
        if plate is not None and plate.holes and host.name in (plate.name, "table"):
            centres = plate.hole_centres()
            gap = np.linalg.norm(centres[:, :2] - hit.point[:2], axis=1) - [h.radius for h in plate.holes]
            k = int(np.argmin(gap))
            if gap[k] < size / 2.0 and (host.name == plate.name or hit.point[2] < centres[k, 2]):
                raise ScenarioError(f"{path}.position: the defect overlaps hole {k} of {plate.name!r} "
                                    f"(holes are part of the design; move the defect onto material)")
        depth = 0.0
        if dtype == "dent":
            if not host.deformable:
                raise ScenarioError(f"{path}.type: a dent is not supported on surface {host.name!r} (rigid)")
            depth = _num(d.get("depth", 0.2 * size), f"{path}.depth", 0.001, 0.5 * size)
            if isinstance(host, TubeSurface) and depth > 0.5 * host.radius:
                raise ScenarioError(f"{path}.depth: {depth} m is more than half the radius of {host.name!r}")
        elif "depth" in d:
            raise ScenarioError(f"{path}.depth: only dents have a depth")
        orient = _num(d["orientation_deg"], f"{path}.orientation_deg") if "orientation_deg" in d else None
        dseed = _int(d.get("seed", seed * 1000 + did), f"{path}.seed", 0)
        if pipeline is not None and host.name == "pipe":
            side = pipe_side_vectors(host.centreline, pipeline.inspection_side)  # type: ignore[attr-defined]
            s = float(host.arclength_of(hit.point[None])[0])  # type: ignore[attr-defined]
            k = int(np.clip(np.searchsorted(host.centreline.arclength, s), 0, len(side) - 1))  # type: ignore[attr-defined]
            if float(hit.normal @ side[k]) < -0.2 and hit.normal[2] < 0.3:
                log.warning("%s: defect %d faces away from the inspection side; it will hardly be seen", path, did)
        out.append(DefectSpec(did, dtype, hit.point, size, hit.normal, host.name, depth, orient, dseed))
    return tuple(out)


def _start_pose(d: Any, kind: str, scn: dict) -> Pose:
    if d is not None:
        d = _mapping(d, "robot_start", ("position", "yaw_deg"))
        pos = _vec(_get(d, "position", "robot_start"), "robot_start.position", 3)
        yaw = math.radians(_num(d.get("yaw_deg", 0.0), "robot_start.yaw_deg"))
        return Pose(pos, np.array([0.0, 0.0, math.sin(yaw / 2), math.cos(yaw / 2)]))
    if kind == "pipeline":
        spec: PipelineSpec = scn["pipeline"]
        cl = pipe_centreline(spec.points, spec.bend_radius)
        side = pipe_side_vectors(cl, spec.inspection_side)[0]
        pos = cl.points[0] + side * spec.standoff
        yaw = math.atan2(-side[1], -side[0])
    elif kind == "workcell":
        wc: WorkcellSpec = scn["workcell"]
        centre = wc.part.position if isinstance(wc.part, BoxSpec) else wc.part.base
        pos = np.array([centre[0] - wc.standoff, centre[1], centre[2] + 0.3])
        yaw = 0.0
    else:
        fac: FactorySpec = scn["factory"]
        pos = np.array([fac.patrol[0][0], fac.patrol[0][1], 0.0])
        delta = fac.patrol[1] - fac.patrol[0]
        yaw = math.atan2(delta[1], delta[0])
    return Pose(pos, np.array([0.0, 0.0, math.sin(yaw / 2), math.cos(yaw / 2)]))


# ----------------------------------------------------------------------------- public API
TOP_FIELDS = ("name", "description", "kind", "robot", "seed", "camera", "lighting", "robot_start",
              "pipeline", "workcell", "factory", "defects")


def parse_scenario(data: Any, source: str = "<memory>", default_name: str = "scenario") -> Scenario:
    """Validate a scenario mapping (as read from YAML) and build a :class:`Scenario`."""
    data = _mapping(data, "", TOP_FIELDS)
    kind = _choice(_get(data, "kind", ""), "kind", SCENE_KINDS, "scene kind")
    name = data.get("name", default_name)
    if not isinstance(name, str) or not name:
        raise ScenarioError("name: expected a non-empty string")
    robot = _choice(data.get("robot", DEFAULT_ROBOT[kind]), "robot", ROBOTS, "robot")
    seed = _int(data.get("seed", 0), "seed", 0)
    for other in SCENE_KINDS:
        if other != kind and other in data:
            raise ScenarioError(f"{other}: section not allowed in a scenario of kind {kind!r}")
    scn: dict[str, Any] = {}
    if kind == "pipeline":
        scn["pipeline"] = _pipeline(_get(data, "pipeline", ""))
    elif kind == "workcell":
        scn["workcell"] = _workcell(_get(data, "workcell", ""))
    else:
        scn["factory"] = _factory(_get(data, "factory", ""))
    hosts, obstacles = _scene_surfaces(kind, scn)
    plate = scn["workcell"].part if kind == "workcell" and isinstance(scn["workcell"].part, PlateSpec) else None
    defects = _defects(data.get("defects"), hosts, seed, scn.get("pipeline"), plate)
    description = data.get("description", "")
    if not isinstance(description, str):
        raise ScenarioError("description: expected a string")
    return Scenario(
        name=name, kind=kind, robot=robot, seed=seed,
        camera=_camera(data.get("camera", {})), lighting=_lighting(data.get("lighting", {})),
        start_pose=_start_pose(data.get("robot_start"), kind, scn), defects=defects,
        pipeline=scn.get("pipeline"), workcell=scn.get("workcell"), factory=scn.get("factory"),
        description=description, source=source, surfaces=tuple(hosts), obstacles=tuple(obstacles),
    )


def load_scenario(name_or_path: str | os.PathLike) -> Scenario:
    """Load a shipped scenario by name (``config/scenarios/<name>.yaml``) or a YAML file path.

    Raises :class:`ScenarioError` for a missing, unreadable or invalid file.
    """
    try:
        path = resolve_config_file(name_or_path, "scenarios", ".yaml")
    except FileNotFoundError as exc:
        raise ScenarioError(str(exc)) from None
    try:
        text = Path(path).read_text(encoding="utf-8")
        data = yaml.safe_load(text)
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"{path}: cannot read: {exc}") from None
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{path}: not valid YAML: {exc}") from None
    if data is None:
        raise ScenarioError(f"{path}: the file is empty")
    try:
        return parse_scenario(data, str(path), default_name=Path(path).stem)
    except ScenarioError as exc:
        raise ScenarioError(f"{path}: {exc}") from None


__all__ = ["load_scenario", "parse_scenario", "hole_tile_half", "pipe_side_vectors", "pipe_supports", "pipe_joints", "SURFACE_TOLERANCE"]
