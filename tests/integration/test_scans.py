# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0

"""Raw scans end to end: CMDR's 3D branch on chunks, through anomalib's Engine and the stock CLI."""

import csv
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import open3d as o3d
import pytest
import torch
from anomalib.engine import Engine

from anomalib_cmdr import CMDR
from anomalib_cmdr.data import ScanReport, SyntheticScans
from anomalib_cmdr.data.scans.io import read_point_cloud
from tests.helpers import REPO_ROOT

BIN = Path(sys.executable).parent
TINY = {"num_train": 3, "num_test_good": 1, "num_test_defect": 1, "points_per_profile": 32, "profiles": 64}
CHUNKS = {"chunk_size": 256, "train_batch_size": 8, "eval_batch_size": 8, "num_workers": 0}


def check_scan_outputs(folder: Path, data_root: Path) -> None:
    rows = list(csv.DictReader((folder / "scan_scores.csv").open()))
    assert sorted(row["label"] for row in rows) == ["burr", "good", "missing", "tear"]
    for row in rows:
        scan = Path(row["scan_path"])
        ply = folder / scan.relative_to(data_root).with_suffix(".ply")
        cloud = o3d.t.io.read_point_cloud(str(ply))
        np.testing.assert_allclose(cloud.point.positions.numpy(), read_point_cloud(scan), rtol=1e-6)
        scores = cloud.point.score.numpy().ravel()
        # post-processed (normalised by the thresholds learned on validation): every point scored, in [0, 1]
        assert np.isfinite(scores).all() and 0 <= scores.min() <= scores.max() <= 1
        assert 0 <= float(row["scan_score"]) <= 1 and int(row["num_chunks"]) == 8  # about 2,000 points
        assert cloud.point.colors.numpy().dtype == np.uint8 and ply.with_suffix(".png").is_file()


@pytest.mark.slow
def test_engine_trains_and_tests_on_raw_scans(tmp_path):
    datamodule = SyntheticScans(tmp_path / "scans", seed=0, **TINY, **CHUNKS)
    torch.manual_seed(0)
    model = CMDR(modality="xyz", xyz_backbone="fpfh", pretrained=False, image_size=16)
    report = ScanReport()
    engine = Engine(
        max_epochs=1, default_root_dir=tmp_path / "results", num_sanity_val_steps=0, logger=False,
        accelerator="cpu", callbacks=[report], enable_progress_bar=False,
    )  # fmt: skip
    engine.fit(model, datamodule=datamodule)
    metrics = engine.test(model, datamodule=datamodule)[0]
    for name in ("image_AUROC", "pixel_AUROC", "pixel_AUPRO@0.3", "scan_AUROC", "point_AUROC"):
        assert 0.0 <= metrics[name] <= 1.0, name
    check_scan_outputs(report.csv_path.parent, tmp_path / "scans")
    # chunk pictures by anomalib's visualizer, one per chunk (no RGB: the depth panel comes from the chunk itself)
    assert len(list((tmp_path / "results").rglob("images/**/chunk_*.png"))) == 4 * 8
    batches = engine.predict(model, datamodule=datamodule)
    assert batches[0].anomaly_map.shape[-2:] == (16, 16)
    assert len(report.results) == 4, "predict re-assembles the scans too"


@pytest.mark.slow
def test_stock_cli_trains_and_tests_on_a_folder_of_ply_scans(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    data = tmp_path / "plant" / "scans"
    synth = [str(BIN / "anomalib-cmdr"), "synth-scans", str(data), "--num-train", "3", "--num-test-good", "1"]
    synth += ["--num-test-defect", "1", "--points-per-profile", "32", "--profiles", "64"]
    result = subprocess.run(synth, capture_output=True, text=True, env=env, timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    assert (data / "test" / "tear" / "000.labels.txt").is_file()
    train = [str(BIN / "anomalib"), "train", "-c", str(REPO_ROOT / "configs" / "model" / "cmdr_scan.yaml")]
    train += ["--data", "anomalib_cmdr.data.ScanFolder", "--data.root", str(data), "--data.chunk_size", "256"]
    train += ["--data.num_workers", "0", "--model.image_size", "16", "--trainer.max_epochs", "1"]
    train += ["--trainer.check_val_every_n_epoch", "1", "--default_root_dir", str(tmp_path / "results")]
    result = subprocess.run(train, capture_output=True, text=True, env=env, timeout=600, check=False)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    for name in ("image_AUROC", "pixel_AUROC", "pixel_AUPRO@0.3", "point_AUROC", "scan_AUROC"):
        assert name in output, name
    check_scan_outputs(next((tmp_path / "results").rglob("scan_scores.csv")).parent, data)
