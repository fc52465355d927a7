# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0

"""Tests of the sample table of a category folder (``anomalib_cmdr.data.samples``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from anomalib_cmdr.data import (
    DataFileError,
    RGBXYZDataset,
    RGBXYZFolder,
    make_rgbxyz_samples,
)
from tests.unit.data.helpers import scene_xyz, write_tiff


def test_sample_table(category_root: Path) -> None:
    samples = make_rgbxyz_samples(category_root)
    assert samples.attrs["task"] == "segmentation"
    assert sorted(samples.split.unique()) == ["test", "train", "val"]
    test = make_rgbxyz_samples(category_root, "test")
    assert test.groupby("defect_type").size().to_dict() == {"crack": 2, "dent": 1, "good": 2}
    assert set(test.label_index[test.defect_type == "good"]) == {0}
    assert set(test.label_index[test.defect_type != "good"]) == {1}
    assert test.sample_id.is_unique and "widget/test/crack/000" in set(test.sample_id)
    assert all(Path(p).is_absolute() for p in test.image_path)
    assert len(make_rgbxyz_samples(category_root, "validation")) == 2
    assert test.attrs["task"] == "segmentation"


def test_train_samples_have_no_nan_mask_path(category_root: Path) -> None:
    """anomalib's MVTec3D crashes with pandas >= 3 on train samples (NaN mask_path); this table must not."""
    train = make_rgbxyz_samples(category_root, "train")
    assert not train.mask_path.isna().any() and (train.mask_path == "").all()
    item = RGBXYZDataset(train)[0]
    assert item.mask_path is None and not item.gt_mask.any()  # DepthItem turns "" into None
    # a hand-made table whose mask_path holds NaN / None (what pandas 3 produces) is accepted too
    table = train.copy()
    table["mask_path"] = pd.Series([np.nan, None, np.nan], dtype=object)
    dataset = RGBXYZDataset(table)
    assert (dataset.samples.mask_path == "").all()
    assert [dataset[i].mask_path for i in range(3)] == [None, None, None]
    assert RGBXYZDataset(train.drop(columns="mask_path"))[0].mask_path is None


def test_missing_category_lists_available(tmp_path: Path, category_root: Path) -> None:
    with pytest.raises(DataFileError, match=r"nothere: category folder does not exist.*\['widget'\]"):
        make_rgbxyz_samples(category_root.parent / "nothere")
    with pytest.raises(DataFileError, match="does not exist either"):
        make_rgbxyz_samples(tmp_path / "no_root" / "widget")
    datamodule = RGBXYZFolder(category_root.parent, category="nothere", num_workers=0)
    with pytest.raises(DataFileError, match="nothere"):
        datamodule.setup()


def test_sample_missing_xyz_or_rgb(category_root: Path) -> None:
    (category_root / "test" / "crack" / "xyz" / "001.tiff").unlink()
    with pytest.raises(DataFileError, match=r"crack/rgb/001\.png: no matching point cloud"):
        make_rgbxyz_samples(category_root, "test")
    write_tiff(category_root / "test" / "crack" / "xyz" / "001.tiff", scene_xyz(24, 32))
    (category_root / "train" / "good" / "rgb" / "002.png").unlink()
    with pytest.raises(DataFileError, match=r"good/xyz/002\.tiff: no matching RGB image"):
        make_rgbxyz_samples(category_root, "train")


def test_anomalous_sample_without_mask(category_root: Path) -> None:
    (category_root / "test" / "dent" / "gt" / "000.png").unlink()
    with pytest.raises(DataFileError, match=r"dent/rgb/000\.png: anomalous sample has no ground-truth mask"):
        make_rgbxyz_samples(category_root, "test")


def test_normal_looking_folders_are_never_silently_defects(category_root: Path) -> None:
    (category_root / "test" / "good").rename(category_root / "test" / "Good")
    with pytest.raises(DataFileError, match=r"Good: looks like normal samples.*normal_dirs"):
        make_rgbxyz_samples(category_root, "test")
    test = make_rgbxyz_samples(category_root, "test", normal_dirs=["good", "Good"])
    assert set(test.label_index[test.defect_type == "Good"]) == {0}
    datamodule = RGBXYZFolder(category_root, normal_dirs=["good", "Good"], num_workers=0)
    datamodule.setup()
    assert (datamodule.test_data.samples.label_index == 0).sum() == 2


def test_train_holds_only_normal_folders(category_root: Path) -> None:
    (category_root / "train" / "good").rename(category_root / "train" / "good_batch2")
    with pytest.raises(DataFileError, match=r"good_batch2: train/ may hold only normal samples"):
        make_rgbxyz_samples(category_root, "train")
    assert len(make_rgbxyz_samples(category_root, "train", normal_dirs=("good", "good_batch2"))) > 0
