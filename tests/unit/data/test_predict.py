# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0

import numpy as np
import pytest
import tifffile
from PIL import Image

from anomalib_cmdr.data import DataFileError, RGBXYZPredictDataset, find_sample_pairs
from anomalib_cmdr.data.predict import pair_files


def _write(folder, name, size=(8, 10)):
    folder.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((*size, 3), 100, np.uint8)).save(folder / f"{name}.png")
    return folder / f"{name}.png"


def _cloud(folder, name, size=(8, 10)):
    folder.mkdir(parents=True, exist_ok=True)
    tifffile.imwrite(folder / f"{name}.tiff", np.ones((*size, 3), np.float32))
    return folder / f"{name}.tiff"


def test_mvtec_sample_folders_and_flat_folders(tmp_path):
    for defect in ("crack", "good"):
        _write(tmp_path / defect / "rgb", "000")
        _cloud(tmp_path / defect / "xyz", "000")
        Image.fromarray(np.zeros((8, 10), np.uint8)).save(tmp_path / defect / "000_mask.png")  # ignored: no xyz
        (tmp_path / defect / "gt").mkdir()
        Image.fromarray(np.zeros((8, 10), np.uint8)).save(tmp_path / defect / "gt" / "000.png")
    (tmp_path / "crack" / "000_mask.png").unlink()
    (tmp_path / "good" / "000_mask.png").unlink()
    _write(tmp_path / "flat", "a")
    _cloud(tmp_path / "flat", "a")
    pairs = find_sample_pairs(tmp_path)
    assert [(p.parent.parent.name, p.name, q.name) for p, q in pairs] == [
        ("crack", "000.png", "000.tiff"),
        (tmp_path.name, "a.png", "a.tiff"),
        ("good", "000.png", "000.tiff"),
    ]
    item = RGBXYZPredictDataset(tmp_path)[0]
    assert item.image.shape == (3, 8, 10) and item.depth_map.shape == (3, 8, 10) and item.gt_label is None
    batch = RGBXYZPredictDataset(tmp_path).collate_fn([item, item])
    assert batch.depth_map.shape == (2, 3, 8, 10)


def test_missing_partner_and_empty_folder(tmp_path):
    _write(tmp_path / "rgb", "000")
    with pytest.raises(DataFileError, match=r"without a point cloud.*000\.png"):
        find_sample_pairs(tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataFileError, match="no RGB image"):
        find_sample_pairs(tmp_path / "empty")
    with pytest.raises(DataFileError, match="not a folder"):
        find_sample_pairs(tmp_path / "nothing")


def test_sizes_must_agree(tmp_path):
    _write(tmp_path, "a", size=(8, 10))
    _cloud(tmp_path, "a", size=(8, 8))
    with pytest.raises(DataFileError, match="one point per pixel"):
        RGBXYZPredictDataset(tmp_path)[0]


def test_pair_files(tmp_path):
    rgb, xyz = _write(tmp_path / "r", "a"), _cloud(tmp_path / "x", "a")
    assert pair_files(rgb, xyz) == [(rgb, xyz)]
    assert pair_files(tmp_path / "r", tmp_path / "x") == [(rgb, xyz)]
    _write(tmp_path / "r", "b")
    with pytest.raises(DataFileError, match="no point cloud for 1 image"):
        pair_files(tmp_path / "r", tmp_path / "x")
    with pytest.raises(DataFileError, match="two files, or two folders"):
        pair_files(rgb, tmp_path / "x")
