# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0

"""Tests of anomalib_cmdr.data.folder: the RGBXYZFolder datamodule."""

from __future__ import annotations

from pathlib import Path

from anomalib.data.dataclasses import DepthBatch

from anomalib_cmdr.data import (
    RGBXYZFolder,
)
from tests.unit.data.helpers import write_category


def test_category_without_masks_is_classification(tmp_path: Path) -> None:
    category = write_category(tmp_path, "plain")
    for gt in category.glob("test/*/gt"):
        for file in gt.iterdir():
            file.unlink()
        gt.rmdir()
    datamodule = RGBXYZFolder(tmp_path, "plain", eval_batch_size=3, num_workers=0)
    datamodule.setup()
    assert datamodule.task == "classification"
    batch = next(iter(datamodule.test_dataloader()))
    assert batch.gt_mask is None and batch.depth_map.shape == (3, 3, 24, 32)


def test_folder_datamodule_collates(category_root: Path) -> None:
    datamodule = RGBXYZFolder(category_root, eval_batch_size=2, train_batch_size=2, num_workers=0)
    assert datamodule.category == "widget"
    datamodule.setup()
    assert len(datamodule.test_data) == 5 and len(datamodule.train_data) == 3 and len(datamodule.val_data) == 5
    loader = datamodule.test_dataloader()
    assert loader.batch_size == 2
    batches = list(loader)
    batch = batches[0]
    assert isinstance(batch, DepthBatch)
    assert batch.depth_map.shape == (2, 3, 24, 32) and batch.image.shape == (2, 3, 24, 32)  # the files' size
    assert batch.gt_mask.shape == (2, 24, 32) and batch.gt_label.shape == (2,)
    assert sum(len(b.image_path) for b in batches) == 5
    train_batch = next(iter(datamodule.train_dataloader()))
    assert train_batch.depth_map.shape == (2, 3, 24, 32) and not train_batch.gt_mask.any()


def test_default_workers_fit_the_machine(tmp_path) -> None:
    import os

    from anomalib_cmdr.data.folder import DEFAULT_NUM_WORKERS

    assert min(8, os.cpu_count() or 1) == DEFAULT_NUM_WORKERS
    assert RGBXYZFolder(tmp_path).num_workers == DEFAULT_NUM_WORKERS
