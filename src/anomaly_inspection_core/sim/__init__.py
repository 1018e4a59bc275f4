"""Simulated inspection world: MuJoCo scene from a scenario, offscreen rendering, robot kinematics.

``SimWorld`` imports MuJoCo lazily (on construction), so importing this package is cheap.
"""

import os

# MuJoCo picks its GL backend when first imported; offscreen CPU rendering needs OSMesa unless
# the user chose another backend (egl, glfw) explicitly.
os.environ.setdefault("MUJOCO_GL", "osmesa")

from .robots import AgvKinematics, CameraTargetKinematics, UavKinematics, collides
from .world import RenderedFrame, SimWorld

__all__ = ["SimWorld", "RenderedFrame", "UavKinematics", "AgvKinematics", "CameraTargetKinematics", "collides"]
