# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0

import csv
from types import SimpleNamespace

import torch

from anomalib_cmdr.models.cmdr.predictions import PredictionTable


def test_rows_from_post_processed_batches_and_atomic_write(tmp_path):
    table = PredictionTable()
    table.on_predict_start(None, None)
    outputs = SimpleNamespace(
        pred_score=torch.tensor([0.2, 0.9]),
        pred_label=torch.tensor([False, True]),
        image_path=["a.png", "b.png"],
        depth_path=["a.tiff", "b.tiff"],
    )
    table.on_predict_batch_end(None, None, outputs, None, 0)
    trainer = SimpleNamespace(default_root_dir=str(tmp_path), is_global_zero=True)
    table.on_predict_end(trainer, None)
    rows = list(csv.DictReader((tmp_path / "predictions.csv").open()))
    assert [(r["image_path"], r["pred_label"]) for r in rows] == [("a.png", "0"), ("b.png", "1")]
    assert float(rows[1]["pred_score"]) == 0.9
    assert sorted(p.name for p in tmp_path.iterdir()) == ["predictions.csv"]
