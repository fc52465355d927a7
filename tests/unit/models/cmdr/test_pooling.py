# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0
"""Tests of anomalib_cmdr.models.cmdr.pooling: the paper's 3D pooling as one linear map of compact features."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional

from anomalib_cmdr import CMDRModel
from anomalib_cmdr.models.cmdr import pooling
from anomalib_cmdr.models.cmdr.features import SampleFeatures, assemble_features
from anomalib_cmdr.models.cmdr.geometry import PointFeatures, pool_point_features, scatter_to_grid
from anomalib_cmdr.models.cmdr.pooling import factored_pooling, pooling_factor


def _sample(
    seed: int, size: tuple[int, int], points: int, centres: int | None = 32, channels: int = 24
) -> SampleFeatures:
    generator = torch.Generator().manual_seed(seed)
    if centres is None:  # per-point features (FPFH)
        features = PointFeatures(torch.randn(points, channels, generator=generator))
    else:
        weight = torch.rand(points, 3, generator=generator)
        features = PointFeatures(
            torch.randn(centres, channels, generator=generator),
            torch.randint(0, centres, (points, 3), generator=generator),
            weight / weight.sum(1, keepdim=True),
        )
    left = torch.arange(size[0] * size[1]).view(size)[:, : size[1] // 2].flatten()
    pixels = left[torch.randperm(left.numel(), generator=generator)[:points]].sort().values
    return SampleFeatures(rgb=None, points=features, pixels=pixels, size=size)


def _map_tokens(sample: SampleFeatures, grid: tuple[int, int]) -> torch.Tensor:
    """The paper's order of operations: expand, scatter to the pixels, 3x3 mean, adaptive mean."""
    feature_map = scatter_to_grid([sample.points.expand()], [sample.pixels], *sample.size)
    return pool_point_features(feature_map, grid)[0].flatten(1).T


@pytest.mark.parametrize(
    ("size", "grid"),
    [((40, 40), (40, 40)), ((40, 40), (10, 10)), ((40, 40), (13, 13)), ((40, 32), (7, 11)), ((9, 9), (3, 3))],
)
@pytest.mark.parametrize("centres", [32, None], ids=["centres", "per-point"])
def test_factored_pooling_equals_the_paper_pooling(size, grid, centres) -> None:
    """Every grid (integer and fractional ratios, non-square) and both feature kinds: the same tokens."""
    sample = _sample(0, size, points=size[0] * size[1] // 4, centres=centres)
    tokens = factored_pooling(sample.points, sample.pixels, sample.size, grid)
    reference = _map_tokens(sample, grid)
    assert tokens.shape == reference.shape == (grid[0] * grid[1], 24)
    torch.testing.assert_close(tokens, reference, rtol=1e-5, atol=1e-6)
    # tokens far from every point are exactly zero in both: the valid mask does not change
    assert torch.equal((tokens != 0).any(-1), (reference != 0).any(-1))
    assert not (reference != 0).any(-1).all()  # the case is exercised: some tokens are empty


def test_per_point_features_pooled_in_bounded_blocks(monkeypatch) -> None:
    """Many points of per-point features go through in blocks with the same result."""
    sample = _sample(1, (30, 30), points=400, centres=None)
    whole = factored_pooling(sample.points, sample.pixels, sample.size, (8, 8))
    monkeypatch.setattr(pooling, "_MAX_ELEMENTS", 4 * 24 * 7)  # blocks of 7 points
    torch.testing.assert_close(factored_pooling(sample.points, sample.pixels, sample.size, (8, 8)), whole)


def test_pooling_factor_is_the_separable_pooling() -> None:
    """``R_h @ X @ R_w.T`` is the 3x3 mean followed by the adaptive mean, for any map."""
    feature_map = torch.randn(2, 17, 23)
    expected = functional.adaptive_avg_pool2d(functional.avg_pool2d(feature_map, 3, stride=1), (6, 5))
    factored = pooling_factor(17, 6) @ feature_map @ pooling_factor(23, 5).T
    torch.testing.assert_close(factored, expected, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="at least 3 pixels"):
        pooling_factor(2, 1)


def test_assemble_features_with_factored_pooling() -> None:
    """A batch assembles the same tokens and valid mask either way."""
    samples = [_sample(2, (24, 24), 200), _sample(3, (24, 24), 60)]
    by_map = assemble_features(samples, (8, 8))
    factored = assemble_features(samples, (8, 8), xyz_pooling="factored")
    torch.testing.assert_close(factored.xyz, by_map.xyz, rtol=1e-5, atol=1e-6)
    assert torch.equal(factored.valid, by_map.valid)


@pytest.mark.parametrize("xyz_backbone", ["pointmae_tiny", "fpfh"])
@pytest.mark.parametrize("empty_cloud", [False, True], ids=["complete", "one-cloud-empty"])
def test_model_with_factored_pooling_gives_the_same_maps(tiny_kwargs, clouds, xyz_backbone, empty_cloud) -> None:
    """The option changes float32 rounding only: the same anomaly maps and scores as the paper's pooling.

    Also for per-point features (FPFH) and for a batch in which one sample has no valid point (RGB branch).
    """
    rgb, xyz = clouds
    if empty_cloud:
        xyz = xyz.clone()
        xyz[1] = 0
    kwargs = {**tiny_kwargs, "xyz_backbone": xyz_backbone}
    if xyz_backbone == "fpfh":
        kwargs["xyz_model_kwargs"] = None
    torch.manual_seed(0)
    by_map = CMDRModel(**kwargs, grid_size=16).eval()
    factored = CMDRModel(**kwargs, grid_size=16, xyz_pooling="factored").eval()
    factored.load_state_dict(by_map.state_dict())
    expected, result = by_map(rgb, xyz), factored(rgb, xyz)
    torch.testing.assert_close(result.anomaly_map, expected.anomaly_map, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(result.pred_score, expected.pred_score, rtol=1e-4, atol=1e-5)


def test_unknown_pooling_is_refused(tiny_kwargs) -> None:
    with pytest.raises(ValueError, match="xyz_pooling='sparse'"):
        CMDRModel(**tiny_kwargs, grid_size=16, xyz_pooling="sparse")
