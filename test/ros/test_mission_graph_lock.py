"""Two missions of one robot in one ROS domain on one machine would share every topic and service:
the mission command refuses to start the second one, with a message saying what to do."""

from __future__ import annotations

import argparse

import pytest

from anomaly_inspection_core.cli import CliError
from anomaly_inspection_ros.mission_cli import _claim_graph, run_mission_command


def test_a_second_mission_in_the_same_domain_and_namespace_is_refused(tmp_path):
    first = _claim_graph("101", "uav")
    assert first is not None and first != "unchecked"
    try:
        assert _claim_graph("101", "uav") is None
        other_domain, other_robot = _claim_graph("100", "uav"), _claim_graph("101", "agv")
        assert other_domain is not None and other_robot is not None
        other_domain.close(), other_robot.close()
        args = argparse.Namespace(robot="uav", scenario="pipeline_short", out=str(tmp_path / "run"), model="",
                                  params_file="", timeout=60.0, domain_id=101)
        with pytest.raises(CliError, match="--domain-id"):
            run_mission_command(args)
        assert not (tmp_path / "run").exists()  # refused before anything was started or written
    finally:
        first.close()
    again = _claim_graph("101", "uav")  # released with its holder
    assert again is not None
    again.close()
