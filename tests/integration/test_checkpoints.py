# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0

"""A checkpoint of another model, or of a CMDR of another architecture, gets a clear error."""

import pytest
import torch
from anomalib.engine import Engine
from anomalib.models import Padim

from anomalib_cmdr import CMDR
from anomalib_cmdr.data import Synthetic3D

OFFLINE = {"rgb_backbone": "resnet18", "rgb_layers": [1, 2], "xyz_backbone": "fpfh", "pretrained": False}


@pytest.mark.slow
def test_foreign_and_mismatched_checkpoints_are_refused_by_name(tmp_path):
    datamodule = Synthetic3D(
        root=tmp_path / "data", synth_image_size=32, num_train=2, num_val=1, num_test_good=1, num_test_defect=1,
        defect_types=["crack"], num_workers=0,
    )  # fmt: skip
    common = {"logger": False, "accelerator": "cpu", "max_epochs": 1, "num_sanity_val_steps": 0}
    padim = Engine(default_root_dir=tmp_path / "padim", **common)
    padim.fit(Padim(backbone="resnet18", pre_trained=False, visualizer=False), datamodule=datamodule)
    padim_checkpoint = str(next((tmp_path / "padim").rglob("*.ckpt")))
    torch.manual_seed(0)
    cmdr = Engine(default_root_dir=tmp_path / "cmdr", **common)
    cmdr.fit(CMDR(**OFFLINE, image_size=32, grid_size=16, visualizer=False), datamodule=datamodule)
    cmdr_checkpoint = str(next((tmp_path / "cmdr").rglob("*.ckpt")))

    engine = Engine(default_root_dir=tmp_path / "test", **common)
    with pytest.raises(ValueError, match=r"padim.*is not a CMDR checkpoint \(its hyper-parameters are .*backbone"):
        engine.test(CMDR(**OFFLINE, image_size=32, grid_size=16), datamodule=datamodule, ckpt_path=padim_checkpoint)
    with pytest.raises(ValueError, match=r"another architecture \(grid_size: checkpoint 16, this model 32\)"):
        engine.test(CMDR(**OFFLINE, image_size=32, grid_size=32), datamodule=datamodule, ckpt_path=cmdr_checkpoint)
    # the matching configuration loads it
    metrics = engine.test(
        CMDR(**OFFLINE, image_size=32, grid_size=16), datamodule=datamodule, ckpt_path=cmdr_checkpoint
    )
    assert 0.0 <= metrics[0]["image_AUROC"] <= 1.0
