# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0

"""A part without its point cloud or RGB image, through anomalib's Engine: trained, tested, predicted."""

import csv
import logging
import shutil
from pathlib import Path

import pytest
import torch
from anomalib.engine import Engine

from anomalib_cmdr import CMDR
from anomalib_cmdr.data import RGBXYZFolder
from anomalib_cmdr.data.synthetic import synthesize
from tests.helpers import TINY


@pytest.mark.slow
def test_incomplete_samples_train_test_and_predict(tmp_path, caplog):
    root = synthesize(
        tmp_path / "data",
        categories=["disc"],
        image_size=48,
        num_train=6,
        num_val=2,
        num_test_good=4,
        num_test_defect=1,
        defect_types=["crack", "bump"],
    )
    category = root / "disc"
    # sensor dropouts: a training sample without point cloud, test samples without cloud or without image
    (category / "train" / "good" / "xyz" / "000.tiff").unlink()
    (category / "test" / "good" / "xyz" / "000.tiff").unlink()
    (category / "test" / "crack" / "rgb" / "000.png").unlink()
    (category / "test" / "good" / "rgb" / "001.png").unlink()
    datamodule = RGBXYZFolder(
        category, allow_incomplete=True, train_batch_size=3, eval_batch_size=8, num_workers=0, seed=0
    )
    torch.manual_seed(0)
    model = CMDR(**TINY, image_size=32)
    engine = Engine(max_epochs=2, default_root_dir=tmp_path / "out", logger=False, accelerator="cpu")
    with caplog.at_level(logging.WARNING):
        engine.fit(model, datamodule=datamodule)
    assert "1 training sample(s) of epoch 1 had no valid 3D point" in caplog.text

    # the validation (the test set: same_as_test) fitted the branch statistics on its complete normal samples
    alignment = model.model.branch_alignment
    assert alignment.fitted and int(alignment.num_samples) == 2  # 4 normal test samples, 2 incomplete
    assert (alignment.std > 0).all()

    metrics = engine.test(model, datamodule=datamodule)[0]
    assert 0.0 <= metrics["image_AUROC"] <= 1.0

    batches = engine.predict(model, dataloaders=datamodule.test_dataloader())
    branches = {}
    for batch in batches:
        assert torch.isfinite(batch.pred_score).all() and torch.isfinite(batch.anomaly_map).all()
        for image, depth, branch in zip(batch.image_path, batch.depth_path, batch.explanation, strict=True):
            path = Path(image or depth)
            branches[f"{path.parent.parent.name}/{path.name}"] = branch
    assert branches["good/000.png"] == "branch: rgb (no valid 3D point)"
    assert branches["crack/000.tiff"] == "branch: xyz (no RGB image)"
    assert branches["good/001.tiff"] == "branch: xyz (no RGB image)"
    assert branches["good/002.png"] == "branch: rgb+xyz"
    rows = list(csv.DictReader(next((tmp_path / "out").rglob("predictions.csv")).open()))
    assert sorted(row["branch"] for row in rows).count("rgb") == 1 and sum(r["branch"] == "xyz" for r in rows) == 2
    # pictures of incomplete samples are written too (the panel of the modality they have)
    assert len(list((tmp_path / "out").rglob("images/**/*.png"))) >= len(rows)
    shutil.rmtree(root)
