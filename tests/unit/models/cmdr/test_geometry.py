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


def _reference_groups(points: torch.Tensor, num_group: int, group_size: int):
    """The straightforward per-cloud geometry (the authors' formulas, full sorts): what the batched path must equal."""
    from anomalib_cmdr.models.cmdr.geometry import square_distance

    distance = torch.full((points.shape[0],), 1e10)
    farthest, centre_index = 0, []
    for _ in range(num_group):
        centre_index.append(farthest)
        distance = torch.minimum(distance, ((points - points[farthest]) ** 2).sum(-1))
        farthest = int(torch.argmax(distance))
    centres = points[centre_index]
    knn = ((centres[:, None] - points[None]) ** 2).sum(-1)
    k = min(group_size, points.shape[0])
    group_index = knn.sort(dim=1, stable=True).indices[:, :k]  # ties: the lower index first
    group_index = torch.cat([group_index, group_index[:, :1].expand(-1, group_size - k)], dim=1)
    dist, interp_index = square_distance(points, centres).sort(dim=1)
    recip = 1.0 / (dist[:, :3] + 1e-8)
    return torch.tensor(centre_index), group_index, interp_index[:, :3], recip / recip.sum(dim=1, keepdim=True)


@pytest.mark.parametrize("sync_free", [False, True], ids=["cpu-path", "accelerator-path"])
def test_batched_grouping_equals_each_cloud_alone_and_the_reference_bit_for_bit(sync_free, monkeypatch) -> None:
    """FPS, kNN and interpolation over a padded batch give every cloud exactly its own groups (ties included).

    ``accelerator-path``: the ranking an accelerator takes (no host-device synchronisation), forced on the CPU.
    """
    from anomalib_cmdr.models.cmdr import geometry
    from anomalib_cmdr.models.cmdr.geometry import group_point_batch

    if sync_free:
        monkeypatch.setattr(geometry, "_sync_free", lambda tensor, choice: True)

    generator = torch.Generator().manual_seed(3)
    v, u = torch.meshgrid(torch.linspace(-0.05, 0.05, 40), torch.linspace(-0.05, 0.05, 40), indexing="ij")
    grid = torch.stack([u, v, 0.4 + 0.1 * u], dim=-1).reshape(-1, 3)  # a regular grid: many equal distances
    clouds = [grid, torch.rand(700, 3, generator=generator) + 0.1, grid[:90], grid[:5]]
    batched = group_point_batch(clouds, num_group=64, group_size=16)
    for cloud, groups in zip(clouds, batched, strict=True):
        alone = group_points(cloud, num_group=64, group_size=16)
        reference = _reference_groups(cloud, num_group=64, group_size=16)
        for got, single, expected in zip(
            (groups.centre_index, groups.group_index, groups.interp_index, groups.interp_weight),
            (alone.centre_index, alone.group_index, alone.interp_index, alone.interp_weight),
            reference,
            strict=True,
        ):
            assert torch.equal(got, single)
            assert torch.equal(got, expected)


def test_batched_knn_never_returns_padding() -> None:
    from anomalib_cmdr.models.cmdr.geometry import knn_index_batch, pad_clouds

    points, lengths = pad_clouds([torch.rand(50, 3), torch.rand(3, 3)])
    index = knn_index_batch(points, lengths, points[:, :2], k=8)
    assert index.shape == (2, 2, 8)
    assert int(index[1].max()) < 3 and int(index[0].max()) < 50


@pytest.mark.parametrize("levels", [None, 40])
def test_ranking_without_synchronisation_gives_the_same_columns(levels) -> None:
    """The accelerator's paths (every row ranked by key or sorted) equal the CPU's top-k paths, ties included."""
    from anomalib_cmdr.models.cmdr.geometry import _nearest_by_index, _nearest_sorted

    generator = torch.Generator().manual_seed(1)
    dist = torch.rand(2000, 300, generator=generator)
    if levels is not None:
        dist = (dist * levels).floor()
    dist[:, -20:] = torch.inf  # padding
    by_key = _nearest_by_index(dist, 16, sync_free=True)
    assert torch.equal(by_key, _nearest_by_index(dist, 16, sync_free=False))
    assert torch.equal(by_key, dist.sort(dim=1, stable=True).indices[:, :16])
    sorted_all = _nearest_sorted(dist, 3, sync_free=True)
    for got, expected in zip(sorted_all, _nearest_sorted(dist, 3, sync_free=False), strict=True):
        assert torch.equal(got, expected)


def test_valid_points_of_a_batch_equal_each_sample_alone() -> None:
    """One synchronisation for the batch: each sample's pixels and points as if gathered alone, empty ones too."""
    xyz = torch.rand(4, 3, 6, 5) + 0.1
    xyz[1, :, :3] = 0  # half missing
    xyz[2] = 0  # no point at all
    xyz[3, 0, ::2] = 0  # every other row missing x
    clouds = gather_valid_points(xyz)
    for sample, cloud in zip(xyz, clouds, strict=True):
        index = torch.nonzero(valid_point_mask(sample[None])[0].flatten()).squeeze(1)
        assert torch.equal(cloud.index, index)
        assert torch.equal(cloud.points, sample.flatten(1).T[index])
    assert [cloud.points.shape[0] for cloud in clouds] == [30, 15, 0, 15]
