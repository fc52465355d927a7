# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0

"""Export a trained CMDR to ONNX and OpenVINO: a multi-input graph plus ``metadata.json``.

anomalib's export traces one image input; CMDR has two modalities and a point-cloud stage that does not
trace. :class:`CMDRExportMixin` overrides ``to_onnx`` and ``to_openvino`` with anomalib's signatures, so the
stock tools work unchanged:

* ``anomalib export --model CMDR --export_type openvino --ckpt_path CKPT [--compression_type FP16]``;
* ``Engine().export(model, ExportType.OPENVINO, ckpt_path=...)``;
* ``model.to_openvino(root)`` / ``model.to_onnx(root)``.

Each writes ``<root>/weights/<openvino|onnx>/`` with the graph (:class:`~.graph.CMDRDeployGraph`: the dense
part of CMDR and the post-processor) and ``metadata.json`` (:class:`~.spec.DeploySpec`), which
:class:`~.inferencer.CMDROpenVINOInferencer` reads. Files appear atomically: an interrupted export never
leaves a half-written model in place of a good one.

Example:
    >>> from anomalib_cmdr import CMDR
    >>> model = CMDR(rgb_backbone="resnet18", rgb_layers=[1], modality="rgb", image_size=32, pretrained=False)
    >>> model.to_openvino("/tmp/cmdr_export_doctest").name  # doctest: +SKIP
    'model.xml'
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from anomalib.deploy import CompressionType, ExportType
from anomalib.models.components.base.export_mixin.utils import create_export_root
from torchvision import tv_tensors

from .graph import CMDRDeployGraph
from .inputs import GraphInputBuilder
from .spec import DeploySpec

if TYPE_CHECKING:
    from anomalib.data import AnomalibDataModule
    from torchmetrics import Metric

logger = logging.getLogger(__name__)


@contextmanager
def staged_folder(folder: Path) -> Iterator[Path]:
    """A temporary folder beside ``folder`` whose files replace those in ``folder`` only on success.

    Args:
        folder (Path): The destination folder (created if needed).

    Yields:
        Path: The staging folder to write into.

    Example:
        >>> folder = Path(tempfile.mkdtemp()) / "openvino"
        >>> with staged_folder(folder) as staging:
        ...     _ = (staging / "model.xml").write_text("<net/>")
        ...     (folder / "model.xml").exists()  # not in place before the block ends
        False
        >>> sorted(p.name for p in folder.iterdir())
        ['model.xml']
    """
    folder.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=folder, prefix=".staging-"))
    try:
        yield staging
        for path in sorted(staging.iterdir()):
            path.replace(folder / path.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def deploy_graph(model: Any) -> CMDRDeployGraph:
    """The exportable graph of a trained :class:`~anomalib_cmdr.CMDR` (its model, post-processor, input size).

    Args:
        model (Any): The Lightning module.

    Returns:
        CMDRDeployGraph: On the CPU, in eval mode.

    Example:
        >>> from anomalib_cmdr import CMDR
        >>> model = CMDR(rgb_backbone="resnet18", rgb_layers=[1], modality="rgb", image_size=32, pretrained=False)
        >>> graph = deploy_graph(model)
        >>> graph.input_names, [out.shape for out in graph(*graph.example_inputs())][::2]
        (['image'], [torch.Size([1]), torch.Size([1, 1, 32, 32])])
    """
    model.ensure_backbone_weights()
    pre = model.pre_processor
    graph = CMDRDeployGraph(model.model.eval(), model.post_processor, model.input_size, pre.mean, pre.std)
    return graph.cpu().eval()


def deploy_spec(model: Any, graph: CMDRDeployGraph, precision: str = "FP32") -> DeploySpec:
    """The metadata of ``graph`` exported from ``model``.

    Args:
        model (Any): The Lightning module.
        graph (CMDRDeployGraph): Its graph.
        precision (str): ``"FP32"``, ``"FP16"`` or ``"INT8"``. Defaults to ``"FP32"``.

    Returns:
        DeploySpec: The metadata.

    Example:
        >>> from anomalib_cmdr import CMDR
        >>> model = CMDR(rgb_backbone="resnet18", rgb_layers=[1], modality="rgb", image_size=32, pretrained=False)
        >>> spec = deploy_spec(model, deploy_graph(model), precision="FP16")
        >>> spec.modality, spec.image_size, spec.inputs, spec.xyz_input, spec.precision
        ('rgb', (32, 32), ['image'], None, 'FP16')
    """
    backbone = model.model.xyz_backbone
    uses_xyz = backbone is not None
    return DeploySpec(
        modality=model.model.modality,
        image_size=tuple(model.input_size),
        square_pad=bool(model.pre_processor.square_pad),
        inputs=list(graph.input_names),
        outputs=list(graph.output_names),
        xyz_backbone=model.hparams.get("xyz_backbone") if uses_xyz else None,
        xyz_model_kwargs=dict(model.hparams.get("xyz_model_kwargs") or {}) if uses_xyz else {},
        xyz_input=graph.xyz_input,  # type: ignore[arg-type]
        num_group=getattr(backbone, "num_group", None),
        group_size=getattr(backbone, "group_size", None),
        precision=precision,
    )


def _check_input_size(model: Any, input_size: tuple[int, int] | None) -> None:
    if input_size is not None and tuple(int(v) for v in input_size) != tuple(model.input_size):
        msg = (
            f"input_size={tuple(input_size)}: this CMDR was trained at image_size {tuple(model.input_size)}, and its "
            "head grid is fixed; export it at that size (leave input_size out). The inferencer resizes inputs."
        )
        raise ValueError(msg)


def calibration_inputs(graph: CMDRDeployGraph, spec: DeploySpec, datamodule: AnomalibDataModule) -> list[tuple]:
    """Graph inputs of the normal training samples, one sample at a time (INT8 calibration data).

    Args:
        graph (CMDRDeployGraph): The graph.
        spec (DeploySpec): Its metadata.
        datamodule (AnomalibDataModule): An RGB + xyz datamodule with training data.

    Returns:
        list[tuple]: Per sample, the graph's inputs as numpy arrays in its input order.

    Example:
        >>> from anomalib_cmdr.data import Synthetic3D
        >>> graph = deploy_graph(model)  # doctest: +SKIP
        >>> spec = deploy_spec(model, graph, precision="INT8")  # doctest: +SKIP
        >>> samples = calibration_inputs(graph, spec, Synthetic3D(category="disc"))  # doctest: +SKIP
        >>> [array.shape for array in samples[0]]  # doctest: +SKIP
        [(1, 3, 128, 128), (1, 1024, 32, 3), (1, 1024, 3), (1, 16384, 3), (1, 16384, 3)]
    """
    datamodule.setup("fit")
    builder = GraphInputBuilder(spec, graph.model.xyz_backbone)
    samples = []
    for batch in datamodule.train_dataloader():
        rgb = batch.image if spec.uses_rgb else None
        xyz = batch.depth_map if spec.uses_xyz else None
        rgb = builder.resize(rgb) if rgb is not None and tuple(rgb.shape[-2:]) != spec.image_size else rgb
        if xyz is not None and tuple(xyz.shape[-2:]) != spec.image_size:
            xyz = builder.resize(tv_tensors.Mask(xyz)).as_subclass(torch.Tensor)
        for i in range(batch.batch_size):  # one sample at a time: the graph's inputs of a batch of one
            inputs = builder.from_tensors(
                rgb[i : i + 1] if rgb is not None else None, xyz[i : i + 1] if xyz is not None else None
            )
            samples.append(tuple(inputs[name].numpy() for name in spec.inputs))
    return samples


QUANTIZED_OPS = ("Convolution", "MatMul")
"""Operations INT8_PTQ quantises: the backbones' convolutions and the matrix multiplications of the backbones
and heads. Quantising the rest (pooling of the sparse 3D features, the valid mask, the fusion's normalisations)
collapsed every score to nearly one value (image AUROC 0.54 against 0.69 in FP32 on Synthetic3D disc)."""


def _only_convolutions_and_matmuls(ov_model: Any) -> Any:
    """An NNCF ignored scope covering every operation type of ``ov_model`` but :data:`QUANTIZED_OPS`."""
    import nncf

    types = {op.get_type_name() for op in ov_model.get_ordered_ops()} - set(QUANTIZED_OPS)
    return nncf.IgnoredScope(types=sorted(types), validate=False)


def _compression_type(value: CompressionType | str | None) -> CompressionType | None:
    """``CompressionType`` from the enum, its value (``"fp16"``) or its name (``"FP16"``)."""
    if value is None or isinstance(value, CompressionType):
        return value
    try:
        return CompressionType(str(value).lower())
    except ValueError:
        choices = [c.name for c in CompressionType]
        msg = f"compression_type={value!r}: choose one of {choices} (or leave it out for FP32)."
        raise ValueError(msg) from None


class CMDRExportMixin:
    """``to_onnx`` / ``to_openvino`` of :class:`~anomalib_cmdr.CMDR` (anomalib's signatures, multi-input graph).

    Example:
        >>> from anomalib_cmdr import CMDR
        >>> model = CMDR(rgb_backbone="resnet18", rgb_layers=[1], modality="rgb", image_size=32, pretrained=False)
        >>> isinstance(model, CMDRExportMixin)
        True
        >>> model.to_onnx("/tmp/cmdr_export_doctest")  # doctest: +SKIP
        PosixPath('/tmp/cmdr_export_doctest/weights/onnx/model.onnx')
        >>> model.to_openvino("/tmp/cmdr_export_doctest", compression_type=CompressionType.FP16)  # doctest: +SKIP
        PosixPath('/tmp/cmdr_export_doctest/weights/openvino/model.xml')
    """

    def to_onnx(
        self,
        export_root: Path | str,
        model_file_name: str = "model",
        input_size: tuple[int, int] | None = None,
        **kwargs: Any,
    ) -> Path:
        """Export to ONNX: ``<export_root>/weights/onnx/<model_file_name>.onnx`` and ``metadata.json``.

        Args:
            export_root (Path | str): Output root.
            model_file_name (str): File name without suffix. Defaults to ``"model"``.
            input_size (tuple[int, int] | None): Must be the model's ``image_size`` if given. Defaults to ``None``.
            **kwargs: Passed to ``torch.onnx.export`` (e.g. ``opset_version``).

        Returns:
            Path: The ``.onnx`` file.
        """
        _check_input_size(self, input_size)
        graph = deploy_graph(self)
        spec = deploy_spec(self, graph)
        folder = create_export_root(export_root, ExportType.ONNX)
        batch = torch.export.Dim("batch", min=1, max=1024)
        dynamic = tuple({0: batch} for _ in graph.input_names)
        with staged_folder(folder) as staging:
            torch.onnx.export(
                graph,
                graph.example_inputs(2),
                str(staging / f"{model_file_name}.onnx"),
                input_names=graph.input_names,
                output_names=graph.output_names,
                dynamo=True,
                dynamic_shapes={"args": dynamic},
                opset_version=kwargs.pop("opset_version", 18),
                **kwargs,
            )
            spec.save(staging)
        return folder / f"{model_file_name}.onnx"

    def to_openvino(
        self,
        export_root: Path | str,
        model_file_name: str = "model",
        input_size: tuple[int, int] | None = None,
        compression_type: CompressionType | None = None,
        datamodule: AnomalibDataModule | None = None,
        metric: Metric | None = None,
        task: Any = None,
        max_drop: float = 0.01,
        ov_kwargs: dict[str, Any] | None = None,
        onnx_kwargs: dict[str, Any] | None = None,
    ) -> Path:
        """Export to OpenVINO IR: ``<export_root>/weights/openvino/<model_file_name>.xml`` and ``metadata.json``.

        The module is converted directly (``openvino.convert_model``), with a dynamic batch dimension.

        Args:
            export_root (Path | str): Output root.
            model_file_name (str): File name without suffix. Defaults to ``"model"``.
            input_size (tuple[int, int] | None): Must be the model's ``image_size`` if given. Defaults to ``None``.
            compression_type (CompressionType | None): ``FP16`` (weights stored in half precision), ``INT8``
                (NNCF weight compression) or ``INT8_PTQ`` (NNCF post-training quantisation of the convolutions and
                matrix multiplications, calibrated on the datamodule's normal training samples, both
                modalities). ``None``: FP32. Defaults to ``None``.
            datamodule (AnomalibDataModule | None): Calibration data for ``INT8_PTQ``. Defaults to ``None``.
            metric (Metric | None): Unused (``INT8_ACQ`` is not supported). Defaults to ``None``.
            task (Any): Unused. Defaults to ``None``.
            max_drop (float): Unused. Defaults to ``0.01``.
            ov_kwargs (dict[str, Any] | None): Extra ``openvino.convert_model`` arguments. Defaults to ``None``.
            onnx_kwargs (dict[str, Any] | None): Unused (no ONNX step). Defaults to ``None``.

        Returns:
            Path: The ``.xml`` file.

        Raises:
            ValueError: For ``INT8_ACQ``, or ``INT8_PTQ`` without a datamodule.
        """
        import openvino as ov

        del metric, task, max_drop, onnx_kwargs
        _check_input_size(self, input_size)
        compression = _compression_type(compression_type)
        if compression == CompressionType.INT8_ACQ:
            msg = "compression_type=INT8_ACQ is not supported for CMDR; use INT8_PTQ (or INT8 for weights only)."
            raise ValueError(msg)
        if compression == CompressionType.INT8_PTQ and datamodule is None:
            msg = "compression_type=INT8_PTQ needs a datamodule (--data) with normal training samples to calibrate on."
            raise ValueError(msg)
        graph = deploy_graph(self)
        precision = {None: "FP32", CompressionType.FP16: "FP16"}.get(compression, "INT8")
        spec = deploy_spec(self, graph, precision)
        example = graph.example_inputs(1)
        shapes = [ov.PartialShape([-1, *tensor.shape[1:]]) for tensor in example]
        ov_model = ov.convert_model(graph, example_input=example, input=shapes, **(ov_kwargs or {}))
        for port, name in zip(ov_model.inputs, graph.input_names, strict=True):
            port.get_tensor().set_names({name})
        for port, name in zip(ov_model.outputs, graph.output_names, strict=True):
            port.get_tensor().set_names({name})
        if compression in {CompressionType.INT8, CompressionType.INT8_PTQ}:
            import nncf

            if compression == CompressionType.INT8:
                ov_model = nncf.compress_weights(ov_model)
            else:
                samples = calibration_inputs(graph, spec, datamodule)  # type: ignore[arg-type]
                ov_model = nncf.quantize(
                    ov_model,
                    nncf.Dataset(samples),
                    subset_size=len(samples),
                    ignored_scope=_only_convolutions_and_matmuls(ov_model),
                )
        folder = create_export_root(export_root, ExportType.OPENVINO)
        with staged_folder(folder) as staging:
            ov.save_model(ov_model, staging / f"{model_file_name}.xml", compress_to_fp16=precision == "FP16")
            spec.save(staging)
        logger.info("CMDR exported to %s (%s).", folder / f"{model_file_name}.xml", precision)
        return folder / f"{model_file_name}.xml"
