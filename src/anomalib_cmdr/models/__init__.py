# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0

"""Models of anomalib-cmdr."""

from .cmdr import CMDR, CMDRModel, load_official_heads

__all__ = ["CMDR", "CMDRModel", "load_official_heads"]
