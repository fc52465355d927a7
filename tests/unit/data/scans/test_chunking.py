# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0

import numpy as np
import pytest

from anomalib_cmdr.data.scans.chunking import (
    EMPTY,
    SENSOR_DISTANCE,
    ScanChunker,
    grid_order,
    normalize_chunk,
    scatter_scores,
)


def grid_scan(rows: int, cols: int, spacing: float = 0.25) -> np.ndarray:
    """A flat profilometer-like scan in acquisition order: profile (x) after profile (y)."""
    y, x = np.mgrid[0:rows, 0:cols] * spacing
    z = 0.01 * np.sin(x) * np.cos(y)
    return np.c_[x.ravel(), y.ravel(), z.ravel()]


def test_chunk_size_must_be_a_square_and_options_are_checked():
    assert ScanChunker().side == 96
    with pytest.raises(ValueError, match="square number"):
        ScanChunker(chunk_size=9000)
    with pytest.raises(ValueError, match="method"):
        ScanChunker(method="kmeans")
    with pytest.raises(ValueError, match="remainder"):
        ScanChunker(remainder="wrap")
    with pytest.raises(ValueError, match="anomalous_fraction"):
        ScanChunker(anomalous_fraction=0)


def test_sequential_chunks_are_consecutive_runs_of_the_file_order_with_a_padded_last_chunk():
    scan = grid_scan(20, 30)  # 600 points
    chunker = ScanChunker(chunk_size=256)
    parts = chunker.split(scan)
    assert [len(p) for p in parts] == [256, 256, 88]
    np.testing.assert_array_equal(np.concatenate(parts), np.arange(600))
    chunks = chunker(scan)
    assert chunks.xyz.shape == (3, 3, 16, 16)
    # every point is in exactly one cell; the padded cells are exact holes
    index = chunks.index[chunks.index != EMPTY]
    np.testing.assert_array_equal(np.sort(index), np.arange(600))
    holes = chunks.index == EMPTY
    assert holes.sum() == 256 - 88 and (chunks.xyz.transpose(0, 2, 3, 1)[holes] == 0).all()
    assert (chunks.xyz.transpose(0, 2, 3, 1)[~holes] != 0).all(), "a real point must never look like a hole"


def test_drop_leaves_the_partial_chunk_out():
    chunks = ScanChunker(chunk_size=256, remainder="drop")(grid_scan(20, 30))
    assert len(chunks) == 2 and (chunks.index != EMPTY).sum() == 512
    assert len(ScanChunker(chunk_size=1024, remainder="drop")(grid_scan(20, 30))) == 0


def test_tiles_do_not_depend_on_the_point_order_and_are_compact():
    scan = grid_scan(64, 64)  # 4096 points -> four 32x32 tiles
    chunker = ScanChunker(chunk_size=1024, method="tiles")
    shuffled = np.random.default_rng(0).permutation(len(scan))
    tiles = chunker(scan).index
    tiles_shuffled = shuffled[chunker(scan[shuffled]).index]
    np.testing.assert_array_equal(tiles, tiles_shuffled)
    for tile in tiles:  # square 8 x 8 mm tiles, not strips
        extent = np.ptp(scan[tile.ravel()][:, :2], axis=0)
        np.testing.assert_allclose(extent, [31 * 0.25, 31 * 0.25])


def test_grid_neighbours_are_spatial_neighbours_for_a_regular_tile():
    scan = grid_scan(32, 32)
    order = grid_order(scan, 32).reshape(32, 32)
    xy = scan[order][..., :2]
    # a square tile of a regular scan is its own grid: rows along y, columns along x
    np.testing.assert_allclose(np.diff(xy[..., 0], axis=1), 0.25)
    np.testing.assert_allclose(np.diff(xy[..., 1], axis=0), 0.25)


def test_grid_order_of_a_band_of_profiles_keeps_neighbours_close():
    scan = grid_scan(8, 32)  # 256 points, a band 32 wide and 8 long -> rows along x
    order = grid_order(scan, 16).reshape(16, 16)
    xy = scan[order][..., :2]
    step = np.hypot(*np.diff(xy, axis=1).transpose(2, 0, 1))
    assert step.max() <= np.hypot(0.25, 7 * 0.25) + 1e-9  # never further than across the band
    assert np.median(np.hypot(*np.diff(xy, axis=0).transpose(2, 0, 1))) <= 0.5 + 1e-9


def test_normalisation_scales_into_the_unit_box_keeps_the_shape_and_faces_the_sensor():
    points = np.array([[10.0, 20.0, 1.0], [14.0, 22.0, 1.5], [12.0, 21.0, 2.0]])
    out = normalize_chunk(points)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out[:, 0], [-1, 1, 1e-6], atol=1e-7)  # the centre line is nudged off 0
    np.testing.assert_allclose(out[:, 1], [-0.5, 0.5, 1e-6], atol=1e-7)
    # one factor for all axes: height 1.0 over a 4.0 wide chunk spans 0.5
    np.testing.assert_allclose(out[:, 2], SENSOR_DISTANCE - np.array([-0.25, 0, 0.25]), atol=1e-6)
    depth = normalize_chunk(points, z_is_height=False)
    np.testing.assert_allclose(depth[:, 2], SENSOR_DISTANCE + np.array([-0.25, 0, 0.25]), atol=1e-6)
    assert (out != 0).all() and (normalize_chunk(points[:1]) != 0).all()


def test_chunk_labels_follow_the_fraction_rule():
    scan = grid_scan(32, 32)
    labels = np.zeros(len(scan), bool)
    chunker = ScanChunker(chunk_size=256, anomalous_fraction=0.0025)  # 0.64 points -> 1 point suffices
    labels[300] = True
    chunks = chunker(scan, labels)
    assert chunks.labels.tolist() == [0, 1, 0, 0]
    assert chunks.point_labels.sum() == 1 and chunks.point_labels[1][chunks.index[1] == 300].all()
    strict = ScanChunker(chunk_size=256, anomalous_fraction=0.05)  # 12.8 points -> 13 needed
    labels[256:268] = True  # 12 + 1 = 13 anomalous points in chunk 1
    assert strict(scan, labels).labels.tolist() == [0, 1, 0, 0]
    labels[300] = False
    assert strict(scan, labels).labels.tolist() == [0, 0, 0, 0]
    assert chunker(scan).labels is None and chunker(scan).point_labels is None
    with pytest.raises(ValueError, match="labels"):
        chunker(scan, labels[:10])


def test_scores_scatter_back_to_the_original_points():
    scan = grid_scan(20, 30)
    chunker = ScanChunker(chunk_size=256, method="tiles")
    chunks = chunker(scan)
    maps = np.where(chunks.index != EMPTY, chunks.index, 0).astype(np.float32) * 2  # score = 2 x point index
    scores = scatter_scores(chunks.index, maps, len(scan))
    np.testing.assert_array_equal(scores, np.arange(600) * 2.0)
    dropped = ScanChunker(chunk_size=256, remainder="drop")(scan)
    scores = scatter_scores(dropped.index, np.ones(dropped.index.shape), len(scan))
    assert np.isnan(scores).sum() == 88 and np.nanmax(scores) == 1
