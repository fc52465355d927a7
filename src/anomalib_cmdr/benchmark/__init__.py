# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0

"""Benchmark CMDR against anomalib's models, side by side, on any MVTec 3D-AD-like data.

Example:
    >>> from anomalib_cmdr.benchmark import BenchmarkConfig, run_benchmark
    >>> run_benchmark(BenchmarkConfig.from_yaml("configs/benchmark/synthetic.yaml"))  # doctest: +SKIP
"""

from .config import BenchmarkConfig, ModelSpec
from .runner import run_benchmark

__all__ = ["BenchmarkConfig", "ModelSpec", "run_benchmark"]
