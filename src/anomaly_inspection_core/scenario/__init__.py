"""Scenario files: schema, loading and validation (errors name the offending field)."""

from .loader import load_scenario, parse_scenario, pipe_joints, pipe_side_vectors, pipe_supports
from .schema import (
    DEFECT_TYPES, BoxSpec, CameraSpec, CylinderSpec, DefectSpec, FactorySpec, HoleSpec, LightingSpec, PipelineSpec,
    PlateSpec, Scenario, ScenarioError, WorkcellSpec,
)
from .surfaces import BoxSurface, Centreline, PlaneSurface, Surface, TubeSurface, pipe_centreline

__all__ = [
    "load_scenario", "parse_scenario", "pipe_joints", "pipe_side_vectors", "pipe_supports", "DEFECT_TYPES",
    "BoxSpec", "CameraSpec", "CylinderSpec", "DefectSpec", "FactorySpec", "HoleSpec", "LightingSpec", "PipelineSpec", "PlateSpec",
    "Scenario", "ScenarioError", "WorkcellSpec", "BoxSurface", "Centreline", "PlaneSurface", "Surface",
    "TubeSurface", "pipe_centreline",
]
