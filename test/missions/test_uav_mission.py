"""A short but complete UAV mission: real nodes in separate processes over DDS, teach then inspect.

Asserts the outcome a user cares about, from the report: the mission completes, and the
defects found match the scenario's ground truth at the 10 cm gate.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema

from anomaly_inspection_core.report import load_schema

REPO = Path(__file__).resolve().parents[2]


def test_short_uav_mission_finds_the_defects(tmp_path):
    out = tmp_path / "mission"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run(
        [sys.executable, "-m", "anomaly_inspection_core", "mission", "uav", "--scenario", "pipeline_short",
         "--out", str(out), "--timeout", "900"],
        env=env, capture_output=True, text=True, timeout=960)
    print(proc.stdout[-4000:])
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads((out / "report.json").read_text())
    jsonschema.validate(report, load_schema())
    assert (out / "report.html").stat().st_size > 10_000
    ev = report["evaluation"]
    print(json.dumps({k: ev[k] for k in ("recall", "precision", "median_error_m", "p95_error_m")}))
    # Measured (pipeline_short, 2 cores): recall 0.67-0.83, precision 1.0, median error 5-6 mm.
    assert ev["recall"] >= 0.5, ev
    assert ev["precision"] >= 0.8, ev
    assert ev["median_error_m"] <= 0.03, ev
    crops = [d["evidence"]["crop_png"] for d in report["defects"] if (d.get("evidence") or {}).get("crop_png")]
    assert crops and all((out / c).is_file() for c in crops), "reported defects need image evidence"
