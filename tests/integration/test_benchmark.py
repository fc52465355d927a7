# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0

"""The benchmark command end to end on the tiny config: rows, columns, failed jobs, resume."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from anomalib_cmdr.benchmark import BenchmarkConfig, run_benchmark
from anomalib_cmdr.benchmark import runner as runner_module
from tests.helpers import REPO_ROOT

TINY = REPO_ROOT / "configs" / "benchmark" / "tiny.yaml"


@pytest.mark.slow
def test_tiny_benchmark_from_the_command_line_then_resume(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = BenchmarkConfig.from_yaml(TINY)
    config.root, config.output = tmp_path / "data", tmp_path / "out"
    command = [str(Path(sys.executable).parent / "anomalib-cmdr"), "benchmark", "--config", str(TINY)]
    command += ["--root", str(config.root), "--output", str(config.output)]
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=900, check=False, env={**os.environ, "HF_HUB_OFFLINE": "1"}
    )
    assert result.returncode == 0, result.stderr[-3000:]
    results = pd.read_csv(config.output / "results.csv")
    assert list(results["model"]) == ["CMDR rgb+xyz", "PaDiM"] and (results["status"] == "ok").all()
    for column in (
        "category", "seed", "image_AUROC", "pixel_AUROC", "pixel_AUPRO@0.3", "pixel_AUPRO@0.01", "fit_s",
        "latency_ms", "peak_rss_mb", "trainable_params", "total_params", "image_AUROC[bump]", "image_AUROC[stain]",
    ):  # fmt: skip
        assert column in results, column
    assert results["image_AUROC"].between(0, 1).all() and (results["peak_rss_mb"] > 0).all()
    summary = (config.output / "summary.md").read_text()
    assert "| CMDR rgb+xyz | rgb+xyz | 1 |" in summary and "| PaDiM | rgb | 1 |" in summary
    assert (config.output / "defect_types.png").stat().st_size > 1000
    assert (config.output / "accuracy_latency.png").stat().st_size > 1000

    def must_not_run(*args, **kwargs):
        raise AssertionError("a finished job was run again")

    monkeypatch.setattr(runner_module, "run_in_child", must_not_run)
    run_benchmark(config, progress=False)  # resume: everything is finished
    assert len(pd.read_csv(config.output / "results.csv")) == 2


@pytest.mark.slow
def test_a_failing_job_is_a_row_and_the_benchmark_goes_on(tmp_path: Path) -> None:
    config = BenchmarkConfig.from_yaml(TINY)
    config.root, config.output = tmp_path / "data", tmp_path / "out"
    config.models = [
        BenchmarkConfig.from_dict(
            {"models": [{"label": "broken", "class_path": "anomalib.models.NoSuchModel"}]}
        ).models[0],
        config.models[1],
    ]
    run_benchmark(config, progress=False)
    results = pd.read_csv(config.output / "results.csv")
    failed = results[results["model"] == "broken"].iloc[0]
    assert failed["status"] == "failed" and "NoSuchModel" in failed["error"]
    assert results[results["model"] == "PaDiM"].iloc[0]["status"] == "ok"
    assert "Failed jobs:" in (config.output / "summary.md").read_text()
