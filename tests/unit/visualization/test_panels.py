# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0

import numpy as np

from anomalib_cmdr.visualization import depth_image, prediction_panel


def test_depth_image_shows_holes_black_and_near_bright():
    xyz = np.zeros((4, 4, 3), np.float32)
    xyz[..., 0] = xyz[..., 1] = 1
    xyz[..., 2] = np.linspace(0.5, 1.0, 16).reshape(4, 4)
    xyz[0, 0] = 0  # a hole
    picture = np.asarray(depth_image(xyz))
    assert picture.shape == (4, 4, 3) and not picture[0, 0].any()
    assert picture[0, 1].sum() > picture[3, 3].sum()  # near (small z) brighter than far


def test_panel_has_one_picture_per_view():
    rgb = np.zeros((32, 32, 3), np.uint8)
    xyz = np.ones((32, 32, 3), np.float32)
    heat, mask = np.random.default_rng(0).random((32, 32)), np.zeros((32, 32), bool)
    both = prediction_panel(rgb, xyz, heat, mask, 0.9, True, gt_mask=mask)
    rgb_only = prediction_panel(rgb, None, heat, mask, 0.9, True)
    # RGB, depth, map on each, masks = 5 panels; RGB-only: RGB, map, mask = 3 panels
    assert both.width / rgb_only.width == 5 / 3 and both.height == rgb_only.height
