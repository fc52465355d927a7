# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0

"""Scale-out: CMDR through Lightning's DDP on two CPU processes (gloo), from the stock CLI."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.helpers import REPO_ROOT

DATA = [
    "--data", "anomalib_cmdr.data.Synthetic3D", "--data.synth_image_size", "32", "--data.num_train", "4",
    "--data.num_val", "1", "--data.num_test_good", "2", "--data.num_test_defect", "1",
    "--data.defect_types", "[crack, bump]", "--data.num_workers", "0",
]  # fmt: skip
MODEL = ["--model.image_size", "32", "--model.grid_size", "16", "--model.calibration", "zscore"]


def _cli(command: str, root: Path, out: Path, batch: int, *extra: str) -> dict[str, float]:
    args = [
        str(Path(sys.executable).parent / "anomalib"),
        command,
        "-c",
        str(REPO_ROOT / "configs/model/cmdr_offline.yaml"),
    ]
    args += [
        *DATA,
        "--data.root",
        str(root),
        "--data.train_batch_size",
        str(batch),
        "--data.eval_batch_size",
        str(batch),
    ]
    args += [*MODEL, "--trainer.accelerator", "cpu", "--seed_everything", "0", "--default_root_dir", str(out), *extra]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(args, capture_output=True, text=True, env=env, timeout=600, check=False)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    return {name: float(value) for name, value in re.findall(r"│\s+(\w+(?:@[\d.]+)?)\s+│\s+([\d.]+)\s+│", output)}


def _state(out: Path) -> dict[str, torch.Tensor]:
    return torch.load(next(out.rglob("*.ckpt")), map_location="cpu", weights_only=True)["state_dict"]


@pytest.mark.slow
def test_two_process_ddp_matches_one_process(tmp_path):
    """Two gloo processes with half the batch each against one process.

    Tolerances: the same test metrics from the same checkpoint to 1e-6 (distributed evaluation gathers every
    sample once: 4 test samples, 2 per process); training differs only in how the per-process mean losses are
    averaged (a mean of two means instead of one token mean), so metrics of the two trainings agree within
    0.05 pixel AUROC; the calibration statistics come from every training sample exactly once (each process
    reads its shard).
    """
    root = tmp_path / "data"
    ddp = ["--trainer.strategy", "ddp", "--trainer.devices", "2"]
    single = _cli("train", root, tmp_path / "single", 4, "--trainer.max_epochs", "2")
    double = _cli("train", root, tmp_path / "ddp", 2, "--trainer.max_epochs", "2", *ddp)
    assert abs(single["pixel_AUROC"] - double["pixel_AUROC"]) < 0.05, (single, double)
    for state in (_state(tmp_path / "single"), _state(tmp_path / "ddp")):
        assert int(state["model.calibration.count"]) == 4  # not 8: each process calibrated on its shard
    # the DDP-trained checkpoint tested by one and by two processes
    checkpoint = str(next((tmp_path / "ddp").rglob("*.ckpt")))
    one = _cli("test", root, tmp_path / "test1", 4, "--ckpt_path", checkpoint)
    two = _cli("test", root, tmp_path / "test2", 2, "--ckpt_path", checkpoint, *ddp)
    assert one.keys() == two.keys() and "image_AUROC" in one
    for name in one:
        assert abs(one[name] - two[name]) < 1e-6, (name, one, two)


@pytest.mark.slow
def test_ddp_feature_cache_each_process_caches_its_shard_with_identical_results(tmp_path):
    """Under DDP each process caches the samples of its shards (on disk), and training with the cache gives the very
    weights that training without it gives."""
    root = tmp_path / "data"
    ddp = ["--trainer.strategy", "ddp", "--trainer.devices", "2", "--trainer.max_epochs", "2"]
    _cli("train", root, tmp_path / "cached", 2, "--model.feature_cache", "disk", *ddp)
    _cli("train", root, tmp_path / "uncached", 2, "--model.feature_cache", "off", *ddp)
    entries = list((tmp_path / "cached").rglob("feature_cache/**/*.pt"))
    # anomalib's Engine gives each DDP process its own version folder, so each process has its own cache; together
    # they hold the 4 training samples, neither holds them all (each caches what its shards read)
    folders = {entry.parent for entry in entries}
    assert len({entry.name for entry in entries}) == 4, entries
    assert all(len(list(folder.glob("*.pt"))) < 4 for folder in folders), entries
    assert not list((tmp_path / "uncached").rglob("feature_cache"))
    cached, uncached = _state(tmp_path / "cached"), _state(tmp_path / "uncached")
    heads = [key for key in cached if key.startswith(("model.map", "model.Dec"))]
    assert heads and all(torch.equal(cached[key], uncached[key]) for key in heads)
