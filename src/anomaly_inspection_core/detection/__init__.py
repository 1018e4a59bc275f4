"""Image anomaly detection learned from normal images only (PatchCore-style).

Public API::

    from anomaly_inspection_core.detection import PatchCoreConfig, PatchCoreModel
    model = PatchCoreModel(PatchCoreConfig()).fit(normal_images)
    pred = model.predict(image_rgb)      # AnomalyPrediction, score 0.5 = threshold
    model.save("model_dir"); PatchCoreModel.load("model_dir")

Names are imported lazily so that ``detection.detection_cli`` (imported by the CLI to build
``--help``) does not pull in torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "SUPPORTED_BACKBONES": "backbones",
    "BackboneError": "backbones",
    "build_feature_extractor": "backbones",
    "check_layers": "backbones",
    "parse_layers": "backbones",
    "list_images": "images",
    "read_image_rgb": "images",
    "to_rgb_uint8": "images",
    "AnomalyPrediction": "patchcore",
    "ModelFileError": "patchcore",
    "PatchCoreConfig": "patchcore",
    "PatchCoreModel": "patchcore",
    "Thresholds": "patchcore",
    "calibrate_threshold": "patchcore",
    "Region": "regions",
    "extract_regions": "regions",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module_name = _EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module_name}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
