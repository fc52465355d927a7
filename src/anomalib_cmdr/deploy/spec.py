# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0

"""What an exported CMDR needs besides its graph: the ``metadata.json`` written beside ``model.xml``.

The exported graph holds the dense part of CMDR (normalisation, backbones' dense layers, heads, fusion,
the post-processor's normalisation and thresholds). The inferencer prepares its inputs with the same
resizing and point-cloud geometry as the torch model; this file says how (input size, modality, the 3D
extractor and its grouping).

Example:
    >>> spec = DeploySpec(modality="rgb", image_size=(64, 64), square_pad=True, inputs=["image"],
    ...                   outputs=["pred_score", "anomaly_map"])
    >>> DeploySpec.from_dict(spec.to_dict()) == spec
    True
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

METADATA_FILE = "metadata.json"
FORMAT = "anomalib-cmdr-deploy"
FORMAT_VERSION = 1

XYZInput = Literal["groups", "features"]
"""How the 3D branch enters the graph: ``"groups"`` (Point-MAE: centred kNN groups, centres and per-pixel
interpolation indices and weights; the encoder runs in the graph) or ``"features"`` (a weight-free extractor
such as FPFH runs before the graph; its per-pixel features enter it)."""


def _package_version() -> str:
    """The installed anomalib-cmdr version (read lazily: this module loads while the package initialises)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("anomalib-cmdr")
    except PackageNotFoundError:
        return "0.0.0+unknown"


class ExportFolderError(ValueError):
    """An export folder is missing, incomplete or of another format; the message names the path.

    Example:
        >>> DeploySpec.load(tempfile.mkdtemp())  # doctest: +ELLIPSIS
        Traceback (most recent call last):
            ...
        anomalib_cmdr.deploy.spec.ExportFolderError: .../metadata.json: missing. A CMDR export folder holds ...
    """


@dataclass
class DeploySpec:
    """How to feed an exported CMDR graph.

    Attributes:
        modality (str): ``"rgb+xyz"``, ``"rgb"`` or ``"xyz"``.
        image_size (tuple[int, int]): ``(H, W)`` the inputs are resized to.
        square_pad (bool): Centre each input in a square before resizing.
        inputs (list[str]): The graph's input names, in order.
        outputs (list[str]): The graph's output names, in order.
        xyz_backbone (str | None): The registered 3D extractor (``None`` without the 3D branch).
        xyz_model_kwargs (dict[str, Any]): Its arguments (the FPFH settings, or Point-MAE's grouping).
        xyz_input (XYZInput | None): How the 3D branch enters the graph.
        num_group (int | None): Point-MAE centres per cloud.
        group_size (int | None): Points per Point-MAE group.
        precision (str): ``"FP32"``, ``"FP16"`` or ``"INT8"``.
        version (str): The anomalib-cmdr version that exported it.

    Example:
        >>> spec = DeploySpec(modality="rgb+xyz", image_size=(128, 128), square_pad=True,
        ...                   inputs=["image", "xyz_features"], outputs=["pred_score", "anomaly_map"],
        ...                   xyz_backbone="fpfh", xyz_input="features")
        >>> spec.uses_rgb, spec.uses_xyz
        (True, True)
        >>> path = spec.save(tempfile.mkdtemp())
        >>> path.name, DeploySpec.load(path.parent) == spec
        ('metadata.json', True)
    """

    modality: str
    image_size: tuple[int, int]
    square_pad: bool
    inputs: list[str]
    outputs: list[str]
    xyz_backbone: str | None = None
    xyz_model_kwargs: dict[str, Any] = field(default_factory=dict)
    xyz_input: XYZInput | None = None
    num_group: int | None = None
    group_size: int | None = None
    precision: str = "FP32"
    version: str = field(default_factory=_package_version)

    @property
    def uses_rgb(self) -> bool:
        """The model reads RGB images."""
        return self.modality in {"rgb+xyz", "rgb"}

    @property
    def uses_xyz(self) -> bool:
        """The model reads point clouds."""
        return self.modality in {"rgb+xyz", "xyz"}

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (with the format tag)."""
        data = asdict(self)
        data["image_size"] = list(self.image_size)
        return {"format": FORMAT, "format_version": FORMAT_VERSION, **data}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DeploySpec:
        """Rebuild from :meth:`to_dict`.

        Args:
            data (dict[str, Any]): The dict.

        Returns:
            DeploySpec: The spec.
        """
        data = {key: value for key, value in data.items() if key not in {"format", "format_version"}}
        data["image_size"] = tuple(int(v) for v in data["image_size"])
        return cls(**data)

    def save(self, folder: str | Path) -> Path:
        """Write ``metadata.json`` into ``folder`` atomically.

        Args:
            folder (str | Path): The export folder.

        Returns:
            Path: The file written.
        """
        path = Path(folder) / METADATA_FILE
        handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=".metadata.", suffix=".tmp")
        with os.fdopen(handle, "w") as stream:
            json.dump(self.to_dict(), stream, indent=2)
        Path(tmp).replace(path)
        return path

    @classmethod
    def load(cls, folder: str | Path) -> DeploySpec:
        """Read ``metadata.json`` from an export folder.

        Args:
            folder (str | Path): The export folder.

        Returns:
            DeploySpec: The spec.

        Raises:
            ExportFolderError: If the file is missing, unreadable or not a CMDR export.
        """
        path = Path(folder) / METADATA_FILE
        if not path.is_file():
            msg = (
                f"{path}: missing. A CMDR export folder holds model.xml, model.bin and metadata.json; export with "
                "`anomalib export --model CMDR --export_type openvino --ckpt_path CKPT` (or CMDR.to_openvino)."
            )
            raise ExportFolderError(msg)
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as error:
            msg = f"{path}: unreadable ({error})."
            raise ExportFolderError(msg) from error
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            found = data.get("format") if isinstance(data, dict) else None
            msg = f"{path}: not the metadata of a CMDR export (format {found!r})."
            raise ExportFolderError(msg)
        if int(data.get("format_version", 0)) > FORMAT_VERSION:
            msg = f"{path}: format version {data['format_version']} is newer than this anomalib-cmdr reads; upgrade."
            raise ExportFolderError(msg)
        try:
            return cls.from_dict(data)
        except (KeyError, TypeError, ValueError) as error:
            msg = f"{path}: malformed ({error})."
            raise ExportFolderError(msg) from error
