"""Default camera trajectories per scene kind (used by ``simulate`` and for training data)."""

from __future__ import annotations

import math

import numpy as np

from ..geometry.camera import Pose
from ..scenario.loader import pipe_side_vectors
from ..scenario.schema import BoxSpec, Scenario
from ..scenario.surfaces import pipe_centreline


def pipeline_standoff_path(scenario: Scenario, n_frames: int, margin: float = 0.3) -> list[Pose]:
    """Camera beside the pipe at ``standoff`` on the inspection side, looking at the pipe axis."""
    spec = scenario.pipeline
    cl = pipe_centreline(spec.points, spec.bend_radius)
    sides = pipe_side_vectors(cl, spec.inspection_side)
    s = np.linspace(min(margin, cl.length / 2), max(cl.length - margin, cl.length / 2), n_frames)
    centres, _ = cl.at(s)
    out = []
    for si, c in zip(s, centres):
        k = int(np.clip(np.searchsorted(cl.arclength, si), 0, len(sides) - 1))
        # Blend side vectors near bends so the camera turns smoothly.
        w = np.exp(-((cl.arclength - si) / 0.3) ** 2)
        side = (w[:, None] * sides).sum(axis=0)
        side = side / np.linalg.norm(side) if np.linalg.norm(side) > 1e-6 else sides[k]
        out.append(Pose.looking_at(c + side * spec.standoff, c))
    return out


def default_trajectory(scenario: Scenario, n_frames: int) -> list[Pose]:
    if n_frames < 1:
        raise ValueError(f"n_frames must be >= 1, got {n_frames}")
    if scenario.kind == "pipeline":
        return pipeline_standoff_path(scenario, n_frames)
    if scenario.kind == "workcell":
        wc = scenario.workcell
        part = wc.part
        if isinstance(part, BoxSpec):
            centre, height = part.position, part.size[2]
        else:
            centre, height = part.base + [0, 0, part.height / 2], part.height
        out = []
        for i in range(n_frames):
            az = math.pi + 2 * math.pi * i / n_frames
            el = math.radians(35.0 + 15.0 * math.sin(2 * math.pi * i / max(n_frames, 1) * 2))
            eye = centre + wc.standoff * np.array([math.cos(el) * math.cos(az), math.cos(el) * math.sin(az), math.sin(el)])
            out.append(Pose.looking_at(eye, centre + [0, 0, 0.1 * height]))
        return out
    fac = scenario.factory
    pts = fac.patrol
    seg = np.linalg.norm(np.diff(pts, axis=0), axis=1)
    cum = np.concatenate([[0.0], np.cumsum(seg)])
    out = []
    for s in np.linspace(0.0, cum[-1], n_frames):
        k = int(np.clip(np.searchsorted(cum, s, side="right") - 1, 0, len(seg) - 1))
        d = (pts[k + 1] - pts[k]) / seg[k]
        xy = pts[k] + d * (s - cum[k])
        yaw = math.atan2(d[1], d[0]) + math.radians(fac.camera_yaw_deg)
        heading = np.array([math.cos(yaw), math.sin(yaw), 0.0])
        pitch = math.radians(fac.camera_pitch_deg)
        fwd = heading * math.cos(pitch) + np.array([0, 0, -math.sin(pitch)])
        eye = np.array([xy[0], xy[1], fac.camera_height])
        out.append(Pose.looking_at(eye, eye + fwd))
    return out
