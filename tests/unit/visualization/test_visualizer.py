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
