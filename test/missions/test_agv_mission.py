"""Whole AGV patrol missions in simulation: teach on the clean factory floor, inspect the one with defects.

Runs ``anomaly-inspection mission agv`` (the real runner: one process per node over DDS) with
the shipped parameter file, sped up for CI, then asserts recall, precision and the median 3D
error from report.json at the AGV's 10 cm gate. Thresholds are below what was measured, so a
regression fails them.
"""

from __future__ import annotations

import pytest

from mission_helpers import check_report, run_mission

CI_OVERRIDES = {
    "patrol": {"max_speed": 0.6},
    "mission": {"pass_timeout_s": 600.0, "fit_timeout_s": 600.0},
}


@pytest.mark.parametrize("scenario, min_recall, min_precision, max_median_error_m", [
    # measured (448 px, turning frames ignored): recall 1.0, precision 0.875, median 23 mm, 84 s
    # (the default mission: 1.0 / 1.0, 19 mm; large floor stains put the median near the 3 cm target)
    ("factory_floor", 0.7, 0.7, 0.04),
])
def test_agv_mission(scenario, min_recall, min_precision, max_median_error_m, tmp_path, monkeypatch):
    out = tmp_path / "run"
    status = run_mission("agv", scenario, out, CI_OVERRIDES, monkeypatch)
    assert status == 0, (out / "logs" / "mission.log").read_text()[-3000:]
    check_report(out, min_recall, min_precision, max_median_error_m)
    mission_log = (out / "logs" / "mission.log").read_text()
    assert "inspection pass done: waypoint 2/2" in mission_log
