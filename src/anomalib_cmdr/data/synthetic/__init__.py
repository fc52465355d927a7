# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0

"""Embedded, deterministic synthetic RGB + 3D anomaly dataset with MVTec 3D-AD's layout.

Every sample is one machined part lying on a slightly tilted table, seen from above by a pinhole camera,
rendered as an RGB image, an organized point cloud aligned with it and, for defective samples, the
defect's ground-truth mask. The package is organised by concept:

* :mod:`~anomalib_cmdr.data.synthetic.shapes`: signed-distance shapes and noise primitives;
* :mod:`~anomalib_cmdr.data.synthetic.parts`: the part categories (:data:`CATEGORIES`) and the table;
* :mod:`~anomalib_cmdr.data.synthetic.defects`: the defect types (:data:`DEFECT_TYPES`);
* :mod:`~anomalib_cmdr.data.synthetic.scene`: the camera (:func:`camera_intrinsics`) and per-sample nuisances;
* :mod:`~anomalib_cmdr.data.synthetic.rendering`: ray casting, shading and sensing of one sample
  (:func:`render_sample`, :func:`render_part_mask`, :func:`sample_seed`);
* :mod:`~anomalib_cmdr.data.synthetic.writer`: the dataset on disk (:func:`synthesize`);
* :mod:`~anomalib_cmdr.data.synthetic.preview`: a picture of a few test samples (:func:`render_preview`).

Example:
    >>> from anomalib_cmdr.data.synthetic import CATEGORIES, synthesize
    >>> root = synthesize("datasets/synthetic_3d", categories=CATEGORIES[:1], image_size=64)  # doctest: +SKIP
"""

from anomalib_cmdr.data.synthetic.defects import DEFECT_TYPES
from anomalib_cmdr.data.synthetic.parts import CATEGORIES
from anomalib_cmdr.data.synthetic.preview import render_preview
from anomalib_cmdr.data.synthetic.rendering import SPLITS, render_part_mask, render_sample, sample_seed
from anomalib_cmdr.data.synthetic.scene import FOCAL_FACTOR, camera_intrinsics
from anomalib_cmdr.data.synthetic.writer import synthesize

__all__ = [
    "CATEGORIES",
    "DEFECT_TYPES",
    "FOCAL_FACTOR",
    "SPLITS",
    "camera_intrinsics",
    "render_part_mask",
    "render_preview",
    "render_sample",
    "sample_seed",
    "synthesize",
]
