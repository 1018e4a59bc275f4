"""``anomaly-inspection fit | predict | evaluate``: argument definitions and handlers.

torch and the model code are imported inside the handlers so ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from ..cli import CliError

logger = logging.getLogger(__name__)

BACKBONE_CHOICES = ("efficientnet_lite0", "wide_resnet50_2", "resnet18")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the fit, predict and evaluate sub-commands."""
    fit = subparsers.add_parser("fit", help="learn an anomaly model from normal images")
    source = fit.add_mutually_exclusive_group(required=True)
    source.add_argument("--train", type=Path, help="folder of normal images")
    source.add_argument("--dataset", type=Path, help="MVTec-layout folder; uses DIR/train/good")
    fit.add_argument("--out", type=Path, required=True, help="model directory to write")
    fit.add_argument("--backbone", default="efficientnet_lite0", choices=BACKBONE_CHOICES)
    fit.add_argument("--backbone-weights", type=Path, help="weights file for the backbone")
    fit.add_argument("--layers", help="comma-separated backbone layers (default: the backbone's; Lite0: blocks.2,blocks.4,blocks.10)")
    fit.add_argument(
        "--neighbourhood",
        help="side of the square each layer's features are averaged over: one odd size, or a comma list, one "
             "per layer (default: the backbone's; Lite0: 1, none; ResNets: 3)",
    )
    fit.add_argument("--image-size", type=int, default=256, help="network input width (default 256)")
    fit.add_argument("--image-height", type=int, default=0,
                     help="network input height (default 0 = the width: square); e.g. 480 with --image-size 640 "
                          "for 4:3 camera frames")
    fit.add_argument("--coreset-ratio", type=float, default=0.1)
    fit.add_argument("--max-bank-size", type=int, default=6000, help="0 = no bound")
    fit.add_argument("--holdout-fraction", type=float, default=0.1, help="normal images kept for calibration")
    fit.add_argument("--device", default="cpu")
    fit.set_defaults(handler=run_fit)

    predict = subparsers.add_parser("predict", help="score images with a fitted model")
    predict.add_argument("--model", type=Path, required=True, help="model directory")
    predict.add_argument("inputs", nargs="+", type=Path, metavar="IMAGE_OR_DIR")
    predict.add_argument("--out", type=Path, required=True, help="folder for overlays and JSON")
    predict.add_argument("--device", default="cpu")
    predict.set_defaults(handler=run_predict)

    evaluate = subparsers.add_parser("evaluate", help="metrics on an MVTec-layout test set")
    evaluate.add_argument("--model", type=Path, required=True, help="model directory")
    evaluate.add_argument("--dataset", type=Path, required=True, help="MVTec-layout folder (test/, ground_truth/)")
    evaluate.add_argument("--out", type=Path, required=True, help="folder for metrics.json, scores.csv, plots")
    evaluate.add_argument("--metric-size", type=int, default=256, help="longer side for pixel metrics")
    evaluate.add_argument("--device", default="cpu")
    evaluate.set_defaults(handler=run_evaluate)


def _load_model(path: Path, device: str):
    from .patchcore import ModelFileError, PatchCoreModel

    try:
        return PatchCoreModel.load(path, device=device)
    except ModelFileError as exc:
        raise CliError(str(exc)) from exc


def run_fit(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from .backbones import BackboneError, parse_layers, parse_neighbourhood
    from .datasets import train_images
    from .images import list_images, read_image_rgb
    from .patchcore import PatchCoreConfig, PatchCoreModel

    try:
        paths = train_images(args.dataset) if args.dataset else list_images(args.train)
    except FileNotFoundError as exc:
        raise CliError(str(exc)) from exc
    if len(paths) < 2:
        raise CliError(f"need at least 2 normal images, found {len(paths)} in {args.train or args.dataset}")
    try:
        config = PatchCoreConfig(
            backbone=args.backbone,
            backbone_weights=str(args.backbone_weights) if args.backbone_weights else None,
            layers=parse_layers(args.layers),
            neighbourhood=parse_neighbourhood(args.neighbourhood),
            image_size=args.image_size,
            image_height=args.image_height,
            coreset_ratio=args.coreset_ratio,
            max_bank_size=args.max_bank_size,
            device=args.device,
        )
        images = [read_image_rgb(p) for p in tqdm(paths, desc="read", unit="img")]
        model = PatchCoreModel(config).fit(images, progress=True, holdout_fraction=args.holdout_fraction)
    except (BackboneError, ValueError) as exc:
        raise CliError(str(exc)) from exc
    model.save(args.out)
    train = model.metadata["train"]
    print(
        f"model {model.model_id} -> {args.out}: {train['num_images']} images, bank {train['bank_size']} "
        f"patches, fit {train['fit_seconds']['total']:.1f} s"
    )
    return 0


def _expand_inputs(inputs: list[Path]) -> list[Path]:
    from .images import list_images

    paths: list[Path] = []
    for item in inputs:
        if item.is_dir():
            paths.extend(list_images(item))
        elif item.is_file():
            paths.append(item)
        else:
            raise CliError(f"no such image or folder: {item}")
    if not paths:
        raise CliError("no images found in the given inputs")
    return paths


def run_predict(args: argparse.Namespace) -> int:
    import cv2
    from tqdm import tqdm

    from .images import read_image_rgb
    from .visualize import overlay_heatmap

    model = _load_model(args.model, args.device)
    paths = _expand_inputs(args.inputs)
    args.out.mkdir(parents=True, exist_ok=True)
    summary = []
    used_names: set[str] = set()
    for path in tqdm(paths, desc="predict", unit="img"):
        try:
            image = read_image_rgb(path)
        except ValueError as exc:
            raise CliError(str(exc)) from exc
        pred = model.predict(image)
        name = path.stem
        while name in used_names:  # same stem from two folders
            name = f"{path.parent.name}_{name}"
        used_names.add(name)
        label = f"{'ANOMALY' if pred.is_anomalous else 'ok'} {pred.score:.2f}"
        overlay = overlay_heatmap(image, pred.anomaly_map, pred.regions, label=label)
        cv2.imwrite(str(args.out / f"{name}_overlay.png"), overlay[:, :, ::-1])
        record = {
            "image": str(path),
            "score": pred.score,
            "raw_score": pred.raw_score,
            "is_anomalous": pred.is_anomalous,
            "model_id": model.model_id,
            "regions": [r.to_dict() for r in pred.regions],
            "timings_ms": pred.timings_ms,
        }
        (args.out / f"{name}_regions.json").write_text(json.dumps(record, indent=2) + "\n")
        summary.append(record)
        print(f"{path}\t{pred.score:.4f}\t{'anomalous' if pred.is_anomalous else 'normal'}\t{len(pred.regions)} regions")
    (args.out / "predictions.json").write_text(json.dumps(summary, indent=2) + "\n")
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    from .evaluate import evaluate_model

    model = _load_model(args.model, args.device)
    try:
        result = evaluate_model(model, args.dataset, args.out, metric_size=args.metric_size, progress=True)
    except (FileNotFoundError, ValueError) as exc:
        raise CliError(str(exc)) from exc
    for key, value in result.to_dict().items():
        print(f"{key:>24}: {value:.4f}" if isinstance(value, float) else f"{key:>24}: {value}")
    return 0
