"""Two missions of one robot in one ROS domain on one machine would share every topic and service:
the mission command refuses to start the second one, with a message saying what to do."""

from __future__ import annotations

import argparse

import pytest

from anomaly_inspection_core.cli import CliError
from anomaly_inspection_ros.mission_cli import _claim_graph, run_mission_command


def test_a_second_mission_in_the_same_domain_and_namespace_is_refused(tmp_path):
    claimed, first = _claim_graph("101", "uav")
    assert claimed and first is not None
    try:
        assert _claim_graph("101", "uav") == (False, None)
        for domain, robot in (("100", "uav"), ("101", "agv")):  # another domain, another robot: free
            claimed, other = _claim_graph(domain, robot)
            assert claimed and other is not None
            other.close()
        args = argparse.Namespace(robot="uav", scenario="pipeline_short", out=str(tmp_path / "run"), model="",
                                  params_file="", timeout=60.0, domain_id=101)
        with pytest.raises(CliError, match="--domain-id"):
            run_mission_command(args)
        assert not (tmp_path / "run").exists()  # refused before anything was started or written
    finally:
        first.close()
    claimed, again = _claim_graph("101", "uav")  # released with its holder
    assert claimed and again is not None
    again.close()
