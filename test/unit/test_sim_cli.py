"""``anomaly-inspection simulate``: files per frame, clean twin, and nothing written on bad input."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from anomaly_inspection_core.cli import main

pytest.importorskip("mujoco")


def test_simulate_writes_frames(tmp_path):
    out = tmp_path / "run"
    rc = main(["simulate", "--scenario", "pipeline_straight", "--frames", "2", "--out", str(out),
               "--width", "96", "--height", "72", "--sheet-frames", "2"])
    assert rc == 0
    for sub, ext in (("rgb", "png"), ("depth", "png"), ("mask", "png"), ("camera", "json")):
        assert sorted(p.name for p in (out / sub).iterdir()) == [f"000000.{ext}", f"000001.{ext}"]
    depth = cv2.imread(str(out / "depth" / "000000.png"), cv2.IMREAD_UNCHANGED)
    assert depth.dtype == np.uint16 and depth.shape == (72, 96) and 800 < np.median(depth[depth > 0]) < 5000
    meta = json.loads((out / "camera" / "000000.json").read_text())
    assert meta["camera_info"]["width"] == 96 and len(meta["camera_info"]["k"]) == 9
    assert set(meta["pose"]) == {"position", "orientation_xyzw"}
    assert len(json.loads((out / "defects.json").read_text())) == 10
    assert (out / "contact_sheet.png").is_file()


def test_simulate_clean_twin(tmp_path):
    out = tmp_path / "clean"
    assert main(["simulate", "--scenario", "pipeline_straight", "--frames", "1", "--out", str(out),
                 "--width", "64", "--height", "48", "--clean", "--depth-format", "npy"]) == 0
    assert json.loads((out / "defects.json").read_text()) == []
    assert np.load(out / "depth" / "000000.npy").dtype == np.float32


def test_simulate_bad_scenario_writes_nothing(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: pipeline\npipeline: {points: [[0,0,1],[2,0,1]]}\n"
                   "defects:\n  - {type: corrosion, position: [1,0.15,1], size: 0.05}\n"
                   "  - {type: corrosion, position: [1,0.15,1], size: 0.05}\n"
                   "  - {type: corrosion, position: [1,0.15,1], size: 0.05}\n"
                   "  - {type: rust, position: [1,0.15,1], size: 0.05}\n")
    out = tmp_path / "out"
    assert main(["simulate", "--scenario", str(bad), "--frames", "1", "--out", str(out)]) == 2
    assert "defects[3].type: unknown defect type 'rust'; expected one of" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.yaml"]
