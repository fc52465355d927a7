# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0

"""Tests of the benchmark report: mean over categories, spread over seeds, failed jobs listed, plots written."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from anomalib_cmdr.benchmark.report import summary_markdown, write_report


def _results() -> pd.DataFrame:
    rows = []
    for seed, shift in ((0, 0.0), (1, 0.1)):
        for category, base in (("a", 0.6), ("b", 0.8)):
            rows.append({
                "model": "M", "category": category, "seed": seed, "status": "ok", "input": "rgb+xyz",
                "image_AUROC": base + shift, "pixel_AUROC": 0.9, "fit_s": 10, "latency_ms": 5,
                "peak_rss_mb": 100, "total_params": 1000, "image_AUROC[dent]": base,
            })  # fmt: skip
    rows.append({"model": "N", "category": "a", "seed": 0, "status": "failed", "input": "rgb", "error": "boom"})
    return pd.DataFrame(rows)


def test_summary_means_over_categories_and_spreads_over_seeds() -> None:
    text = summary_markdown(_results())
    # mean of 0.6, 0.8, 0.7, 0.9 = 0.75; per-seed means 0.70 and 0.80 -> standard deviation 0.0707
    assert "| M | rgb+xyz | 4 | 0.750 ± 0.071 | 0.900 ± 0.000 |" in text
    assert "| M | 0.70 |" in text  # per defect type
    assert "Category a:" in text and "Category b:" in text
    assert "- N / a / seed 0: boom" in text


def test_report_files(tmp_path: Path) -> None:
    write_report(_results(), tmp_path)
    for name in ("summary.md", "defect_types.png", "accuracy_latency.png"):
        assert (tmp_path / name).stat().st_size > 100, name
