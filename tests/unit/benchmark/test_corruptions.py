# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0

"""The degradations of the robustness study: each changes what it says, level 0 changes nothing."""

import pytest
import torch
from anomalib.data.dataclasses import DepthItem
from torchvision.tv_tensors import Image

from anomalib_cmdr.benchmark.corruptions import CORRUPTIONS, CorruptedDataset
from tests.helpers import make_clouds


def _item(seed=0):
    rgb, xyz = make_clouds(1, size=32, seed=seed)
    return DepthItem(image=Image(rgb[0]), depth_map=xyz[0], gt_label=torch.tensor(0))


@pytest.mark.parametrize("name", sorted(CORRUPTIONS))
def test_level_zero_is_identity_and_the_input_is_left_alone(name):
    item = _item()
    image, depth = item.image.clone(), item.depth_map.clone()
    same = CORRUPTIONS[name].apply(item, 0.0)
    assert torch.equal(same.image, image) and torch.equal(same.depth_map, depth)
    CORRUPTIONS[name].apply(item, CORRUPTIONS[name].levels[-1], nan_image=True)
    assert torch.equal(item.image, image) and torch.equal(item.depth_map, depth)


def test_each_corruption_degrades_its_modality_only():
    item = _item()
    valid = (item.depth_map != 0).any(dim=0)
    noisy = CORRUPTIONS["depth_noise"].apply(item, 0.1)
    assert not torch.equal(noisy.depth_map[2][valid], item.depth_map[2][valid])
    assert torch.equal(noisy.depth_map[:2], item.depth_map[:2]) and torch.equal(noisy.image, item.image)
    sparse = CORRUPTIONS["missing_points"].apply(item, 0.5)
    kept = (sparse.depth_map != 0).any(dim=0)
    assert abs(kept.sum() / valid.sum() - 0.5) < 0.01
    noisy_rgb = CORRUPTIONS["rgb_noise"].apply(item, 0.1)
    assert 0.05 < float((noisy_rgb.image - item.image).std()) < 0.1 and noisy_rgb.image.min() >= 0
    blurred = CORRUPTIONS["rgb_blur"].apply(item, 2.0)
    assert float(blurred.image.std()) < float(item.image.std()) and torch.equal(blurred.depth_map, item.depth_map)
    assert not CORRUPTIONS["missing_xyz"].apply(item, 1.0).depth_map.any()
    assert CORRUPTIONS["missing_rgb"].apply(item, 1.0, nan_image=True).image.isnan().all()
    assert not CORRUPTIONS["missing_rgb"].apply(item, 1.0).image.any()  # a black frame


def test_noise_is_reproducible_and_differs_per_sample():
    dataset = [_item(0), _item(0)]

    class Items(torch.utils.data.Dataset):
        def __len__(self):
            return 2

        def __getitem__(self, index):
            return dataset[index]

    corrupted = CorruptedDataset(Items(), "rgb_noise", 0.1, seed=3)
    assert torch.equal(corrupted[0].image, corrupted[0].image)
    assert not torch.equal(corrupted[0].image, corrupted[1].image)
    fractions = [float(CorruptedDataset(Items(), "missing_xyz", 0.5, seed=s)[0].depth_map.any()) for s in range(40)]
    assert 0.2 < sum(fractions) / 40 < 0.8
    with pytest.raises(ValueError, match="corruption='fog'"):
        CorruptedDataset(Items(), "fog", 0.1)
