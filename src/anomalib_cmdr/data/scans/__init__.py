# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0

"""3D-only inspection of raw scans: unorganized point clouds cut into chunks for CMDR's 3D branch.

The paper's polyurethane setting: scans from a laser profilometer, cut into 9,216-point chunks arranged as
96x96, D3D trained on normal chunks, chunk scores and per-point maps at test time.

* :mod:`~anomalib_cmdr.data.scans.io`: PLY, PCD, XYZ/TXT and ``.npy`` readers, the label sidecar;
* :mod:`~anomalib_cmdr.data.scans.chunking`: :class:`ScanChunker` (split, grid arrangement, normalisation,
  chunk labels) and :func:`scatter_scores` (chunk maps back onto the points);
* :mod:`~anomalib_cmdr.data.scans.dataset`: the chunk cache and :class:`ScanChunkDataset`;
* :mod:`~anomalib_cmdr.data.scans.datamodule`: :class:`ScanFolder` and :class:`SyntheticScans`;
* :mod:`~anomalib_cmdr.data.scans.report`: :class:`ScanReport`, the results back on the scans;
* :mod:`~anomalib_cmdr.data.scans.synthetic`: the synthetic profilometer scans.

Example:
    >>> from anomalib_cmdr.data.scans import ScanFolder, ScanReport
    >>> datamodule = ScanFolder("./datasets/foam_scans")  # doctest: +SKIP

See ``docs/scans.md``.
"""

from anomalib_cmdr.data.scans.chunking import ScanChunker, ScanChunks, scatter_scores
from anomalib_cmdr.data.scans.datamodule import ScanFolder, SyntheticScans
from anomalib_cmdr.data.scans.dataset import ScanChunkDataset, make_chunk_samples, make_scan_samples
from anomalib_cmdr.data.scans.io import read_point_cloud, read_point_labels, write_point_cloud, write_point_labels
from anomalib_cmdr.data.scans.report import ScanReport
from anomalib_cmdr.data.scans.synthetic import synthesize_scans

__all__ = [
    "ScanChunkDataset",
    "ScanChunker",
    "ScanChunks",
    "ScanFolder",
    "ScanReport",
    "SyntheticScans",
    "make_chunk_samples",
    "make_scan_samples",
    "read_point_cloud",
    "read_point_labels",
    "scatter_scores",
    "synthesize_scans",
    "write_point_cloud",
    "write_point_labels",
]
