# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0

"""CMDR: Cross-Modal Mapping and Dual-Branch Reconstruction for 2D-3D anomaly detection.

Paper: R. Daci et al., "Cross-Modal Mapping and Dual-Branch Reconstruction for 2D-3D Multimodal
Industrial Anomaly Detection", arXiv 2603.03939 (2026).

CMDR extends CFM (anomalib's ``Cfm``, the cross-modal mapping branch) with a reconstruction branch
per modality and a reliability-gated fusion of the four discrepancies. It takes RGB images and
organized point clouds (MVTec 3D-AD ``xyz`` TIFFs) from anomalib's ``DepthBatch`` (``image`` and
``depth_map``), or one modality alone (``modality="rgb"`` / ``"xyz"``).

Example:
    >>> from anomalib.engine import Engine
    >>> from anomalib_cmdr import CMDR
    >>> from anomalib_cmdr.data import Synthetic3D
    >>> model = CMDR(pretrained=False)  # doctest: +SKIP
    >>> Engine(max_epochs=50).train(model, datamodule=Synthetic3D())  # doctest: +SKIP

From the stock CLI::

    anomalib train --model CMDR --data anomalib_cmdr.data.Synthetic3D
    anomalib train -c configs/model/cmdr.yaml --data ...
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import torch
from anomalib import LearningType
from anomalib.data import Batch, InferenceBatch
from anomalib.metrics import AUPRO, AUROC, Evaluator, F1Score
from anomalib.models.components import AnomalibModule
from anomalib.post_processing import PostProcessor
from anomalib.pre_processing import PreProcessor
from anomalib.visualization import Visualizer
from lightning.pytorch import Callback
from lightning.pytorch.utilities.types import STEP_OUTPUT

from anomalib_cmdr.deploy.export import CMDRExportMixin
from anomalib_cmdr.visualization import CMDRVisualizer

from .anomaly_map import MapNormalization, Modality
from .calibration import CalibrationMixin
from .feature_cache import FEATURE_CACHE_MODES, FeatureCacheMixin, FeatureCacheMode
from .heads import D3DVariant
from .missing_modality import BranchAlignmentMixin
from .pooling import XYZPooling
from .pre_processor import RGBXYZPreProcessor
from .predictions import PredictionTable
from .pretrained import PretrainedBackbonesMixin
from .resume import RandomStateMixin, check_checkpoint
from .torch_model import Calibration, CMDRModel

logger = logging.getLogger(__name__)


class CMDR(
    PretrainedBackbonesMixin,
    RandomStateMixin,
    CalibrationMixin,
    BranchAlignmentMixin,
    FeatureCacheMixin,
    CMDRExportMixin,
    AnomalibModule,
):
    """CMDR-IAD as an anomalib model.

    Defaults reproduce the paper: DINO ViT-B/8 and Point-MAE (1024 groups of 128 points, blocks
    3/7/11), heads on a 224x224 grid, Adam with lr 1e-3, 50 epochs (set ``max_epochs`` in the
    trainer; the configs do).

    Args:
        rgb_backbone (str): timm name of the 2D extractor (ViT or CNN). Defaults to
            ``"vit_base_patch8_224.dino"``.
        rgb_layers (Sequence[int] | None): Its feature levels; ``None``: the last level after the final norm.
            Defaults to ``None``.
        rgb_weights (str | None): Local weight file (state dict or safetensors) for offline use.
            Defaults to ``None``.
        rgb_model_kwargs (dict[str, Any] | None): Extra ``timm.create_model`` arguments (e.g.
            ``{"patch_size": 8}``). Defaults to ``None``.
        xyz_backbone (str): Registered 3D extractor: ``"pointmae"`` (the paper's), ``"pointmae_tiny"``
            (tests, random weights) or ``"fpfh"`` (weight-free FPFH descriptors); see
            :mod:`~anomalib_cmdr.models.cmdr.backbones.registry`. Defaults to ``"pointmae"``.
        xyz_weights (str | None): Local checkpoint of the 3D extractor (Point-MAE release format) for
            offline use. Defaults to ``None``.
        xyz_model_kwargs (dict[str, Any] | None): Overrides of the 3D extractor's arguments, e.g.
            ``{"batchnorm": "running"}`` or ``{"num_group": 512, "group_size": 64}`` for Point-MAE,
            ``{"voxel_size": 2.0}`` for FPFH. Defaults to ``None``.
        pretrained (bool): Use pretrained backbones (download, or ``rgb_weights``/``xyz_weights``).
            ``False``: random weights, no network (tests, offline experiments). The weights load when a run
            starts from scratch (fit, test, export or a forward call); a checkpoint holds them, so a trained
            model loads without the weight files or a network. Defaults to ``True``.
        image_size (int): Model input side in pixels: the pre-processor brings RGB, point cloud and mask to
            it, and the anomaly map comes back at it. Defaults to ``224``.
        grid_size (int | None): Side of the head grid; ``None``: ``image_size`` (the paper).
            Defaults to ``None``.
        modality (Modality): ``"rgb+xyz"``, ``"rgb"`` or ``"xyz"``. Defaults to ``"rgb+xyz"``.
        d3d_variant (D3DVariant): ``"auto"``, ``"paper"`` or ``"pooled"`` (grid-size-agnostic D3D).
            Defaults to ``"auto"``.
        map_normalization (MapNormalization): ``"aupro"`` or ``"pauroc"``: the authors' per-image map
            normalisations. Defaults to ``"aupro"``.
        calibration (Calibration): ``"none"`` (the paper) or ``"zscore"``: z-score each discrepancy map per
            grid position against its statistics on the normal training samples before the fusion, for
            fixtured parts whose normal structures (bores, edges) outscore small defects. The statistics
            are computed on the training data before each validation after training (and by
            :meth:`calibrate`) and saved in the checkpoint. Defaults to ``"none"``.
        xyz_pooling (XYZPooling): How the 3D features reach the head grid: ``"map"`` (the paper's order of
            operations, bit-identical to the authors' code) or ``"factored"`` (the same pooling as one linear
            map of Point-MAE's centre features, without the 224x224 feature map: equal up to float32 rounding,
            about 10x faster at a 56x56 grid; used by ``configs/model/cmdr_fast.yaml``). An exported graph
            always pools the map way. Defaults to ``"map"``.
        lr (float): Adam learning rate. Defaults to ``1e-3``.
        feature_cache (FeatureCacheMode): Reuse each training sample's frozen backbone outputs in every
            epoch after the first (and in the calibration pass): ``"auto"`` (in memory up to
            ``feature_cache_memory_gb``, then on disk under ``<default_root_dir>/feature_cache``; only when
            the datamodule applies no training augmentation, so it is exact), ``"memory"``, ``"disk"`` or
            ``"off"``. Results are the same as without the cache. Defaults to ``"auto"``.
        feature_cache_memory_gb (float): Memory the cache may take, in GiB. Defaults to ``4.0``.
        pre_processor (PreProcessor | bool): Pre-processor, or ``True`` for :class:`RGBXYZPreProcessor` at
            ``image_size``. Defaults to ``True``.
        post_processor (PostProcessor | bool): Post-processor or ``True`` for anomalib's default.
            Defaults to ``True``.
        evaluator (Evaluator | bool): Evaluator or ``True`` for image AUROC/F1, pixel AUROC, AUPRO@0.3 and
            AUPRO@0.01. Defaults to ``True``.
        visualizer (Visualizer | bool): Visualizer, ``True`` for :class:`~anomalib_cmdr.visualization.CMDRVisualizer`
            (RGB, depth, the map over both, masks) or ``False`` for none. Defaults to ``True``.

    Example:
        >>> model = CMDR(rgb_backbone="resnet18", rgb_layers=[1, 2], xyz_backbone="fpfh", pretrained=False,
        ...              image_size=64)
        >>> model.input_size
        (64, 64)
    """

    def __init__(
        self,
        rgb_backbone: str = "vit_base_patch8_224.dino",
        rgb_layers: Sequence[int] | None = None,
        rgb_weights: str | None = None,
        rgb_model_kwargs: dict[str, Any] | None = None,
        xyz_backbone: str = "pointmae",
        xyz_weights: str | None = None,
        xyz_model_kwargs: dict[str, Any] | None = None,
        pretrained: bool = True,
        image_size: int = 224,
        grid_size: int | None = None,
        modality: Modality = "rgb+xyz",
        d3d_variant: D3DVariant = "auto",
        map_normalization: MapNormalization = "aupro",
        calibration: Calibration = "none",
        xyz_pooling: XYZPooling = "map",
        lr: float = 1e-3,
        feature_cache: FeatureCacheMode = "auto",
        feature_cache_memory_gb: float = 4.0,
        pre_processor: PreProcessor | bool = True,
        post_processor: PostProcessor | bool = True,
        evaluator: Evaluator | bool = True,
        visualizer: Visualizer | bool = True,
    ) -> None:
        if pre_processor is True:
            pre_processor = self.configure_pre_processor((image_size, image_size))
        super().__init__(
            pre_processor=pre_processor,
            post_processor=post_processor,
            evaluator=evaluator,
            visualizer=visualizer,
        )
        self.save_hyperparameters(ignore=["pre_processor", "post_processor", "evaluator", "visualizer"])
        self.lr = lr
        if feature_cache not in FEATURE_CACHE_MODES:
            msg = f"feature_cache={feature_cache!r}: choose one of {FEATURE_CACHE_MODES}."
            raise ValueError(msg)
        if not feature_cache_memory_gb >= 0:
            msg = f"feature_cache_memory_gb={feature_cache_memory_gb!r}: must be >= 0."
            raise ValueError(msg)
        self._samples_without_points = 0
        self.feature_cache = feature_cache
        self.feature_cache_memory_gb = float(feature_cache_memory_gb)
        self.model: CMDRModel = CMDRModel(
            rgb_backbone=rgb_backbone,
            rgb_layers=rgb_layers,
            rgb_model_kwargs=rgb_model_kwargs,
            xyz_backbone=xyz_backbone,
            xyz_model_kwargs=xyz_model_kwargs,
            pretrained=False,  # the pretrained weights load when a run starts from scratch (see pretrained.py)
            grid_size=grid_size or image_size,
            modality=modality,
            d3d_variant=d3d_variant,
            map_normalization=map_normalization,
            calibration=calibration,
            xyz_pooling=xyz_pooling,
        )
        self.request_backbone_weights(pretrained, rgb_weights, xyz_weights, xyz_backbone, modality)

    # ------------------------------------------------------------------ anomalib configuration
    @classmethod
    def configure_pre_processor(cls, image_size: tuple[int, int] | None = None) -> PreProcessor:
        """RGB, point cloud and mask to ``image_size`` (one rule), RGB ImageNet-normalised.

        Args:
            image_size (tuple[int, int] | None): ``(H, W)``; ``(224, 224)`` when ``None``.

        Returns:
            PreProcessor: A :class:`RGBXYZPreProcessor`.
        """
        return RGBXYZPreProcessor(image_size or (224, 224))

    @classmethod
    def configure_visualizer(cls) -> CMDRVisualizer:
        """Per sample: RGB, depth, the map over both, the masks (:class:`~anomalib_cmdr.visualization.CMDRVisualizer`).

        Returns:
            CMDRVisualizer: The visualizer.
        """
        return CMDRVisualizer()

    @property
    def input_size(self) -> tuple[int, int] | None:
        """The model's input ``(height, width)`` (the pre-processor's ``image_size``)."""
        return getattr(self.pre_processor, "image_size", None) or super().input_size

    @staticmethod
    def configure_evaluator() -> Evaluator:
        """Image AUROC and F1, pixel AUROC, AUPRO at FPR 0.3 and at FPR 0.01 (test metrics).

        Returns:
            The evaluator; the metrics are logged as ``image_AUROC``, ``image_F1Score``,
            ``pixel_AUROC``, ``pixel_AUPRO@0.3`` and ``pixel_AUPRO@0.01``.
        """
        metrics = [
            AUROC(fields=["pred_score", "gt_label"], prefix="image_"),
            F1Score(fields=["pred_label", "gt_label"], prefix="image_"),
            AUROC(fields=["anomaly_map", "gt_mask"], prefix="pixel_", strict=False),
        ]
        for limit in (0.3, 0.01):
            aupro = AUPRO(fields=["anomaly_map", "gt_mask"], prefix="pixel_", strict=False, fpr_limit=limit)
            aupro.name = f"pixel_AUPRO@{limit:g}"
            metrics.append(aupro)
        return Evaluator(test_metrics=metrics)

    def configure_callbacks(self) -> list[Callback]:
        """Anomalib's components, plus :class:`~.predictions.PredictionTable` (``predictions.csv`` of ``predict``)."""
        callbacks = super().configure_callbacks()
        callbacks = list(callbacks) if isinstance(callbacks, list | tuple) else [callbacks]
        return [*callbacks, PredictionTable()]

    @property
    def learning_type(self) -> LearningType:
        """One-class: trained on normal samples only."""
        return LearningType.ONE_CLASS

    @property
    def trainer_arguments(self) -> dict[str, Any]:
        """No trainer overrides: epochs and devices stay the user's choice."""
        return {}

    def configure_optimizers(self) -> torch.optim.Optimizer:
        """Adam over the four heads (disjoint parameter sets: each loss updates only its own head)."""
        return torch.optim.Adam(self.model.head_parameters(), lr=self.lr)

    # ------------------------------------------------------------------ steps
    def forward(self, batch: Batch | dict[str, Any], *args: Any, **kwargs: Any) -> InferenceBatch:
        """Inference on a batch (``image`` and/or ``depth_map``, already pre-processed).

        Args:
            batch: A ``DepthBatch`` or a mapping with ``image`` and ``depth_map``.
            *args: Unused.
            **kwargs: Unused.

        Returns:
            ``InferenceBatch`` with ``pred_score`` and ``anomaly_map``.
        """
        del args, kwargs
        if isinstance(batch, torch.Tensor):
            msg = "CMDR takes a DepthBatch or a dict with 'image' and 'depth_map', not a bare tensor."
            raise TypeError(msg)
        self.ensure_backbone_weights()
        return self.model(*self.model.inputs(batch))

    def training_step(self, batch: Batch, *args: Any, **kwargs: Any) -> STEP_OUTPUT:
        """Sum of the four head losses; a head whose loss is not finite is skipped for this step."""
        del args, kwargs
        features = self.batch_features(batch)
        if self.model.use_xyz and self.model.use_rgb:
            # kept on the device: read once per epoch, no host-device synchronisation per step
            self._samples_without_points = self._samples_without_points + (~features.valid.any(dim=1)).sum()
        losses = self.model.losses(features)
        size = batch.batch_size if hasattr(batch, "batch_size") else None
        finite = {}
        for name, loss in losses.items():
            self.log(f"train_{name}", loss.detach(), on_step=False, on_epoch=True, batch_size=size)
            if torch.isfinite(loss):
                finite[name] = loss
            else:
                logger.warning("Non-finite %s skipped at step %d.", name, self.global_step)
        if not finite:
            return None
        total = sum(finite.values())
        self.log("train_loss", total.detach(), prog_bar=True, on_step=True, on_epoch=True, batch_size=size)
        return total

    def on_train_epoch_start(self) -> None:
        """Start counting the training samples without any valid 3D point; make sure the last epoch validates.

        The thresholds, the calibration and the branches' score statistics are learned in validation, and
        anomalib's checkpoint is written after it: a run whose ``max_epochs`` is not a multiple of
        ``check_val_every_n_epoch`` (e.g. ``--trainer.max_epochs 1`` with the offline configuration's 10) would end
        without any of them, so the last epoch validates whatever the setting.
        """
        self._samples_without_points = 0
        trainer = getattr(self, "_trainer", None)
        every, last = (trainer.check_val_every_n_epoch, trainer.max_epochs) if trainer is not None else (None, None)
        if every and last and last > 0 and self.current_epoch == last - 1 and last % every:
            logger.info(
                "Validating after the last epoch (%d), although check_val_every_n_epoch=%d: a finished training "
                "ends with a validated, thresholded model and a checkpoint.",
                last,
                every,
            )
            self._check_val_every_n_epoch = every  # the user's setting, given back when the fit ends
            trainer.check_val_every_n_epoch = 1
        super().on_train_epoch_start()

    def on_fit_end(self) -> None:
        """Give the trainer back the user's ``check_val_every_n_epoch`` (a later fit on it sees their setting)."""
        every = getattr(self, "_check_val_every_n_epoch", None)
        if every is not None:
            self.trainer.check_val_every_n_epoch = every
            self._check_val_every_n_epoch = None
        super().on_fit_end()

    def on_train_epoch_end(self) -> None:
        """Say how many training samples had no valid 3D point (they trained the RGB reconstruction head only)."""
        count = int(self._samples_without_points)
        if count:
            logger.warning(
                "%d training sample(s) of epoch %d had no valid 3D point (missing or empty point cloud): they "
                "trained the RGB reconstruction head only.",
                count,
                self.current_epoch,
            )
        super().on_train_epoch_end()

    def validation_step(self, batch: Batch, *args: Any, **kwargs: Any) -> STEP_OUTPUT:
        """Anomaly maps and scores added to the batch.

        With ``modality="rgb+xyz"`` a sample that lacks one modality is scored by the other branch (see
        :mod:`~anomalib_cmdr.models.cmdr.missing_modality`); the batch's ``explanation`` names each sample's
        branch, and in validation the normal samples set the branches' score statistics.
        """
        del args, kwargs
        rgb, xyz = self.model.inputs(batch)
        size = tuple((rgb if rgb is not None else xyz).shape[-2:])
        validating = getattr(self, "_trainer", None) is not None and self.trainer.validating
        routed = self.model.route(self.model.extract_features(rgb, xyz), size, all_branches=validating)
        branches = self.record_branch_scores(routed, getattr(batch, "gt_label", None))
        update: dict[str, Any] = {"pred_score": routed.pred_score, "anomaly_map": routed.anomaly_map}
        if branches is not None:
            update["explanation"] = branches
        return batch.update(**update)

    def test_step(self, batch: Batch, *args: Any, **kwargs: Any) -> STEP_OUTPUT:
        """Same as :meth:`validation_step` (both inputs, not anomalib's image-only default)."""
        return self.validation_step(batch, *args, **kwargs)

    def predict_step(self, batch: Batch, *args: Any, **kwargs: Any) -> STEP_OUTPUT:
        """Same as :meth:`validation_step`."""
        return self.validation_step(batch, *args, **kwargs)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Refuse a checkpoint of another model or architecture with a clear error, then load it."""
        trainer = getattr(self, "_trainer", None)
        check_checkpoint(checkpoint, dict(self.hparams), getattr(trainer, "ckpt_path", None))
        super().on_load_checkpoint(checkpoint)

    # ------------------------------------------------------------------ helpers
    def head_parameter_count(self) -> int:
        """Number of trained parameters (the four heads)."""
        return sum(p.numel() for p in self.model.head_parameters())
