"""Greedy (k-center) coreset subsampling of a memory bank, as in PatchCore.

Points are first mapped by a Johnson-Lindenstrauss random projection to a few dimensions,
which keeps relative distances while making each greedy step a small matrix-vector product.

Each greedy step scans every point (memory-bound: 768k patches x 64 floats is 197 MB per
step). Most points soon lie much closer to a chosen centre than the farthest point does and
cannot be picked for many steps, so they are *parked*: set aside with their distance, which
can only shrink, as an upper bound. While the farthest active point is farther than every
parked point's bound, the parked points cannot be the next pick, and the selection is the
plain greedy one. When the farthest active distance falls below a group's bound, the group's
points above a lower bound are brought back, their distances brought up to date with the
centres chosen meanwhile in one matrix product. Measured on 120 UAV teach frames at 640 px
(768k patches, 4000 picked, 2 cores): the same 4000 points in 13.5 s instead of 45 s.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from tqdm import tqdm


@dataclass
class _Parked:
    """Points set aside: rows ``ids`` of the projected features, with ``dist`` (squared
    distance to the nearest centre among the first ``since`` picks) below ``bound``."""

    ids: torch.Tensor
    dist: torch.Tensor
    since: int
    bound: float


def greedy_coreset_indices(
    features: torch.Tensor,
    n_select: int,
    projection_dim: int = 64,
    seed: int = 0,
    progress: bool = False,
    park_ratio: float = 0.8,
    park_every: int = 200,
) -> torch.Tensor:
    """Indices of ``n_select`` rows of ``features`` chosen by greedy farthest-point selection.

    Each step picks the point farthest from everything chosen so far, so the selection covers
    the feature distribution (rare normal patterns included) with few points.

    Args:
        features: ``(N, D)`` float tensor.
        n_select: how many rows to keep (clipped to ``N``).
        projection_dim: dimension of the random projection; ``0`` or ``>= D`` uses raw features.
        seed: seeds the projection and the first point, so results are reproducible.
        progress: show a progress bar.
        park_ratio: every ``park_every`` picks, points whose squared distance is under this
            fraction of the largest are parked (module docstring); ``0`` scans every point at
            every step. The picks are the same either way, up to floating-point near-ties.
        park_every: picks between parkings.

    Returns:
        ``(n_select,)`` int64 tensor of distinct row indices.
    """
    if features.ndim != 2 or features.shape[0] == 0:
        raise ValueError(f"features must be a non-empty (N, D) tensor, got shape {tuple(features.shape)}")
    if not 0.0 <= park_ratio < 1.0:
        raise ValueError(f"park_ratio must be in [0, 1), got {park_ratio}")
    if park_every < 1:
        raise ValueError(f"park_every must be >= 1, got {park_every}")
    n_total, dim = features.shape
    n_select = int(min(max(n_select, 1), n_total))
    if n_select == n_total:
        return torch.arange(n_total)
    generator = torch.Generator(device="cpu").manual_seed(seed)
    x = features.float()
    if 0 < projection_dim < dim:
        projection = torch.randn(dim, projection_dim, generator=generator) / math.sqrt(projection_dim)
        x = x @ projection.to(x.device)
    x = x.contiguous()
    sq_norms = (x * x).sum(1)
    selected = torch.empty(n_select, dtype=torch.long)
    first = int(torch.randint(n_total, (1,), generator=generator))
    selected[0] = first
    min_dist = sq_norms + sq_norms[first] - 2.0 * (x @ x[first])
    with tqdm(total=n_select - 1, desc="coreset", unit="pt", disable=not progress, mininterval=0.5) as bar:
        if park_ratio > 0:
            _select_parking(x, sq_norms, min_dist, selected, park_ratio, park_every, bar)
        else:
            _select_scanning(x, sq_norms, min_dist, selected, bar)
    return selected


def _select_scanning(x: torch.Tensor, sq_norms: torch.Tensor, min_dist: torch.Tensor,
                     selected: torch.Tensor, bar: tqdm) -> None:
    """Plain greedy selection: every point's distance updated at every pick."""
    buffer = torch.empty_like(min_dist)
    for i in range(1, len(selected)):
        idx = int(torch.argmax(min_dist))
        selected[i] = idx
        # ||a-b||^2 = |a|^2 + |b|^2 - 2 a.b, done in place to stay memory-bound, not allocation-bound
        torch.addmv(sq_norms, x, x[idx], beta=1.0, alpha=-2.0, out=buffer)
        buffer += sq_norms[idx]
        torch.minimum(min_dist, buffer, out=min_dist)
        bar.update()


def _select_parking(x: torch.Tensor, sq_norms: torch.Tensor, min_dist: torch.Tensor,
                    selected: torch.Tensor, ratio: float, every: int, bar: tqdm) -> None:
    """Greedy selection scanning only the points that can be picked soon (module docstring)."""
    n_select = len(selected)
    ids = torch.arange(len(x))  # active points: rows of x
    xa, sqa, dist = x, sq_norms, min_dist
    buffer = torch.empty_like(dist)
    parked: list[_Parked] = []
    i = 1
    while i < n_select:
        k = int(torch.argmax(dist))
        farthest = float(dist[k])
        if parked and farthest < max(p.bound for p in parked):
            # parked points may now be the farthest: bring back those over ratio x farthest,
            # up to date with the centres picked since they were parked
            active_ids, active_dist, kept = [ids], [dist], []
            for p in parked:
                if p.bound <= farthest:
                    kept.append(p)
                    continue
                up = p.dist > ratio * farthest
                if bool(up.any()):
                    rows, d = p.ids[up], p.dist[up]
                    centres = selected[p.since:i]
                    if len(centres):
                        cross = x[rows] @ x[centres].T
                        d = torch.minimum(d, (sq_norms[rows][:, None] + sq_norms[centres][None, :]
                                              - 2.0 * cross).min(1).values)
                    active_ids.append(rows)
                    active_dist.append(d)
                if not bool(up.all()):
                    down = ~up
                    kept.append(_Parked(p.ids[down], p.dist[down], p.since, ratio * farthest))
            parked = kept
            ids = torch.cat(active_ids)
            dist = torch.cat(active_dist)
            xa, sqa = x[ids], sq_norms[ids]
            buffer = torch.empty_like(dist)
            continue
        idx = int(ids[k])
        selected[i] = idx
        torch.addmv(sqa, xa, x[idx], beta=1.0, alpha=-2.0, out=buffer)
        buffer += sq_norms[idx]
        torch.minimum(dist, buffer, out=dist)
        i += 1
        bar.update()
        if i % every == 0 and i < n_select:
            bound = ratio * float(dist.max())
            keep = dist >= bound
            if int(keep.sum()) < 0.8 * len(dist):  # worth a copy of the active rows
                drop = ~keep
                parked.append(_Parked(ids[drop], dist[drop], i, bound))
                ids, dist = ids[keep], dist[keep].contiguous()
                xa, sqa = x[ids], sq_norms[ids]
                buffer = torch.empty_like(dist)
