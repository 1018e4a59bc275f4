"""Random scenario generation: deterministic, always valid, within the requested ranges; CLI."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

import argparse

from anomaly_inspection_core.scenario import scenario_cli
from anomaly_inspection_core.scenario import load_scenario, parse_scenario
from anomaly_inspection_core.scenario.generate import random_pipeline_scenario


def test_generated_pipelines_load_and_stay_in_range():
    risers = 0
    for seed in range(12):
        data = random_pipeline_scenario(seed)
        scn = parse_scenario(data)
        pts = scn.pipeline.points
        assert 1 <= len(pts) - 2 <= 4
        risers += int(np.any(np.abs(np.diff(pts[:, 2])) > 0))
        assert 6 <= len(scn.defects) <= 15
        assert all(0.01 <= d.size <= 0.1 for d in scn.defects)
        assert all(d.surface == "pipe" for d in scn.defects)
    assert risers >= 2
    assert random_pipeline_scenario(5) == random_pipeline_scenario(5)
    assert random_pipeline_scenario(5) != random_pipeline_scenario(6)


def test_generate_cli_writes_loadable_yaml(tmp_path):
    out = tmp_path / "gen.yaml"
    parser = argparse.ArgumentParser()
    scenario_cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["scenario", "generate", "--kind", "pipeline", "--seed", "3", "--out", str(out)])
    assert args.handler(args) == 0
    assert yaml.safe_load(out.read_text())["seed"] == 3
    assert load_scenario(out).name == "random_pipeline_3"
    with pytest.raises(ValueError):
        random_pipeline_scenario(-1)
