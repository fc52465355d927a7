# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0

"""Shared fixtures: tiny CMDR configurations with random weights (no download, CPU-fast)."""

from __future__ import annotations

import os

import pytest
import torch

from tests.helpers import TINY, make_clouds

# Tests never touch the network: hub look-ups fail at once instead of timing out.
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture
def tiny_kwargs() -> dict:
    """Constructor arguments of a tiny, random-weight CMDR."""
    return dict(TINY)


@pytest.fixture
def clouds() -> tuple[torch.Tensor, torch.Tensor]:
    """A batch of two RGB images and organized clouds, 32x32."""
    return make_clouds()
