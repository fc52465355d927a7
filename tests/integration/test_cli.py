# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0

"""The stock ``anomalib`` command finds CMDR; the start-up hook stays lazy."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO_ROOT

BIN = Path(sys.executable).parent
ENV = {**os.environ, "HF_HUB_OFFLINE": "1"}


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, env=ENV, timeout=300, check=False)


def test_startup_hook_is_installed_and_lazy():
    code = "import sys; print('_anomalib_cmdr_hook' in sys.modules, 'torch' in sys.modules, 'anomalib' in sys.modules)"
    result = run(sys.executable, "-c", code)
    assert result.stdout.split() == ["True", "False", "False"], result.stderr


def test_importing_anomalib_cli_registers_cmdr():
    code = (
        "import anomalib.cli.cli, sys; from anomalib.models.components import AnomalibModule;"
        "print('anomalib_cmdr' in sys.modules, 'CMDR' in {c.__name__ for c in AnomalibModule.__subclasses__()})"
    )
    assert run(sys.executable, "-c", code).stdout.split() == ["True", "True"]


@pytest.mark.slow
@pytest.mark.parametrize("model", ["CMDR", "anomalib_cmdr.CMDR"])
def test_stock_cli_resolves_model(model):
    result = run(str(BIN / "anomalib"), "fit", "--model", model, "--model.pretrained", "false", "--print_config")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "class_path: anomalib_cmdr.CMDR" in result.stdout


@pytest.mark.slow
def test_stock_cli_model_help_lists_arguments():
    result = run(str(BIN / "anomalib"), "fit", "--model.help", "CMDR")
    assert result.returncode == 0, result.stderr[-2000:]
    for argument in (
        "--model.modality",
        "--model.xyz_backbone",
        "--model.xyz_model_kwargs",
        "--model.map_normalization",
    ):
        assert argument in result.stdout


@pytest.mark.slow
def test_config_files_load(tmp_path):
    root = REPO_ROOT / "configs" / "model"
    for config in sorted(root.glob("*.yaml")):
        result = run(str(BIN / "anomalib"), "fit", "-c", str(config), "--print_config")
        assert result.returncode == 0, (config.name, result.stderr[-2000:])
        assert "anomalib_cmdr.CMDR" in result.stdout


@pytest.mark.slow
def test_data_configs_load_as_the_readme_uses_them():
    model = REPO_ROOT / "configs" / "model" / "cmdr_small.yaml"
    for config in sorted((REPO_ROOT / "configs" / "data").glob("*.yaml")):
        result = run(str(BIN / "anomalib"), "fit", "-c", str(model), "--data", str(config), "--print_config")
        assert result.returncode == 0, (config.name, result.stderr[-2000:])
        assert "class_path: anomalib_cmdr.data." in result.stdout


def test_console_script_lists_plugin_commands():
    result = run(str(BIN / "anomalib-cmdr"), "synth", "--help")
    assert result.returncode == 0 and "--image-size" in result.stdout


@pytest.mark.slow
def test_unknown_config_keys_are_named(tmp_path):
    """A misspelt argument, on the command line or in a config file, stops the CLI with the key's name."""
    result = run(str(BIN / "anomalib"), "train", "-c", str(REPO_ROOT / "configs/model/cmdr_offline.yaml"),
                 "--model.grid_sise", "32", "--data", "anomalib_cmdr.data.Synthetic3D")  # fmt: skip
    assert result.returncode != 0 and "Option 'grid_sise' is not accepted" in result.stderr, result.stderr[-2000:]
    config = tmp_path / "typo.yaml"
    config.write_text((REPO_ROOT / "configs/model/cmdr_offline.yaml").read_text().replace("grid_size:", "grid_sise:"))
    result = run(str(BIN / "anomalib"), "train", "-c", str(config), "--data", "anomalib_cmdr.data.Synthetic3D")
    assert result.returncode != 0 and "grid_sise" in result.stderr, result.stderr[-2000:]
