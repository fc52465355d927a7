# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0

"""Tests of the benchmark configuration: defaults, and clear errors for bad files."""

from __future__ import annotations

from pathlib import Path

import pytest

from anomalib_cmdr.benchmark import BenchmarkConfig
from tests.helpers import REPO_ROOT


def test_committed_configs_load() -> None:
    for path in sorted((REPO_ROOT / "configs" / "benchmark").glob("*.yaml")):
        config = BenchmarkConfig.from_yaml(path)
        assert config.models and len({m.label for m in config.models}) == len(config.models), path.name


def test_defaults_and_paths() -> None:
    config = BenchmarkConfig.from_dict({"root": "data", "models": [{"label": "a", "class_path": "x.Y"}]})
    assert config.root == Path("data") and config.seeds == [0] and config.models[0].input == "rgb+xyz"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"models": []}, "lists no model"),
        ({"modles": [], "models": [{"label": "a", "class_path": "x.Y"}]}, r"unknown key\(s\) \['modles'\]"),
        ({"models": [{"label": "a", "class_path": "x.Y", "inputs": "rgb"}]}, r"models\[0\]: unknown key"),
        ({"models": [{"label": "a", "class_path": "x.Y", "input": "xyz"}]}, "input='xyz'"),
        ({"models": [{"label": "a", "class_path": "x.Y"}, {"label": "a", "class_path": "z.W"}]}, "unique"),
    ],
)
def test_bad_configs_name_the_problem(data: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        BenchmarkConfig.from_dict(data)


def test_file_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"missing\.yaml"):
        BenchmarkConfig.from_yaml(tmp_path / "missing.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(ValueError, match=r"list\.yaml: a benchmark config is a mapping"):
        BenchmarkConfig.from_yaml(tmp_path / "list.yaml")
