# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0

"""Tests of the one resize rule (``anomalib_cmdr.data.transforms``): RGB bicubic, xyz and masks nearest."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torchvision import tv_tensors
from torchvision.transforms.v2 import InterpolationMode
from torchvision.transforms.v2.functional import resize, to_dtype_image

from anomalib_cmdr.data.transforms import SquarePadResize, as_size, resize_nearest, resize_rgb, square_padding
from tests.unit.data.helpers import scene_xyz


def _points(xyz: torch.Tensor) -> set[tuple[float, ...]]:
    return {tuple(p) for p in xyz.reshape(3, -1).T.tolist()}


def test_as_size_and_square_padding() -> None:
    assert as_size(7) == (7, 7) and as_size((5, 9)) == (5, 9) and as_size([4]) == (4, 4)
    with pytest.raises(ValueError, match="image_size"):
        as_size((0, 3))
    assert square_padding(20, 40) == (0, 0, 10, 10) and square_padding(41, 20) == (10, 11, 0, 0)


def test_nearest_resize_keeps_holes_and_invents_no_point() -> None:
    xyz = torch.from_numpy(scene_xyz(30, 41, seed=3)).permute(2, 0, 1)
    points = _points(xyz)
    assert (0.0, 0.0, 0.0) in points
    for size, square_pad in [(17, True), (64, True), ((25, 50), False), (13, False)]:
        out = resize_nearest(xyz, size, square_pad)
        assert out.dtype == torch.float32 and out.shape[-2:] == as_size(size)
        assert _points(out) <= points  # every output point is an input point
        invalid = (out == 0).any(dim=0)
        assert (out[:, invalid] == 0).all()  # holes are whole holes, exactly 0
    # upsampling 2x without padding keeps every hole as a 2x2 block of holes
    up = resize_nearest(xyz, (60, 82), square_pad=False)
    assert torch.equal(up[:, ::2, ::2], xyz)
    assert torch.equal((up == 0).all(0)[1::2, 1::2], (xyz == 0).all(0))


def test_nearest_rule_is_the_integer_floor_rule() -> None:
    source = torch.arange(800.0).view(1, 1, 800).expand(1, 2, 800)
    out = resize_nearest(source, (2, 224), square_pad=False)
    expected = (np.arange(224) * 800) // 224  # floor(dst * in / out), exactly
    assert out[0, 0].long().tolist() == expected.tolist()


def test_square_pad_keeps_rgb_xyz_mask_aligned() -> None:
    height, width = 20, 40
    rgb = torch.zeros(3, height, width)
    rgb[:, :, 10:20] = 1
    xyz = torch.ones(3, height, width)
    mask = torch.zeros(height, width, dtype=torch.bool)
    mask[:, 10:20] = True
    out_rgb, out_xyz, out_mask = resize_rgb(rgb, 40), resize_nearest(xyz, 40), resize_nearest(mask, 40)
    assert out_rgb.shape == (3, 40, 40) and out_xyz.shape == (3, 40, 40) and out_mask.shape == (40, 40)
    assert (out_xyz[:, :10] == 0).all() and (out_xyz[:, 30:] == 0).all() and (out_xyz[:, 10:30] == 1).all()
    assert not out_mask[:10].any() and out_mask[10:30, 10:20].all()
    assert (out_rgb[:, :10, 10:20] == 1).all()  # edge replication, not black padding
    assert (out_rgb[:, 10:30][:, out_mask[10:30]] == 1).all()


def test_rgb_is_resized_at_eight_bit_precision_like_the_files() -> None:
    generator = torch.Generator().manual_seed(0)
    pixels = torch.randint(0, 256, (3, 30, 50), dtype=torch.uint8, generator=generator)
    out = resize_rgb(to_dtype_image(pixels, scale=True), 16, square_pad=False)  # the dataset's float image
    expected = to_dtype_image(
        resize(pixels, [16, 16], interpolation=InterpolationMode.BICUBIC, antialias=True), scale=True
    )
    assert torch.equal(out, expected)
    already = torch.rand(3, 16, 16, generator=generator)
    assert resize_rgb(already, 16) is already  # nothing to do: not even quantized


def test_transform_dispatches_by_type_and_works_on_batches() -> None:
    transform = SquarePadResize((12, 12))
    image = tv_tensors.Image(torch.rand(2, 3, 20, 30))
    xyz = tv_tensors.Mask(torch.from_numpy(scene_xyz(20, 30)).permute(2, 0, 1).expand(2, 3, 20, 30).clone())
    mask = tv_tensors.Mask(torch.zeros(2, 20, 30, dtype=torch.bool))
    out_image, out_xyz, out_mask = transform(image, xyz, mask)
    assert isinstance(out_image, tv_tensors.Image) and isinstance(out_xyz, tv_tensors.Mask)
    assert out_image.shape == (2, 3, 12, 12) and out_xyz.shape == (2, 3, 12, 12) and out_mask.shape == (2, 12, 12)
    assert _points(out_xyz[0]) <= _points(xyz[0]) | {(0.0, 0.0, 0.0)}
    assert transform.interpolation == InterpolationMode.BICUBIC  # anomalib finds it as the model's Resize
    with pytest.raises(TypeError, match="BoundingBoxes"):
        transform(tv_tensors.BoundingBoxes(torch.zeros(1, 4), format="XYXY", canvas_size=(20, 30)))
