# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0

"""Single-modality trees and samples that lack one of their files (sensor dropouts)."""

import shutil

import pytest
import torch

from anomalib_cmdr.data import DataFileError, RGBXYZDataset, RGBXYZFolder
from anomalib_cmdr.data.samples import make_rgbxyz_samples


def _remove(category, kind):
    for folder in category.glob(f"*/*/{kind}"):
        shutil.rmtree(folder)


@pytest.mark.parametrize(("kept", "removed"), [("xyz", "rgb"), ("rgb", "xyz")])
def test_single_modality_tree_loads(category_root, kept, removed):
    _remove(category_root, removed)
    samples = make_rgbxyz_samples(category_root, "test")  # modality="auto" finds the tree's modality
    assert len(samples) == 5
    column = "image_path" if removed == "rgb" else "depth_path"
    assert (samples[column] == "").all()
    item = RGBXYZDataset(samples)[2]
    assert item.image.shape == item.depth_map.shape == (3, 24, 32)
    if removed == "rgb":
        assert item.image.isnan().all() and item.depth_map.abs().sum() > 0  # missing RGB: all NaN
    else:
        assert not item.depth_map.any() and torch.isfinite(item.image).all()  # missing cloud: no valid point
    assert item.gt_mask.shape == (24, 32)


def test_an_incomplete_sample_is_refused_unless_allowed(category_root):
    (category_root / "test" / "crack" / "xyz" / "001.tiff").unlink()
    (category_root / "test" / "good" / "rgb" / "000.png").unlink()
    with pytest.raises(DataFileError, match=r"001.png: no matching point cloud"):
        make_rgbxyz_samples(category_root, "test")
    samples = make_rgbxyz_samples(category_root, "test", allow_incomplete=True)
    assert len(samples) == 5
    rows = samples.set_index("sample_id")
    assert rows.loc["widget/test/crack/001", "depth_path"] == ""
    assert rows.loc["widget/test/good/000", "image_path"] == ""
    dataset = RGBXYZDataset(samples)
    by_id = {sample_id: i for i, sample_id in enumerate(dataset.samples.sample_id)}
    assert not dataset[by_id["widget/test/crack/001"]].depth_map.any()
    assert dataset[by_id["widget/test/good/000"]].image.isnan().all()
    # a batch mixes complete and incomplete samples
    batch = dataset.collate_fn([dataset[i] for i in range(len(dataset))])
    assert batch.image.shape[0] == 5


def test_forced_modality_and_bad_values(category_root):
    samples = make_rgbxyz_samples(category_root, "train", modality="xyz")
    assert (samples.image_path == "").all() and (samples.depth_path != "").all()
    with pytest.raises(ValueError, match="modality='depth'"):
        make_rgbxyz_samples(category_root, modality="depth")
    with pytest.raises(ValueError, match="modality='depth'"):
        RGBXYZFolder(category_root, modality="depth")


def test_a_table_row_without_any_file_is_refused(category_root):
    samples = make_rgbxyz_samples(category_root, "train")
    samples.loc[1, ["image_path", "depth_path"]] = ""
    with pytest.raises(DataFileError, match="neither an RGB image nor a point cloud"):
        RGBXYZDataset(samples)


def test_datamodule_serves_a_3d_only_tree(category_root):
    _remove(category_root, "rgb")
    datamodule = RGBXYZFolder(category_root, num_workers=0, train_batch_size=2)
    datamodule.setup()
    batch = next(iter(datamodule.train_dataloader()))
    assert batch.depth_map.shape[1] == 3 and batch.image.isnan().all()
