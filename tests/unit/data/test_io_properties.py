# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0

"""Property-based tests: the readers see random shapes, dtypes and values and give a valid array or a
``DataFileError`` naming the file, nothing else."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import tifffile
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, arrays
from PIL import Image

from anomalib_cmdr.data import DataFileError, read_mask, read_rgb, read_xyz

DTYPES = st.sampled_from([np.uint8, np.uint16, np.int32, np.float32, np.float64, np.complex64, np.bool_])
SHAPES = array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=6)


@settings(max_examples=60, deadline=None, derandomize=True)  # the same examples in every run: CI stays deterministic
@given(arrays(DTYPES, SHAPES))
def test_read_xyz_gives_a_valid_cloud_or_names_the_file(array):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "cloud.tiff"
        try:
            tifffile.imwrite(path, array)
        except Exception:  # tifffile refuses to write some of them: nothing to read then
            return
        try:
            xyz = read_xyz(path)
        except DataFileError as error:
            assert "cloud.tiff" in str(error)
            return
        assert xyz.dtype == np.float32 and xyz.ndim == 3 and xyz.shape[2] == 3 and np.isfinite(xyz).all()


@settings(max_examples=40, deadline=None, derandomize=True)  # the same examples in every run: CI stays deterministic
@given(st.binary(min_size=0, max_size=200), st.sampled_from(["png", "tiff"]))
def test_garbage_bytes_name_the_file(data, suffix):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"garbage.{suffix}"
        path.write_bytes(data)
        readers = [read_xyz] if suffix == "tiff" else [read_rgb, read_mask]
        for reader in readers:
            try:
                reader(path)
            except DataFileError as error:
                assert f"garbage.{suffix}" in str(error)


@settings(max_examples=40, deadline=None, derandomize=True)  # the same examples in every run: CI stays deterministic
@given(
    st.sampled_from(["L", "RGB", "RGBA", "LA", "I;16", "I", "F", "P", "1"]),
    st.integers(1, 8),
    st.integers(1, 8),
)
def test_image_modes_read_as_rgb_and_masks(mode, height, width):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "image.png" if mode not in {"F", "I"} else Path(folder) / "image.tiff"
        image = Image.new(mode, (width, height))
        try:
            image.save(path)
        except (OSError, ValueError):
            return
        rgb = read_rgb(path)
        assert rgb.shape == (height, width, 3) and rgb.dtype == np.uint8
        mask = read_mask(path)
        assert mask.shape == (height, width) and mask.dtype == bool and not mask.any()  # an all-zero image
