# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0

"""Tests of anomalib_cmdr.data.mvtec3d_ad: the MVTec3DAD datamodule."""

from __future__ import annotations

from pathlib import Path

import pytest
from anomalib.data.dataclasses import DepthBatch
from torch.utils.data import DataLoader

from anomalib_cmdr.data import (
    MVTec3DAD,
)


def test_mvtec3dad_datamodule(category_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import anomalib_cmdr.data.mvtec3d_ad as module

    calls = []
    monkeypatch.setattr(module, "download_and_extract", lambda root, info: calls.append((root, info.name)))
    root = category_root.parent
    datamodule = MVTec3DAD(root=root, category="widget", eval_batch_size=2, num_workers=0)
    datamodule.prepare_data()
    assert calls == []  # present: no download
    MVTec3DAD(root=root, category="bagel").prepare_data()
    assert calls == [(root, "mvtec_3d")]  # missing: anomalib's MVTec3D download

    datamodule.setup()
    batch = next(iter(DataLoader(datamodule.test_data, batch_size=2, collate_fn=datamodule.test_data.collate_fn)))
    assert isinstance(batch, DepthBatch) and batch.depth_map.shape == (2, 3, 24, 32)
    assert len(datamodule.val_data) == len(datamodule.test_data)  # same_as_test, like anomalib

    from_dir = MVTec3DAD(root=root, category="widget", val_split_mode="from_dir", num_workers=0)
    from_dir.setup()
    assert len(from_dir.val_data) == 2 and set(from_dir.val_data.samples.split) == {"val"}
    assert set(from_dir.val_data.samples.label_index) == {0}
