# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0

"""Tests of anomalib_cmdr.data.synthetic3d: the Synthetic3D datamodule."""

from __future__ import annotations

from pathlib import Path

import pytest
from anomalib.data.dataclasses import DepthBatch

from anomalib_cmdr.data import (
    Synthetic3D,
)
from anomalib_cmdr.data.synthetic import CATEGORIES
from tests.unit.data.helpers import tree_snapshot


def test_synthetic_datamodule(tmp_path: Path) -> None:

    root = tmp_path / "synthetic"
    kwargs = {"synth_image_size": 32, "num_train": 2, "num_val": 1, "num_test_good": 1, "num_test_defect": 1}
    datamodule = Synthetic3D(root=root, eval_batch_size=2, num_workers=0, **kwargs)
    assert datamodule.category == CATEGORIES[0]
    datamodule.prepare_data()
    assert (root / CATEGORIES[0] / "train" / "good" / "rgb" / "000.png").is_file()
    stamps = tree_snapshot(root)
    datamodule.prepare_data()  # present: not regenerated
    assert tree_snapshot(root) == stamps
    datamodule.setup()
    assert len(datamodule.train_data) == 2
    batch = next(iter(datamodule.test_dataloader()))
    assert isinstance(batch, DepthBatch) and batch.depth_map.shape == (2, 3, 32, 32)
    with pytest.raises(ValueError, match="unknown synthetic category"):
        Synthetic3D(root=root, category="bagel")


def test_a_folder_generated_with_other_settings_is_not_reused_silently(tmp_path) -> None:
    import pytest

    from anomalib_cmdr.data import Synthetic3D

    small = {"num_train": 2, "num_val": 1, "num_test_good": 1, "num_test_defect": 1, "num_workers": 0}
    Synthetic3D(root=tmp_path, synth_image_size=32, **small).prepare_data()
    Synthetic3D(root=tmp_path, synth_image_size=32, **small).prepare_data()  # same settings: reused
    with pytest.raises(ValueError, match=r"other settings \(image_size: folder 32, asked 48"):
        Synthetic3D(root=tmp_path, synth_image_size=48, **small).prepare_data()
