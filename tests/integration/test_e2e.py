# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0

"""End to end through anomalib: Engine fit/test/predict, checkpoints, the stock CLI, visualizations."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from anomalib.engine import Engine

from anomalib_cmdr import CMDR
from anomalib_cmdr.data import Synthetic3D
from tests.helpers import REPO_ROOT, TINY

SMALL_DATA = {
    "synth_image_size": 64,
    "num_train": 6,
    "num_val": 2,
    "num_test_good": 3,
    "num_test_defect": 1,
    "train_batch_size": 3,
    "eval_batch_size": 4,
    "num_workers": 0,
}


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("synthetic")


@pytest.fixture(scope="module")
def trained(data_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("results")
    torch.manual_seed(0)
    model = CMDR(**TINY, image_size=32)
    datamodule = Synthetic3D(root=data_root, **SMALL_DATA)
    engine = Engine(max_epochs=2, default_root_dir=out, num_sanity_val_steps=0, logger=False, accelerator="cpu")
    engine.fit(model, datamodule=datamodule)
    metrics = engine.test(model, datamodule=datamodule)[0]
    return model, datamodule, engine, metrics, out


@pytest.mark.slow
def test_engine_fit_test_reports_all_metrics(trained):
    _, _, _, metrics, out = trained
    for name in ("image_AUROC", "pixel_AUROC", "pixel_AUPRO@0.3", "pixel_AUPRO@0.01"):
        assert 0.0 <= metrics[name] <= 1.0, name
    images = list(Path(out).rglob("images/**/*.png"))
    # one picture per test sample: defect types sharing file names (000.png) must not overwrite each other
    assert len(images) == 3 + 1 * 6, sorted(str(p) for p in images)
    assert any("/test/crack/" in str(p) for p in images)


@pytest.mark.slow
def test_predict_fills_thresholded_outputs(trained):
    model, datamodule, engine, _, _ = trained
    batches = engine.predict(model, dataloaders=datamodule.test_dataloader())
    batch = batches[0]
    assert batch.anomaly_map.shape[-2:] == (32, 32)
    assert batch.pred_label is not None and batch.pred_mask is not None


@pytest.mark.slow
def test_checkpoint_round_trip_gives_identical_maps(trained, tmp_path):
    model, datamodule, engine, _, _ = trained
    path = tmp_path / "cmdr.ckpt"
    engine.trainer.save_checkpoint(path)
    # weights_only loading (anomalib's default) with the backbones' weights restored from the checkpoint
    loaded = CMDR.load_from_checkpoint(path, weights_only=True, map_location="cpu")
    batch = next(iter(datamodule.test_dataloader()))
    model.pre_processor.on_test_batch_start(None, model, batch, 0)
    model.eval(), loaded.eval()
    with torch.no_grad():
        a, b = model(batch), loaded(batch)
    assert torch.equal(a.anomaly_map, b.anomaly_map) and torch.equal(a.pred_score, b.pred_score)


CONFIGS = REPO_ROOT / "configs" / "model"


def stock_cli(command: str, config: str, options: list[str], data_root: Path, out: Path, *extra: str):
    """Run the stock ``anomalib`` command on a small Synthetic3D tree; returns (result, combined output)."""
    args = [str(Path(sys.executable).parent / "anomalib"), command, "-c", str(CONFIGS / config), *options]
    args += ["--data", "anomalib_cmdr.data.Synthetic3D", "--data.root", str(data_root), "--default_root_dir", str(out)]
    for key, value in SMALL_DATA.items():
        args += [f"--data.{key}", str(value)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    result = subprocess.run([*args, *extra], capture_output=True, text=True, env=env, timeout=600, check=False)
    output = result.stdout + result.stderr
    assert result.returncode == 0, (command, output[-3000:])
    return result, output


@pytest.mark.slow
def test_stock_cli_trains_and_tests_on_a_new_synthetic_root(tmp_path):
    options = [
        "--model",
        "CMDR",
        "--model.image_size",
        "32",
        "--model.xyz_model_kwargs",
        "{num_group: 32, group_size: 16}",
    ]
    options += ["--trainer.max_epochs", "1"]
    _, output = stock_cli("train", "cmdr_small.yaml", options, tmp_path / "new", tmp_path / "results")
    assert (tmp_path / "new" / "disc" / "train" / "good" / "xyz" / "000.tiff").is_file()
    for name in ("image_AUROC", "pixel_AUROC", "pixel_AUPRO@0.3", "pixel_AUPRO@0.01"):
        assert name in output, name

    # the CLI's test and predict from the trained checkpoint
    checkpoint = str(next((tmp_path / "results").rglob("*.ckpt")))
    _, output = stock_cli(
        "test", "cmdr_small.yaml", options, tmp_path / "new", tmp_path / "tested", "--ckpt_path", checkpoint
    )
    assert "pixel_AUPRO@0.3" in output
    stock_cli(
        "predict", "cmdr_small.yaml", options, tmp_path / "new", tmp_path / "predicted", "--ckpt_path", checkpoint
    )
    assert list((tmp_path / "predicted").rglob("images/**/*.png")), "predict wrote no visualization"


@pytest.mark.slow
def test_offline_configuration_end_to_end_from_the_stock_cli(tmp_path):
    """cmdr_offline.yaml (random ResNet18 + FPFH) trains and tests with no network and no weight file."""
    options = ["--model.image_size", "64", "--model.grid_size", "32"]
    options += ["--trainer.max_epochs", "1", "--trainer.check_val_every_n_epoch", "1"]
    _, output = stock_cli("train", "cmdr_offline.yaml", options, tmp_path / "data", tmp_path / "results")
    assert "xyz_backbone: fpfh" in next((tmp_path / "results").rglob("config.yaml")).read_text()
    for name in ("image_AUROC", "pixel_AUROC", "pixel_AUPRO@0.3"):
        assert name in output, name
    # the paper's fusion (calibration: none): no calibration statistics in the checkpoint; heads and backbones are
    state = torch.load(next((tmp_path / "results").rglob("*.ckpt")), map_location="cpu", weights_only=True)
    assert (
        "model.calibration.count" not in state["state_dict"] and "model.Dec2D.attn.norm1.weight" in state["state_dict"]
    )


@pytest.mark.slow
def test_samples_of_different_native_sizes_train_and_test_through_the_engine(tmp_path):
    """The model's resize reaches every item before collation: no size setting on the data side."""
    from anomalib_cmdr.data import RGBXYZFolder
    from tests.unit.data.helpers import write_sample

    root = tmp_path / "parts"
    sizes = [(40, 40), (30, 50), (48, 36)]
    for index, size in enumerate(sizes * 2):
        write_sample(root / "train" / "good", f"{index:03d}", size, seed=index)
    for index, size in enumerate(sizes):
        write_sample(root / "test" / "good", f"{index:03d}", size, seed=10 + index, mask=False)
        write_sample(root / "test" / "dent", f"{index:03d}", size, seed=20 + index, mask=True)
    datamodule = RGBXYZFolder(root, train_batch_size=3, eval_batch_size=3, num_workers=0)
    torch.manual_seed(0)
    model = CMDR(**TINY, image_size=32, grid_size=16)
    engine = Engine(max_epochs=1, default_root_dir=tmp_path, num_sanity_val_steps=0, logger=False, accelerator="cpu")
    engine.fit(model, datamodule=datamodule)
    metrics = engine.test(model, datamodule=datamodule)[0]
    assert 0.0 <= metrics["pixel_AUROC"] <= 1.0
    batch = engine.predict(model, datamodule=datamodule)[0]
    assert batch.anomaly_map.shape[-2:] == (32, 32) and batch.depth_map.shape[-2:] == (32, 32)


@pytest.mark.slow
def test_seeded_cli_runs_are_repeatable(tmp_path):
    """`--seed_everything 0` makes two stock-CLI trainings identical (anomalib 2.7's CLI alone never seeds)."""
    options = ["--model.image_size", "32", "--model.grid_size", "16", "--trainer.max_epochs", "2"]
    options += ["--seed_everything", "0", "--trainer.check_val_every_n_epoch", "2"]
    states = []
    for run in ("a", "b"):
        stock_cli("fit", "cmdr_offline.yaml", options, tmp_path / "data", tmp_path / run)
        checkpoint = next((tmp_path / run).rglob("*.ckpt"))
        states.append(torch.load(checkpoint, map_location="cpu", weights_only=True)["state_dict"])
    heads = [key for key in states[0] if key.startswith(("model.Dec2D", "model.map2Dto3D"))]
    assert heads
    for key, value in states[0].items():
        torch.testing.assert_close(states[1][key], value, rtol=0, atol=0, equal_nan=True, msg=key)


@pytest.mark.slow
def test_interrupted_training_resumed_from_the_last_checkpoint_reaches_the_same_weights(tmp_path):
    from lightning.pytorch import seed_everything

    def fit(name: str, max_epochs: int, ckpt_path: Path | None = None) -> CMDR:
        seed_everything(0)
        model = CMDR(**TINY, image_size=32)
        datamodule = Synthetic3D(root=tmp_path / "data", **SMALL_DATA)
        engine = Engine(  # anomalib's checkpoint callback saves after every epoch
            max_epochs=max_epochs, default_root_dir=tmp_path / name, logger=False,
            accelerator="cpu", num_sanity_val_steps=0, enable_progress_bar=False,
        )  # fmt: skip
        engine.fit(model, datamodule=datamodule, ckpt_path=ckpt_path)
        return model

    uninterrupted = fit("whole", 3)
    fit("interrupted", 1)  # stopped after one epoch
    resumed = fit("resumed", 3, ckpt_path=next((tmp_path / "interrupted").rglob("*.ckpt")))
    for key, value in uninterrupted.model.state_dict().items():
        torch.testing.assert_close(resumed.model.state_dict()[key], value, rtol=0, atol=0, equal_nan=True, msg=key)
