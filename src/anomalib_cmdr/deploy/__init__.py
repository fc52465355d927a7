# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0

"""Deployment of CMDR: ONNX/OpenVINO export and the two-input OpenVINO inferencer.

Example:
    >>> from anomalib_cmdr.deploy import CMDROpenVINOInferencer
    >>> inferencer = CMDROpenVINOInferencer("results/CMDR/export/weights/openvino")  # doctest: +SKIP
    >>> result = inferencer.predict(rgb="part.png", xyz="part.tiff")  # doctest: +SKIP
"""

from .inferencer import CMDROpenVINOInferencer
from .spec import DeploySpec, ExportFolderError

__all__ = ["CMDROpenVINOInferencer", "DeploySpec", "ExportFolderError"]
