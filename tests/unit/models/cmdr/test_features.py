# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0
"""Tests of anomalib_cmdr.models.cmdr.features: compact per-sample features brought onto the head grid."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional

from anomalib_cmdr.models.cmdr.features import SampleFeatures, assemble_features
from anomalib_cmdr.models.cmdr.geometry import PointFeatures


def _reference_tokens(samples: list[SampleFeatures], grid: tuple[int, int]) -> torch.Tensor:
    """The authors' order of operations: expand by a gather-sum, scatter channel-major, 3x3 mean, adaptive mean."""
    height, width = samples[0].size
    maps = []
    for sample in samples:
        points = sample.points
        expanded = (points.values[points.index] * points.weight.unsqueeze(-1)).sum(1)
        flat = torch.zeros(expanded.shape[1], height * width)
        flat[:, sample.pixels] = expanded.T
        maps.append(flat.view(-1, height, width))
    pooled = functional.adaptive_avg_pool2d(functional.avg_pool2d(torch.stack(maps), 3, stride=1), grid)
    return pooled.flatten(2).transpose(1, 2)


def _sample(seed: int, size: int = 40, points: int = 900, centres: int = 32, channels: int = 24) -> SampleFeatures:
    generator = torch.Generator().manual_seed(seed)
    weight = torch.rand(points, 3, generator=generator)
    values = PointFeatures(
        torch.randn(centres, channels, generator=generator),
        torch.randint(0, centres, (points, 3), generator=generator),
        weight / weight.sum(1, keepdim=True),
    )
    pixels = torch.randperm(size * size, generator=generator)[:points].sort().values
    return SampleFeatures(rgb=None, points=values, pixels=pixels, size=(size, size))


@pytest.mark.parametrize(
    ("grid", "channels"),
    [(40, 24), (40, 150), (39, 24), (37, 150), (20, 24), (13, 150)],  # 150: two channel blocks of the pooling
)
def test_3d_tokens_equal_the_reference_order_of_operations_bit_for_bit(grid: int, channels: int) -> None:
    """The channels-last scatter and pooling give the authors' 3D tokens exactly, at the input size and coarser.

    Grids of 40, 39 and 37 from a 40 px map have adaptive windows of at most 2x2 pixels, pooled channels-last; 20
    and 13 have longer ones, pooled channel-major.
    """
    from anomalib_cmdr.models.cmdr.geometry import _short_windows

    assert _short_windows(40, grid) == (grid >= 37)
    samples = [_sample(0, channels=channels), _sample(1, points=300, channels=channels)]
    tokens = assemble_features(samples, (grid, grid)).xyz
    assert torch.equal(tokens, _reference_tokens(samples, (grid, grid)))
    assert tokens.transpose(1, 2).is_contiguous()  # channel-major, as the heads were checked against the authors'
