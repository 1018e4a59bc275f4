"""Greedy (k-center) coreset subsampling of a memory bank, as in PatchCore.

Points are first mapped by a Johnson-Lindenstrauss random projection to a few dimensions,
which keeps relative distances while making each greedy step a small matrix-vector product.
"""

from __future__ import annotations

import math

import torch
from tqdm import tqdm


def greedy_coreset_indices(
    features: torch.Tensor,
    n_select: int,
    projection_dim: int = 64,
    seed: int = 0,
    progress: bool = False,
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

    Returns:
        ``(n_select,)`` int64 tensor of distinct row indices.
    """
    if features.ndim != 2 or features.shape[0] == 0:
        raise ValueError(f"features must be a non-empty (N, D) tensor, got shape {tuple(features.shape)}")
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
    buffer = torch.empty_like(min_dist)
    steps = range(1, n_select)
    for i in tqdm(steps, desc="coreset", unit="pt", disable=not progress, mininterval=0.5):
        idx = int(torch.argmax(min_dist))
        selected[i] = idx
        # ||a-b||^2 = |a|^2 + |b|^2 - 2 a.b, done in place to stay memory-bound, not allocation-bound
        torch.addmv(sq_norms, x, x[idx], beta=1.0, alpha=-2.0, out=buffer)
        buffer += sq_norms[idx]
        torch.minimum(min_dist, buffer, out=min_dist)
    return selected
