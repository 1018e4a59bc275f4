"""``anomaly-inspection scenario generate``: write a random, validated scenario YAML."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from ..cli import CliError
from .generate import GENERATOR_KINDS

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("scenario", help="scenario tools (random generation)")
    sub = p.add_subparsers(dest="scenario_command", metavar="SUBCOMMAND")
    g = sub.add_parser("generate", help="write a random scenario (validated by the loader)")
    g.add_argument("--kind", default="pipeline", choices=GENERATOR_KINDS,
                   help="scene kind: pipeline (UAV), workcell (manipulator), factory (AGV)")
    g.add_argument("--seed", type=int, required=True, help="random seed (>= 0); same seed, same scenario")
    g.add_argument("--out", required=True, help="output YAML file")
    g.add_argument("--name", default=None, help="scenario name (default random_<kind>_<seed>)")
    g.set_defaults(handler=run_generate)
    p.set_defaults(handler=lambda args: (p.print_help(), 2)[1])


def run_generate(args: argparse.Namespace) -> int:
    from .generate import random_scenario, write_scenario

    if args.seed < 0:
        raise CliError(f"--seed must be >= 0, got {args.seed}")
    out = Path(args.out)
    if out.suffix not in (".yaml", ".yml"):
        raise CliError(f"--out must be a .yaml file, got {out}")
    data = random_scenario(args.kind, args.seed, args.name)
    write_scenario(data, out)
    log.info("wrote %s (%d defects)", out, len(data["defects"]))
    return 0
