# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0

"""Deployment end to end: a trained checkpoint exported by the stock tools, run by the OpenVINO inferencer and
``anomalib-cmdr infer``, compared with the torch model; unlabelled folders scored by ``anomalib predict``."""

import csv
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from anomalib.deploy import CompressionType, ExportType
from anomalib.engine import Engine

from anomalib_cmdr import CMDR
from anomalib_cmdr.data import RGBXYZPredictDataset, Synthetic3D
from anomalib_cmdr.deploy import CMDROpenVINOInferencer
from tests.helpers import TINY
from tests.integration.test_e2e import SMALL_DATA

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent
ENV = {**os.environ, "HF_HUB_OFFLINE": "1"}


def run(*args: str) -> str:
    result = subprocess.run(list(args), capture_output=True, text=True, env=ENV, timeout=600, check=False)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    return output


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny CMDR trained for 2 epochs on a small Synthetic3D category; its checkpoint and test folder."""
    root = tmp_path_factory.mktemp("deploy")
    torch.manual_seed(0)
    model = CMDR(**TINY, image_size=32)
    datamodule = Synthetic3D(root=root / "data", **SMALL_DATA)
    engine = Engine(max_epochs=2, default_root_dir=root / "results", logger=False, accelerator="cpu")
    engine.fit(model, datamodule=datamodule)
    checkpoint = root / "cmdr.ckpt"
    engine.trainer.save_checkpoint(checkpoint)
    config = root / "cmdr.yaml"
    model_config = {"class_path": "anomalib_cmdr.CMDR", "init_args": {**TINY, "image_size": 32}}
    config.write_text(yaml.safe_dump({"model": model_config}))
    return checkpoint, config, root / "data" / "disc" / "test", root


def torch_predictions(checkpoint: Path, folder: Path) -> dict[str, tuple[float, bool]]:
    """Post-processed scores and labels of the checkpoint's torch model on ``folder``'s samples (Engine.predict)."""
    model = CMDR.load_from_checkpoint(checkpoint, map_location="cpu")
    engine = Engine(logger=False, accelerator="cpu", default_root_dir=checkpoint.parent / "torch_predict")
    dataset = RGBXYZPredictDataset(folder)
    batches = engine.predict(model, dataset=dataset, return_predictions=True)
    return {
        path: (float(score), bool(label))
        for batch in batches
        for path, score, label in zip(batch.image_path, batch.pred_score, batch.pred_label, strict=True)
    }


def torch_scores(checkpoint: Path, folder: Path) -> dict[str, float]:
    """Post-processed scores of the checkpoint's torch model on ``folder``'s samples."""
    return {path: score for path, (score, _) in torch_predictions(checkpoint, folder).items()}


def test_stock_export_then_infer_matches_torch(trained):
    checkpoint, _, test_folder, root = trained
    run(
        str(BIN / "anomalib"), "export", "--model", "CMDR", "--export_type", "openvino",
        "--ckpt_path", str(checkpoint), "--export_root", str(root / "export"),
    )  # fmt: skip
    folder = root / "export" / "weights" / "openvino"
    assert {"model.xml", "model.bin", "metadata.json"} <= {p.name for p in folder.iterdir()}
    output = run(
        str(BIN / "anomalib-cmdr"), "infer", "--model", str(folder), "--input", str(test_folder),
        "--output", str(root / "infer"),
    )  # fmt: skip
    rows = list(csv.DictReader((root / "infer" / "predictions.csv").open()))
    samples = RGBXYZPredictDataset(test_folder).pairs
    assert len(rows) == len(samples) and f"{len(samples)} sample(s)" in output
    assert len(list((root / "infer" / "images").glob("*.png"))) == len(samples)
    reference = torch_predictions(checkpoint, test_folder)
    for row in rows:
        score, label = reference[row["image_path"]]
        assert abs(float(row["pred_score"]) - score) < 1e-4, row
        if abs(score - 0.5) > 1e-4:  # a sample at the threshold (the one that set it) may fall either side
            assert row["pred_label"] == str(int(label)), row


def test_engine_export_onnx_and_fp16_from_the_checkpoint(trained):
    checkpoint, _, test_folder, root = trained
    model = CMDR(**TINY, image_size=32)
    engine = Engine(logger=False, accelerator="cpu")
    onnx = engine.export(model, ExportType.ONNX, export_root=root / "onnx", ckpt_path=checkpoint)
    fp16 = engine.export(
        model,
        ExportType.OPENVINO,
        export_root=root / "fp16",
        ckpt_path=checkpoint,
        compression_type=CompressionType.FP16,
    )
    rgb, xyz = RGBXYZPredictDataset(test_folder).pairs[0]
    scores = [CMDROpenVINOInferencer(path.parent).predict(rgb, xyz).pred_score[0] for path in (onnx, fp16)]
    reference = torch_scores(checkpoint, test_folder)[str(rgb)]
    assert abs(scores[0] - reference) < 1e-4 and abs(scores[1] - reference) < 1e-2


def test_int8_ptq_calibrates_on_both_modalities(trained):
    checkpoint, _, test_folder, root = trained
    model = CMDR.load_from_checkpoint(checkpoint, map_location="cpu")
    datamodule = Synthetic3D(root=root / "data", **SMALL_DATA)
    path = model.to_openvino(root / "int8", compression_type=CompressionType.INT8_PTQ, datamodule=datamodule)
    inferencer = CMDROpenVINOInferencer(path.parent)
    assert inferencer.spec.precision == "INT8"
    pairs = RGBXYZPredictDataset(test_folder).pairs
    scores = np.array([inferencer.predict(rgb, xyz).pred_score[0] for rgb, xyz in pairs])
    reference = torch_scores(checkpoint, test_folder)
    expected = np.array([reference[str(rgb)] for rgb, _ in pairs])
    # the scores keep their spread and order (quantising more than convolutions and matmuls collapsed them)
    assert np.ptp(scores) > 0.5 * np.ptp(expected)
    assert np.corrcoef(scores, expected)[0, 1] > 0.9


def test_stock_predict_scores_an_unlabelled_folder(trained):
    checkpoint, config, test_folder, root = trained
    run(
        str(BIN / "anomalib"), "predict", "-c", str(config), "--ckpt_path", str(checkpoint),
        "--data", "anomalib_cmdr.data.RGBXYZPredictDataset", "--data.root", str(test_folder),
        "--default_root_dir", str(root / "predict"),
    )  # fmt: skip
    table = next((root / "predict").rglob("predictions.csv"))
    rows = list(csv.DictReader(table.open()))
    assert len(rows) == len(RGBXYZPredictDataset(test_folder)) and all(r["depth_path"].endswith(".tiff") for r in rows)
    assert list(table.parent.rglob("images/**/*.png")), "no pictures beside predictions.csv"
