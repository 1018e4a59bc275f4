"""What a mission runs: its nodes, their namespaces and parameters. Data, not plumbing.

Both ``launch/*.launch.py`` (full ROS 2 installs) and ``anomaly-inspection mission`` (the pip
environment, :mod:`anomaly_inspection_ros.mission_cli`) build their processes from
:func:`mission_spec`, so the two cannot drift apart. Per-node parameters live in
``config/<robot>_*.yaml`` (ROS 2 parameter-file format); a mission adds only the few values
that depend on its arguments (scenario, output folder).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from anomaly_inspection_core.paths import config_dir

#: robot -> (namespace, parameter file, default scenario)
ROBOTS = {
    "uav": ("uav", "uav_pipeline_inspection.yaml", "pipeline_straight"),
    "manipulator": ("arm", "manipulator_inspection.yaml", "workcell_casting"),
    "agv": ("agv", "agv_patrol_inspection.yaml", "factory_floor"),
}


@dataclass(frozen=True)
class NodeSpec:
    """One node process: ``executable`` is installed in lib/anomaly_inspection/ and is ``module``'s main()."""

    executable: str
    name: str
    namespace: str
    parameters: dict = field(default_factory=dict)
    param_file: str = ""
    extra_param_file: str = ""  # a user's parameter file, applied after the shipped one

    @property
    def param_files(self) -> list[str]:
        return [f for f in (self.param_file, self.extra_param_file) if f]

    @property
    def module(self) -> str:
        return f"anomaly_inspection_ros.{self.executable}"


@dataclass(frozen=True)
class MissionSpec:
    robot: str
    scenario: str
    output_dir: str
    nodes: tuple[NodeSpec, ...]


def mission_spec(robot: str, scenario: str | None = None, output_dir: str = "output/mission",
                 use_sim_time: bool = True, model_dir: str = "", params_file: str = "") -> MissionSpec:
    """The nodes of a teach-then-inspect mission for ``robot`` on ``scenario``.

    ``params_file`` (ROS 2 parameter-file format, ``/**/<node>:`` keys) overrides the shipped
    per-mission parameters, e.g. to shorten a mission or tune the detector.
    """
    if robot not in ROBOTS:
        raise ValueError(f"unknown robot '{robot}' (expected one of {', '.join(ROBOTS)})")
    ns, param_name, default_scenario = ROBOTS[robot]
    scenario = scenario or default_scenario
    param_file = str(config_dir() / param_name)
    out = str(Path(output_dir).resolve())
    common = {"use_sim_time": use_sim_time}
    nodes = [
        NodeSpec("sim_node", "sim", ns, {**common, "scenario": scenario, "clean": model_dir == ""}, param_file),
        NodeSpec("detector_node", "detector", ns,
                 {**common, "model_dir": model_dir, "teach_output_dir": str(Path(out) / "model")}, param_file),
        NodeSpec("mapper_node", "mapper", ns,
                 {**common, "output_dir": out, "scenario": scenario, "mission_name": f"{robot} inspection"},
                 param_file),
    ]
    if robot == "uav":
        # which side of the pipe to inspect is part of the mission (the scenario's instruction),
        # not geometry: the tracker still finds the pipe from depth alone
        from anomaly_inspection_core.scenario import load_scenario

        pipe = load_scenario(scenario).pipeline
        side = pipe.inspection_side if pipe is not None else "auto"
        nodes.append(NodeSpec("pipeline_tracker_node", "pipeline_tracker", ns, {**common, "inspection_side": side},
                              param_file))
    elif robot == "manipulator":
        nodes.append(NodeSpec("capture_node", "capture", ns, {**common, "scenario": scenario}, param_file))
    elif robot == "agv":
        nodes.append(NodeSpec("patrol_node", "patrol", ns, {**common, "scenario": scenario}, param_file))
    nodes.append(NodeSpec("mission_node", "mission", ns,
                          {**common, "robot": robot, "teach": model_dir == "", "output_dir": out}, param_file))
    if params_file:
        extra = str(Path(params_file).resolve())
        nodes = [NodeSpec(n.executable, n.name, n.namespace, n.parameters, n.param_file, extra) for n in nodes]
    return MissionSpec(robot, scenario, out, tuple(nodes))
