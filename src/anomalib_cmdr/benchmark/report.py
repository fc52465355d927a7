# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0

"""Benchmark report: a markdown summary and two plots from ``results.csv``.

* ``summary.md``: per model, the mean over categories of each metric with the spread over seeds (the
  standard deviation of the per-seed means), the mean per defect type, then one table per category;
  failed jobs are listed with their error.
* ``defect_types.png``: a model x defect-type heatmap of image AUROC.
* ``accuracy_latency.png``: image AUROC against inference latency per sample.

Example:
    >>> import pandas as pd
    >>> results = pd.read_csv("results/benchmark/results.csv")  # doctest: +SKIP
    >>> write_report(results, Path("results/benchmark"))  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .job import METRICS

__all__ = ["summary_markdown", "write_report"]


def _mean_spread(frame: pd.DataFrame, column: str) -> str:
    """``mean ± spread`` of a column: mean over categories, spread of the per-seed means over seeds."""
    values = frame[column].dropna()
    if values.empty:
        return "-"
    per_seed = frame.groupby("seed")[column].mean().dropna()
    spread = per_seed.std(ddof=1) if len(per_seed) > 1 else 0.0
    return f"{values.mean():.3f} ± {spread:.3f}"


def summary_markdown(results: pd.DataFrame) -> str:
    """The markdown summary of a results table.

    Args:
        results (pd.DataFrame): ``results.csv`` as a table.

    Returns:
        str: Markdown.

    Example:
        >>> results = pd.DataFrame([
        ...     {"model": "CMDR", "input": "rgb+xyz", "category": "disc", "seed": 0, "status": "ok", "image_AUROC": 0.9,
        ...      "fit_s": 12.0, "latency_ms": 8.0, "peak_rss_mb": 900.0, "total_params": 1234567},
        ... ])
        >>> print(summary_markdown(results).splitlines()[2])
        | CMDR | rgb+xyz | 1 | 0.900 ± 0.000 | 12 | 8 | 900 | 1,234,567 |
    """
    ok = results[results["status"] == "ok"]
    metrics = [m for m in METRICS if m in ok]
    types = sorted(c for c in ok.columns if c.startswith("image_AUROC["))
    lines = ["| model | input | runs | " + " | ".join(metrics) + " | fit s | latency ms | peak MB | params |"]
    lines.append("|---" * (7 + len(metrics)) + "|")
    for model, frame in ok.groupby("model", sort=False):
        cells = " | ".join(_mean_spread(frame, m) for m in metrics)
        costs = (
            f"{frame['fit_s'].mean():.0f} | {frame['latency_ms'].mean():.0f} | {frame['peak_rss_mb'].max():.0f} | "
            f"{int(frame['total_params'].max()):,}"
        )
        lines.append(f"| {model} | {frame['input'].iloc[0]} | {len(frame)} | {cells} | {costs} |")
    if types:
        lines += ["", "Image AUROC per defect type (mean over categories and seeds):", ""]
        lines.append("| model | " + " | ".join(t[len("image_AUROC[") : -1] for t in types) + " |")
        lines.append("|---" * (1 + len(types)) + "|")
        for model, frame in ok.groupby("model", sort=False):
            lines.append(f"| {model} | " + " | ".join(f"{frame[t].mean():.2f}" for t in types) + " |")
    for category, frame in ok.groupby("category"):
        lines += ["", f"Category {category}:", "", "| model | " + " | ".join(metrics) + " |"]
        lines.append("|---" * (1 + len(metrics)) + "|")
        for model, rows in frame.groupby("model", sort=False):
            lines.append(f"| {model} | " + " | ".join(_mean_spread(rows, m) for m in metrics) + " |")
    failed = results[results["status"] != "ok"]
    if len(failed):
        lines += ["", "Failed jobs:", ""]
        lines += [f"- {r.model} / {r.category} / seed {r.seed}: {getattr(r, 'error', '')}" for r in failed.itertuples()]
    return "\n".join(lines) + "\n"


def write_report(results: pd.DataFrame, output: Path) -> None:
    """Write ``summary.md``, ``defect_types.png`` and ``accuracy_latency.png`` into ``output``.

    Args:
        results (pd.DataFrame): ``results.csv`` as a table.
        output (Path): The benchmark's output folder.

    Example:
        >>> results = pd.read_csv("results/benchmark/results.csv")  # doctest: +SKIP
        >>> write_report(results, Path("results/benchmark"))  # doctest: +SKIP
        >>> sorted(p.name for p in Path("results/benchmark").glob("*.[mp][dn]*"))  # doctest: +SKIP
        ['accuracy_latency.png', 'defect_types.png', 'summary.md']
    """
    import matplotlib as mpl

    mpl.use("Agg")
    import matplotlib.pyplot as plt

    (output / "summary.md").write_text(summary_markdown(results))
    ok = results[results["status"] == "ok"]
    if ok.empty:
        return
    types = sorted(c for c in ok.columns if c.startswith("image_AUROC["))
    models = list(dict.fromkeys(ok["model"]))
    if types:
        table = ok.groupby("model", sort=False)[types].mean().reindex(models)
        figure, axis = plt.subplots(figsize=(1.2 * len(types) + 3, 0.5 * len(models) + 1.5))
        image = axis.imshow(table.to_numpy(), vmin=0.3, vmax=1.0, cmap="viridis")
        axis.set_xticks(range(len(types)), [t[len("image_AUROC[") : -1] for t in types], rotation=30, ha="right")
        axis.set_yticks(range(len(models)), models)
        for (i, j), value in pd.DataFrame(table.to_numpy()).stack().items():
            axis.text(j, i, f"{value:.2f}", ha="center", va="center", color="white" if value < 0.75 else "black")
        figure.colorbar(image, ax=axis, label="image AUROC")
        axis.set_title("Image AUROC per defect type (mean over categories and seeds)")
        figure.tight_layout()
        figure.savefig(output / "defect_types.png", dpi=120)
        plt.close(figure)
    means = ok.groupby("model", sort=False)[["image_AUROC", "latency_ms"]].mean().reindex(models)
    figure, axis = plt.subplots(figsize=(6, 4))
    axis.scatter(means["latency_ms"], means["image_AUROC"])
    for model, row in means.iterrows():
        axis.annotate(model, (row["latency_ms"], row["image_AUROC"]), textcoords="offset points", xytext=(4, 4))
    axis.set_xscale("log")
    axis.set_xlabel("inference latency per sample (ms, log scale)")
    axis.set_ylabel("image AUROC (mean)")
    axis.set_title("Accuracy against latency")
    figure.tight_layout()
    figure.savefig(output / "accuracy_latency.png", dpi=120)
    plt.close(figure)
