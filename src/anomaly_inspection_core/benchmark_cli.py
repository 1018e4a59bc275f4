"""``anomaly-inspection benchmark TARGET``: measured accuracy and speed of project components.

Targets live in :data:`BENCHMARK_TARGETS` (name -> (help, add_arguments, run)), so other
components can add theirs next to ``detector``.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import resource
import time
from pathlib import Path
from typing import Callable

from .cli import CliError

logger = logging.getLogger(__name__)


def _add_detector_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--backbone", default="efficientnet_lite0")
    parser.add_argument("--image-size", type=int, default=256)
    parser.add_argument("--neighbourhood", help="feature neighbourhood side(s), as for `fit` (default: the backbone's)")
    parser.add_argument("--max-bank-size", type=int, default=6000, help="memory bank bound, as for `fit` (0 = no bound)")
    parser.add_argument("--n-train", type=int, default=200, help="normal images to fit on (default 200)")
    parser.add_argument("--n-test", type=int, default=150, help="test images per class and cell type")
    parser.add_argument("--no-elpv", action="store_true", help="skip the ELPV solar-cell benchmark")
    parser.add_argument(
        "--synthetic", type=Path, action="append", default=[],
        help="MVTec-layout folder to fit on (train/good) and evaluate (repeatable; e.g. a real MVTec AD category)",
    )
    parser.add_argument(
        "--proxy", default="all",
        help="procedural MVTec-like categories to generate and evaluate: comma list, 'all' (default) or 'none'",
    )
    parser.add_argument(
        "--proxy-dir", type=Path, default=None,
        help="where the procedural sets are written (reused when present; default: TMPDIR/anomaly_inspection_proxy)",
    )
    parser.add_argument("--timing-runs", type=int, default=30, help="frames timed per input size")
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    parser.add_argument("--seed", type=int, default=0)


def _elpv_benchmark(args: argparse.Namespace, config_kwargs: dict) -> list[dict]:
    import numpy as np

    from .detection.patchcore import PatchCoreConfig, PatchCoreModel
    from .evaluation import metrics

    try:
        from elpv_dataset.utils import load_dataset
    except ImportError as exc:
        raise CliError("the ELPV benchmark needs the 'elpv-dataset' package (pip install elpv-dataset)") from exc
    images, probs, types = load_dataset()
    rng = np.random.default_rng(args.seed)
    rows = []
    for cell_type in sorted(set(types.tolist())):
        good = np.flatnonzero((types == cell_type) & (probs == 0.0))
        bad = np.flatnonzero((types == cell_type) & (probs >= 0.5))
        good = rng.permutation(good)
        train, test_good = good[: args.n_train], good[args.n_train : args.n_train + args.n_test]
        test_bad = rng.permutation(bad)[: args.n_test]
        model = PatchCoreModel(PatchCoreConfig(**config_kwargs))
        model.fit([images[i] for i in train], progress=True)
        test_idx = np.r_[test_good, test_bad]
        labels = np.r_[np.zeros(len(test_good)), np.ones(len(test_bad))]
        preds = model.predict_batch([images[i] for i in test_idx])
        scores = np.array([p.score for p in preds])
        predicted = np.array([p.is_anomalous for p in preds])
        f1, _ = metrics.f1_max(labels, scores)
        rows.append(
            {
                "dataset": f"elpv/{cell_type}",
                "n_train": int(len(train)),
                "n_test_good": int(len(test_good)),
                "n_test_defective": int(len(test_bad)),
                "image_auroc": metrics.roc_auc(labels, scores),
                "f1_max": f1,
                "accuracy_at_threshold": float(np.mean(predicted == labels)),
                "fit_s": model.metadata["train"]["fit_seconds"]["total"],
            }
        )
        logger.info("ELPV %s: %s", cell_type, rows[-1])
    return rows


def _folder_benchmark(args: argparse.Namespace, config_kwargs: dict, folder: Path, label: str) -> dict:
    from .detection.datasets import train_images
    from .detection.evaluate import evaluate_model
    from .detection.images import read_image_rgb
    from .detection.patchcore import PatchCoreConfig, PatchCoreModel

    try:
        paths = train_images(folder)[: args.n_train]
    except FileNotFoundError as exc:
        raise CliError(str(exc)) from exc
    model = PatchCoreModel(PatchCoreConfig(**config_kwargs))
    model.fit([read_image_rgb(p) for p in paths], progress=True)
    result = evaluate_model(model, folder, progress=True)
    row = {
        "dataset": label,
        "n_train": len(paths),
        "n_test_good": result.num_good,
        "n_test_defective": result.num_defective,
        "image_auroc": result.image_auroc,
        "pixel_auroc": result.pixel_auroc,
        "aupro": result.aupro,
        "f1_max": result.f1_max,
        "accuracy_at_threshold": result.accuracy_at_threshold,
        "fit_s": model.metadata["train"]["fit_seconds"]["total"],
    }
    logger.info("%s: %s", label, row)
    return row


def _proxy_benchmark(args: argparse.Namespace, config_kwargs: dict) -> list[dict]:
    import tempfile

    from .detection.proxy_dataset import PROXY_CATEGORIES, write_proxy_dataset

    if args.proxy.strip().lower() == "none":
        return []
    names = list(PROXY_CATEGORIES) if args.proxy.strip().lower() == "all" else [n.strip() for n in args.proxy.split(",") if n.strip()]
    unknown = [n for n in names if n not in PROXY_CATEGORIES]
    if unknown:
        raise CliError(f"unknown proxy categories {unknown}; known: {', '.join(PROXY_CATEGORIES)}")
    root = args.proxy_dir or Path(tempfile.gettempdir()) / "anomaly_inspection_proxy"
    rows = []
    for name in names:
        folder = write_proxy_dataset(root, name, n_train=args.n_train, seed=args.seed)
        rows.append(_folder_benchmark(args, config_kwargs, folder, f"proxy/{name}"))
    return rows


def _timing_benchmark(args: argparse.Namespace, config_kwargs: dict) -> dict:
    """Per-frame latency of the full model vs. one forward pass of the whole backbone."""
    import numpy as np
    import torch

    from .detection.patchcore import PatchCoreConfig, PatchCoreModel

    rng = np.random.default_rng(args.seed)
    base = rng.integers(90, 160, size=(args.image_size, args.image_size, 3), dtype=np.uint8)
    train = [np.roll(base, int(s), axis=1) for s in rng.integers(0, args.image_size, 200)]
    model = PatchCoreModel(PatchCoreConfig(**config_kwargs))
    t0 = time.perf_counter()
    model.fit(train, progress=True)
    fit_s = time.perf_counter() - t0

    def percentile_ms(fn, runs: int) -> tuple[float, float]:
        for _ in range(3):
            fn()
        samples = []
        for _ in range(runs):
            t = time.perf_counter()
            fn()
            samples.append((time.perf_counter() - t) * 1e3)
        return float(np.percentile(samples, 50)), float(np.percentile(samples, 95))

    out: dict = {
        "fit_200_images_s": round(fit_s, 2),
        "fit_seconds": model.metadata["train"]["fit_seconds"],
        "bank_size": model.metadata["train"]["bank_size"],
        "bank_mb": round(model.memory_bank.numel() * 4 / 2**20, 1),
    }
    full = _full_backbone(args.backbone)
    x = torch.zeros(1, 3, args.image_size, args.image_size)
    frames = {
        "256x256": rng.integers(0, 255, size=(256, 256, 3), dtype=np.uint8),
        "640x480": rng.integers(0, 255, size=(480, 640, 3), dtype=np.uint8),
    }
    samples: dict[str, list[float]] = {"backbone": [], **{name: [] for name in frames}}

    def timed(fn) -> float:
        t = time.perf_counter()
        fn()
        return (time.perf_counter() - t) * 1e3

    with torch.inference_mode():
        for i in range(args.timing_runs + 3):
            # interleaved, so that load from other processes hits both sides of the ratio alike
            b = timed(lambda: full(x))
            p = {name: timed(lambda f=frame: model.predict(f)) for name, frame in frames.items()}
            if i >= 3:
                samples["backbone"].append(b)
                for name in frames:
                    samples[name].append(p[name])
    out["backbone_forward_ms_p50"] = float(np.percentile(samples["backbone"], 50))
    for name in frames:
        out[f"predict_ms_p50_{name}"] = float(np.percentile(samples[name], 50))
        out[f"predict_ms_p95_{name}"] = float(np.percentile(samples[name], 95))
    out["ratio_predict_to_backbone_256"] = out["predict_ms_p50_256x256"] / out["backbone_forward_ms_p50"]
    return out


def _full_backbone(name: str):
    """The complete classification network, for the 'one forward pass' reference time."""
    import torch

    from .detection import backbones

    if name.startswith("efficientnet_lite"):
        return backbones.build_lite_network(name)
    import torchvision

    net = getattr(torchvision.models, name)(weights=None)
    path = backbones._torchvision_weights_path(name)
    if path.is_file():
        net.load_state_dict(torch.load(str(path), map_location="cpu", weights_only=True))
    return net.eval()


def run_detector(args: argparse.Namespace) -> int:
    """Accuracy (ELPV, synthetic) and speed of the anomaly detector; prints a table."""
    import torch

    from .detection.backbones import parse_neighbourhood
    from .detection.patchcore import PatchCoreConfig

    try:
        config_kwargs = {"backbone": args.backbone, "image_size": args.image_size, "seed": args.seed,
                         "neighbourhood": parse_neighbourhood(args.neighbourhood), "max_bank_size": args.max_bank_size}
        PatchCoreConfig(**config_kwargs)  # a bad value fails here, not after the first data set
    except ValueError as exc:
        raise CliError(str(exc)) from exc
    results: dict = {
        "machine": {"cpu_threads": torch.get_num_threads(), "platform": platform.platform()},
        "config": config_kwargs,
        "accuracy": [],
    }
    if not args.no_elpv:
        results["accuracy"] += _elpv_benchmark(args, config_kwargs)
    results["accuracy"] += _proxy_benchmark(args, config_kwargs)
    for folder in args.synthetic:
        results["accuracy"].append(_folder_benchmark(args, config_kwargs, folder, f"folder:{folder}"))
    results["summary"] = _summary(results["accuracy"])
    results["speed"] = _timing_benchmark(args, config_kwargs)
    results["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    _print_table(results)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2) + "\n")
    return 0


def _summary(rows: list[dict]) -> dict:
    """Means over the evaluated sets (``None`` for a metric no set has)."""
    out: dict = {}
    for key in ("image_auroc", "pixel_auroc", "aupro", "f1_max", "accuracy_at_threshold"):
        values = [row[key] for row in rows if row.get(key) is not None]
        out[f"mean_{key}"] = sum(values) / len(values) if values else None
    return out


def _print_table(results: dict) -> None:
    cols = (
        "dataset", "n_train", "n_test_good", "n_test_defective", "image_auroc", "pixel_auroc", "aupro",
        "f1_max", "accuracy_at_threshold", "fit_s",
    )
    print(" | ".join(f"{c:>16}" for c in cols))
    for row in results["accuracy"]:
        cells = []
        for c in cols:
            v = row.get(c)
            cells.append(f"{v:>16.4f}" if isinstance(v, float) else f"{'-' if v is None else str(v):>16}")
        print(" | ".join(cells))
    for key, value in results["summary"].items():
        print(f"{key:>32}: {'-' if value is None else f'{value:.4f}'}")
    print()
    for key, value in results["speed"].items():
        print(f"{key:>32}: {value:.2f}" if isinstance(value, float) else f"{key:>32}: {value}")
    print(f"{'peak_rss_mb':>32}: {results['peak_rss_mb']:.0f}")


def _add_tracker_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--scenario", action="append", default=None, metavar="NAME_OR_FILE",
                        help="pipeline scenario to fly (repeatable; default: the shipped pipelines)")
    parser.add_argument("--seeds", type=int, nargs="*", default=[], metavar="SEED",
                        help="also fly generated pipelines (`scenario generate --kind pipeline --seed SEED`)")
    parser.add_argument("--params-file", type=Path, default=None,
                        help="tracker parameters (ROS 2 parameter file, /**/pipeline_tracker; default: the UAV mission's)")
    parser.add_argument("--clean", action="store_true", help="fly the clean twins (as the teach pass does)")
    parser.add_argument("--max-time", type=float, default=600.0, help="simulated seconds per flight")
    parser.add_argument("--speed-limit", type=float, default=None, metavar="M_PER_S",
                        help="cap the progress along the pipe as the mission's detector pacing does "
                             "(capture_spacing_m x scoring rate; about 0.17 m/s in the UAV mission); default: none")
    parser.add_argument("--delay-steps", type=int, default=0, metavar="N",
                        help="apply each command N frames (0.1 s each) late, as the ROS graph's transport "
                             "and processing latency does (the mission: 1-2); default: 0, the best case")
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--out", type=Path, default=None, help="also write the results as JSON")


SHIPPED_PIPELINES = ("pipeline_straight", "pipeline_l_riser", "pipeline_elbows")


def run_tracker(args: argparse.Namespace) -> int:
    """Closed-loop flights of the pipe tracker (no ROS, no latency); prints one row per pipeline."""
    from .paths import config_dir
    from .scenario import ScenarioError, load_scenario, parse_scenario
    from .scenario.generate import random_pipeline_scenario
    from .control.pipe_tracker import PipeTrackerConfig
    from .sim.flight import fly_pipe_tracker, tracker_params_from_file

    params_file = args.params_file or config_dir() / "uav_pipeline_inspection.yaml"
    if not Path(params_file).is_file():
        raise CliError(f"parameter file not found: {params_file}")
    if args.speed_limit is not None and not args.speed_limit >= 0.0:
        raise CliError(f"--speed-limit must be >= 0 m/s, got {args.speed_limit}")
    if args.delay_steps < 0:
        raise CliError(f"--delay-steps must be >= 0, got {args.delay_steps}")
    params = tracker_params_from_file(params_file)
    scenarios = []
    try:
        for name in args.scenario or (SHIPPED_PIPELINES if not args.seeds else ()):
            scenarios.append(load_scenario(name))
        for seed in args.seeds:
            scenarios.append(parse_scenario(random_pipeline_scenario(seed), f"<seed {seed}>"))
    except ScenarioError as exc:
        raise CliError(str(exc)) from None
    rows, done = [], 0
    for scn in scenarios:
        if scn.pipeline is None:
            raise CliError(f"scenario '{scn.name}' is not a pipeline")
        if args.clean:
            scn = scn.clean_twin()
        try:
            config = PipeTrackerConfig.from_dict({**params, "inspection_side": scn.pipeline.inspection_side},
                                                 ignore_unknown=True)
        except (TypeError, ValueError) as exc:
            raise CliError(f"{params_file}: {exc}") from None
        _, result = fly_pipe_tracker(scn, config, max_time_s=args.max_time, width=args.width, height=args.height,
                                     speed_limit=args.speed_limit, delay_steps=args.delay_steps)
        rows.append(result.summary())
        done += result.completed
        logger.info("%s: %s after %.0f s simulated (%.0f s wall)", scn.name, result.state, result.sim_time_s,
                    result.wall_s)
    cols = ("scenario", "state", "sim_time_s", "distance_m", "standoff_abs_err_p50_m", "standoff_abs_err_p95_m",
            "min_clearance_m", "pipe_in_view", "end_gap_m", "update_ms_p50", "update_ms_p95")
    print(" | ".join(f"{c:>22}" for c in cols))
    for row in rows:
        print(" | ".join(f"{'-' if row[c] is None else row[c]!s:>22}" for c in cols))
    print(f"completed {done}/{len(rows)}; peak_rss_mb {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0:.0f}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"machine": {"platform": platform.platform()}, "params_file": str(params_file),
                                        "speed_limit_mps": args.speed_limit, "delay_steps": args.delay_steps,
                                        "flights": rows}, indent=2) + "\n")
    return 0 if done == len(rows) else 1


BENCHMARK_TARGETS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]] = {
    "detector": ("anomaly detector accuracy (ELPV, procedural proxy sets, folders) and speed", _add_detector_arguments, run_detector),
    "tracker": ("pipe tracker closed-loop flights in the simulated world (completion, stand-off, clearance, speed)",
                _add_tracker_arguments, run_tracker),
}


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``benchmark`` with one sub-command per entry of :data:`BENCHMARK_TARGETS`."""
    bench = subparsers.add_parser("benchmark", help="measure accuracy and speed of a component")
    targets = bench.add_subparsers(dest="target", metavar="TARGET", required=True)
    for name, (help_text, add_arguments, handler) in BENCHMARK_TARGETS.items():
        sub = targets.add_parser(name, help=help_text)
        add_arguments(sub)
        sub.set_defaults(handler=handler)
