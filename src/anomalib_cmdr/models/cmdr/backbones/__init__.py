# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0

"""Frozen feature extractors of CMDR: a timm 2D backbone, and Point-MAE or FPFH for 3D.

Example:
    >>> from anomalib_cmdr.models.cmdr.backbones import RGBBackbone, PointMAEExtractor
"""

from .pointmae import PointMAEExtractor
from .rgb import RGBBackbone
from .weights import WeightsUnavailableError

__all__ = ["PointMAEExtractor", "RGBBackbone", "WeightsUnavailableError"]
