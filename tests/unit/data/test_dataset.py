# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0

"""Tests of anomalib_cmdr.data.dataset: the sample table, RGBXYZDataset and resizing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch
from anomalib.data.dataclasses import DepthItem
from PIL import Image
from torchvision.transforms.v2 import Resize
from torchvision.tv_tensors import Mask

from anomalib_cmdr.data import (
    DataFileError,
    RGBXYZDataset,
    RGBXYZFolder,
    make_rgbxyz_samples,
)
from anomalib_cmdr.data.transforms import SquarePadResize
from tests.unit.data.helpers import scene_xyz, write_png, write_sample, write_tiff


def test_missing_file_in_hand_made_table(category_root: Path) -> None:
    table = make_rgbxyz_samples(category_root, "train")
    table.loc[1, "depth_path"] = str(category_root / "gone.tiff")
    with pytest.raises(DataFileError, match=r"gone\.tiff: file does not exist"):
        RGBXYZDataset(table)


def test_depth_item_fields(category_root: Path) -> None:
    dataset = RGBXYZDataset(make_rgbxyz_samples(category_root, "test"))
    assert len(dataset) == 5 and dataset.category == "widget"
    row = dataset.samples.iloc[0]
    item = dataset[0]
    assert isinstance(item, DepthItem)
    assert item.image.shape == (3, 24, 32) and item.image.dtype == torch.float32
    assert float(item.image.min()) >= 0.0 and float(item.image.max()) <= 1.0
    expected_rgb = np.asarray(Image.open(row.image_path), dtype=np.float32) / 255
    assert torch.allclose(item.image, torch.from_numpy(expected_rgb).permute(2, 0, 1))
    assert item.depth_map.shape == (3, 24, 32) and item.depth_map.dtype == torch.float32
    xyz = tifffile.imread(row.depth_path)
    assert torch.equal(item.depth_map, torch.from_numpy(xyz).permute(2, 0, 1))  # raw metres, holes exactly 0
    assert isinstance(item.gt_mask, Mask) and item.gt_mask.dtype == torch.bool and item.gt_mask.shape == (24, 32)
    assert item.gt_mask.any() == bool(item.gt_label) == (row.label_index == 1)
    assert item.image_path == row.image_path and item.depth_path == row.depth_path
    assert item.mask_path == (row.mask_path or None)


def test_rgb_xyz_size_mismatch(category_root: Path) -> None:
    samples = make_rgbxyz_samples(category_root, "train")
    dataset = RGBXYZDataset(samples)
    write_tiff(category_root / "train" / "good" / "xyz" / "001.tiff", scene_xyz(20, 32))
    with pytest.raises(DataFileError, match=r"xyz/001\.tiff: point cloud is 32x20 .*/rgb/001\.png is 32x24"):
        dataset[1]  # a file changed after setup: caught when read
    with pytest.raises(DataFileError, match=r"xyz/001\.tiff: point cloud is 32x20 .*/rgb/001\.png is 32x24"):
        RGBXYZDataset(samples)  # caught at setup, before any training


def test_mask_size_mismatch(category_root: Path) -> None:
    write_png(category_root / "test" / "crack" / "gt" / "000.png", np.zeros((10, 10), np.uint8))
    with pytest.raises(DataFileError, match=r"crack/gt/000\.png: mask is 10x10 .*/crack/rgb/000\.png is 32x24"):
        RGBXYZDataset(make_rgbxyz_samples(category_root, "test"))


def test_a_channel_first_tiff_stops_the_run_at_setup(category_root: Path) -> None:
    """One bad file in test/ used to let training finish and then crash validation, losing the run."""
    write_tiff(category_root / "test" / "good" / "xyz" / "001.tiff", scene_xyz(24, 32).transpose(2, 0, 1).copy())
    datamodule = RGBXYZFolder(category_root, num_workers=0)
    with pytest.raises(
        DataFileError, match=r"good/xyz/001\.tiff: point cloud must have shape \(H, W, 3\).*channel-first"
    ):
        datamodule.setup()


def test_geometric_augmentations_move_the_point_cloud(category_root: Path) -> None:
    dataset = RGBXYZDataset(make_rgbxyz_samples(category_root, "test"), augmentations=Resize((12, 16)))
    item = dataset[0]
    assert item.image.shape == (3, 12, 16) and item.depth_map.shape == (3, 12, 16) and item.gt_mask.shape == (12, 16)
    assert type(item.depth_map) is torch.Tensor
    source = {tuple(p) for p in tifffile.imread(item.depth_path).reshape(-1, 3).tolist()}
    assert {tuple(p) for p in item.depth_map.permute(1, 2, 0).reshape(-1, 3).tolist()} <= source


def test_items_of_different_sizes_collate_only_through_the_models_resize(category_root: Path) -> None:
    write_sample(category_root / "test" / "good", "009", (30, 20), seed=9, mask=False)
    dataset = RGBXYZDataset(make_rgbxyz_samples(category_root, "test"))
    items = [dataset[i] for i in range(len(dataset))]
    assert {tuple(item.image.shape[-2:]) for item in items} == {(24, 32), (30, 20)}  # native sizes
    with pytest.raises(DataFileError, match=r"good/rgb/009\.png \(20x30\) differ in size.*SquarePadResize"):
        dataset.collate_fn(items)
    dataset.augmentations = SquarePadResize(16)  # what the datamodule adds under anomalib's Engine
    batch = dataset.collate_fn([dataset[i] for i in range(len(dataset))])
    assert batch.image.shape == (len(dataset), 3, 16, 16) and batch.depth_map.shape == (len(dataset), 3, 16, 16)
    assert batch.gt_mask.shape == (len(dataset), 16, 16) and batch.gt_mask.dtype == torch.bool
    # every resized point is one of the file's points (nearest neighbour, never blended), padding is a hole
    for index in range(len(dataset)):
        source = {tuple(p) for p in tifffile.imread(batch.depth_path[index]).reshape(-1, 3).tolist()}
        assert {tuple(p) for p in batch.depth_map[index].permute(1, 2, 0).reshape(-1, 3).tolist()} <= source | {
            (0.0, 0.0, 0.0)
        }
