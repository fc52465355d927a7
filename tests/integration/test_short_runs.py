# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0

"""A shortened training keeps its result: validated, thresholded and checkpointed."""

import pytest
import torch
from anomalib.engine import Engine

from anomalib_cmdr import CMDR
from anomalib_cmdr.data import Synthetic3D
from tests.helpers import TINY


@pytest.mark.slow
def test_last_epoch_validates_whatever_check_val_every_n_epoch(tmp_path):
    datamodule = Synthetic3D(
        root=tmp_path / "data",
        synth_image_size=32,
        num_train=3,
        num_val=1,
        num_test_good=2,
        num_test_defect=1,
        defect_types=["crack"],
        train_batch_size=3,
        num_workers=0,
    )
    torch.manual_seed(0)
    model = CMDR(**TINY, image_size=32)
    # the offline configuration validates every 10 epochs; a user shortens the run to 2
    engine = Engine(
        max_epochs=2,
        check_val_every_n_epoch=10,
        default_root_dir=tmp_path / "out",
        logger=False,
        accelerator="cpu",
        num_sanity_val_steps=0,
    )
    engine.fit(model, datamodule=datamodule)
    assert not torch.isnan(model.post_processor._image_threshold), "no threshold learned"
    assert model.model.branch_alignment.fitted
    assert list((tmp_path / "out").rglob("*.ckpt")), "no checkpoint written"
    assert engine.trainer.check_val_every_n_epoch == 10  # the user's setting is given back after the fit
