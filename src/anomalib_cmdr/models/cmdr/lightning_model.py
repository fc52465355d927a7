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
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Literal

import torch
from anomalib import LearningType
from anomalib.data import Batch, InferenceBatch
from anomalib.metrics import AUPRO, AUROC, Evaluator, F1Score
from anomalib.models.components import AnomalibModule
from anomalib.post_processing import PostProcessor
from anomalib.pre_processing import PreProcessor
from anomalib.visualization import Visualizer
from lightning.pytorch.utilities.types import STEP_OUTPUT
from tqdm.auto import tqdm

from .anomaly_map import MapNormalization, Modality
from .calibration import CalibrationMissingError
from .heads import D3DVariant
from .pre_processor import RGBXYZPreProcessor, prepare_batch
from .torch_model import Calibration, CMDRModel, XYZBackbone

logger = logging.getLogger(__name__)


class CMDR(AnomalibModule):
    """CMDR-IAD as an anomalib model.

    Defaults reproduce the paper: DINO ViT-B/8 and Point-MAE (1024 groups of 128 points, blocks
    3/7/11), heads on a 224x224 grid, Adam with lr 1e-3, 50 epochs (set ``max_epochs`` in the
    trainer; the configs do).

    Args:
        rgb_backbone: timm name of the 2D extractor (ViT or CNN).
        rgb_layers: Its feature levels; ``None``: the last level after the final norm.
        rgb_weights: Local weight file (state dict or safetensors) for offline use.
        rgb_model_kwargs: Extra ``timm.create_model`` arguments (e.g. ``{"img_size": 64}``).
        xyz_backbone: ``"pointmae"`` (paper) or ``"fpfh"`` (weight-free FPFH descriptors).
        xyz_weights: Local Point-MAE checkpoint (release format) for offline use.
        num_group: Point-MAE FPS centres (1024).
        group_size: Point-MAE points per group (128).
        xyz_layers: Point-MAE blocks concatenated ((3, 7, 11)).
        pointmae_dim: Point-MAE width (384; smaller only with random weights).
        pointmae_depth: Point-MAE blocks (12).
        pointmae_heads: Point-MAE heads (6).
        pointmae_batchnorm: ``"sample"``: Point-MAE's group-encoder BatchNorm uses each cloud's own
            statistics, as the authors' code runs it (default, for parity with their heads);
            ``"running"``: the checkpoint's running statistics.
        fpfh_kwargs: FPFH extractor arguments (radii relative to the point spacing, voxel size).
        pretrained: Use pretrained backbones (download, or ``rgb_weights``/``xyz_weights``).
            ``False``: random weights, no network (tests, offline experiments).
        image_size: Model input side in pixels (224).
        grid_size: Side of the head grid; ``None``: ``image_size`` (the paper).
        modality: ``"rgb+xyz"`` (default), ``"rgb"`` or ``"xyz"``.
        d3d_variant: ``"auto"``, ``"paper"`` or ``"pooled"`` (grid-size-agnostic D3D).
        map_normalization: ``"aupro"`` (default) or ``"pauroc"``: the authors' per-image map normalisations.
        calibration: ``"none"`` (default, the paper) or ``"zscore"``: z-score each discrepancy map per grid
            position against its statistics on the normal training samples before the fusion, for
            fixtured parts whose normal structures (bores, edges) outscore small defects. The statistics
            are computed on the training data before each validation after training (and by
            :meth:`calibrate`) and saved in the checkpoint.
        lr: Adam learning rate (1e-3).
        pre_processor: Pre-processor, or ``True`` for :class:`RGBXYZPreProcessor` at ``image_size``.
        post_processor: Post-processor or ``True`` for anomalib's default.
        evaluator: Evaluator or ``True`` for image AUROC/F1, pixel AUROC, AUPRO@0.3 and AUPRO@0.01.
        visualizer: Visualizer or ``True`` for anomalib's default.
    """

    def __init__(
        self,
        rgb_backbone: str = "vit_base_patch8_224.dino",
        rgb_layers: Sequence[int] | None = None,
        rgb_weights: str | None = None,
        rgb_model_kwargs: dict[str, Any] | None = None,
        xyz_backbone: XYZBackbone = "pointmae",
        xyz_weights: str | None = None,
        num_group: int = 1024,
        group_size: int = 128,
        xyz_layers: Sequence[int] = (3, 7, 11),
        pointmae_dim: int = 384,
        pointmae_depth: int = 12,
        pointmae_heads: int = 6,
        pointmae_batchnorm: Literal["sample", "running"] = "sample",
        fpfh_kwargs: dict[str, Any] | None = None,
        pretrained: bool = True,
        image_size: int = 224,
        grid_size: int | None = None,
        modality: Modality = "rgb+xyz",
        d3d_variant: D3DVariant = "auto",
        map_normalization: MapNormalization = "aupro",
        calibration: Calibration = "none",
        lr: float = 1e-3,
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
        self.model: CMDRModel = CMDRModel(
            rgb_backbone=rgb_backbone,
            rgb_layers=rgb_layers,
            rgb_weights=rgb_weights,
            rgb_model_kwargs=rgb_model_kwargs,
            xyz_backbone=xyz_backbone,
            xyz_weights=xyz_weights,
            num_group=num_group,
            group_size=group_size,
            xyz_layers=xyz_layers,
            pointmae_dim=pointmae_dim,
            pointmae_depth=pointmae_depth,
            pointmae_heads=pointmae_heads,
            pointmae_batchnorm=pointmae_batchnorm,
            fpfh_kwargs=fpfh_kwargs,
            pretrained=pretrained,
            grid_size=grid_size or image_size,
            modality=modality,
            d3d_variant=d3d_variant,
            map_normalization=map_normalization,
            calibration=calibration,
        )
        self._calibration_stale = False  # the heads changed since the statistics were computed

    # ------------------------------------------------------------------ anomalib configuration
    @classmethod
    def configure_pre_processor(cls, image_size: tuple[int, int] | None = None) -> PreProcessor:
        """RGB: bicubic resize + ImageNet normalisation; xyz: nearest resize to the same size.

        Args:
            image_size: ``(H, W)``; ``(224, 224)`` when ``None``.

        Returns:
            A :class:`RGBXYZPreProcessor`.
        """
        return RGBXYZPreProcessor.default(image_size or (224, 224))

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
    def _inputs(self, batch: Batch | dict[str, Any]) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        get = batch.get if isinstance(batch, dict) else lambda key: getattr(batch, key, None)
        rgb = get("image") if self.model.use_rgb else None
        xyz = get("depth_map") if self.model.use_xyz else None
        if xyz is not None and rgb is not None and xyz.shape[-2:] != rgb.shape[-2:]:
            msg = (
                f"xyz {tuple(xyz.shape[-2:])} and RGB {tuple(rgb.shape[-2:])} sizes differ: use CMDR's "
                "pre-processor (RGBXYZPreProcessor) or resize the depth_map to the image size by nearest neighbour."
            )
            raise ValueError(msg)
        return rgb, xyz

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
        return self.model(*self._inputs(batch))

    def training_step(self, batch: Batch, *args: Any, **kwargs: Any) -> STEP_OUTPUT:
        """Sum of the four head losses; a head whose loss is not finite is skipped for this step."""
        del args, kwargs
        losses = self.model(*self._inputs(batch))
        size = batch.batch_size if hasattr(batch, "batch_size") else None
        finite = {}
        for name, loss in losses.items():
            self.log(f"train_{name}", loss.detach(), on_step=False, on_epoch=True, batch_size=size)
            if torch.isfinite(loss):
                finite[name] = loss
            else:
                logger.warning("Non-finite %s skipped at step %d.", name, self.global_step)
        self._calibration_stale = True
        if not finite:
            return None
        total = sum(finite.values())
        self.log("train_loss", total.detach(), prog_bar=True, on_step=True, on_epoch=True, batch_size=size)
        return total

    def validation_step(self, batch: Batch, *args: Any, **kwargs: Any) -> STEP_OUTPUT:
        """Anomaly maps and scores added to the batch."""
        del args, kwargs
        out = self.model(*self._inputs(batch))
        return batch.update(pred_score=out.pred_score, anomaly_map=out.anomaly_map)

    def test_step(self, batch: Batch, *args: Any, **kwargs: Any) -> STEP_OUTPUT:
        """Same as :meth:`validation_step` (both inputs, not anomalib's image-only default)."""
        return self.validation_step(batch, *args, **kwargs)

    def predict_step(self, batch: Batch, *args: Any, **kwargs: Any) -> STEP_OUTPUT:
        """Same as :meth:`validation_step`."""
        return self.validation_step(batch, *args, **kwargs)

    # ------------------------------------------------------------------ calibration
    def calibrate(self, dataloader: Iterable[Any]) -> int:
        """Compute the ``calibration="zscore"`` statistics on normal samples.

        Batches are pre-processed as in training and moved to the model's device; anomalous samples
        (``gt_label == 1``) are skipped. Under DDP every process reads its shard and the sums are
        reduced across processes.

        Args:
            dataloader: Batches of (normal) samples, e.g. the datamodule's ``train_dataloader()``.

        Returns:
            The number of samples the statistics come from.

        Example:
            >>> model = CMDR(calibration="zscore", pretrained=False)  # doctest: +SKIP
            >>> model.calibrate(datamodule.train_dataloader())  # doctest: +SKIP
            20
        """
        if self.model.calibration is None:
            msg = "calibrate() needs a model built with calibration='zscore'."
            raise ValueError(msg)
        trainer = self._trainer
        show = trainer is None or (trainer.progress_bar_callback is not None and trainer.is_global_zero)

        def normal_batches() -> Iterator[tuple[torch.Tensor | None, torch.Tensor | None]]:
            for batch in tqdm(dataloader, desc="CMDR calibration", unit="batch", disable=not show, leave=False):
                batch = self.transfer_batch_to_device(batch, self.device, 0)
                prepare_batch(self.pre_processor, batch)
                rgb, xyz = self._inputs(batch)
                labels = getattr(batch, "gt_label", None)
                if labels is not None and bool((labels != 0).any()):
                    keep = labels.view(-1) == 0
                    if not keep.any():
                        continue
                    rgb = rgb[keep] if rgb is not None else None
                    xyz = xyz[keep] if xyz is not None else None
                yield rgb, xyz

        reduce = None
        if trainer is not None and trainer.world_size > 1:

            def reduce(tensor: torch.Tensor) -> torch.Tensor:
                return trainer.strategy.reduce(tensor, reduce_op="sum")

        count = self.model.calibrate(normal_batches(), reduce=reduce)
        self._calibration_stale = False
        logger.info("CMDR calibration statistics computed on %d normal samples.", count)
        return count

    def _ensure_calibrated(self) -> None:
        """Before validation, test or prediction: (re)compute the statistics when missing or stale."""
        calibration = self.model.calibration
        if calibration is None or (calibration.num_samples and not self._calibration_stale):
            return
        datamodule = getattr(self._trainer, "datamodule", None) if self._trainer is not None else None
        try:
            loader = datamodule.train_dataloader() if datamodule is not None else None
        except (AttributeError, RuntimeError, TypeError, ValueError) as error:
            logger.debug("No training data for the calibration: %s", error)
            loader = None
        if loader is None:
            if calibration.num_samples:  # stale but nothing to recompute from: keep the last statistics
                logger.warning("CMDR calibration statistics predate the last training steps (no training data).")
                return
            msg = (
                "CMDR(calibration='zscore') has no normal statistics and the datamodule gives no training data: "
                "load a checkpoint of a trained model, pass a datamodule with training data, or call "
                "model.calibrate(dataloader) first."
            )
            raise CalibrationMissingError(msg)
        self.calibrate(loader)

    def on_validation_start(self) -> None:
        """Calibrate (``calibration="zscore"``) when the heads changed since the last calibration."""
        self._ensure_calibrated()

    def on_test_start(self) -> None:
        """Calibrate (``calibration="zscore"``) when the statistics are missing or stale."""
        self._ensure_calibrated()

    def on_predict_start(self) -> None:
        """Calibrate (``calibration="zscore"``) when the statistics are missing or stale."""
        self._ensure_calibrated()

    # ------------------------------------------------------------------ helpers
    def head_parameter_count(self) -> int:
        """Number of trained parameters (the four heads)."""
        return sum(p.numel() for p in self.model.head_parameters())
