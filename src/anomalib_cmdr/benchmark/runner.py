# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0

"""Run a benchmark: every model x category x seed as a job in its own child process, resumable.

Each finished job is written to ``<output>/results.csv`` at once; a benchmark that is interrupted (or
re-run) skips the jobs already finished with status ``ok`` and redoes the failed ones. A job that raises,
exceeds ``timeout_s`` or is killed (e.g. out of memory) becomes a row with status ``failed`` and its error;
the benchmark goes on. When every job has run, the summary and plots are written
(:mod:`anomalib_cmdr.benchmark.report`).

Example:
    >>> from anomalib_cmdr.benchmark import BenchmarkConfig, run_benchmark
    >>> config = BenchmarkConfig.from_yaml("configs/benchmark/synthetic.yaml")  # doctest: +SKIP
    >>> run_benchmark(config)  # doctest: +SKIP
    PosixPath('results/benchmark/results.csv')
"""

from __future__ import annotations

import logging
import multiprocessing
import queue
import time
import traceback
from pathlib import Path
from typing import Any

import pandas as pd
from tqdm.auto import tqdm

from .config import BenchmarkConfig, ModelSpec

logger = logging.getLogger(__name__)

KEY_COLUMNS = ["model", "category", "seed"]
RESULTS_FILE = "results.csv"


def resolve_categories(config: BenchmarkConfig) -> list[str]:
    """The categories to run: the configured ones, else the folders under ``root`` (or every synthetic one).

    Args:
        config (BenchmarkConfig): The benchmark.

    Returns:
        list[str]: Category names.

    Raises:
        ValueError: If no category is configured or found.

    Example:
        >>> from anomalib_cmdr.benchmark.config import ModelSpec
        >>> spec = ModelSpec("PaDiM", "anomalib.models.Padim")
        >>> resolve_categories(BenchmarkConfig(models=[spec], categories=["bagel", "cookie"]))
        ['bagel', 'cookie']
        >>> resolve_categories(BenchmarkConfig(models=[spec], root=Path("/tmp/no-such-root")))  # doctest: +ELLIPSIS
        Traceback (most recent call last):
            ...
        ValueError: /tmp/no-such-root: no category folder found (...)
    """
    if config.categories:
        return list(config.categories)
    if config.synthetic is not None:
        from anomalib_cmdr.data.synthetic import CATEGORIES

        return list(CATEGORIES)
    root = Path(config.root)
    found = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")) if root.is_dir() else []
    if not found:
        msg = f"{root}: no category folder found (pass --categories or a root in the MVTec 3D-AD layout)"
        raise ValueError(msg)
    return found


def _fixed_mmap_threshold(threshold: int = 1 << 20) -> None:
    """Return large freed blocks to the system at once (glibc ``mallopt(M_MMAP_THRESHOLD)``).

    glibc raises its mmap threshold after large blocks are freed (up to 32 MB), so that later temporaries of a
    few MB come from the heap, where they fragment. anomalib's PatchCore coreset selection allocates one such
    temporary per iteration after the backbone's activations were freed: with the dynamic threshold its
    resident memory grew past 10 GiB for 18,816 embeddings of a random WRN50 at 224 px (killed), with a fixed
    1 MB threshold it peaks at 1.4 GiB (same data, same run). Outside glibc this does nothing.
    """
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").mallopt(-3, threshold)  # M_MMAP_THRESHOLD
    except (OSError, AttributeError):
        pass


def _child(config: BenchmarkConfig, spec: ModelSpec, category: str, seed: int, work_dir: Path, out: Any) -> None:
    """Child-process entry: run the job, put its row (or the error) on the queue."""
    _fixed_mmap_threshold()
    logging.getLogger("anomalib").setLevel(logging.ERROR)
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    try:
        from .job import run_job

        out.put(run_job(config, spec, category, seed, work_dir))
    except BaseException as error:  # every failure becomes a row
        out.put({"status": "failed", "error": f"{type(error).__name__}: {error}", "trace": traceback.format_exc()})


def run_in_child(config: BenchmarkConfig, spec: ModelSpec, category: str, seed: int, work_dir: Path) -> dict:
    """Run one job in a fresh (spawned) process; a crash, kill or timeout gives a failed row.

    Args:
        config (BenchmarkConfig): The benchmark.
        spec (ModelSpec): The model.
        category (str): Category.
        seed (int): Seed.
        work_dir (Path): The job's folder.

    Returns:
        dict: The row (without the key columns).

    Example:
        >>> config = BenchmarkConfig.from_yaml("configs/benchmark/synthetic.yaml")  # doctest: +SKIP
        >>> row = run_in_child(config, config.models[0], "disc", 0, Path("results/benchmark/runs/x"))  # doctest: +SKIP
        >>> row["status"]  # doctest: +SKIP
        'ok'
    """
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    process = context.Process(target=_child, args=(config, spec, category, seed, work_dir, results))
    start = time.monotonic()
    process.start()
    row, timed_out = None, False
    while row is None and process.is_alive():
        try:
            row = results.get(timeout=1.0)
        except queue.Empty:
            timed_out = time.monotonic() - start > config.timeout_s
            if timed_out:
                process.kill()
    if row is None:  # the process ended without a word: read what it may have put last
        try:
            row = results.get(timeout=1.0)
        except queue.Empty:
            row = None
    process.join(timeout=30)
    if process.is_alive():
        process.kill()
        process.join()
    if row is None:
        if timed_out:
            reason = f"timed out after {config.timeout_s:.0f} s"
        elif process.exitcode is not None and process.exitcode < 0:
            reason = f"killed by signal {-process.exitcode} (e.g. out of memory)"
        else:
            reason = f"exited with code {process.exitcode} without a result"
        row = {"status": "failed", "error": reason}
    if row.get("status") != "ok":
        logger.warning("%s / %s / seed %d failed: %s", spec.label, category, seed, row.get("error"))
        row.pop("trace", None)
    return row


def load_results(path: Path) -> pd.DataFrame:
    """The results written so far (an empty table when there are none).

    Args:
        path (Path): ``results.csv``.

    Returns:
        pd.DataFrame: One row per finished job.

    Example:
        >>> import tempfile
        >>> load_results(Path(tempfile.mkdtemp()) / "results.csv").columns.tolist()
        ['model', 'category', 'seed', 'status']
    """
    if path.is_file():
        return pd.read_csv(path)
    return pd.DataFrame(columns=[*KEY_COLUMNS, "status"])


def run_benchmark(config: BenchmarkConfig, progress: bool = True) -> Path:
    """Run every model x category x seed job not finished yet, then write the summary and plots.

    Args:
        config (BenchmarkConfig): The benchmark.
        progress (bool): Show a progress bar. Defaults to ``True``.

    Returns:
        Path: The ``results.csv`` file.

    Example:
        >>> config = BenchmarkConfig.from_yaml("configs/benchmark/synthetic.yaml")  # doctest: +SKIP
        >>> run_benchmark(config, progress=False)  # doctest: +SKIP
        PosixPath('results/benchmark/results.csv')
    """
    from .report import write_report

    output = Path(config.output)
    output.mkdir(parents=True, exist_ok=True)
    path = output / RESULTS_FILE
    results = load_results(path)
    done = {
        (row.model, row.category, int(row.seed)) for row in results.itertuples() if getattr(row, "status", "") == "ok"
    }
    jobs = [(spec, c, s) for spec in config.models for c in resolve_categories(config) for s in config.seeds]
    bar = tqdm(jobs, desc="benchmark", unit="job", disable=not progress)
    for spec, category, seed in bar:
        if (spec.label, category, seed) in done:
            continue
        bar.set_postfix_str(f"{spec.label} / {category} / seed {seed}")
        work_dir = output / "runs" / spec.label.replace(" ", "_").replace("/", "_") / category / str(seed)
        row = {"model": spec.label, "category": category, "seed": seed, "input": spec.input}
        row.update(run_in_child(config, spec, category, seed, work_dir))
        keep = ~((results["model"] == spec.label) & (results["category"] == category) & (results["seed"] == seed))
        results = pd.concat([results[keep], pd.DataFrame([row])], ignore_index=True)
        results.to_csv(path, index=False)
    write_report(results, output)
    return path
