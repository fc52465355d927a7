# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0

"""Tests of anomalib_cmdr.data.io: the validated RGB, xyz and mask readers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from anomalib_cmdr.data import (
    DataFileError,
    DataFileWarning,
    read_mask,
    read_rgb,
    read_xyz,
)
from tests.unit.data.helpers import scene_xyz, write_png, write_tiff


def test_read_good_files(tmp_path: Path) -> None:
    rgb = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3)
    assert np.array_equal(read_rgb(write_png(tmp_path / "rgb.png", rgb)), rgb)
    gray = read_rgb(write_png(tmp_path / "gray.png", rgb[..., 0]))
    assert gray.shape == (4, 5, 3) and gray.dtype == np.uint8 and np.array_equal(gray[..., 2], rgb[..., 0])
    rgba = read_rgb(write_png(tmp_path / "rgba.png", np.dstack([rgb, np.full((4, 5), 7, np.uint8)])))
    assert np.array_equal(rgba, rgb)
    gray16 = read_rgb(write_png(tmp_path / "gray16.png", np.full((4, 5), 65535, np.uint16)))
    assert gray16.dtype == np.uint8 and (gray16 == 255).all()

    xyz = scene_xyz(8, 9)
    read = read_xyz(write_tiff(tmp_path / "xyz.tiff", xyz))
    assert read.dtype == np.float32 and read.shape == (8, 9, 3) and np.array_equal(read, xyz)
    as_double = read_xyz(write_tiff(tmp_path / "xyz64.tiff", xyz.astype(np.float64)))
    assert as_double.dtype == np.float32

    mask = read_mask(write_png(tmp_path / "gt.png", np.array([[0, 1], [255, 0]], np.uint8)))
    assert mask.dtype == bool and mask.tolist() == [[False, True], [True, False]]


def test_greyscale_alpha_mask_reads_its_grey_channel(tmp_path: Path) -> None:
    from PIL import Image

    grey = np.array([[0, 255], [0, 0]], np.uint8)
    Image.fromarray(np.dstack([grey, np.full_like(grey, 255)]), mode="LA").save(tmp_path / "la.png")
    assert read_mask(tmp_path / "la.png").tolist() == [[False, True], [False, False]]


def test_sixteen_bit_rgb_scales_by_the_mode_not_the_values(tmp_path: Path) -> None:
    dark = read_rgb(write_png(tmp_path / "dark16.png", np.full((2, 2), 200, np.uint16)))
    bright = np.full((2, 2), 200, np.uint16)
    bright[0, 0] = 65535
    mixed = read_rgb(write_png(tmp_path / "mixed16.png", bright))
    assert dark[1, 1, 0] == mixed[1, 1, 0] == 1  # 200 / 257, rounded, in both files


@pytest.mark.parametrize("reader", [read_rgb, read_xyz, read_mask])
def test_missing_file(tmp_path: Path, reader) -> None:
    with pytest.raises(DataFileError, match=r"nope\..*does not exist"):
        reader(tmp_path / "nope.png")


def test_corrupted_png(tmp_path: Path) -> None:
    good = write_png(tmp_path / "good.png", np.zeros((16, 16, 3), np.uint8)).read_bytes()
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(good[: len(good) // 2])
    garbage = tmp_path / "garbage.png"
    garbage.write_bytes(b"this is not an image at all")
    for path in (truncated, garbage):
        with pytest.raises(DataFileError, match=path.name) as info:
            read_rgb(path)
        assert "cannot read RGB image" in str(info.value)
        with pytest.raises(DataFileError, match=path.name):
            read_mask(path)


def test_corrupted_tiff(tmp_path: Path) -> None:
    good = write_tiff(tmp_path / "good.tiff", scene_xyz(16, 16)).read_bytes()
    for name, content in [("truncated.tiff", good[:200]), ("garbage.tiff", b"II*\x00garbage" * 3)]:
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(DataFileError, match=f"{name}.*cannot read point cloud TIFF"):
            read_xyz(path)


@pytest.mark.parametrize("shape", [(8, 9), (8, 9, 4), (8, 9, 1), (2, 8, 9, 3)])
def test_xyz_with_wrong_shape(tmp_path: Path, shape: tuple[int, ...]) -> None:
    path = write_tiff(tmp_path / "bad.tiff", np.ones(shape, np.float32))
    with pytest.raises(DataFileError, match=r"bad\.tiff: point cloud must have shape \(H, W, 3\)"):
        read_xyz(path)


def test_nan_and_inf_become_holes_with_warning(tmp_path: Path) -> None:
    xyz = scene_xyz(8, 9, holes=False)
    xyz[0, 0, 0] = np.nan
    xyz[1, 2, 2] = np.inf
    xyz[3, 3] = -np.inf
    path = write_tiff(tmp_path / "nan.tiff", xyz)
    with pytest.warns(DataFileWarning, match=r"nan\.tiff: 3 point\(s\) with NaN or inf"):
        read = read_xyz(path)
    assert np.isfinite(read).all()
    for row, col in [(0, 0), (1, 2), (3, 3)]:
        assert read[row, col].tolist() == [0.0, 0.0, 0.0]  # all three coordinates, not only the broken one
    untouched = np.ones(xyz.shape[:2], bool)
    untouched[[0, 1, 3], [0, 2, 3]] = False
    assert np.array_equal(read[untouched], xyz[untouched])
    # said once per file: the next epochs read the same file again silently, with the same repair
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", DataFileWarning)
        assert np.array_equal(read_xyz(path), read)
