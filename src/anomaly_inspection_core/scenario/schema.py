"""Typed scenario description: what the simulated world contains and where the defects are.

The YAML schema is documented field by field in ``docs/scenarios.md``; :mod:`.loader` turns a
file into these objects and names the offending field on any error.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np

from ..geometry.camera import Pose
from .surfaces import BoxSurface, PlaneSurface, Surface, TubeSurface

DEFECT_TYPES: tuple[str, ...] = ("corrosion", "crack", "dent", "scratch", "missing_coating", "stain")
SCENE_KINDS: tuple[str, ...] = ("pipeline", "workcell", "factory")
ROBOTS: tuple[str, ...] = ("uav", "manipulator", "agv")
DEFAULT_ROBOT = {"pipeline": "uav", "workcell": "manipulator", "factory": "agv"}


class ScenarioError(ValueError):
    """A scenario file is malformed; the message starts with the offending field path."""


@dataclass(frozen=True)
class CameraSpec:
    """Pinhole camera of the inspecting robot."""

    width: int = 640
    height: int = 480
    fov_y_deg: float = 50.0
    min_range: float = 0.1
    max_range: float = 10.0
    rate_hz: float = 10.0


@dataclass(frozen=True)
class LightingSpec:
    """Sun-like directional light plus ambient; ``variation`` modulates intensity over time."""

    sun_azimuth_deg: float = 35.0
    sun_elevation_deg: float = 55.0
    intensity: float = 0.75
    ambient: float = 0.3
    variation: float = 0.15
    period_s: float = 40.0
    shadows: bool = True


@dataclass(frozen=True)
class DefectSpec:
    """One defect on an object surface (ground truth).

    ``position`` is the defect centre on the surface in frame ``map`` (snapped onto the surface
    at load time), ``normal`` the outward surface normal there, ``size`` the largest extent
    (blob diameter, crack or scratch length) in metres. ``surface`` names the object it lies on.
    """

    id: int
    type: str
    position: np.ndarray
    size: float
    normal: np.ndarray
    surface: str
    depth: float = 0.0
    orientation_deg: float | None = None
    seed: int = 0

    def as_dict(self) -> dict:
        out = {
            "id": self.id,
            "type": self.type,
            "position": [round(float(v), 6) for v in self.position],
            "size": float(self.size),
            "normal": [round(float(v), 6) for v in self.normal],
            "surface": self.surface,
        }
        if self.type == "dent":
            out["depth"] = float(self.depth)
        return out


@dataclass(frozen=True)
class PipelineSpec:
    """A pipe along a polyline of straight runs joined by elbows (bends of ``bend_radius``)."""

    points: np.ndarray
    radius: float = 0.15
    bend_radius: float = 0.45
    inspection_side: str = "left"
    standoff: float = 1.0
    support_spacing: float = 3.0
    weld_spacing: float = 2.0
    flange_spacing: float = 6.0
    color: tuple[float, float, float] = (0.55, 0.58, 0.6)

    @property
    def centreline(self):
        """Densely sampled centreline with the elbows (:class:`~.surfaces.Centreline`)."""
        from .surfaces import pipe_centreline

        return pipe_centreline(self.points, self.bend_radius)


@dataclass(frozen=True)
class BoxSpec:
    """An axis-aligned-in-z box: ``position`` is the centre of its footprint on the floor
    (x, y) unless ``z`` is given (centre height); ``yaw_deg`` about +z."""

    name: str
    position: np.ndarray
    size: np.ndarray
    yaw_deg: float = 0.0
    color: tuple[float, float, float] = (0.5, 0.5, 0.5)


@dataclass(frozen=True)
class HoleSpec:
    """A through hole of a plate: centre (u, v) in the plate's own frame (x along its length
    before yaw, metres from the plate centre) and radius."""

    u: float
    v: float
    radius: float


@dataclass(frozen=True)
class PlateSpec(BoxSpec):
    """A flat box (``size[2]`` is the thickness) with vertical through holes.

    The holes are part of the design (normal appearance, not defects). Everything that treats
    the part as a box (arm collision scene, view planning, coverage) sees the plate as one.
    """

    holes: tuple[HoleSpec, ...] = ()

    def hole_centres(self) -> np.ndarray:
        """Hole centres (N, 3) in ``map`` on the plate's top face."""
        if not self.holes:
            return np.zeros((0, 3))
        c, s = math.cos(math.radians(self.yaw_deg)), math.sin(math.radians(self.yaw_deg))
        uv = np.array([[h.u, h.v] for h in self.holes])
        xy = uv @ np.array([[c, s], [-s, c]]) + self.position[:2]
        top = self.position[2] + self.size[2] / 2.0
        return np.column_stack([xy, np.full(len(xy), top)])


@dataclass(frozen=True)
class CylinderSpec:
    """A vertical cylinder (tank, cylindrical part) standing at ``base`` (x, y, z)."""

    name: str
    base: np.ndarray
    radius: float
    height: float
    color: tuple[float, float, float] = (0.6, 0.6, 0.6)


@dataclass(frozen=True)
class WorkcellSpec:
    """A table and a part on it; the manipulator camera inspects the part."""

    table: BoxSpec
    part: BoxSpec | CylinderSpec  # a PlateSpec is a BoxSpec
    standoff: float = 0.6


@dataclass(frozen=True)
class FactorySpec:
    """A floor with tanks, machines and racks; the AGV patrols along ``patrol`` waypoints."""

    floor_size: tuple[float, float]
    tanks: tuple[CylinderSpec, ...]
    machines: tuple[BoxSpec, ...]
    racks: tuple[BoxSpec, ...]
    patrol: np.ndarray
    camera_height: float = 1.2
    camera_pitch_deg: float = 20.0
    look_side: str = "left"
    camera_yaw_deg: float = 90.0  # mast pan from the heading, +left; default from look_side



@dataclass(frozen=True)
class Scenario:
    """A complete inspection scenario (see ``docs/scenarios.md``)."""

    name: str
    kind: str
    robot: str
    seed: int
    camera: CameraSpec
    lighting: LightingSpec
    start_pose: Pose
    defects: tuple[DefectSpec, ...]
    pipeline: PipelineSpec | None = None
    workcell: WorkcellSpec | None = None
    factory: FactorySpec | None = None
    description: str = ""
    source: str = ""
    surfaces: tuple[Surface, ...] = field(default=(), repr=False)
    obstacles: tuple[Surface, ...] = field(default=(), repr=False)

    def clean_twin(self) -> "Scenario":
        """The same scene, seed and lighting without any defect (normal appearance)."""
        return dataclasses.replace(self, name=f"{self.name}_clean", defects=())

    @property
    def is_clean(self) -> bool:
        return not self.defects

    def defect(self, defect_id: int) -> DefectSpec:
        for d in self.defects:
            if d.id == defect_id:
                return d
        raise KeyError(f"scenario {self.name!r} has no defect with id {defect_id}")

    def surface(self, name: str) -> Surface:
        for s in self.surfaces:
            if s.name == name:
                return s
        raise KeyError(f"scenario {self.name!r} has no surface {name!r}")

    def clearance(self, position: np.ndarray) -> float:
        """Distance (m) from ``position`` to the nearest solid object (negative inside one)."""
        p = np.asarray(position, dtype=np.float64).reshape(3)
        best = math.inf
        for s in self.obstacles:
            best = min(best, s.signed_distance(p))
        return best


__all__ = [
    "DEFECT_TYPES", "SCENE_KINDS", "ROBOTS", "ScenarioError", "CameraSpec", "LightingSpec",
    "DefectSpec", "PipelineSpec", "BoxSpec", "CylinderSpec", "HoleSpec", "PlateSpec", "WorkcellSpec", "FactorySpec",
    "Scenario", "BoxSurface", "PlaneSurface", "TubeSurface", "Surface",
]
