# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0

"""CMDR-IAD: cross-modal mapping + dual-branch reconstruction for RGB + 3D anomaly detection.

Example:
    >>> from anomalib_cmdr.models.cmdr import CMDR, CMDRModel, load_official_heads
"""

from .lightning_model import CMDR
from .official import load_official_heads
from .torch_model import CMDRModel

__all__ = ["CMDR", "CMDRModel", "load_official_heads"]
