# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0

"""Fixtures of the data tests: a tiny category tree written into ``tmp_path``."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.data.helpers import write_category


@pytest.fixture
def category_root(tmp_path: Path) -> Path:
    return write_category(tmp_path / "data")
