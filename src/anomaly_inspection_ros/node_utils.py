"""Plumbing shared by all nodes: typed configs from parameters, QoS, throttled warnings, main()."""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
import typing
from typing import Any, Callable, Optional, Type, TypeVar

import rclpy
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import (DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy,
                       qos_profile_sensor_data)
from rcl_interfaces.msg import ParameterDescriptor

T = TypeVar("T")

def dds_profile_path() -> str:
    """The shipped Fast DDS profile (config/fastdds.xml: large shared-memory segments + UDPv4).

    Fast DDS's default transports lose most best-effort 640x480 images between processes, and its
    LARGE_DATA mode leaves some pairs of participants unmatched when several start together; the
    file's header has the measurements.
    """
    from anomaly_inspection_core.paths import config_dir
    return str(config_dir() / "fastdds.xml")


def apply_dds_environment(env: Optional[dict] = None) -> dict:
    """Point ``env`` (default: os.environ) at the shipped Fast DDS profile unless one is set already."""
    target = os.environ if env is None else env
    if not target.get("FASTDDS_DEFAULT_PROFILES_FILE"):
        target["FASTDDS_DEFAULT_PROFILES_FILE"] = dds_profile_path()
    return target


def qos_from_name(name: str, depth: int = 1) -> QoSProfile:
    """'sensor_data' (best effort, keep last ``depth``) or 'reliable' (reliable, keep last ``depth``)."""
    if name in ("sensor_data", "best_effort"):
        q = QoSProfile(depth=depth)
        q.reliability = ReliabilityPolicy.BEST_EFFORT
        q.history = HistoryPolicy.KEEP_LAST
        q.durability = qos_profile_sensor_data.durability
        return q
    if name == "reliable":
        return QoSProfile(depth=depth, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST)
    raise ValueError(f"unknown QoS profile '{name}' (use sensor_data or reliable)")


def latched_qos(depth: int = 1) -> QoSProfile:
    """Reliable + transient local: late subscribers get the last message (ground truth, maps)."""
    return QoSProfile(depth=depth, reliability=ReliabilityPolicy.RELIABLE,
                      durability=DurabilityPolicy.TRANSIENT_LOCAL, history=HistoryPolicy.KEEP_LAST)


class ThrottledWarner:
    """Warn at most once per ``period_s`` per key, counting what was suppressed."""

    def __init__(self, node: Node, period_s: float = 5.0) -> None:
        self._node = node
        self._period = period_s
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}
        self.counts: dict[str, int] = {}

    def warn(self, key: str, message: str) -> None:
        self.counts[key] = self.counts.get(key, 0) + 1
        now = time.monotonic()
        if now - self._last.get(key, -1e9) >= self._period:
            n = self._suppressed.pop(key, 0)
            suffix = f" ({n} similar suppressed)" if n else ""
            self._node.get_logger().warning(f"{message}{suffix}")
            self._last[key] = now
        else:
            self._suppressed[key] = self._suppressed.get(key, 0) + 1


def _param_type_ok(value: Any) -> bool:
    if isinstance(value, (bool, int, float, str)):
        return True
    if isinstance(value, (list, tuple)) and value:
        return all(isinstance(v, type(value[0])) for v in value) and isinstance(value[0], (bool, int, float, str))
    return False


def declare_config(node: Node, cls: Type[T], prefix: str = "") -> T:
    """Declare one parameter per dataclass field (default = field default) and build ``cls`` from them.

    Field docstrings come from ``cls.__doc__``-style ``metadata={'help': ...}`` where given.
    Types are checked once here, so nodes read a typed config instead of scattered parameters.
    """
    hints = typing.get_type_hints(cls)
    values = {}
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
            default = f.default_factory()  # type: ignore[misc]
        else:
            raise TypeError(f"{cls.__name__}.{f.name} needs a default to become a parameter")
        if isinstance(default, tuple):
            default = list(default)
        if not _param_type_ok(default):
            continue  # not representable as a parameter: keep the dataclass default
        name = f"{prefix}{f.name}"
        descriptor = ParameterDescriptor(description=str(f.metadata.get("help", "")))
        node.declare_parameter(name, default, descriptor)
        value = node.get_parameter(name).value
        hint = hints.get(f.name)
        if hint is float and isinstance(value, int):
            value = float(value)
        if isinstance(f.default, tuple) and isinstance(value, list):
            value = tuple(value)
        values[f.name] = value
    return cls(**values)


def run_node(factory: Callable[[], Node], args: Optional[list[str]] = None,
             executor_factory: Optional[Callable[[], Any]] = None) -> int:
    """Standard ``main()``: init, spin until Ctrl-C or shutdown, clean up. Returns an exit status."""
    apply_dds_environment()
    rclpy.init(args=args if args is not None else sys.argv)
    node = None
    status = 0
    try:
        node = factory()
        if executor_factory is not None:
            executor = executor_factory()
            executor.add_node(node)
            executor.spin()
        else:
            rclpy.spin(node)
        status = int(getattr(node, "exit_status", 0))
    except KeyboardInterrupt:
        pass
    except rclpy.executors.ExternalShutdownException:
        pass
    finally:
        if node is not None:
            status = int(getattr(node, "exit_status", status))
            node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
    return status


def wall_timer(node: Node, period_s: float, callback):
    """A timer on the steady clock: it runs with ``use_sim_time`` too (the simulator's own step
    timer publishes /clock, and processing-rate timers are about real time anyway)."""
    from rclpy.clock import Clock, ClockType

    return node.create_timer(period_s, callback, clock=Clock(clock_type=ClockType.STEADY_TIME))


__all__ = [
    "apply_dds_environment", "dds_profile_path", "qos_from_name", "latched_qos", "ThrottledWarner",
    "declare_config", "run_node",
    "wall_timer",
    "Parameter",
]


class DetectorPacer:
    """Speed limit that lets the detector score a frame every ``spacing_m`` along the path.

    Fed with the stamps of ``anomaly/result`` (simulated or sensor time) and the detector's
    ``detector/status`` state. The scoring rate is measured over the last ``window_s``:

    * no detector model (status not ``ready``: teaching, absent) or ``spacing_m <= 0``: no cap;
    * ready and scoring: ``spacing_m x rate`` (a slow or loaded detector slows the robot, not
      the coverage);
    * ready but not scoring (the first frames after a model loads are the slowest, or the
      detector stalled): 0, hold position, so that nothing is passed unseen;
    * teaching (status ``collecting``) with ``teach_speed > 0``: ``teach_speed``, so that the
      teach pass flies (and views turns) as the paced inspection pass will.
    """

    def __init__(self, spacing_m: float, window_s: float = 5.0, stale_s: float = 3.0,
                 teach_speed: float = 0.0) -> None:
        self.spacing_m = float(spacing_m)
        self.window_s, self.stale_s = float(window_s), float(stale_s)
        self.teach_speed = float(teach_speed)
        self.stamps: list[float] = []
        self.detector_ready = False
        self.detector_collecting = False

    def attach(self, node: Node, warner: "ThrottledWarner") -> None:
        """Subscribe ``node`` to ``anomaly/result`` and ``detector/status`` (relative names)."""
        from std_msgs.msg import String

        from anomaly_inspection.msg import AnomalyResult

        node.create_subscription(AnomalyResult, "anomaly/result", lambda m: self.take_result(m, warner), 20)
        node.create_subscription(String, "detector/status", lambda m: self.take_status(m, warner), latched_qos())

    def take_result(self, msg, warner: Optional["ThrottledWarner"] = None) -> None:
        """An AnomalyResult: its stamp counts as one scored frame (invalid stamps are dropped)."""
        from . import conversions as conv

        try:
            self.on_result(conv.validate_stamp(msg.header.stamp))
        except conv.ConversionError as exc:
            if warner is not None:
                warner.warn("result", f"dropping anomaly result: {exc}")

    def take_status(self, msg, warner: Optional["ThrottledWarner"] = None) -> None:
        """A std_msgs/String detector/status."""
        if not self.on_status(msg.data) and warner is not None:
            warner.warn("detector_status", "ignoring a detector/status that is not a JSON object")

    def on_status(self, data: str) -> bool:
        """Take a ``detector/status`` JSON payload; False when it is not a JSON object."""
        try:
            state = json.loads(data).get("state")
        except (ValueError, AttributeError):
            return False
        self.detector_ready = state == "ready"
        self.detector_collecting = state == "collecting"
        return True

    def on_result(self, stamp: float) -> bool:
        """Take a result stamp; False (ignored) when it is older than the last one."""
        if self.stamps and stamp <= self.stamps[-1]:
            if self.stamps[-1] - stamp > 1.0:  # the clock restarted (a new pass or a new simulation)
                self.stamps = []
            else:
                return False
        self.stamps.append(float(stamp))
        del self.stamps[:-50]
        return True

    def rate_hz(self, now: float) -> Optional[float]:
        """Frames scored per second over the window; None when fewer than 3 or stale."""
        recent = [t for t in self.stamps if now - t <= self.window_s]
        if len(recent) < 3 or now - recent[-1] > self.stale_s:
            return None
        return (len(recent) - 1) / max(recent[-1] - recent[0], 1e-3)

    def speed_cap(self, now: float, max_speed: float, min_speed: float = 0.0) -> float:
        if self.detector_collecting and self.teach_speed > 0:
            return float(min(max_speed, self.teach_speed))
        if self.spacing_m <= 0:
            return max_speed
        rate = self.rate_hz(now)
        if rate is None:
            return 0.0 if self.detector_ready else max_speed
        return float(min(max_speed, max(min_speed, self.spacing_m * rate)))
