# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0

"""The paper's pooling of 3D features onto the head grid, as one linear map of the compact features.

The paper brings per-point 3D features onto the head grid in three steps
(:func:`~anomalib_cmdr.models.cmdr.geometry.scatter_to_grid`, then
:func:`~anomalib_cmdr.models.cmdr.geometry.pool_point_features`): scatter them to their pixels of an
``H x W`` map, take a 3x3 mean (no padding), then an adaptive mean down to ``h x w``. Each step is linear
and both means are separable, so a point at pixel ``(r, c)`` reaches token ``(i, j)`` with the weight
``R_h[i, r] * R_w[j, c]``, where ``R`` is the product of a 1D adaptive mean and a 1D 3-wide mean
(:func:`pooling_factor`). With Point-MAE the point features are themselves a weighted sum of ``M`` centre
features, so the whole chain is one ``(h * w, M)`` matrix times the ``(M, C)`` centre features.

:func:`factored_pooling` computes that: it never builds the ``(C, H, W)`` map (231 MB a sample at
224 px with 1152 channels) and it does about ``h * w * M * C`` multiply-adds, so it pays on coarse grids:
at 224 px with a 56x56 grid (``configs/model/cmdr_fast.yaml``) it takes about a tenth of the time of
the map (``benchmarks/speed.py``). The numbers equal the paper's pooling up to float32 rounding (about 1e-6
relative): tokens far from every point are exactly zero in both, so the valid mask is the same. The
default, ``xyz_pooling="map"``, stays the paper's order of operations, bit-identical to the authors' code.

Example:
    >>> import torch
    >>> from anomalib_cmdr.models.cmdr.geometry import PointFeatures, pool_point_features, scatter_to_grid
    >>> points = PointFeatures(torch.rand(4, 6), torch.tensor([[0, 1, 2], [3, 2, 1]]),
    ...                        torch.tensor([[0.5, 0.3, 0.2], [0.6, 0.2, 0.2]]))
    >>> pixels = torch.tensor([9, 30])
    >>> tokens = factored_pooling(points, pixels, size=(8, 8), grid_size=(4, 4))
    >>> reference = pool_point_features(scatter_to_grid([points.expand()], [pixels], 8, 8), (4, 4))
    >>> torch.allclose(tokens, reference[0].flatten(1).T, atol=1e-6)
    True
"""

from __future__ import annotations

from functools import cache
from typing import Literal

import torch

from .geometry import PointFeatures

XYZPooling = Literal["map", "factored"]
XYZ_POOLINGS: tuple[str, ...] = ("map", "factored")

# Elements of the temporary (points x token weights x channels) of per-point features (FPFH): 64 MB float32.
_MAX_ELEMENTS = 1 << 24


@cache
def _pooling_factor(size: int, out: int) -> torch.Tensor:
    if size < 3:
        msg = f"the paper's 3x3 mean needs a map of at least 3 pixels a side, got {size}"
        raise ValueError(msg)
    length = size - 2  # the 3x3 mean without padding
    box = torch.zeros(length, size, dtype=torch.float64)
    rows = torch.arange(length)
    for shift in range(3):
        box[rows, rows + shift] = 1 / 3
    i = torch.arange(out)
    start = (i * length) // out  # torch's adaptive pooling windows
    end = -((-(i + 1) * length) // out)
    columns = torch.arange(length)
    window = (columns[None] >= start[:, None]) & (columns[None] < end[:, None])
    adaptive = window.double() / (end - start)[:, None]
    return (adaptive @ box).float()


def pooling_factor(size: int, out: int) -> torch.Tensor:
    """One side of the paper's pooling as a matrix: a 3-wide mean (no padding), then an adaptive mean.

    Args:
        size (int): Pixels along the side of the map (``>= 3``).
        out (int): Tokens along that side of the head grid.

    Returns:
        torch.Tensor: ``(out, size)`` float32 weights; the 2D pooling of a map ``X`` is ``R_h @ X @ R_w.T``.

    Example:
        >>> factor = pooling_factor(8, 3)
        >>> factor.shape, bool(torch.allclose(factor.sum(dim=1), torch.ones(3)))
        (torch.Size([3, 8]), True)
    """
    return _pooling_factor(int(size), int(out)).clone()


@cache
def _sparse_factor_cpu(size: int, out: int) -> tuple[torch.Tensor, torch.Tensor]:
    factor = _pooling_factor(size, out)
    reach = int((factor != 0).sum(dim=0).max())
    return factor.T.topk(reach, dim=1)  # padding entries have weight 0


def _sparse_factor(size: int, out: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """For each pixel along a side, the tokens it reaches and their weights: ``(size, k)`` each (computed once)."""
    weight, token = _sparse_factor_cpu(size, out)
    return weight.to(device), token.to(device)


def factored_pooling(
    points: PointFeatures,
    pixels: torch.Tensor,
    size: tuple[int, int],
    grid_size: tuple[int, int],
) -> torch.Tensor:
    """The paper's pooling of one sample's 3D features onto the head grid, without the per-pixel map.

    Args:
        points (PointFeatures): The sample's compact 3D features (centre features with interpolation indices
            and weights, or per-point features).
        pixels (torch.Tensor): ``(N,)`` flat pixel index of each point in the ``size`` map.
        size (tuple[int, int]): ``(H, W)`` of the organized cloud.
        grid_size (tuple[int, int]): ``(h, w)`` of the head grid.

    Returns:
        torch.Tensor: ``(h * w, C)`` float32 tokens, equal to
        ``pool_point_features(scatter_to_grid(...))`` up to float32 rounding; zero where no point is near.

    Example:
        >>> points = PointFeatures(torch.ones(3, 2))  # per-point features, three points on the top row
        >>> factored_pooling(points, torch.tensor([0, 1, 2]), size=(4, 4), grid_size=(2, 2))[:, 0]
        tensor([0.3333, 0.2222, 0.0000, 0.0000])
    """
    height, width = size
    tokens_h, tokens_w = grid_size
    row_weight, row_token = _sparse_factor(height, tokens_h, pixels.device)
    col_weight, col_token = _sparse_factor(width, tokens_w, pixels.device)
    rows, cols = pixels // width, pixels % width
    # (N, k_h, k_w): the tokens each point reaches and with what weight
    token = row_token[rows][:, :, None] * tokens_w + col_token[cols][:, None, :]
    weight = row_weight[rows][:, :, None] * col_weight[cols][:, None, :]
    values = points.values.float()
    if points.index is None or points.weight is None:
        return _pool_per_point(values, token.flatten(1), weight.flatten(1), tokens_h * tokens_w)
    centres = values.shape[0]
    # one (h * w, M) matrix: point n gives centre index[n, j] the weight weight[n, j] at each token it reaches
    column = token[..., None] * centres + points.index[:, None, None, :]
    entry = weight[..., None] * points.weight.float()[:, None, None, :]
    matrix = values.new_zeros(tokens_h * tokens_w * centres)
    matrix.index_add_(0, column.flatten(), entry.flatten())
    return matrix.view(tokens_h * tokens_w, centres) @ values


def _pool_per_point(values: torch.Tensor, token: torch.Tensor, weight: torch.Tensor, tokens: int) -> torch.Tensor:
    """Per-point features added into their tokens, a bounded block of points at a time."""
    out = values.new_zeros(tokens, values.shape[1])
    step = max(1, _MAX_ELEMENTS // max(1, token.shape[1] * values.shape[1]))
    for start in range(0, values.shape[0], step):
        block = slice(start, start + step)
        contributions = weight[block, :, None] * values[block, None, :]
        out.index_add_(0, token[block].flatten(), contributions.flatten(0, 1))
    return out
