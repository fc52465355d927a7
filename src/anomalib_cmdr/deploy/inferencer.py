# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0

"""Run an exported CMDR with OpenVINO on RGB images and organized point clouds (CPU, GPU or AUTO).

anomalib's ``OpenVINOInferencer`` feeds one image input; this inferencer reads the export's
``metadata.json``, prepares RGB and point cloud with the torch model's resizing and geometry
(:class:`~.inputs.GraphInputBuilder`) and feeds every graph input by name.

Example:
    >>> from anomalib_cmdr.deploy import CMDROpenVINOInferencer
    >>> inferencer = CMDROpenVINOInferencer("results/export/weights/openvino", device="CPU")  # doctest: +SKIP
    >>> result = inferencer.predict("part.png", "part.tiff")  # doctest: +SKIP
    >>> result.pred_score, result.pred_label  # doctest: +SKIP
    (array([0.81], dtype=float32), array([ True]))
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from anomalib.data import NumpyImageBatch

from anomalib_cmdr.data.io import read_rgb, read_xyz
from anomalib_cmdr.models.cmdr.geometry import valid_point_mask
from anomalib_cmdr.models.cmdr.missing_modality import branch_index, branch_names

from .inputs import GraphInputBuilder
from .spec import METADATA_FILE, DeploySpec, ExportFolderError

logger = logging.getLogger(__name__)

ArrayOrPath = str | Path | np.ndarray
DEVICES = ("CPU", "GPU", "AUTO")


class DeviceUnavailableError(RuntimeError):
    """The requested OpenVINO device is not present on this machine.

    Example:
        >>> CMDROpenVINOInferencer("results/export/weights/openvino", device="GPU")  # doctest: +SKIP
        Traceback (most recent call last):
            ...
        anomalib_cmdr.deploy.inferencer.DeviceUnavailableError: device='GPU': OpenVINO finds no GPU on this machine ...
        >>> issubclass(DeviceUnavailableError, RuntimeError)
        True
    """


@dataclass
class InferenceTimings:
    """Seconds spent in the last :meth:`CMDROpenVINOInferencer.predict` call, by stage.

    Attributes:
        prepare (float): Reading, resizing and the point-cloud geometry (before the graph).
        graph (float): The OpenVINO graph.

    Example:
        >>> timings = InferenceTimings(prepare=0.012, graph=0.034)
        >>> round(timings.prepare + timings.graph, 3)
        0.046
        >>> inferencer.timings  # after a predict call  # doctest: +SKIP
        InferenceTimings(prepare=0.0121, graph=0.0338)
    """

    prepare: float = 0.0
    graph: float = 0.0


def _export_files(path: str | Path) -> tuple[Path, Path]:
    """The model file (``.xml``, or ``.onnx``, which OpenVINO reads too) and the folder of an export."""
    path = Path(path).expanduser()
    if path.is_dir():
        candidates = sorted(path.glob("*.xml")) or sorted(path.glob("*.onnx"))
        if not candidates:
            msg = (
                f"{path}: no OpenVINO (.xml) or ONNX (.onnx) model in this folder; is it the export's "
                "weights/openvino (or weights/onnx) folder?"
            )
            raise ExportFolderError(msg)
        xml = candidates[0] if len(candidates) == 1 else path / "model.xml"
    else:
        xml = path
    if not xml.is_file():
        msg = f"{xml}: no such model file."
        raise ExportFolderError(msg)
    if xml.suffix == ".xml" and not xml.with_suffix(".bin").is_file():
        msg = f"{xml.with_suffix('.bin')}: missing (the weights of {xml.name}); the export folder is incomplete."
        raise ExportFolderError(msg)
    return xml, xml.parent


def _as_list(value: ArrayOrPath | Sequence[ArrayOrPath] | None) -> list[ArrayOrPath] | None:
    if value is None:
        return None
    if isinstance(value, str | Path | np.ndarray):
        return [value]
    return list(value)


class CMDROpenVINOInferencer:
    """OpenVINO inference of an exported CMDR.

    Args:
        path (str | Path): The export folder (``.../weights/openvino``, holding ``model.xml``, ``model.bin`` and
            ``metadata.json``) or its ``.xml`` file; an ONNX export folder (``.../weights/onnx``) works too.
        device (str): ``"CPU"``, ``"GPU"`` or ``"AUTO"`` (OpenVINO picks; falls back to the CPU). Defaults to
            ``"CPU"``.
        config (dict[str, Any] | None): OpenVINO compile properties. ``None``: on the CPU, float computations
            run with ``INFERENCE_PRECISION_HINT=f32`` whatever the export's precision (CPUs with bf16 units
            otherwise compute in bf16, which moves CMDR's normalised scores by several hundredths; see
            docs/deployment.md); pass ``{"INFERENCE_PRECISION_HINT": "bf16"}`` to trade that for speed.
            Defaults to ``None``.

    Raises:
        ExportFolderError: If the folder or one of its files is missing or not a CMDR export.
        DeviceUnavailableError: If ``device`` is ``"GPU"`` and OpenVINO sees no GPU.
        ValueError: If ``device`` is not one of ``CPU``, ``GPU``, ``AUTO`` (or a specific ``GPU.N``).

    Example:
        >>> inferencer = CMDROpenVINOInferencer("results/export/weights/openvino", device="AUTO")  # doctest: +SKIP
        >>> result = inferencer.predict(["part1.png", "part2.png"], ["part1.tiff", "part2.tiff"])  # doctest: +SKIP
        >>> result.pred_score.shape, result.anomaly_map.shape  # doctest: +SKIP
        ((2,), (2, 128, 128))
    """

    def __init__(self, path: str | Path, device: str = "CPU", config: dict[str, Any] | None = None) -> None:
        import openvino as ov

        xml, folder = _export_files(path)
        if not (folder / METADATA_FILE).is_file():
            msg = f"{folder / METADATA_FILE}: missing; {xml.name} is not a CMDR export (or the folder is incomplete)."
            raise ExportFolderError(msg)
        self.spec = DeploySpec.load(folder)
        device = device.upper()
        if device.split(".")[0] not in DEVICES:
            msg = f"device={device!r}: choose one of {DEVICES} (or GPU.N)."
            raise ValueError(msg)
        core = ov.Core()
        available = core.available_devices
        if device.startswith("GPU") and device not in available and not any(d.startswith(device) for d in available):
            msg = (
                f"device={device!r}: OpenVINO finds no GPU on this machine (available: {available}). Use "
                "device='CPU', or 'AUTO' to fall back to the CPU when no GPU is present."
            )
            raise DeviceUnavailableError(msg)
        if config is None:
            config = {"INFERENCE_PRECISION_HINT": "f32"} if device == "CPU" else {}
        self.device = device
        self.model = core.compile_model(core.read_model(xml), device, config)
        self.builder = GraphInputBuilder(self.spec)
        self.timings = InferenceTimings()

    # ------------------------------------------------------------------ reading
    @staticmethod
    def _read(value: ArrayOrPath, reader: Any) -> np.ndarray:
        return reader(value) if isinstance(value, str | Path) else value

    def predict(
        self,
        rgb: ArrayOrPath | Sequence[ArrayOrPath] | None = None,
        xyz: ArrayOrPath | Sequence[ArrayOrPath] | None = None,
    ) -> NumpyImageBatch:
        """Score samples.

        Args:
            rgb (ArrayOrPath | Sequence[ArrayOrPath] | None): An RGB image (file path, or ``(H, W, 3)`` uint8
                array) or a list of them; ``None`` for an ``xyz`` model.
            xyz (ArrayOrPath | Sequence[ArrayOrPath] | None): An organized point cloud (TIFF path, or ``(H, W, 3)``
                float32 array with ``(0, 0, 0)`` for missing points) or a list of them; ``None`` for an ``rgb``
                model.

        Returns:
            NumpyImageBatch: ``image`` (the resized RGB, or the resized xyz for an ``xyz`` model),
            ``pred_score`` ``(B,)``, ``pred_label`` ``(B,)``, ``anomaly_map`` ``(B, H, W)`` and ``pred_mask``
            ``(B, H, W)`` at the model's input size.

        Raises:
            ValueError: For a missing or unused modality, arrays of the wrong shape or dtype, or NaN/inf in arrays.
            DataFileError: For unreadable files (the message names the file).
        """
        start = time.perf_counter()
        rgb_list, xyz_list = _as_list(rgb), _as_list(xyz)
        rgb_arrays = [self._read(v, read_rgb) for v in rgb_list] if rgb_list is not None else None
        xyz_arrays = [self._read(v, read_xyz) for v in xyz_list] if xyz_list is not None else None
        images, clouds = self.builder.resize_arrays(rgb_arrays, xyz_arrays)
        inputs = self.builder.from_tensors(images, clouds)
        prepared = time.perf_counter()
        outputs = self.model({name: tensor.numpy() for name, tensor in inputs.items()})
        done = time.perf_counter()
        self.timings.prepare, self.timings.graph = prepared - start, done - prepared
        results = {name: np.asarray(outputs[self.model.output(name)]) for name in self.spec.outputs}
        shown = images if images is not None else clouds
        explanation = None
        if images is not None and clouds is not None:  # which branch scored each sample (missing modalities)
            has_rgb = torch.isfinite(images).flatten(1).all(dim=1)
            explanation = branch_names(branch_index(has_rgb, valid_point_mask(clouds).flatten(1).any(dim=1)))
        return NumpyImageBatch(
            image=np.nan_to_num(shown.numpy()),  # type: ignore[union-attr]
            explanation=explanation,
            **self._squeeze(results),
        )

    @staticmethod
    def _squeeze(results: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Anomalib's numpy batch layout: maps and masks ``(B, H, W)``, labels boolean."""
        out = dict(results)
        for name in ("anomaly_map", "pred_mask"):
            if name in out and out[name].ndim == 4:
                out[name] = out[name][:, 0]
        for name in ("pred_label", "pred_mask"):
            if name in out:
                out[name] = out[name].astype(bool)
        return out

    def __repr__(self) -> str:
        spec = self.spec
        return (
            f"CMDROpenVINOInferencer(modality={spec.modality!r}, image_size={spec.image_size}, "
            f"precision={spec.precision!r}, device={self.device!r})"
        )


def torch_reference(model: Any, rgb: torch.Tensor | None, xyz: torch.Tensor | None) -> dict[str, np.ndarray]:
    """The torch model's post-processed outputs on model-size inputs (for parity checks).

    Args:
        model (Any): A trained :class:`~anomalib_cmdr.CMDR`.
        rgb (torch.Tensor | None): ``(B, 3, H, W)`` RGB in ``[0, 1]`` at the model size.
        xyz (torch.Tensor | None): ``(B, 3, H, W)`` organized clouds at the model size.

    Returns:
        dict[str, np.ndarray]: ``pred_score``, ``pred_label``, ``anomaly_map`` ``(B, H, W)``, ``pred_mask``.

    Example:
        >>> from anomalib_cmdr import CMDR
        >>> model = CMDR(rgb_backbone="resnet18", rgb_layers=[1], modality="rgb", image_size=32, pretrained=False)
        >>> reference = torch_reference(model, torch.rand(2, 3, 32, 32), None)
        >>> reference["pred_score"].shape, reference["anomaly_map"].shape
        ((2,), (2, 32, 32))
    """
    pre = model.pre_processor
    mean = torch.tensor(pre.mean).view(1, 3, 1, 1)
    std = torch.tensor(pre.std).view(1, 3, 1, 1)
    with torch.no_grad():
        out = model.model.eval()((rgb - mean) / std if rgb is not None else None, xyz)
        out = model.post_processor(out) if model.post_processor is not None else out
    results = {name: getattr(out, name) for name in ("pred_score", "pred_label", "anomaly_map", "pred_mask")}
    return CMDROpenVINOInferencer._squeeze({k: v.numpy() for k, v in results.items() if v is not None})
