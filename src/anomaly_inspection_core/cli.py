"""``anomaly-inspection``: the project's command line.

Each concern registers its own sub-commands from a small ``*_cli.py`` module (argument
definitions only; heavy imports such as torch or mujoco happen inside the handlers, so
``anomaly-inspection --help`` stays fast).

    anomaly-inspection simulate   ...   (sim.sim_cli)
    anomaly-inspection fit|predict|evaluate ... (detection.detection_cli)
    anomaly-inspection benchmark  ...   (benchmark_cli)
    anomaly-inspection mission    ...   (anomaly_inspection_ros.mission_cli, needs rclpy)
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

# Modules that define ``register(subparsers)``. Missing optional ones (e.g. the ROS side in
# an environment without rclpy) are skipped with a note in --help rather than breaking the CLI.
_COMMAND_MODULES = (
    "anomaly_inspection_core.sim.sim_cli",
    "anomaly_inspection_core.scenario.scenario_cli",
    "anomaly_inspection_core.detection.detection_cli",
    "anomaly_inspection_core.benchmark_cli",
    "anomaly_inspection_ros.mission_cli",
)


class CliError(Exception):
    """An error the user can fix; printed without a traceback, exit status 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="anomaly-inspection",
        description="Robotic industrial inspection with image anomaly detection.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    unavailable = []
    for module_name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            unavailable.append(f"{module_name.rsplit('.', 1)[-1]} ({exc})")
            continue
        module.register(sub)
    if unavailable:
        parser.epilog = "unavailable here: " + "; ".join(unavailable)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    try:
        result = args.handler(args)
    except CliError as exc:
        print(f"anomaly-inspection {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
