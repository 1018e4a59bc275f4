"""Match reported defects against ground truth at a 3D distance gate.

Matching is type-agnostic (an unsupervised detector does not know the type): a one-to-one
assignment that first maximises the number of pairs within ``gate_m`` and then minimises
their total distance (Hungarian algorithm on a padded cost matrix). Recall is also reported
per ground-truth type.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class DefectMatch:
    """One predicted defect paired with one ground-truth defect."""

    predicted_id: Any
    ground_truth_id: Any
    predicted_type: str
    ground_truth_type: str
    error_m: float
    # largest size in the surface (reported; ground truth's ``size``), when both are known
    size_m: float | None = None
    ground_truth_size_m: float | None = None


@dataclass(frozen=True)
class TypeResult:
    """Detection of the ground-truth defects of one type."""

    n_ground_truth: int
    n_detected: int
    recall: float | None
    median_error_m: float | None


@dataclass
class EvaluationResult:
    """Outcome of :func:`match_defects`. Ratios are None when undefined (empty denominator)."""

    gate_m: float
    n_predicted: int
    n_ground_truth: int
    true_positives: int
    false_positives: int
    false_negatives: int
    recall: float | None
    precision: float | None
    f1: float | None
    median_error_m: float | None
    p95_error_m: float | None
    mean_error_m: float | None
    # over the matches whose sizes are known: median |reported - true| and reported / true
    median_size_error_m: float | None = None
    median_size_ratio: float | None = None
    per_type: dict[str, TypeResult] = field(default_factory=dict)
    matches: list[DefectMatch] = field(default_factory=list)
    unmatched_predicted_ids: list = field(default_factory=list)
    missed_ground_truth_ids: list = field(default_factory=list)

    def to_dict(self) -> dict:
        """Plain-JSON form (the ``evaluation`` object of report.json)."""
        out = asdict(self)
        out["per_type"] = {k: asdict(v) for k, v in self.per_type.items()}
        return out


def _field(item: Any, *names: str, default: Any = None) -> Any:
    for name in names:
        if isinstance(item, dict):
            if name in item:
                return item[name]
        elif hasattr(item, name):
            return getattr(item, name)
    return default


def _position(item: Any, what: str, index: int) -> np.ndarray:
    pos = _field(item, "position_m", "position")
    if pos is None:
        raise ValueError(f"{what}[{index}] has no position (expected 'position' or 'position_m')")
    p = np.asarray(pos, dtype=float).reshape(-1)
    if p.shape != (3,) or not np.all(np.isfinite(p)):
        raise ValueError(f"{what}[{index}] position must be 3 finite numbers, got {pos!r}")
    return p


def _largest_size(item: Any) -> float | None:
    """The largest in-surface size of a defect: ``size_m``/``size`` as a number or a
    [major, minor, thickness] vector; None when absent or not a positive finite number."""
    size = _field(item, "size_m", "size")
    if size is None:
        return None
    try:
        v = np.asarray(size, dtype=float).reshape(-1)[:2]
    except (TypeError, ValueError):
        return None
    value = float(v.max()) if v.size else float("nan")
    return value if np.isfinite(value) and value > 0 else None


def hungarian(cost: np.ndarray) -> list[tuple[int, int]]:
    """Minimum-cost assignment of a rectangular cost matrix; pairs (row, col), min(n, m) of them."""
    cost = np.asarray(cost, dtype=float)
    transposed = cost.shape[0] > cost.shape[1]
    if transposed:
        cost = cost.T
    n, m = cost.shape
    if n == 0:
        return []
    # Jonker-Volgenant style shortest augmenting path with potentials (rows <= cols).
    u = np.zeros(n + 1)
    v = np.zeros(m + 1)
    p = np.zeros(m + 1, dtype=int)  # p[j]: row (1-based) assigned to column j
    way = np.zeros(m + 1, dtype=int)
    for i in range(1, n + 1):
        p[0] = i
        j0 = 0
        minv = np.full(m + 1, np.inf)
        used = np.zeros(m + 1, dtype=bool)
        while True:
            used[j0] = True
            i0 = p[j0]
            cur = cost[i0 - 1] - u[i0] - v[1:]
            free = ~used[1:]
            better = free & (cur < minv[1:])
            minv[1:][better] = cur[better]
            way[1:][better] = j0
            cand = np.where(free, minv[1:], np.inf)
            j1 = int(np.argmin(cand)) + 1
            delta = cand[j1 - 1]
            u[p[used]] += delta
            v[used] -= delta
            minv[1:][free] -= delta
            j0 = j1
            if p[j0] == 0:
                break
        while j0:
            j1 = way[j0]
            p[j0] = p[j1]
            j0 = j1
    pairs = [(int(p[j]) - 1, j - 1) for j in range(1, m + 1) if p[j] != 0]
    if transposed:
        pairs = [(c, r) for r, c in pairs]
    return sorted(pairs)


def match_defects(
    predicted: list, ground_truth: list[dict], gate_m: float = 0.10,
) -> EvaluationResult:
    """Match predictions (FusedDefect or dicts with id/type/position[_m]) to ground truth.

    Ground-truth items are dicts (or objects) with ``id``, ``type``, ``position`` and optionally
    ``size`` (largest extent: blob diameter, crack length), compared with the largest in-surface
    size of the matched prediction. A pair counts only when within ``gate_m`` metres.
    """
    if not gate_m > 0:
        raise ValueError(f"gate_m must be positive, got {gate_m}")
    pred_pos = [_position(p, "predicted", i) for i, p in enumerate(predicted)]
    gt_pos = [_position(g, "ground_truth", i) for i, g in enumerate(ground_truth)]
    pred_ids = [_field(p, "id", default=i) for i, p in enumerate(predicted)]
    gt_ids = [_field(g, "id", default=i) for i, g in enumerate(ground_truth)]
    pred_types = [str(_field(p, "type", default="anomaly")) for p in predicted]
    gt_types = [str(_field(g, "type", default="unknown")) for g in ground_truth]
    pred_sizes = [_largest_size(p) for p in predicted]
    gt_sizes = [_largest_size(g) for g in ground_truth]

    matches: list[DefectMatch] = []
    if pred_pos and gt_pos:
        d = np.linalg.norm(np.array(pred_pos)[:, None, :] - np.array(gt_pos)[None, :, :], axis=-1)
        # pairs outside the gate cost more than any set of in-gate pairs: count first, distance next
        big = gate_m * (len(pred_pos) + len(gt_pos) + 1)
        cost = np.where(d <= gate_m, d, big)
        for i, j in hungarian(cost):
            if d[i, j] <= gate_m:
                matches.append(DefectMatch(pred_ids[i], gt_ids[j], pred_types[i], gt_types[j],
                                           float(d[i, j]), pred_sizes[i], gt_sizes[j]))
    matched_pred = {m.predicted_id for m in matches}
    matched_gt = {m.ground_truth_id for m in matches}
    tp = len(matches)
    n_pred, n_gt = len(predicted), len(ground_truth)
    recall = tp / n_gt if n_gt else None
    precision = tp / n_pred if n_pred else None
    f1 = (2 * recall * precision / (recall + precision)
          if recall is not None and precision is not None and recall + precision > 0 else
          (0.0 if recall is not None and precision is not None else None))
    errors = np.array([m.error_m for m in matches])
    sized = [(m.size_m, m.ground_truth_size_m) for m in matches
             if m.size_m is not None and m.ground_truth_size_m is not None]
    per_type: dict[str, TypeResult] = {}
    for t in sorted(set(gt_types)):
        n_t = gt_types.count(t)
        errs = [m.error_m for m in matches if m.ground_truth_type == t]
        per_type[t] = TypeResult(
            n_ground_truth=n_t, n_detected=len(errs), recall=len(errs) / n_t,
            median_error_m=float(np.median(errs)) if errs else None,
        )
    return EvaluationResult(
        gate_m=float(gate_m), n_predicted=n_pred, n_ground_truth=n_gt, true_positives=tp,
        false_positives=n_pred - tp, false_negatives=n_gt - tp, recall=recall,
        precision=precision, f1=f1,
        median_error_m=float(np.median(errors)) if tp else None,
        p95_error_m=float(np.percentile(errors, 95)) if tp else None,
        mean_error_m=float(errors.mean()) if tp else None,
        median_size_error_m=float(np.median([abs(a - b) for a, b in sized])) if sized else None,
        median_size_ratio=float(np.median([a / b for a, b in sized])) if sized else None,
        per_type=per_type, matches=matches,
        unmatched_predicted_ids=[i for i in pred_ids if i not in matched_pred],
        missed_ground_truth_ids=[i for i in gt_ids if i not in matched_gt],
    )
