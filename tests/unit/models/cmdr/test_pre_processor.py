# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0

"""Tests of CMDR's pre-processor: the single owner of the model's input size."""

from __future__ import annotations

from types import SimpleNamespace

import torch
from anomalib.data import DepthBatch
from torchvision import tv_tensors

from anomalib_cmdr import CMDR
from anomalib_cmdr.data.transforms import resize_nearest, resize_rgb
from anomalib_cmdr.models.cmdr.pre_processor import IMAGENET_MEAN, IMAGENET_STD, RGBXYZPreProcessor
from tests.helpers import TINY


def _batch(height: int = 30, width: int = 40) -> DepthBatch:
    generator = torch.Generator().manual_seed(0)
    xyz = torch.rand(2, 3, height, width, generator=generator) + 0.1
    xyz[:, :, :3, :3] = 0
    mask = torch.zeros(2, height, width, dtype=torch.bool)
    mask[:, 10:20, 10:20] = True
    return DepthBatch(
        image=tv_tensors.Image(torch.rand(2, 3, height, width, generator=generator)),
        depth_map=xyz,
        gt_mask=tv_tensors.Mask(mask),
        gt_label=torch.tensor([0, 1]),
    )


def test_prepare_brings_rgb_xyz_and_mask_to_the_image_size_with_one_rule() -> None:
    batch, reference = _batch(), _batch()
    RGBXYZPreProcessor(image_size=16).prepare(batch)
    assert batch.image.shape == (2, 3, 16, 16) and batch.depth_map.shape == (2, 3, 16, 16)
    assert batch.gt_mask.shape == (2, 16, 16) and batch.gt_mask.dtype == torch.bool
    assert type(batch.depth_map) is torch.Tensor
    assert torch.equal(batch.depth_map, resize_nearest(reference.depth_map, 16))
    assert torch.equal(batch.gt_mask, resize_nearest(reference.gt_mask.as_subclass(torch.Tensor), 16))
    mean, std = torch.tensor(IMAGENET_MEAN).view(3, 1, 1), torch.tensor(IMAGENET_STD).view(3, 1, 1)
    expected = (resize_rgb(reference.image.as_subclass(torch.Tensor), 16) - mean) / std
    torch.testing.assert_close(batch.image.as_subclass(torch.Tensor), expected)


def test_already_sized_inputs_are_only_normalised() -> None:
    batch, reference = _batch(16, 16), _batch(16, 16)
    RGBXYZPreProcessor(image_size=16).prepare(batch)
    assert torch.equal(batch.depth_map, reference.depth_map)
    mean, std = torch.tensor(IMAGENET_MEAN).view(3, 1, 1), torch.tensor(IMAGENET_STD).view(3, 1, 1)
    torch.testing.assert_close(batch.image.as_subclass(torch.Tensor), (reference.image - mean) / std)


def test_missing_modality_and_single_cloud() -> None:
    batch = DepthBatch(image=torch.rand(1, 3, 20, 20))
    RGBXYZPreProcessor(image_size=8).prepare(batch)
    assert batch.image.shape == (1, 3, 8, 8) and batch.depth_map is None
    batch = SimpleNamespace(image=torch.rand(1, 3, 20, 20), gt_mask=None, depth_map=torch.rand(3, 20, 20))  # one cloud
    RGBXYZPreProcessor(image_size=8).prepare(batch)
    assert batch.depth_map.shape == (1, 3, 8, 8)


def test_model_input_size_has_one_owner_and_survives_a_checkpoint() -> None:
    model = CMDR(**TINY, image_size=48, grid_size=16)
    assert model.pre_processor.image_size == (48, 48) and model.input_size == (48, 48)
    config = model.pre_processor.checkpoint_config()
    assert config == {"image_size": [48, 48], "square_pad": True, "mean": IMAGENET_MEAN, "std": IMAGENET_STD}
    other = RGBXYZPreProcessor(image_size=224)
    other.load_checkpoint_config(config)
    assert other.image_size == (48, 48) and other.resize.size == [48, 48]
    other.load_checkpoint_config({"transform": None})  # anomalib's own form: settings unchanged
    assert other.image_size == (48, 48)


def test_anomaly_map_comes_back_at_the_input_size() -> None:
    model = CMDR(**TINY, image_size=48, grid_size=16).eval()
    batch = _batch()
    model.pre_processor.prepare(batch)
    with torch.no_grad():
        out = model(batch)
    assert out.anomaly_map.shape == (2, 1, 48, 48) and out.pred_score.shape == (2,)
