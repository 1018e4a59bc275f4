"""Shared test setup: headless rendering, isolated DDS domains, bounded spin helpers."""

from __future__ import annotations

import os
import time

import pytest

os.environ.setdefault("MUJOCO_GL", "osmesa")
os.environ.setdefault("PYOPENGL_PLATFORM", "osmesa")
# Isolate this test process from other ROS 2 graphs on the machine (another test run, a demo)
# by its own DDS domain (1-100: higher domains' ports fall into Linux's ephemeral range).
# Every process uses the shipped Fast DDS profile (config/fastdds.xml says why).
os.environ["ROS_DOMAIN_ID"] = os.environ.get("TEST_ROS_DOMAIN_ID", str(1 + os.getpid() % 100))
os.environ.pop("ROS_AUTOMATIC_DISCOVERY_RANGE", None)
from anomaly_inspection_ros.node_utils import apply_dds_environment  # noqa: E402

apply_dds_environment()


# Load torch/torchvision (and with them triton's LLVM) before any MuJoCo OSMesa context exists:
# importing triton after Mesa's llvmpipe is initialised segfaults the process (measured here:
# render one frame, then `import triton` -> SIGSEGV; the other order works).
import torch  # noqa: E402,F401
import torchvision  # noqa: E402,F401


def spin_until(executor, predicate, timeout_s: float, step_s: float = 0.02) -> bool:
    """Spin ``executor`` until ``predicate()`` is true or ``timeout_s`` passes; returns the predicate."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        executor.spin_once(timeout_sec=step_s)
    return bool(predicate())


@pytest.fixture
def ros_context():
    """A private rclpy context, shut down after the test."""
    import rclpy
    from rclpy.context import Context

    ctx = Context()
    rclpy.init(context=ctx)
    yield ctx
    if ctx.ok():
        rclpy.shutdown(context=ctx)
