"""Shared plumbing of the mission tests: run a real mission with CI parameters, check its report."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import jsonschema
import yaml

from anomaly_inspection_core.report import load_schema
from anomaly_inspection_ros.mission_cli import run_mission_command

REPO = Path(__file__).resolve().parents[2]


def run_mission(robot: str, scenario: str, out: Path, overrides: dict, monkeypatch) -> int:
    """Run ``anomaly-inspection mission`` with per-node ``overrides`` as its --params-file; exit status."""
    params = out.parent / f"{robot}_ci_params.yaml"
    out.parent.mkdir(parents=True, exist_ok=True)
    params.write_text(yaml.safe_dump({f"/**/{node}": {"ros__parameters": p} for node, p in overrides.items()}))
    # the node processes import this checkout's code, not an older installed copy
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")]))
    args = argparse.Namespace(robot=robot, scenario=scenario, out=str(out), model="", params_file=str(params),
                              timeout=900.0, domain_id=int(os.environ["ROS_DOMAIN_ID"]))
    return run_mission_command(args)


def check_report(out: Path, min_recall: float, min_precision: float, max_median_error_m: float) -> dict:
    """Validate report.json/html of a finished mission and assert its evaluation; returns the report."""
    report = json.loads((out / "report.json").read_text())
    jsonschema.validate(report, load_schema())
    assert (out / "report.html").stat().st_size > 10_000
    # the mission node's last status, folded in by the mapper: how the mission ended
    assert report["mission"]["outcome"] == "completed", report["mission"]
    ev = report["evaluation"]
    print(json.dumps({k: ev.get(k) for k in ("recall", "precision", "median_error_m", "p95_error_m",
                                             "median_size_ratio", "median_size_error_m")}))
    assert ev["recall"] >= min_recall, ev
    assert ev["precision"] >= min_precision, ev
    assert ev["median_error_m"] is not None and ev["median_error_m"] <= max_median_error_m, ev
    return report
