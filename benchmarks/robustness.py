# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0

"""Robustness curves: image AUROC and AUPRO@30% as the test inputs degrade.

Each model of ``configs/benchmark/synthetic.yaml`` named by ``--models`` is trained once per category and seed
(through anomalib's Engine, exactly as the benchmark does), then tested on the category's test set degraded by
every corruption of :mod:`anomalib_cmdr.benchmark.corruptions` at every level. A model that does not read the
degraded modality (an RGB model under depth noise) keeps its clean result and is not re-tested. CMDR
``rgb+xyz`` receives a missing RGB image as all NaN (the convention of its missing-modality branches); the
other models receive a black frame. Rows are written atomically to ``--output`` (one JSON file per model,
category and seed), so an interrupted run resumes where it stopped. ``--report-only`` prints the table and
writes the plots from the saved rows.

Example:
    python benchmarks/robustness.py                          # CMDR rgb+xyz / rgb / xyz, 3 categories x 2 seeds
    python benchmarks/robustness.py --models "CMDR rgb" "CMDR xyz" --seeds 0 --levels three
    python benchmarks/robustness.py --models CFM --categories disc --seeds 0 --levels extreme
    python benchmarks/robustness.py --report-only --plots docs/images
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from anomalib_cmdr.benchmark.config import BenchmarkConfig
from anomalib_cmdr.benchmark.corruptions import CORRUPTIONS, CorruptedDataset
from anomalib_cmdr.benchmark.job import make_datamodule, make_model

METRICS = ("image_AUROC", "pixel_AUPRO@0.3")
DEFAULT_MODELS = ("CMDR rgb+xyz", "CMDR rgb", "CMDR xyz")
INPUTS = {"CMDR rgb+xyz": {"rgb", "xyz"}, "CMDR rgb": {"rgb"}, "CMDR xyz": {"xyz"}, "CFM": {"rgb", "xyz"}}


def _write_atomic(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(handle, "w") as stream:
        json.dump(data, stream, indent=1)
    Path(tmp).replace(path)


def _levels(name: str, which: str) -> tuple[float, ...]:
    levels = CORRUPTIONS[name].levels
    return {"extreme": (levels[0], levels[-1]), "three": (levels[0], levels[2], levels[-1])}.get(which, levels)


def run_one(config: BenchmarkConfig, label: str, category: str, seed: int, which: str, work: Path) -> dict:
    """Train one model and test it under every corruption and level.

    Args:
        config (BenchmarkConfig): The benchmark configuration (models, data, trainer).
        label (str): The model's label in ``config``.
        category (str): Category.
        seed (int): Seed.
        which (str): ``"all"`` levels, ``"three"`` (0, the third and the highest) or ``"extreme"`` (0 and the
            highest).
        work (Path): Scratch folder.

    Returns:
        dict: ``{"model", "category", "seed", "fit_s", "results": {corruption: {level: {metric: value}}}}``.
    """
    from anomalib.engine import Engine
    from lightning.pytorch import seed_everything
    from torch.utils.data import DataLoader

    spec = next(spec for spec in config.models if spec.label == label)
    seed_everything(seed, verbose=False)
    datamodule = make_datamodule(config, spec, category, seed)
    model = make_model(spec, config.image_size)
    trainer = {"accelerator": "cpu", "devices": 1, **config.trainer, **spec.trainer}
    engine = Engine(default_root_dir=work, logger=False, enable_progress_bar=False, num_sanity_val_steps=0, **trainer)
    start = time.perf_counter()
    engine.fit(model, datamodule=datamodule)
    fit_s = time.perf_counter() - start
    nan_image = label == "CMDR rgb+xyz"
    results: dict[str, dict[str, dict[str, float]]] = {}
    clean: dict[str, float] | None = None
    batch_size = spec.eval_batch_size or config.eval_batch_size
    for name, corruption in CORRUPTIONS.items():
        results[name] = {}
        for level in _levels(name, which):
            if clean is not None and (level == 0 or corruption.modality not in INPUTS[label]):
                results[name][str(level)] = clean
                continue
            dataset = CorruptedDataset(datamodule.test_data, corruption, level, seed, nan_image)
            loader = DataLoader(dataset, batch_size=batch_size, collate_fn=dataset.collate_fn)
            try:
                metrics = engine.test(model, dataloaders=loader, verbose=False)[0]
            except Exception as error:  # a model that fails on degraded input is a result too
                results[name][str(level)] = {"error": f"{type(error).__name__}: {error}"}
                print(f"  {label:14s} {category:9s} seed {seed} {name:15s} {level:<5g} FAILED: {error}", flush=True)
                continue
            values = {metric: float(metrics[metric]) for metric in METRICS}
            results[name][str(level)] = values
            if level == 0:
                clean = values
            print(f"  {label:14s} {category:9s} seed {seed} {name:15s} {level:<5g} {values}", flush=True)
    return {"model": label, "category": category, "seed": seed, "fit_s": round(fit_s, 1), "results": results}


def load_rows(output: Path) -> list[dict]:
    """The saved rows."""
    return [json.loads(path.read_text()) for path in sorted(output.glob("*.json"))]


def summarize(rows: list[dict]) -> dict[tuple[str, str, str, str], tuple[float, float, int]]:
    """``(model, corruption, level, metric) -> (mean, std, runs)`` over categories and seeds."""
    values: dict[tuple[str, str, str, str], list[float]] = {}
    for row in rows:
        for name, levels in row["results"].items():
            for level, metrics in levels.items():
                for metric, value in metrics.items():
                    if metric != "error":
                        values.setdefault((row["model"], name, level, metric), []).append(value)
    return {key: (statistics.mean(v), statistics.stdev(v) if len(v) > 1 else 0.0, len(v)) for key, v in values.items()}


def report(rows: list[dict], plots: Path | None) -> str:
    """The markdown tables (one per metric) and, with ``plots``, one PNG of curves per metric.

    Args:
        rows (list[dict]): Saved rows.
        plots (Path | None): Folder of the PNGs (``robustness_<metric>.png``), or ``None``.

    Returns:
        str: Markdown.
    """
    summary = summarize(rows)
    models = sorted({row["model"] for row in rows}, key=lambda m: (m not in DEFAULT_MODELS, m))
    lines = []
    for metric in METRICS:
        lines += [f"\n**{metric}** (mean ± std over categories and seeds; runs in brackets)\n"]
        for name, corruption in CORRUPTIONS.items():
            levels = sorted({key[2] for key in summary if key[1] == name}, key=float)
            lines.append(f"| {name} ({corruption.unit}) | " + " | ".join(levels) + " |")
            lines.append("|---|" + "---|" * len(levels))
            for model in models:
                cells = []
                for level in levels:
                    if (model, name, level, metric) in summary:
                        mean, std, runs = summary[(model, name, level, metric)]
                        cells.append(f"{mean:.3f} ± {std:.3f} ({runs})")
                    else:
                        cells.append("")
                lines.append(f"| {model} | " + " | ".join(cells) + " |")
            lines.append("")
    failures = sorted(
        {
            f"- {row['model']} failed under `{name}` at level {level}: `{metrics['error'][:160]}`"
            for row in rows
            for name, levels in row["results"].items()
            for level, metrics in levels.items()
            if "error" in metrics
        }
    )
    if failures:
        lines += ["**Failures** (the test run raised instead of scoring):", "", *failures, ""]
    if plots is not None:
        _plot(summary, models, plots)
    return "\n".join(lines)


def _plot(summary: dict, models: list[str], folder: Path) -> None:
    import matplotlib as mpl

    mpl.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    for metric in METRICS:
        figure, axes = plt.subplots(2, 3, figsize=(13, 7), constrained_layout=True, sharey=True)
        for axis, (name, corruption) in zip(axes.flat, CORRUPTIONS.items(), strict=True):
            for model in models:
                points = sorted(
                    (float(key[2]), value)
                    for key, value in summary.items()
                    if key[:2] == (model, name) and key[3] == metric
                )
                if not points:
                    continue
                x = [p[0] for p in points]
                mean = [p[1][0] for p in points]
                std = [p[1][1] for p in points]
                line = axis.plot(x, mean, marker="o", label=f"{model} ({points[0][1][2]} runs)")[0]
                axis.fill_between(
                    x,
                    [m - s for m, s in zip(mean, std, strict=True)],
                    [m + s for m, s in zip(mean, std, strict=True)],
                    alpha=0.15,
                    color=line.get_color(),
                )
            axis.set_title(name)
            axis.set_xlabel(corruption.unit)
            axis.set_ylabel(metric)
            axis.axhline(0.5 if metric == "image_AUROC" else 0.0, color="grey", lw=0.5, ls=":")
            axis.grid(alpha=0.3)
        axes.flat[0].legend(fontsize=8)
        figure.suptitle(f"{metric} under degraded test inputs (Synthetic3D, random-init backbones)")
        figure.savefig(folder / f"robustness_{metric.replace('@', '_at_').replace('.', '')}.png", dpi=90)
        plt.close(figure)


def main(argv: list[str] | None = None) -> int:
    """Run the study (resumable) and print the report."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="configs/benchmark/synthetic.yaml")
    parser.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS))
    parser.add_argument("--categories", nargs="+", default=None, help="default: the config's (all)")
    parser.add_argument("--seeds", nargs="+", type=int, default=None, help="default: the config's")
    parser.add_argument("--levels", choices=("all", "three", "extreme"), default="all")
    parser.add_argument("--output", type=Path, default=Path("results/robustness"))
    parser.add_argument("--plots", type=Path, default=None, help="write robustness_<metric>.png here")
    parser.add_argument("--report-only", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    config = BenchmarkConfig.from_yaml(args.config)
    if not args.report_only:
        from anomalib_cmdr.data.synthetic import CATEGORIES

        categories = args.categories or config.categories or list(CATEGORIES)
        for label in args.models:
            for category in categories:
                for seed in args.seeds or config.seeds:
                    path = args.output / f"{label.replace(' ', '_').replace('+', '')}_{category}_{seed}.json"
                    if path.exists():
                        continue
                    with tempfile.TemporaryDirectory() as work:
                        row = run_one(config, label, category, seed, args.levels, Path(work))
                    _write_atomic(path, row)
    rows = load_rows(args.output)
    if not rows:
        print(f"No rows in {args.output}.", file=sys.stderr)
        return 1
    print(report(rows, args.plots))
    return 0


if __name__ == "__main__":
    sys.exit(main())
