# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0

import numpy as np
import open3d as o3d
import pytest
from PIL import Image

from anomalib_cmdr.visualization.point_cloud import (
    NAN_COLOUR,
    render_scored_points,
    score_colours,
    write_scored_ply,
)


def test_colours_follow_the_colormap_and_the_range():
    colours = score_colours(np.array([0.0, 0.5, 2.0, np.nan]), vmin=0, vmax=1, colormap="gray")
    assert colours.tolist() == [[0, 0, 0], [128, 128, 128], [255, 255, 255], list(NAN_COLOUR)]
    assert score_colours(np.array([3.0, 3.0])).shape == (2, 3)  # a constant score does not divide by zero


def test_ply_keeps_points_colours_and_scores(tmp_path):
    points = np.random.default_rng(0).random((50, 3))
    scores = np.linspace(0, 1, 50)
    scores[3] = np.nan
    path = write_scored_ply(tmp_path / "sub" / "scored.ply", points, scores, colormap="jet")
    cloud = o3d.t.io.read_point_cloud(str(path))
    np.testing.assert_allclose(cloud.point.positions.numpy(), points, rtol=1e-6)
    read = cloud.point.score.numpy().ravel()
    np.testing.assert_allclose(read[~np.isnan(scores)], scores[~np.isnan(scores)], rtol=1e-6)
    assert np.isnan(read[3])
    np.testing.assert_array_equal(cloud.point.colors.numpy(), score_colours(scores, colormap="jet"))
    legacy = o3d.io.read_point_cloud(str(path))  # viewers without custom properties still see the colours
    assert legacy.has_colors() and len(legacy.points) == 50


def test_rendering_shows_the_high_scores(tmp_path):
    y, x = np.mgrid[0:100, 0:200] * 0.25
    points = np.c_[x.ravel(), y.ravel(), np.zeros(x.size)]
    scores = np.zeros(len(points))
    hot = (np.abs(points[:, 0] - 10) < 1) & (np.abs(points[:, 1] - 20) < 1)
    scores[hot] = 1.0
    path = render_scored_points(tmp_path / "scan.png", points, scores, title="scan", max_points_3d=5000)
    image = np.asarray(Image.open(path).convert("RGB")).astype(int)
    red = (image[..., 0] > 100) & (image[..., 1] < 60) & (image[..., 2] < 60)  # jet's top colour
    assert red.sum() > 20, "the defect's colour is visible"
    with pytest.raises(ValueError, match="scores"):
        render_scored_points(tmp_path / "bad.png", points, scores[:5])
