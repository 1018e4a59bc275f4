"""Mission coordinator: teach on the clean twin, then inspect, then write the report.

It drives the other nodes only through their public interfaces (services and status topics),
exactly as an operator's script would, and exits with status 0 when the mission completed,
1 when it failed (pipe lost, crash, timeout). Progress goes to the log (terminal).

Sequence: ``sim/load_clean`` -> ``detector/teach`` true -> ``<driver>/start`` -> wait for
done -> ``detector/teach`` false -> wait for the model -> ``sim/load_inspection`` ->
``mapper/reset`` -> ``<driver>/start`` -> wait for done -> ``report/write``.

It publishes ``mission/status`` (std_msgs/String JSON, latched: phase, outcome, the driver's
final state, distance and, for the manipulator, coverage); the mapper folds the latest one
into the report's ``mission`` section, so a report says how its mission ended.

The driver is the robot's motion node: ``tracker`` (UAV pipeline tracker, status
anomaly_inspection/PipelineTrackerStatus), ``capture`` (manipulator view capture) or ``patrol``
(AGV waypoint patrol); the last two publish ``<driver>/status`` as std_msgs/String JSON with
``state`` in idle | running | done | aborted, a ``message`` and a ``progress`` text.
"""

from __future__ import annotations

import json
import math
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import rclpy
from rclpy.node import Node
from std_msgs.msg import String
from std_srvs.srv import SetBool, Trigger

from anomaly_inspection.msg import PipelineTrackerStatus

from .node_utils import wall_timer, declare_config, latched_qos, run_node


class MissionFailed(RuntimeError):
    pass


@dataclass
class MissionNodeConfig:
    robot: str = "uav"
    teach: bool = field(default=True, metadata={"help": "teach the detector on the clean twin first"})
    teach_passes: int = field(default=1, metadata={
        "help": "teach passes over the clean twin, one after the other (the light changes meanwhile: "
                "the model learns each place under more than one sun position)"})
    output_dir: str = ""
    service_timeout_s: float = 180.0  # a loaded 2-core machine can take minutes to start a node and build a world
    pass_timeout_s: float = field(default=600.0, metadata={"help": "wall-clock limit of one pass"})
    fit_timeout_s: float = 600.0
    drain_s: float = field(default=2.0, metadata={"help": "wait for the last frames to be mapped"})
    route_factor: float = field(default=1.5, metadata={
        "help": "the inspection pass fails once the robot has travelled more than route_factor x the teach "
                "pass's distance + route_slack_m (it no longer follows the taught route); 0 = off"})
    route_slack_m: float = 3.0
    progress_period_s: float = 5.0

    def __post_init__(self) -> None:
        if self.teach_passes < 1:
            raise ValueError(f"teach_passes must be >= 1, got {self.teach_passes}")


def pass_ended(state: str, has_run: bool) -> bool:
    """Whether a pass is over, its driver reporting ``state`` (idle|running|done|aborted).

    "done" counts only once the driver has reported "running" in this pass: the last status
    of the pass before (a second teach pass starts right after the first) must not end it.
    """
    return state == "aborted" or (has_run and state == "done")


def route_exceeded(travelled_m: Optional[float], taught_m: Optional[float], factor: float,
                   slack_m: float) -> Optional[str]:
    """Why the inspection pass has left the taught route, or None while it has not.

    The teach pass flies the clean twin of the same asset, so the inspection pass should
    travel about as far. Much farther means the robot follows something else (a tracker
    that locked onto the wrong structure); stopping it bounds the damage and the time.
    """
    if factor <= 0 or travelled_m is None or taught_m is None or not math.isfinite(travelled_m):
        return None
    limit = factor * taught_m + slack_m
    if travelled_m <= limit:
        return None
    return (f"travelled {travelled_m:.1f} m, more than {factor:g} x the taught route ({taught_m:.1f} m) "
            f"+ {slack_m:g} m: the robot no longer follows the route it was taught; stopped")


class MissionNode(Node):
    DRIVERS = {"uav": "tracker", "manipulator": "capture", "agv": "patrol"}

    def __init__(self, **kwargs) -> None:
        super().__init__("mission", **kwargs)
        self.cfg = declare_config(self, MissionNodeConfig)
        if self.cfg.robot not in self.DRIVERS:
            raise ValueError(f"unknown robot '{self.cfg.robot}' (expected one of {', '.join(self.DRIVERS)})")
        self.driver = self.DRIVERS[self.cfg.robot]
        self.exit_status = 1
        self.tracker_status: Optional[PipelineTrackerStatus] = None
        self.driver_status: dict = {}
        self.detector_status: dict = {}
        self.sim_status: dict = {}
        self.mapper_status: dict = {}
        self.summary: dict = {}
        self.taught_m: Optional[float] = None
        if self.driver == "tracker":
            self.create_subscription(PipelineTrackerStatus, "tracker/status", self._on_tracker, latched_qos())
        else:
            self.create_subscription(String, f"{self.driver}/status",
                                     lambda m: self._on_json(m, "driver_status"), latched_qos())
        self.create_subscription(String, "detector/status", lambda m: self._on_json(m, "detector_status"),
                                 latched_qos())
        self.create_subscription(String, "sim/status", lambda m: self._on_json(m, "sim_status"), latched_qos())
        self.create_subscription(String, "mapper/status", lambda m: self._on_json(m, "mapper_status"),
                                 latched_qos())
        self.pub_status = self.create_publisher(String, "mission/status", latched_qos())
        self.clients_ = {
            name: self.create_client(srv, name) for name, srv in (
                ("sim/load_clean", Trigger), ("sim/pause", SetBool), ("sim/load_inspection", Trigger), ("detector/teach", SetBool),
                (f"{self.driver}/start", Trigger), (f"{self.driver}/stop", Trigger), ("mapper/reset", Trigger),
                ("report/write", Trigger))
        }
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._started = False
        wall_timer(self, 0.5, self._start_once)

    # ------------------------------------------------------------------ status inputs
    def _on_tracker(self, msg: PipelineTrackerStatus) -> None:  # noqa: D401
        self.tracker_status = msg

    def _on_json(self, msg: String, attr: str) -> None:
        try:
            setattr(self, attr, json.loads(msg.data))
        except json.JSONDecodeError:
            self.get_logger().warning(f"ignoring malformed {attr} message")

    # ------------------------------------------------------------------ outputs
    DRIVER_FACTS = ("coverage", "planned_coverage", "views_total", "views_done", "views_skipped")

    def status_dict(self, phase: str, outcome: str = "running", message: str = "") -> dict:
        """The ``mission/status`` payload: flat JSON scalars (the report's mission section takes them)."""
        state, driver_message, _ = self._driver_state()
        distance = self._driver_distance()
        payload = {"robot": self.cfg.robot, "phase": phase, "outcome": outcome, "outcome_message": message,
                   "driver_state": state, "driver_message": driver_message,
                   "distance_m": None if distance is None else round(distance, 2),
                   "taught_distance_m": None if self.taught_m is None else round(self.taught_m, 2),
                   "teach_passes": self.cfg.teach_passes if self.cfg.teach else 0,
                   "model": str(self.detector_status.get("message", ""))}
        for key in self.DRIVER_FACTS:
            value = self.driver_status.get(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
                payload[key] = value
        return payload

    def _publish_status(self, phase: str, outcome: str = "running", message: str = "") -> None:
        self.pub_status.publish(String(data=json.dumps(self.status_dict(phase, outcome, message))))

    def _announce_outcome(self, outcome: str, message: str, timeout_s: float = 3.0) -> None:
        """Publish the mission's outcome and wait until the mapper (which writes the report) echoes it."""
        self._publish_status("report", outcome, message)
        deadline = time.monotonic() + timeout_s
        while self.mapper_status.get("mission_outcome") != outcome:
            if time.monotonic() > deadline:
                self.get_logger().warning(f"the mapper did not confirm the mission outcome within {timeout_s:g} s: "
                                          f"the report may not say how the mission ended")
                return
            time.sleep(0.05)

    # ------------------------------------------------------------------ helpers
    def _start_once(self) -> None:
        if not self._started:
            self._started = True
            self._thread.start()

    def _log(self, text: str) -> None:
        self.get_logger().info(text)

    def _call(self, name: str, request=None):
        client = self.clients_[name]
        if not client.wait_for_service(timeout_sec=self.cfg.service_timeout_s):
            raise MissionFailed(f"service {name} not available after {self.cfg.service_timeout_s:.0f} s")
        future = client.call_async(request if request is not None else client.srv_type.Request())
        deadline = time.monotonic() + self.cfg.service_timeout_s
        while not future.done():
            if time.monotonic() > deadline:
                raise MissionFailed(f"service {name} did not answer")
            time.sleep(0.02)
        result = future.result()
        if not result.success:
            raise MissionFailed(f"{name} failed: {result.message}")
        return result

    def _wait(self, what: str, predicate: Callable[[], bool], timeout_s: float,
              progress: Optional[Callable[[], str]] = None) -> None:
        deadline = time.monotonic() + timeout_s
        next_progress = time.monotonic() + self.cfg.progress_period_s
        while not predicate():
            if self.sim_status.get("state") == "crashed":
                raise MissionFailed("the robot collided with the scene")
            if time.monotonic() > deadline:
                raise MissionFailed(f"timed out after {timeout_s:.0f} s waiting for {what}")
            if progress is not None and time.monotonic() > next_progress:
                self._log(progress())
                next_progress += self.cfg.progress_period_s
            time.sleep(0.05)

    def _driver_state(self) -> tuple[str, str, str]:
        """(state, message, progress text) of the robot's motion node; state in idle|running|done|aborted."""
        if self.driver == "tracker":
            st = self.tracker_status
            if st is None:
                return "idle", "", "waiting for the tracker"
            state = {PipelineTrackerStatus.STATE_DONE: "done",
                     PipelineTrackerStatus.STATE_ABORTED: "aborted"}.get(st.state, "running")
            return state, st.message, (f"{st.state_name.lower()}: {st.distance_travelled:5.1f} m flown, "
                                       f"stand-off {st.standoff:4.2f} m")
        st = self.driver_status
        return (str(st.get("state", "idle")), str(st.get("message", "")),
                str(st.get("progress", f"waiting for the {self.driver}")))

    def _driver_distance(self) -> Optional[float]:
        """Distance the robot has travelled in this pass (None when its driver does not say)."""
        if self.driver == "tracker":
            return None if self.tracker_status is None else float(self.tracker_status.distance_travelled)
        value = self.driver_status.get("distance_m")
        return float(value) if isinstance(value, (int, float)) else None

    def _progress(self) -> str:
        text = "  " + self._driver_state()[2]
        if self.detector_status.get("state") == "collecting":
            text += f", {self.detector_status.get('teach_frames', 0)} teach frames"
        if self.mapper_status:
            text += (f", {self.mapper_status.get('confirmed', 0)} defects confirmed "
                     f"({self.mapper_status.get('frames_localized', 0)} frames mapped)")
        return text

    def _run_pass(self, name: str) -> None:
        self.tracker_status, self.driver_status = None, {}
        taught = self.taught_m if name == "inspection" else None
        astray: list[str] = []

        has_run = False

        def finished() -> bool:
            nonlocal has_run
            why = route_exceeded(self._driver_distance(), taught, self.cfg.route_factor, self.cfg.route_slack_m)
            if why:
                astray.append(why)
            state = self._driver_state()[0]
            has_run = has_run or state == "running"
            return bool(astray) or pass_ended(state, has_run)

        self._call(f"{self.driver}/start")
        self._wait(f"the {name} pass", finished, self.cfg.pass_timeout_s, self._progress)
        self._call(f"{self.driver}/stop")
        if astray:
            raise MissionFailed(f"{name} pass: {astray[0]}")
        state, message, progress = self._driver_state()
        if state == "aborted":
            raise MissionFailed(f"{name} pass aborted: {message}")
        if name == "teach":
            self.taught_m = self._driver_distance()
        self._log(f"{name} pass done: {progress.strip()} ({message})")

    def _check_mapper_inputs(self) -> None:
        """Fail loudly when the mapper heard nothing on an input it needs (a broken ROS graph)."""
        time.sleep(1.2)  # the mapper's status comes once a second
        silent = self.mapper_status.get("silent_inputs")
        if silent is None:
            raise MissionFailed("no status from the mapper after the inspection pass")
        if silent:
            raise MissionFailed(f"the mapper received nothing on {', '.join(silent)} during the inspection pass "
                                f"(received: {self.mapper_status.get('received')}); the nodes are not all "
                                f"connected: check the topics' remappings and the DDS setup")
        if not self.mapper_status.get("ground_truth"):
            self._log("no ground truth from the simulator: the report will have no evaluation")

    # ------------------------------------------------------------------ the mission
    def _run(self) -> None:
        t0 = time.monotonic()
        try:
            if self.cfg.teach:
                self._log("phase 1/3: teach pass over the clean twin")
                self._publish_status("teach")
                self._call("detector/teach", SetBool.Request(data=True))
                for k in range(self.cfg.teach_passes):
                    if self.cfg.teach_passes > 1:
                        self._log(f"teach pass {k + 1} of {self.cfg.teach_passes}")
                    self._call("sim/load_clean")  # the robot back at the start; the simulated clock runs on
                    self._run_pass("teach")
                self._call("detector/teach", SetBool.Request(data=False))
                self._log("fitting the anomaly model on the taught frames (simulation paused meanwhile)")
                self._call("sim/pause", SetBool.Request(data=True))
                self._wait("the detector model", lambda: self.detector_status.get("state") in ("ready", "error"),
                           self.cfg.fit_timeout_s)
                self._call("sim/pause", SetBool.Request(data=False))
                if self.detector_status.get("state") != "ready":
                    raise MissionFailed(f"teaching failed: {self.detector_status.get('message')}")
                self._log(f"model ready: {self.detector_status.get('message')}")
            self._log("phase 2/3: inspection pass")
            self._publish_status("inspection")
            self._call("sim/load_inspection")
            self._call("mapper/reset")
            self._run_pass("inspection")
            time.sleep(self.cfg.drain_s)
            self._check_mapper_inputs()
            self._log("phase 3/3: report")
            self._announce_outcome("completed", "teach and inspection passes completed")
            result = self._call("report/write")
            self.summary = self._summarise(Path(result.message), time.monotonic() - t0)
            self.exit_status = 0
        except MissionFailed as exc:
            self.get_logger().error(f"MISSION FAILED: {exc}")
            self.exit_status = 1
            self._announce_outcome("failed", str(exc))
            self._write_partial_report()
        finally:
            self.context.try_shutdown()

    def _write_partial_report(self) -> None:
        """After a failure: what was found so far, and why the mission failed, is still worth a report."""
        if not self.cfg.output_dir:
            return
        try:
            result = self._call("report/write")
        except MissionFailed as exc:
            self.get_logger().error(f"no partial report: {exc}")
            return
        self._log(f"partial report: {Path(result.message) / 'report.html'}")

    def _summarise(self, out: Path, elapsed: float) -> dict:
        report = json.loads((out / "report.json").read_text())
        ev = report.get("evaluation") or {}
        summary = {"defects": len(report.get("defects", [])), "elapsed_s": round(elapsed, 1),
                   "recall": ev.get("recall"), "precision": ev.get("precision"),
                   "median_error_m": ev.get("median_error_m"), "report": str(out / "report.html")}
        self._log(f"mission complete in {elapsed:.0f} s: {summary['defects']} defects reported"
                  + (f", recall {ev.get('recall')}, precision {ev.get('precision')}" if ev else ""))
        self._log(f"report: {out / 'report.html'}")
        return summary


def main(args=None) -> int:
    return run_node(MissionNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
