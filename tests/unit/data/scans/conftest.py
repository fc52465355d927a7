# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0

"""A tiny folder of synthetic scans (32 x 48 points, 256-point chunks) shared by the scan tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from anomalib_cmdr.data.scans.synthetic import synthesize_scans

TINY_SCANS = {"num_train": 2, "num_test_good": 1, "num_test_defect": 1, "points_per_profile": 32, "profiles": 48}


@pytest.fixture
def scan_root(tmp_path: Path) -> Path:
    return synthesize_scans(tmp_path / "foam" / "scans", seed=1, **TINY_SCANS)
