# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0

from types import SimpleNamespace

import numpy as np
import tifffile
import torch
from PIL import Image

from anomalib_cmdr import CMDR
from anomalib_cmdr.visualization import CMDRVisualizer


def _item(tmp_path, name):
    rgb = np.full((24, 32, 3), 120, np.uint8)
    xyz = np.ones((24, 32, 3), np.float32)
    xyz[:4, :4] = 0
    Image.fromarray(rgb).save(tmp_path / f"{name}.png")
    tifffile.imwrite(tmp_path / f"{name}.tiff", xyz)
    return SimpleNamespace(
        image_path=str(tmp_path / f"{name}.png"),
        depth_path=str(tmp_path / f"{name}.tiff"),
        anomaly_map=torch.rand(1, 16, 16),
        pred_mask=torch.zeros(1, 16, 16, dtype=torch.bool),
        pred_score=torch.tensor(0.7),
        pred_label=torch.tensor(True),
        gt_mask=torch.zeros(16, 16, dtype=torch.bool),
    )


def test_pictures_show_the_panels_of_the_modality(tmp_path):
    items = [_item(tmp_path, "a"), _item(tmp_path, "b")]
    trainer = SimpleNamespace(default_root_dir=str(tmp_path / "out"), datamodule=None)
    widths = {}
    for modality in ("rgb+xyz", "rgb"):
        visualizer = CMDRVisualizer(output_dir=tmp_path / modality)
        module = SimpleNamespace(model=SimpleNamespace(modality=modality))
        visualizer.on_test_batch_end(trainer, module, None, items, 0)
        pictures = sorted((tmp_path / modality).rglob("*.png"))
        assert [p.stem for p in pictures] == ["a", "b"]
        widths[modality] = Image.open(pictures[0]).width
    assert widths["rgb+xyz"] / widths["rgb"] == 5 / 3  # RGB, depth, map on each, masks / RGB, map, masks


def test_cmdr_uses_it_by_default_and_can_turn_it_off():
    kwargs = {"rgb_backbone": "resnet18", "rgb_layers": [1], "xyz_backbone": "fpfh", "pretrained": False}
    assert isinstance(CMDR(**kwargs).visualizer, CMDRVisualizer)
    assert CMDR(**kwargs, visualizer=False).visualizer is None


def test_point_clouds_option_writes_a_scored_ply_and_a_3d_view(tmp_path):
    import open3d as o3d

    item = _item(tmp_path, "part")
    item.anomaly_map = torch.zeros(1, 16, 16)
    item.anomaly_map[0, 8:, 8:] = 1.0  # the anomalous corner
    trainer = SimpleNamespace(default_root_dir=str(tmp_path / "out"), datamodule=None)
    module = SimpleNamespace(model=SimpleNamespace(modality="rgb+xyz"))
    CMDRVisualizer(output_dir=tmp_path / "pc", point_clouds=True).on_test_batch_end(trainer, module, None, [item], 0)
    (picture,) = (tmp_path / "pc").rglob("part.png")  # where anomalib names it, beside it the 3D view
    ply, view = picture.with_suffix(".ply"), picture.with_name("part_3d.png")
    assert view.is_file() and Image.open(view).width > 100
    cloud = o3d.t.io.read_point_cloud(str(ply))
    points, scores = cloud.point.positions.numpy(), cloud.point.score.numpy().ravel()
    # the valid points only: the 32x24 cloud square-padded to 32x32 and resized to the 16x16 map keeps 16x12
    # points, less its 4x4 hole (2x2 at the map's size)
    assert len(points) == 16 * 12 - 2 * 2
    colours = np.asarray(cloud.point.colors.numpy(), dtype=float)
    assert colours[scores > 0.5].mean(axis=0)[0] > colours[scores < 0.5].mean(axis=0)[0]  # hot corner is red
    # off by default
    CMDRVisualizer(output_dir=tmp_path / "plain").on_test_batch_end(trainer, module, None, [item], 0)
    assert not list((tmp_path / "plain").rglob("*.ply"))
