"""Embedded, deterministic synthetic RGB + 3D anomaly dataset with MVTec 3D-AD's layout.

Example:
    >>> from anomalib_cmdr.data.synthetic import CATEGORIES, synthesize
    >>> root = synthesize("datasets/synthetic_3d", categories=CATEGORIES[:1], image_size=64)  # doctest: +SKIP
"""

from anomalib_cmdr.data.synthetic.generator import CATEGORIES, DEFECT_TYPES, synthesize
from anomalib_cmdr.data.synthetic.preview import render_preview

__all__ = ["CATEGORIES", "DEFECT_TYPES", "render_preview", "synthesize"]
