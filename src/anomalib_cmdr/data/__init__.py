# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0

"""Data: validated readers, the RGB + xyz dataset, MVTec 3D-AD preprocessing and datamodules.

Example:
    >>> from anomalib_cmdr.data import MVTec3DAD
    >>> datamodule = MVTec3DAD(root="./datasets/MVTec3D", category="bagel")  # doctest: +SKIP
"""

from anomalib_cmdr.data.background import remove_background, remove_background_tree
from anomalib_cmdr.data.dataset import RGBXYZDataset
from anomalib_cmdr.data.folder import RGBXYZFolder
from anomalib_cmdr.data.io import DataFileError, DataFileWarning, read_mask, read_rgb, read_xyz
from anomalib_cmdr.data.mvtec3d_ad import MVTec3DAD
from anomalib_cmdr.data.predict import RGBXYZPredictDataset, find_sample_pairs
from anomalib_cmdr.data.samples import make_rgbxyz_samples
from anomalib_cmdr.data.scans import ScanFolder, ScanReport, SyntheticScans
from anomalib_cmdr.data.synthetic3d import Synthetic3D

__all__ = [
    "DataFileError",
    "DataFileWarning",
    "MVTec3DAD",
    "RGBXYZDataset",
    "RGBXYZFolder",
    "RGBXYZPredictDataset",
    "ScanFolder",
    "ScanReport",
    "Synthetic3D",
    "SyntheticScans",
    "find_sample_pairs",
    "make_rgbxyz_samples",
    "read_mask",
    "read_rgb",
    "read_xyz",
    "remove_background",
    "remove_background_tree",
]
