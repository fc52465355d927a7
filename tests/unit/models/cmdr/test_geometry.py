# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0

import pytest
import torch

from anomalib_cmdr.models.cmdr.geometry import (
    farthest_point_sample,
    gather_valid_points,
    group_points,
    interpolation_weights,
    knn_index,
    pool_point_features,
    scatter_to_grid,
    valid_point_mask,
)


def test_valid_points_need_all_three_coordinates():
    xyz = torch.ones(1, 3, 4, 4)
    xyz[0, 2, 0, 0] = 0  # z missing only
    xyz[0, :, 1, 1] = 0
    mask = valid_point_mask(xyz)
    assert mask.sum() == 14 and not mask[0, 0, 0] and not mask[0, 1, 1]
    cloud = gather_valid_points(xyz)[0]
    assert cloud.points.shape == (14, 3)
    assert 0 not in cloud.index.tolist() and 5 not in cloud.index.tolist()


def test_fps_is_deterministic_starts_at_first_point_and_spreads():
    points = torch.rand(500, 3, generator=torch.Generator().manual_seed(0))
    index = farthest_point_sample(points, 32)
    assert index[0] == 0
    assert torch.equal(index, farthest_point_sample(points, 32))
    assert len(set(index.tolist())) == 32
    # the second centre is the farthest point from the first
    assert index[1] == ((points - points[0]) ** 2).sum(-1).argmax()


def test_knn_matches_brute_force_and_pads_small_clouds():
    points = torch.rand(200, 3, generator=torch.Generator().manual_seed(1))
    queries = points[:5]
    index = knn_index(points, queries, 8)
    brute = torch.cdist(queries, points).argsort(dim=1)[:, :8]
    assert torch.equal(index, brute)
    small = knn_index(points[:3], points[:1], 8)
    assert small.shape == (1, 8) and set(small[0].tolist()) == {0, 1, 2}


def test_interpolation_weights_inverse_square_distance():
    points = torch.tensor([[0.0, 0.0, 0.0]])
    centres = torch.tensor([[1.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 3.0], [9.0, 9.0, 9.0]])
    index, weight = interpolation_weights(points, centres)
    assert index.tolist() == [[0, 1, 2]]
    expected = torch.tensor([1.0, 1 / 4, 1 / 9])
    torch.testing.assert_close(weight[0], expected / expected.sum())


def test_group_points_shapes_and_empty_cloud():
    points = torch.rand(300, 3)
    groups = group_points(points, num_group=10, group_size=12)
    assert groups.centre_index.shape == (10,)
    assert groups.group_index.shape == (10, 12)
    # each group holds its centre as the nearest point
    assert torch.equal(groups.group_index[:, 0], groups.centre_index)
    assert groups.interp_index.shape == (300, 3)
    torch.testing.assert_close(groups.interp_weight.sum(1), torch.ones(300))
    try:
        group_points(points[:0], 4, 4)
    except ValueError as error:
        assert "empty" in str(error)
    else:
        raise AssertionError("empty cloud accepted")


def test_scatter_and_pool_keep_holes_zero():
    xyz = torch.rand(2, 3, 16, 16) + 0.1
    xyz[:, :, :8] = 0  # upper half has no points
    clouds = gather_valid_points(xyz)
    features = [torch.ones(c.points.shape[0], 5) for c in clouds]
    grid = scatter_to_grid(features, [cloud.index for cloud in clouds], 16, 16)
    assert grid.shape == (2, 5, 16, 16)
    assert grid[:, :, :8].abs().sum() == 0 and (grid[:, :, 8:] == 1).all()
    pooled = pool_point_features(grid, (16, 16))
    assert pooled.shape == (2, 5, 16, 16)
    assert (pooled[:, :, :6] == 0).all() and (pooled[:, :, -4:] > 0).all()


@pytest.mark.parametrize("levels", [None, 40])
def test_nearest_centres_match_a_full_sort_bit_for_bit(levels) -> None:
    """The top-k fast path keeps the reference's full-sort order, ties included (``levels``: many ties)."""
    from anomalib_cmdr.models.cmdr.geometry import _nearest_sorted

    generator = torch.Generator().manual_seed(0)
    dist = torch.rand(3000, 256, generator=generator)
    if levels is not None:
        dist = (dist * levels).floor()  # every row full of equal distances
    values, index = _nearest_sorted(dist, 3)
    reference_values, reference_index = dist.sort(dim=1)
    assert torch.equal(index, reference_index[:, :3]) and torch.equal(values, reference_values[:, :3])
    _, few_index = _nearest_sorted(dist[:, :2], 3)  # fewer columns than k
    assert torch.equal(few_index, dist[:, :2].sort(dim=1).indices)
