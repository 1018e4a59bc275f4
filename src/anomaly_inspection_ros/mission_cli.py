"""``anomaly-inspection mission ROBOT``: run a whole mission in the pip environment.

Starts one process per node of :func:`missions.mission_spec` (as ``ros2 launch`` would),
streams the mission coordinator's progress to the terminal, writes every node's log to
``OUT/logs/``, and exits with the coordinator's status (0 = mission complete). If any node
process dies, the mission stops with an error naming it and the tail of its log.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("mission", help="run a simulated teach-then-inspect mission ending in a report",
                       description="Run a simulated inspection mission (sim, detector, mapper, robot controller) "
                                   "over real ROS 2 topics and write report.json / report.html.")
    p.add_argument("robot", choices=("uav", "manipulator", "agv"), nargs="?", default="uav")
    p.add_argument("--scenario", default=None, help="shipped scenario name or YAML path (default: per robot)")
    p.add_argument("--out", default=None, help="output folder (default: output/<robot>-<scenario>-<time>)")
    p.add_argument("--model", default="", help="use this fitted model directory instead of a teach pass")
    p.add_argument("--params-file", default="",
                   help="ROS 2 parameter file (/**/<node>: keys) applied after the shipped mission parameters")
    p.add_argument("--timeout", type=float, default=1200.0, help="wall-clock limit for the whole mission, s")
    p.add_argument("--domain-id", type=int, default=None,
                   help="ROS_DOMAIN_ID for the mission's processes (0-101: higher ones can collide with "
                        "ephemeral ports)")
    p.set_defaults(handler=run_mission_command)


def _param_arg(key: str, value) -> str:
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, (int, float)):
        text = repr(value)
    else:
        text = json.dumps(str(value))  # a JSON string is a YAML string: keeps '', paths and ':' intact
    return f"{key}:={text}"


def node_command(node) -> list[str]:
    cmd = [sys.executable, "-m", node.module, "--ros-args", "-r", f"__ns:=/{node.namespace}",
           "-r", f"__node:={node.name}"]
    for param_file in node.param_files:
        cmd += ["--params-file", param_file]
    for key, value in node.parameters.items():
        cmd += ["-p", _param_arg(key, value)]
    return cmd


def _die_with_parent() -> None:
    """Child-process setup: get SIGTERM if the mission runner dies (no orphaned nodes left behind)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _tail(path: Path, n: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return "(no log)"


def _claim_graph(domain_id: str, namespace: str):
    """Lock (ROS domain, robot namespace) on this machine for one mission: (claimed, lock file).

    Two missions of one robot in one domain would share every topic and service (one's
    coordinator calling the other's report/write, each detector learning the other's frames).
    The lock is an flock on a file in the temp folder, held while the file is open and released
    however the process ends. ``(False, None)``: another mission holds it; ``(True, None)``:
    the lock file cannot be opened (another user's), so nothing is checked.
    """
    import fcntl
    import tempfile

    try:
        lock_dir = Path(tempfile.gettempdir()) / "anomaly_inspection"
        lock_dir.mkdir(exist_ok=True)
        fh = open(lock_dir / f"mission-domain{domain_id}-{namespace}.lock", "a+")
    except OSError:
        return True, None
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        fh.close()
        return False, None
    return True, fh


def run_mission_command(args: argparse.Namespace) -> int:
    from anomaly_inspection_core.cli import CliError
    from anomaly_inspection_core.scenario import ScenarioError, load_scenario

    from .missions import ROBOTS, mission_spec
    from .node_utils import apply_dds_environment

    scenario_name = args.scenario or ROBOTS[args.robot][2]
    try:
        scenario = load_scenario(scenario_name)  # fail fast, before starting anything
    except (ScenarioError, FileNotFoundError) as exc:
        raise CliError(str(exc)) from exc
    if scenario.robot != {"uav": "uav", "manipulator": "manipulator", "agv": "agv"}[args.robot]:
        raise CliError(f"scenario '{scenario.name}' is for robot '{scenario.robot}', not '{args.robot}'")
    if args.model and not Path(args.model).is_dir():
        raise CliError(f"model directory not found: {args.model}")
    if args.params_file and not Path(args.params_file).is_file():
        raise CliError(f"parameter file not found: {args.params_file}")
    domain = str(args.domain_id) if args.domain_id is not None else os.environ.get("ROS_DOMAIN_ID", "0") or "0"
    namespace = ROBOTS[args.robot][0]
    claimed, graph_lock = _claim_graph(domain, namespace)
    if not claimed:
        raise CliError(f"another {args.robot} mission is running on this machine in ROS_DOMAIN_ID {domain} "
                       f"(namespace /{namespace}): the two would share every topic and service. Wait for it, "
                       f"or give this one its own domain: --domain-id N")
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    out = Path(args.out or f"output/{args.robot}-{scenario.name}-{stamp}").resolve()
    out.mkdir(parents=True, exist_ok=True)
    logs = out / "logs"
    logs.mkdir(exist_ok=True)
    spec = mission_spec(args.robot, scenario_name, str(out), model_dir=args.model, params_file=args.params_file)

    env = apply_dds_environment(dict(os.environ))
    env.setdefault("MUJOCO_GL", "osmesa")
    env.setdefault("PYOPENGL_PLATFORM", "osmesa")
    env["PYTHONUNBUFFERED"] = "1"
    env["RCUTILS_COLORIZED_OUTPUT"] = "0"
    env.setdefault("RCUTILS_CONSOLE_OUTPUT_FORMAT", "[{severity}] [{name}]: {message}")
    if args.domain_id is not None:
        env["ROS_DOMAIN_ID"] = str(args.domain_id)
    print(f"mission: {args.robot} on '{scenario.name}' ({len(scenario.defects)} defects in the scenario), "
          f"output in {out}", flush=True)

    procs: dict[str, tuple[subprocess.Popen, Path]] = {}
    coordinator = None
    t0 = time.monotonic()
    status = 1
    try:
        for node in spec.nodes:
            log_path = logs / f"{node.name}.log"
            if node.executable == "mission_node":
                coordinator = subprocess.Popen(node_command(node), env=env, stdout=subprocess.PIPE,
                                               stderr=subprocess.STDOUT, text=True, bufsize=1,
                                               preexec_fn=_die_with_parent)
                procs[node.name] = (coordinator, log_path)
            else:
                with open(log_path, "w") as fh:
                    procs[node.name] = (subprocess.Popen(node_command(node), env=env, stdout=fh,
                                                         stderr=subprocess.STDOUT, preexec_fn=_die_with_parent),
                                        log_path)
        assert coordinator is not None
        os.set_blocking(coordinator.stdout.fileno(), False)
        with open(logs / "mission.log", "w") as mission_log:
            while True:
                line = coordinator.stdout.readline()
                if line:
                    mission_log.write(line)
                    print(line.rstrip(), flush=True)
                    continue
                if coordinator.poll() is not None:
                    rest = coordinator.stdout.read() or ""
                    mission_log.write(rest)
                    print(rest.rstrip(), flush=True) if rest.strip() else None
                    status = coordinator.returncode
                    break
                for name, (proc, log_path) in procs.items():
                    if proc is not coordinator and proc.poll() is not None:
                        print(f"mission: node '{name}' exited with status {proc.returncode}; its log:\n"
                              f"{_tail(log_path)}", file=sys.stderr, flush=True)
                        return 1
                if time.monotonic() - t0 > args.timeout:
                    print(f"mission: timed out after {args.timeout:.0f} s", file=sys.stderr, flush=True)
                    return 1
                time.sleep(0.05)
    finally:
        for name, (proc, _) in procs.items():
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        deadline = time.monotonic() + 10.0
        for name, (proc, _) in procs.items():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if graph_lock is not None:
            graph_lock.close()  # the graph is free for the next mission
    elapsed = time.monotonic() - t0
    if status != 0:  # what each node said last: usually enough to see why
        for name, (proc, log_path) in procs.items():
            if proc is not coordinator:
                print(f"mission: last lines of {log_path}:\n{_tail(log_path, 14)}", file=sys.stderr, flush=True)
    print(f"mission: {'complete' if status == 0 else 'FAILED'} in {elapsed:.0f} s; report: {out / 'report.html'}",
          flush=True)
    return 0 if status == 0 else 1
