"""Back-project anomalous image regions into ``map``-frame 3D detections.

One call handles one frame: the anomalous regions found by a detector, the registered depth
image, the colour camera's intrinsics and its pose ``T_map_camera``. For every region we
collect the depth inside its mask, reject invalid and out-of-range values and values far from
the region's median depth (background leaking through the mask edge, a second surface), and
back-project the rest. From those points we estimate

* a position (where the ray through the region's anomaly-weighted image centre meets the plane
  of its points, lifted onto a curved surface),
* a surface normal (PCA of the points in a slightly dilated mask, oriented towards the camera),
* an extent along the principal axes of the region in the surface plane plus a thickness,
* the defect's estimated size along the same axes: the extent of the part above the region's
  half maximum, less the anomaly map's own blur,
* view-quality terms (distance, incidence angle, truncation by the image border) combined into
  a single weight used by :mod:`anomaly_inspection_core.geometry.fusion`.

Resolution handling: regions, anomaly map and RGB image are expressed at the colour camera's
resolution (``intrinsics``). Depth (and full-frame masks / maps) of a different size is
resampled only when it is the same camera at another resolution (same aspect ratio, or the
given ``depth_intrinsics`` equal ``intrinsics.scaled(...)``); otherwise the frame is refused with
a warning naming both sizes, never silently mixed.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from anomaly_inspection_core.detection.blur import deblurred_width, half_maximum_level, map_logit
from anomaly_inspection_core.geometry.camera import CameraIntrinsics, Pose, matrix_to_quaternion

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RegionObservation:
    """One anomalous region of one image, independent of the detector's own classes.

    ``mask`` is boolean, either full-frame (H x W of the colour image) or cropped to ``bbox``
    (h x w). When ``mask`` is None the whole ``bbox`` is the region.
    """

    bbox: tuple[int, int, int, int] | None = None  # x, y, w, h in pixels
    mask: np.ndarray | None = None
    peak_score: float = 1.0
    mean_score: float = 1.0
    label: str = ""
    peak_xy: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        if self.bbox is None and self.mask is None:
            raise ValueError("RegionObservation needs a bbox, a mask or both")
        if self.bbox is not None:
            x, y, w, h = (int(v) for v in self.bbox)
            if w <= 0 or h <= 0:
                raise ValueError(f"RegionObservation bbox has non-positive size: {self.bbox}")
            object.__setattr__(self, "bbox", (x, y, w, h))
        if self.mask is not None:
            m = np.asarray(self.mask)
            if m.ndim != 2:
                raise ValueError(f"RegionObservation mask must be 2-D, got shape {m.shape}")
            object.__setattr__(self, "mask", m.astype(bool, copy=False))
        for name in ("peak_score", "mean_score"):
            if not math.isfinite(float(getattr(self, name))):
                raise ValueError(f"RegionObservation {name} is not finite")

    def full_mask(self, height: int, width: int) -> np.ndarray:
        """Boolean H x W mask of the region at the given (colour image) resolution."""
        out = np.zeros((height, width), dtype=bool)
        m = self.mask
        crop_shape = None if self.bbox is None else (self.bbox[3], self.bbox[2])
        if m is not None and m.shape == (height, width) and m.shape != crop_shape:
            return m.copy()
        if m is not None and m.shape != crop_shape:
            if _same_aspect(m.shape[1], m.shape[0], width, height):
                return cv2.resize(m.astype(np.uint8), (width, height),
                                  interpolation=cv2.INTER_NEAREST).astype(bool)
            raise ValueError(
                f"region mask of shape {m.shape} matches neither the image ({height}x{width}) "
                f"nor its bbox {self.bbox}"
            )
        x, y, w, h = self.bbox  # type: ignore[misc]
        x0, y0 = max(x, 0), max(y, 0)
        x1, y1 = min(x + w, width), min(y + h, height)
        if x1 <= x0 or y1 <= y0:
            return out
        out[y0:y1, x0:x1] = True if m is None else m[y0 - y:y1 - y, x0 - x:x1 - x]
        return out


@dataclass(frozen=True)
class Evidence:
    """Small uint8 RGB images of one view of a defect."""

    crop: np.ndarray  # (h, w, 3) uint8 RGB crop around the region
    overlay: np.ndarray  # same size: crop with the anomaly heatmap blended in and the mask outlined
    stamp: float = 0.0


@dataclass
class LocalizationConfig:
    """Parameters of :func:`localize_regions` (all lengths in metres)."""

    min_depth_m: float = 0.05
    max_depth_m: float = 10.0
    min_points: int = 6
    # Inlier gate around the region's median depth: max(abs, rel * median, k * robust sigma).
    depth_gate_abs_m: float = 0.03
    depth_gate_rel: float = 0.03
    depth_gate_sigma: float = 3.0
    normal_dilate_px: int = 4
    max_points: int = 20000
    # Quality weight: w = score_term * distance_term * incidence_term * truncation_term.
    reference_distance_m: float = 1.0
    max_incidence_deg: float = 80.0
    truncated_weight: float = 0.3
    border_px: int = 2
    # Band along each edge (fraction of that side) where the detector extracts no regions (its
    # border_margin): a region reaching the band is cut by it just as by the image edge.
    border_margin: float = 0.0
    # Silhouettes: pixels within this many of a depth edge (no return, out of range, or a jump of
    # more than ``silhouette_jump_rel`` x depth to a neighbour) are in the silhouette band. A
    # region with more than ``max_silhouette_fraction`` of its depth pixels in it is not localised:
    # the detector's patch features there mix in the background behind the edge, which changes
    # with the view (strips along a riser's edge against the sky), and a surface seen that
    # obliquely is seen better in another view. 0 = off.
    silhouette_band_px: int = 0
    silhouette_jump_rel: float = 0.05
    max_silhouette_fraction: float = 0.5
    # Split one region into several when its anomaly map has separate peaks: a peak that rises
    # ``split_min_prominence`` (in logits of the normalised map) above the saddle joining it to a
    # higher peak is a defect of its own. Offline along six AGV patrols (2026-12-02), peaks of two
    # different defects in one region rose 0.4-5.8 (23 of 28 >= 1.0), bumps on the background
    # under 0.75 (85), a defect's against background patches 180-260 px away 3 of 39 >= 1.0, and
    # no defect had two peaks.
    split_regions: bool = True
    split_min_prominence: float = 1.0
    split_min_area_px: int = 12
    split_min_separation_m: float = 0.04
    # Evidence images.
    evidence: bool = True
    evidence_max_px: int = 160
    evidence_margin_rel: float = 0.5
    evidence_min_margin_px: int = 12

    def __post_init__(self) -> None:
        if not 0.0 <= self.min_depth_m < self.max_depth_m:
            raise ValueError(
                f"LocalizationConfig needs 0 <= min_depth_m < max_depth_m, "
                f"got {self.min_depth_m}, {self.max_depth_m}"
            )
        if self.min_points < 3:
            raise ValueError(f"LocalizationConfig.min_points must be >= 3, got {self.min_points}")
        if self.reference_distance_m <= 0:
            raise ValueError("LocalizationConfig.reference_distance_m must be positive")
        if not 0.0 <= self.border_margin < 0.25:
            raise ValueError(f"LocalizationConfig.border_margin must be in [0, 0.25), got {self.border_margin}")
        if not self.split_min_prominence > 0.0:
            raise ValueError("LocalizationConfig.split_min_prominence must be positive")
        if self.silhouette_band_px < 0 or self.silhouette_jump_rel <= 0:
            raise ValueError(f"LocalizationConfig needs silhouette_band_px >= 0 and silhouette_jump_rel > 0, got "
                             f"{self.silhouette_band_px} and {self.silhouette_jump_rel}")
        if not 0.0 < self.max_silhouette_fraction <= 1.0:
            raise ValueError(f"LocalizationConfig.max_silhouette_fraction must be in (0, 1], "
                             f"got {self.max_silhouette_fraction}")


@dataclass
class Detection3D:
    """One anomalous region of one frame located in the ``map`` frame."""

    position: np.ndarray  # (3,) centroid on the surface
    extent: np.ndarray  # (3,) full size of the region along ``axes`` columns: major, minor (in surface), thickness
    axes: np.ndarray  # (3, 3) columns: major tangent, minor tangent, normal (right-handed)
    normal: np.ndarray  # (3,) unit, pointing towards the camera (out of the surface)
    score: float  # peak normalised anomaly score of the region
    mean_score: float
    label: str
    stamp: float
    view_distance: float  # camera centre to centroid, metres
    incidence_deg: float  # angle between the normal and the direction to the camera
    n_points: int
    quality: float  # view-quality weight in [0, 1]
    truncated: bool  # region touches the image border or the detector's border band (partially seen)
    camera_position: np.ndarray
    pixel_bbox: tuple[int, int, int, int]
    evidence: Evidence | None = field(default=None, repr=False)
    # (3,) estimated size of the defect along ``axes`` (the region's extent less the anomaly
    # map's blur, see _defect_size); the extent when not estimated
    size: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.size is None:
            self.size = np.asarray(self.extent, dtype=np.float64).copy()

    @property
    def orientation(self) -> np.ndarray:
        """Quaternion (x, y, z, w) of ``axes``: box z axis = surface normal."""
        return matrix_to_quaternion(self.axes)


def _same_aspect(w_a: int, h_a: int, w_b: int, h_b: int, tol: float = 0.01) -> bool:
    return abs(w_a / w_b - h_a / h_b) <= tol * max(w_a / w_b, h_a / h_b)


def _intrinsics_match(a: CameraIntrinsics, b: CameraIntrinsics) -> bool:
    return (
        a.width == b.width and a.height == b.height
        and abs(a.fx - b.fx) <= 5e-3 * b.fx and abs(a.fy - b.fy) <= 5e-3 * b.fy
        and abs(a.cx - b.cx) <= 1.0 and abs(a.cy - b.cy) <= 1.0
    )


def align_depth(
    depth: np.ndarray,
    intrinsics: CameraIntrinsics,
    depth_intrinsics: CameraIntrinsics | None = None,
) -> np.ndarray | None:
    """Depth resampled to the colour resolution, or None (with a warning) when that is unsafe.

    Depth must be registered to the colour camera (same optical frame). A different size is
    accepted when it is the same pinhole camera at another resolution: ``depth_intrinsics`` (if
    given) must equal ``intrinsics.scaled(w, h)``, else the aspect ratios must agree.
    Nearest-neighbour resampling keeps depth values unmixed across edges and NaNs intact.
    """
    depth = np.asarray(depth)
    if depth.ndim != 2:
        raise ValueError(f"depth must be a 2-D array (H x W metres), got shape {depth.shape}")
    dh, dw = depth.shape
    if depth_intrinsics is not None and (depth_intrinsics.width, depth_intrinsics.height) != (dw, dh):
        logger.warning(
            "depth image is %dx%d but its intrinsics say %dx%d: frame refused",
            dw, dh, depth_intrinsics.width, depth_intrinsics.height,
        )
        return None
    if (dw, dh) == (intrinsics.width, intrinsics.height):
        if depth_intrinsics is not None and not _intrinsics_match(depth_intrinsics, intrinsics):
            logger.warning(
                "depth and colour have the same size %dx%d but different intrinsics "
                "(depth K %s vs colour K %s): depth is not registered, frame refused",
                dw, dh, np.round(depth_intrinsics.K, 2).tolist(), np.round(intrinsics.K, 2).tolist(),
            )
            return None
        return depth.astype(np.float32, copy=False)
    if depth_intrinsics is not None:
        ok = _intrinsics_match(depth_intrinsics, intrinsics.scaled(dw, dh))
    else:
        ok = _same_aspect(dw, dh, intrinsics.width, intrinsics.height)
    if not ok:
        logger.warning(
            "depth %dx%d and colour %dx%d are not the same camera at another resolution "
            "(intrinsics do not scale): frame refused rather than mixing them",
            dw, dh, intrinsics.width, intrinsics.height,
        )
        return None
    logger.debug("resampling depth %dx%d -> %dx%d", dw, dh, intrinsics.width, intrinsics.height)
    return cv2.resize(
        depth.astype(np.float32, copy=False), (intrinsics.width, intrinsics.height),
        interpolation=cv2.INTER_NEAREST,
    )


def _align_image(image: np.ndarray, intrinsics: CameraIntrinsics, what: str,
                 interpolation: int) -> np.ndarray | None:
    h, w = image.shape[:2]
    if (w, h) == (intrinsics.width, intrinsics.height):
        return image
    if not _same_aspect(w, h, intrinsics.width, intrinsics.height):
        logger.warning("%s is %dx%d, colour camera is %dx%d with another aspect ratio: ignored",
                       what, w, h, intrinsics.width, intrinsics.height)
        return None
    return cv2.resize(image, (intrinsics.width, intrinsics.height), interpolation=interpolation)


def regions_from_anomaly_map(
    anomaly_map: np.ndarray, threshold: float = 0.5, min_area_px: int = 10, label: str = "",
) -> list[RegionObservation]:
    """Connected regions of ``anomaly_map >= threshold`` (8-connectivity), largest score first."""
    amap = np.asarray(anomaly_map, dtype=np.float32)
    if amap.ndim != 2:
        raise ValueError(f"anomaly_map must be 2-D, got shape {amap.shape}")
    binary = (np.nan_to_num(amap, nan=-np.inf) >= threshold).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
    regions = []
    for i in range(1, n):
        x, y, w, h, area = (int(v) for v in stats[i])
        if area < min_area_px:
            continue
        crop = labels[y:y + h, x:x + w] == i
        values = amap[y:y + h, x:x + w][crop]
        k = int(np.argmax(np.where(crop, amap[y:y + h, x:x + w], -np.inf)))
        regions.append(RegionObservation(
            bbox=(x, y, w, h), mask=crop, peak_score=float(values.max()),
            mean_score=float(values.mean()), label=label, peak_xy=(x + k % w, y + k // w),
        ))
    regions.sort(key=lambda r: -r.peak_score)
    return regions


def split_region_mask(
    mask: np.ndarray, anomaly_map: np.ndarray, min_prominence: float = 1.0, min_area_px: int = 12,
    max_levels: int = 96,
) -> list[np.ndarray]:
    """Split a region whose anomaly map has several separate peaks (two defects in one blob).

    Peaks are told apart by their *prominence*: how far a local maximum rises above the highest
    saddle joining it to a higher peak inside the region, in logits of the normalised map (a
    logistic of the detector's raw distance, so logits are raw-distance units, and peaks that
    saturate near 1.0 still differ from their saddle). The level relative to the highest peak
    used before (seeds above 0.6 x it) missed a weaker defect whose saddle with the stronger one
    lay just above that level (generated factory 8: peaks 0.976 and 0.815, saddle 0.594).

    The map is swept down from the region's peak in at most ``max_levels`` steps; at each level
    the local maxima in one connected part merge into the highest of them, and the others die at
    that level. Each peak of ``min_prominence`` or more seeds a part (its connected area just
    above its saddle, at least ``min_area_px`` pixels); every region pixel goes to the nearest
    seed. One mask (the input) is returned when fewer than two peaks qualify.
    """
    full = np.asarray(mask, dtype=bool)
    if not full.any():
        return [full]
    rows, cols = np.flatnonzero(full.any(axis=1)), np.flatnonzero(full.any(axis=0))
    y0, y1, x0, x1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    parts = _split_crop(full[y0:y1, x0:x1], np.asarray(anomaly_map)[y0:y1, x0:x1], min_prominence,
                        min_area_px, max_levels)
    if len(parts) < 2:
        return [full]
    out = []
    for part in parts:
        m = np.zeros_like(full)
        m[y0:y1, x0:x1] = part
        out.append(m)
    return out


def _split_crop(mask: np.ndarray, anomaly_map: np.ndarray, min_prominence: float, min_area_px: int,
                max_levels: int) -> list[np.ndarray]:
    """:func:`split_region_mask` on the region's bounding box."""
    values = np.where(mask, map_logit(anomaly_map), -np.inf)
    vmax, vmin = float(values[mask].max()), float(values[mask].min())
    if vmax - vmin < min_prominence:
        return [mask]
    # candidate peaks: local maxima (3x3) inside the region, highest first
    dilated = cv2.dilate(np.where(mask, values, vmin - 1.0).astype(np.float32), np.ones((3, 3), np.uint8))
    # (one under vmin + min_prominence cannot qualify, and a lower peak never changes when a
    # higher one merges, so it is left out)
    cy, cx = np.nonzero(mask & (values.astype(np.float32) >= dilated) & (values >= vmin + min_prominence))
    order = np.argsort(-values[cy, cx], kind="stable")
    cy, cx = cy[order], cx[order]
    if cy.size < 2:
        return [mask]
    cv_ = values[cy, cx]
    death = np.full(cy.size, -np.inf)  # the level at which a peak merged into a higher one
    alive = np.ones(cy.size, dtype=bool)
    step = max((vmax - vmin) / max_levels, 1e-3)

    def components(level: float) -> np.ndarray:
        return cv2.connectedComponents(((values >= level) & mask).astype(np.uint8), connectivity=8)[1]

    level = vmax
    while level > vmin and alive.sum() > 1:
        level = max(level - step, vmin)
        idx = np.nonzero(alive & (cv_ >= level))[0]
        if idx.size < 2:
            continue
        labels = components(level)[cy[idx], cx[idx]]
        # idx is sorted highest first: the first candidate of each label survives
        _, first = np.unique(labels, return_index=True)
        dying = np.setdiff1d(np.arange(idx.size), first)
        death[idx[dying]] = level
        alive[idx[dying]] = False
    prominence = np.where(alive, np.inf, cv_ - death)
    kept = np.nonzero(prominence >= min_prominence)[0]
    if kept.size < 2:
        return [mask]
    # seeds: each kept peak's part just above the level where it would merge into a higher kept
    # one (the highest peak's: above every other kept peak's merge), painted lowest level first
    merged = [float(death[k]) for k in kept if not alive[k]]
    top_death = max(merged) if merged else vmin - step  # (a mask in separate pieces: each its own)
    seed_level = {int(k): (top_death if alive[k] else float(death[k])) + step for k in kept}
    seed_labels = np.zeros(mask.shape, dtype=np.int32)
    for j, k in enumerate(sorted(seed_level, key=lambda k: seed_level[k]), start=1):
        part = components(seed_level[k])
        seed_labels[part == part[cy[k], cx[k]]] = j
    sizes = np.bincount(seed_labels.ravel(), minlength=kept.size + 1)
    good = [j for j in range(1, kept.size + 1) if sizes[j] >= min_area_px]
    if len(good) < 2:
        return [mask]
    seed_labels = np.where(np.isin(seed_labels, good), seed_labels, 0)
    # every region pixel goes to the nearest seed pixel's seed
    background = (seed_labels == 0).astype(np.uint8)
    _, nearest = cv2.distanceTransformWithLabels(
        background, cv2.DIST_L2, 5, labelType=cv2.DIST_LABEL_PIXEL)
    # map "pixel label" ids back to seed labels through the seed pixels themselves
    lut = np.zeros(int(nearest.max()) + 1, dtype=np.int32)
    seed_pixels = seed_labels > 0
    lut[nearest[seed_pixels]] = seed_labels[seed_pixels]
    assigned = lut[nearest]
    return [mask & (assigned == j) for j in good]


def silhouette_band(depth: np.ndarray, valid: np.ndarray, band_px: int, jump_rel: float) -> np.ndarray:
    """Pixels within ``band_px`` of a depth edge: an invalid pixel (no return, out of range) or a
    jump to a 4-neighbour of more than ``jump_rel`` x the nearer depth."""
    d = np.where(valid, depth, np.nan).astype(np.float32)
    edge = ~valid
    for axis in (0, 1):
        a, b = (d[1:], d[:-1]) if axis == 0 else (d[:, 1:], d[:, :-1])
        with np.errstate(invalid="ignore"):
            jump = np.abs(a - b) > jump_rel * np.fmin(a, b)
        if axis == 0:
            edge[1:] |= jump
            edge[:-1] |= jump
        else:
            edge[:, 1:] |= jump
            edge[:, :-1] |= jump
    k = 2 * int(band_px) + 1
    return cv2.dilate(edge.astype(np.uint8), np.ones((k, k), np.uint8)).astype(bool)


def _pca(points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    mean = points.mean(axis=0)
    cov = np.cov((points - mean).T) if len(points) > 1 else np.zeros((3, 3))
    evals, evecs = np.linalg.eigh(cov)  # ascending
    return mean, evals, evecs


def _evidence(rgb: np.ndarray | None, amap: np.ndarray | None, mask: np.ndarray,
              bbox: tuple[int, int, int, int], stamp: float, cfg: LocalizationConfig) -> Evidence | None:
    if rgb is None:
        return None
    h_img, w_img = mask.shape
    x, y, w, h = bbox
    margin = max(cfg.evidence_min_margin_px, int(cfg.evidence_margin_rel * max(w, h)))
    x0, y0 = max(0, x - margin), max(0, y - margin)
    x1, y1 = min(w_img, x + w + margin), min(h_img, y + h + margin)
    crop = np.ascontiguousarray(rgb[y0:y1, x0:x1, :3]).astype(np.uint8)
    if crop.size == 0:
        return None
    if amap is not None:
        heat = np.clip(np.nan_to_num(amap[y0:y1, x0:x1], nan=0.0), 0.0, 1.0)
        colour = cv2.applyColorMap((heat * 255).astype(np.uint8), cv2.COLORMAP_JET)[..., ::-1]
        alpha = (0.15 + 0.45 * heat)[..., None]
        overlay = (crop * (1 - alpha) + colour * alpha).astype(np.uint8)
    else:
        overlay = crop.copy()
    contours, _ = cv2.findContours(mask[y0:y1, x0:x1].astype(np.uint8), cv2.RETR_EXTERNAL,
                                   cv2.CHAIN_APPROX_SIMPLE)
    overlay = np.ascontiguousarray(overlay)
    cv2.drawContours(overlay, contours, -1, (255, 255, 255), 1)
    scale = cfg.evidence_max_px / max(crop.shape[:2])
    if scale < 1.0:
        size = (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale)))
        crop = cv2.resize(crop, size, interpolation=cv2.INTER_AREA)
        overlay = cv2.resize(overlay, size, interpolation=cv2.INTER_AREA)
    return Evidence(crop=crop, overlay=overlay, stamp=stamp)


def _localize_mask(
    mask: np.ndarray, region: RegionObservation, depth: np.ndarray, valid: np.ndarray,
    intrinsics: CameraIntrinsics, pose: Pose, stamp: float, rgb: np.ndarray | None,
    amap: np.ndarray | None, cfg: LocalizationConfig, peak_score: float, mean_score: float,
    band: np.ndarray | None = None, normal_level: float | None = None,
    point_spread_px: tuple[float, float] | None = None,
) -> Detection3D | None:
    h_img, w_img = mask.shape
    vs, us = np.nonzero(mask & valid)
    if len(vs) < cfg.min_points:
        logger.debug("region at %s: %d valid depth pixels < %d, skipped",
                     region.bbox, len(vs), cfg.min_points)
        return None
    if band is not None:
        frac = float(band[vs, us].mean())
        if frac > cfg.max_silhouette_fraction:
            logger.debug("region at %s: %.0f %% of it along a silhouette, skipped", region.bbox, 100 * frac)
            return None
    z = depth[vs, us].astype(np.float64)
    med = float(np.median(z))
    sigma = 1.4826 * float(np.median(np.abs(z - med)))
    gate = max(cfg.depth_gate_abs_m, cfg.depth_gate_rel * med, cfg.depth_gate_sigma * sigma)
    inlier = np.abs(z - med) <= gate
    if inlier.sum() < cfg.min_points:
        return None
    us_in, vs_in, z_in = us[inlier], vs[inlier], z[inlier]
    if len(z_in) > cfg.max_points:
        pick = np.random.default_rng(0).choice(len(z_in), cfg.max_points, replace=False)
        us_in, vs_in, z_in = us_in[pick], vs_in[pick], z_in[pick]
    pts_cam = intrinsics.backproject(us_in, vs_in, z_in)
    pts = pose.transform_points(pts_cam)
    centroid = pts.mean(axis=0)
    cam_pos = pose.position

    # Normal from a dilated neighbourhood: more surface points, more stable on small regions.
    if cfg.normal_dilate_px > 0:
        k = 2 * cfg.normal_dilate_px + 1
        ring = cv2.dilate(mask.astype(np.uint8), np.ones((k, k), np.uint8)).astype(bool)
    else:
        ring = mask
    vn, un = np.nonzero(ring & valid)
    zn = depth[vn, un].astype(np.float64)
    keep = np.abs(zn - med) <= gate
    vn, un, zn = vn[keep], un[keep], zn[keep]
    if len(zn) > cfg.max_points:
        pick = np.random.default_rng(1).choice(len(zn), cfg.max_points, replace=False)
        vn, un, zn = vn[pick], un[pick], zn[pick]
    npts = pose.transform_points(intrinsics.backproject(un, vn, zn))
    _, evals, evecs = _pca(npts)
    to_cam = cam_pos - centroid
    dist = float(np.linalg.norm(to_cam))
    view_dir = to_cam / max(dist, 1e-9)
    if len(npts) >= 3 and evals[1] > 1e-12 and evals[0] < 0.5 * evals[1]:
        normal = evecs[:, 0]
    else:  # degenerate (a line or a handful of pixels): face the camera
        normal = view_dir.copy()
    if float(normal @ view_dir) < 0:
        normal = -normal
    normal /= np.linalg.norm(normal)

    # The region's 3D mean lies beyond the defect on a surface seen obliquely: the anomaly map
    # blurs a defect symmetrically in the image, and perspective stretches the far half of the
    # region over more metres (17-41 mm for an AGV's floor defect at 2.5-3.5 m). The defect is
    # where the ray through the region's anomaly-weighted image centre meets the surface plane.
    # (map-frame rays of the region's pixels, at unit z-depth: linear in the pixel, so their
    # weighted mean is the ray through the weighted mean pixel)
    rays = intrinsics.backproject(us_in, vs_in, np.ones(len(us_in))) @ pose.rotation.T
    values = None if amap is None else np.nan_to_num(amap[vs_in, us_in].astype(np.float64), nan=0.0)
    weights = np.ones(len(us_in))
    if values is not None and float(values.max() - values.min()) > 1e-9:
        weights = values - values.min()
    ray = np.average(rays, axis=0, weights=weights)
    along = float(ray @ normal)
    if abs(along) > 0.1 * float(np.linalg.norm(ray)):
        centroid = cam_pos + ray * (float((centroid - cam_pos) @ normal) / along)

    # Tangent-plane axes and extents from the pixel rays cut by the surface plane: depth noise
    # seen obliquely would otherwise smear the points sideways and inflate the extent.
    rel = pts - centroid
    tang = rel - np.outer(rel @ normal, normal)
    denom = rays @ normal
    if np.all(np.abs(denom) > 0.1 * np.linalg.norm(rays, axis=1)):
        t_hit = ((centroid - cam_pos) @ normal) / denom
        on_plane = cam_pos + rays * t_hit[:, None] - centroid
        tang = on_plane - np.outer(on_plane @ normal, normal)
    cov2 = tang.T @ tang / max(len(tang), 1)
    evals_t, evecs_t = np.linalg.eigh(cov2)
    major = evecs_t[:, 2] - (evecs_t[:, 2] @ normal) * normal
    if np.linalg.norm(major) < 1e-9:
        major = np.cross(normal, [0.0, 0.0, 1.0])
        if np.linalg.norm(major) < 1e-6:
            major = np.cross(normal, [1.0, 0.0, 0.0])
    major /= np.linalg.norm(major)
    minor = np.cross(normal, major)
    axes = np.stack([major, minor, normal], axis=1)
    local = np.column_stack([tang @ major, tang @ minor, rel @ normal])
    # One pixel's footprint on the surface: points are pixel centres, the region spans edges.
    pixel_m = med / math.sqrt(intrinsics.fx * intrinsics.fy)
    cos_inc = max(float(normal @ view_dir), 0.05)
    extent = np.array([
        np.ptp(local[:, 0]) + pixel_m / cos_inc,
        np.ptp(local[:, 1]) + pixel_m / cos_inc,
        float(np.subtract(*np.percentile(local[:, 2], [95, 5]))),
    ])
    size = extent.copy()
    if values is not None:
        size[:2] = _defect_size(local[:, :2], values, axes[:, :2], centroid, intrinsics, pose,
                                normal_level, point_spread_px)

    # On a curved surface the mean of the patch lies below it (sagitta): lift the centroid
    # onto the surface using the points near the patch centre.
    radial = np.hypot(local[:, 0], local[:, 1])
    central = radial <= max(0.25 * float(extent[:2].max()), 2.0 * pixel_m)
    if central.sum() >= 3:
        lift = float(np.median(local[central, 2]))
        centroid = centroid + lift * normal
        dist = float(np.linalg.norm(cam_pos - centroid))
    incidence = math.degrees(math.acos(min(1.0, max(-1.0, float(normal @ view_dir)))))
    b = cfg.border_px
    bx, by = b + int(round(cfg.border_margin * w_img)), b + int(round(cfg.border_margin * h_img))
    ys, xs = np.nonzero(mask)
    x0, x1, y0, y1 = int(xs.min()), int(xs.max()), int(ys.min()), int(ys.max())
    # Cut by the image edge: a partial view, weighted down. Cut by the detector's border band
    # too: still a partial view for size and position (fusion prefers whole views), but not
    # weighted down, so that the views fusion counts do not change.
    at_edge = x0 < b or y0 < b or x1 >= w_img - b or y1 >= h_img - b
    truncated = at_edge or x0 < bx or y0 < by or x1 >= w_img - bx or y1 >= h_img - by
    score_term = float(np.clip(peak_score, 0.0, 2.0) / 2.0)
    dist_term = min(1.0, (cfg.reference_distance_m / max(dist, 1e-6)) ** 2)
    inc_term = max(0.0, math.cos(math.radians(min(incidence, cfg.max_incidence_deg))))
    if incidence >= cfg.max_incidence_deg:
        inc_term *= 0.1
    quality = score_term * dist_term * inc_term * (cfg.truncated_weight if at_edge else 1.0)
    bbox = (x0, y0, x1 - x0 + 1, y1 - y0 + 1)
    evidence = _evidence(rgb, amap, mask, bbox, stamp, cfg) if cfg.evidence else None
    return Detection3D(
        position=centroid, extent=extent, size=size, axes=axes, normal=normal, score=float(peak_score),
        mean_score=float(mean_score), label=region.label, stamp=float(stamp), view_distance=dist,
        incidence_deg=incidence, n_points=int(len(z_in)), quality=float(quality),
        truncated=truncated, camera_position=cam_pos.copy(), pixel_bbox=bbox, evidence=evidence,
    )


def localize_regions(
    regions: list[RegionObservation],
    depth: np.ndarray,
    intrinsics: CameraIntrinsics,
    pose: Pose,
    stamp: float,
    rgb: np.ndarray | None = None,
    anomaly_map: np.ndarray | None = None,
    config: LocalizationConfig | None = None,
    depth_intrinsics: CameraIntrinsics | None = None,
    normal_level: float | None = None,
    point_spread_px: tuple[float, float] | None = None,
) -> list[Detection3D]:
    """Locate every region of one frame in the ``map`` frame.

    Args:
        regions: anomalous regions at the colour image's resolution.
        depth: float metres (z-depth along the optical axis), NaN / <= 0 / inf invalid,
            registered to the colour camera.
        intrinsics: colour camera intrinsics (defines the reference resolution).
        pose: ``T_map_camera`` of the colour optical frame at ``stamp``.
        stamp: time of the frame, seconds.
        rgb: optional H x W x 3 uint8 RGB image, for evidence crops.
        anomaly_map: optional normalised anomaly map (0.5 = threshold), for region splitting
            and heatmap overlays.
        config: parameters; defaults when None.
        depth_intrinsics: intrinsics of the depth image when known (checked for consistency).
        normal_level: the anomaly map's value at a typical normal pixel, when the map is a
            logistic of the detector's raw distance
            (see :func:`~anomaly_inspection_core.detection.blur.half_maximum_level`).
        point_spread_px: the anomaly map's own blur (full width at half maximum of its response
            to a small defect) along the image's x and y, in pixels of ``anomaly_map``; removed
            from each region's half-maximum extent to estimate the defect's size. Unknown (not
            removed) when None or not positive and finite; ``normal_level`` likewise when 0.

    Returns:
        One :class:`Detection3D` per region (or per part of a split region) with enough valid
        depth; an empty list when the frame is refused (depth size not reconcilable).
    """
    cfg = config or LocalizationConfig()
    if not math.isfinite(float(stamp)):
        raise ValueError(f"stamp is not finite: {stamp}")
    aligned = align_depth(depth, intrinsics, depth_intrinsics)
    if aligned is None:
        return []
    h, w = intrinsics.height, intrinsics.width
    valid = np.isfinite(aligned) & (aligned >= cfg.min_depth_m) & (aligned <= cfg.max_depth_m)
    band = (silhouette_band(aligned, valid, cfg.silhouette_band_px, cfg.silhouette_jump_rel)
            if cfg.silhouette_band_px > 0 and regions else None)
    amap = None
    if anomaly_map is not None:
        amap = np.asarray(anomaly_map, dtype=np.float32)
        if amap.ndim != 2:
            raise ValueError(f"anomaly_map must be 2-D, got shape {amap.shape}")
        amap = _align_image(amap, intrinsics, "anomaly map", cv2.INTER_LINEAR)
    img = None
    if rgb is not None:
        img = np.asarray(rgb)
        if img.ndim != 3 or img.shape[2] < 3:
            raise ValueError(f"rgb must be H x W x 3, got shape {img.shape}")
        img = _align_image(img[..., :3].astype(np.uint8, copy=False), intrinsics, "rgb image",
                           cv2.INTER_AREA)

    spread = None
    if point_spread_px is not None and anomaly_map is not None and all(
            math.isfinite(float(v)) and float(v) > 0 for v in point_spread_px):
        # in pixels of the reference resolution (the map may be coarser)
        spread = (float(point_spread_px[0]) * w / anomaly_map.shape[1],
                  float(point_spread_px[1]) * h / anomaly_map.shape[0])
    detections: list[Detection3D] = []
    for region in regions:
        mask = region.full_mask(h, w)
        if not mask.any():
            continue
        parts = [mask]
        if cfg.split_regions and amap is not None:
            parts = split_region_mask(mask, amap, cfg.split_min_prominence, cfg.split_min_area_px)
        found = []
        for part in parts:
            if len(parts) > 1 and amap is not None:
                vals = amap[part]
                peak, mean = float(np.nanmax(vals)), float(np.nanmean(vals))
            else:
                peak, mean = region.peak_score, region.mean_score
            det = _localize_mask(part, region, aligned, valid, intrinsics, pose, stamp, img, amap,
                                 cfg, peak, mean, band, normal_level, spread)
            if det is not None:
                found.append(det)
        if len(found) > 1 and _too_close(found, cfg.split_min_separation_m):
            det = _localize_mask(mask, region, aligned, valid, intrinsics, pose, stamp, img, amap,
                                 cfg, region.peak_score, region.mean_score, band, normal_level, spread)
            found = [det] if det is not None else []
        detections.extend(found)
    return detections


def _image_rate(intrinsics: CameraIntrinsics, pose: Pose, point: np.ndarray, direction: np.ndarray,
                step_m: float = 1e-3) -> np.ndarray:
    """Image motion (pixels per metre along u and v) of ``point`` moved along ``direction``."""
    ends = np.array([point, np.asarray(point, dtype=np.float64) + step_m * np.asarray(direction, dtype=np.float64)])
    uv, _ = intrinsics.project(pose.inverse().transform_points(ends))
    return (uv[1] - uv[0]) / step_m


def _defect_size(tangent: np.ndarray, values: np.ndarray, axes: np.ndarray, centroid: np.ndarray,
                 intrinsics: CameraIntrinsics, pose: Pose, normal_level: float | None,
                 point_spread_px: tuple[float, float] | None) -> np.ndarray:
    """Estimated size of the defect along the region's two tangent ``axes`` (columns).

    A region cut at a low map level spreads a blur's width beyond the defect all round (a
    3-10 cm defect seen from 0.77 m: regions of 11-18 cm). The part of the region above its
    half maximum has the defect's size widened by the map's own blur; that blur
    (``point_spread_px``, measured by the detector the same way) is removed along each axis,
    in image pixels (see :mod:`anomaly_inspection_core.detection.blur`). ``tangent``: the
    region's pixels on the surface plane, in ``axes`` coordinates (metres), with their map
    ``values``.
    """
    level = half_maximum_level(float(values.max()), normal_level)
    core = tangent[values >= level]
    if len(core) == 0:
        core = tangent
    out = np.zeros(2)
    for k in range(2):
        rate = _image_rate(intrinsics, pose, centroid, axes[:, k])
        px_per_m = float(np.linalg.norm(rate))
        if px_per_m < 1e-9:
            out[k] = float(np.ptp(core[:, k]))
            continue
        width = float(np.ptp(core[:, k])) * px_per_m + 1.0  # pixel centres -> edges
        if point_spread_px is not None:
            e = rate / px_per_m
            width = deblurred_width(width, math.hypot(e[0] * point_spread_px[0], e[1] * point_spread_px[1]))
        out[k] = width / px_per_m
    return out


def _too_close(dets: list[Detection3D], min_sep: float) -> bool:
    for i in range(len(dets)):
        for j in range(i + 1, len(dets)):
            if np.linalg.norm(dets[i].position - dets[j].position) < min_sep:
                return True
    return False
