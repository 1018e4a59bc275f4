"""``anomaly-inspection simulate``: synthetic frames with ground truth along a default trajectory.

Output layout (all files of frame ``i`` share the stem ``%06d``)::

    OUT/rgb/000000.png        8-bit RGB
    OUT/depth/000000.png      16-bit depth in millimetres, 0 = no return (or .npy float32 metres)
    OUT/mask/000000.png       16-bit defect ids, 0 = no defect
    OUT/camera/000000.json    CameraInfo fields, camera pose (T_map_camera), stamp, defects in view
    OUT/defects.json          ground truth of all defects (map frame)
    OUT/scenario.json         scenario name, kind, robot, seed, clean flag
    OUT/contact_sheet.png     RGB / depth / mask of the first frames

Everything is written to a temporary sibling folder and moved into place at the end, so a
failed run leaves nothing half-written.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from ..cli import CliError

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("simulate", help="render synthetic inspection frames with ground truth",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scenario", required=True, help="shipped scenario name or YAML path")
    p.add_argument("--frames", type=int, default=20, help="number of frames along the default trajectory")
    p.add_argument("--out", required=True, help="output folder (must not exist or be empty)")
    p.add_argument("--clean", action="store_true", help="render the clean twin (no defects)")
    p.add_argument("--depth-format", choices=("png", "npy"), default="png",
                   help="depth as 16-bit PNG in mm (default) or float32 .npy in metres")
    p.add_argument("--sheet-frames", type=int, default=4, help="frames on the contact sheet (0: none)")
    p.add_argument("--width", type=int, default=None, help="override the scenario camera width")
    p.add_argument("--height", type=int, default=None, help="override the scenario camera height")
    p.set_defaults(handler=run_simulate)


def depth_to_mm_png(depth: np.ndarray) -> np.ndarray:
    """uint16 millimetres, 0 where there is no return (NaN) or beyond 65.535 m."""
    mm = np.where(np.isfinite(depth), np.round(depth * 1000.0), 0.0)
    return np.where(mm > 65535, 0, mm).astype(np.uint16)


def colorize_depth(depth: np.ndarray, max_m: float | None = None) -> np.ndarray:
    import cv2

    finite = np.isfinite(depth)
    top = max_m or (float(np.nanpercentile(depth, 98)) if finite.any() else 1.0)
    norm = np.where(finite, np.clip(depth / max(top, 1e-6), 0, 1), 0)
    col = cv2.applyColorMap((255 * (1 - norm)).astype(np.uint8), cv2.COLORMAP_TURBO)[:, :, ::-1]
    col[~finite] = 0
    return col


def colorize_mask(ids: np.ndarray) -> np.ndarray:
    palette = np.random.default_rng(3).integers(60, 256, (65536, 3), dtype=np.uint8)
    palette[0] = 0
    return palette[ids]


def contact_sheet(frames: list, tile_width: int = 320) -> np.ndarray:
    """Rows of [RGB | depth | mask overlay] tiles (RGB uint8)."""
    import cv2

    rows = []
    for f in frames:
        h, w = f.rgb.shape[:2]
        th = int(round(h * tile_width / w))
        overlay = f.rgb.copy()
        m = f.defect_ids > 0
        overlay[m] = (0.35 * overlay[m] + 0.65 * colorize_mask(f.defect_ids)[m]).astype(np.uint8)
        tiles = [f.rgb, colorize_depth(f.depth), overlay]
        rows.append(np.hstack([cv2.resize(t, (tile_width, th), interpolation=cv2.INTER_AREA) for t in tiles]))
    return np.vstack(rows)


def _write_png(path: Path, img: np.ndarray) -> None:
    import cv2

    if img.ndim == 3:
        img = img[:, :, ::-1]
    if not cv2.imwrite(str(path), img):
        raise CliError(f"cannot write {path}")


def run_simulate(args: argparse.Namespace) -> int:
    from ..scenario import ScenarioError, load_scenario
    from .world import SimWorld

    if args.frames < 1:
        raise CliError(f"--frames must be >= 1, got {args.frames}")
    out = Path(args.out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise CliError(f"--out {out} exists and is not an empty folder")
    try:
        scenario = load_scenario(args.scenario)
    except ScenarioError as exc:
        raise CliError(str(exc)) from None
    if args.clean:
        scenario = scenario.clean_twin()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        _simulate_into(tmp, scenario, args, SimWorld)
        if out.exists():
            out.rmdir()
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("wrote %d frames to %s", args.frames, out)
    return 0


def _simulate_into(root: Path, scenario, args: argparse.Namespace, world_cls) -> None:
    from tqdm import tqdm

    for sub in ("rgb", "depth", "mask", "camera"):
        (root / sub).mkdir()
    world = world_cls(scenario, args.width, args.height)
    sheet = []
    times = []
    try:
        poses = world.default_trajectory(args.frames)
        dt = 1.0 / scenario.camera.rate_hz
        for i, pose in enumerate(tqdm(poses, desc=f"simulate {scenario.name}", unit="frame")):
            t0 = time.perf_counter()
            frame = world.render(pose, i * dt)
            times.append(time.perf_counter() - t0)
            stem = f"{i:06d}"
            _write_png(root / "rgb" / f"{stem}.png", frame.rgb)
            if args.depth_format == "png":
                _write_png(root / "depth" / f"{stem}.png", depth_to_mm_png(frame.depth))
            else:
                np.save(root / "depth" / f"{stem}.npy", frame.depth.astype(np.float32))
            _write_png(root / "mask" / f"{stem}.png", frame.defect_ids.astype(np.uint16))
            meta = {
                "stamp": frame.stamp,
                "camera_info": frame.camera_info(),
                "pose": frame.pose.as_dict(),
                "pose_frame": "map",
                "defects_in_view": frame.defects_in_view,
                "depth_unit": "mm" if args.depth_format == "png" else "m",
            }
            (root / "camera" / f"{stem}.json").write_text(json.dumps(meta, indent=1))
            if i < args.sheet_frames:
                sheet.append(frame)
    finally:
        world.close()
    (root / "defects.json").write_text(json.dumps([d.as_dict() for d in scenario.defects], indent=1))
    (root / "scenario.json").write_text(json.dumps({
        "name": scenario.name, "kind": scenario.kind, "robot": scenario.robot, "seed": scenario.seed,
        "clean": scenario.is_clean, "source": scenario.source, "frames": len(times),
        "render_ms_mean": 1e3 * float(np.mean(times)),
    }, indent=1))
    if sheet:
        _write_png(root / "contact_sheet.png", contact_sheet(sheet))
    log.info("render time per frame (RGB + depth + mask, %dx%d): mean %.1f ms, median %.1f ms",
             world.width, world.height, 1e3 * np.mean(times), 1e3 * np.median(times))
