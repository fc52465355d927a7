# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0

"""Pictures of RGB + 3D predictions.

Example:
    >>> from anomalib_cmdr.visualization import CMDRVisualizer, depth_image, prediction_panel
"""

from .panels import depth_image, prediction_panel
from .visualizer import CMDRVisualizer

__all__ = ["CMDRVisualizer", "depth_image", "prediction_panel"]
