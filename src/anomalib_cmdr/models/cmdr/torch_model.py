"""PyTorch model of CMDR-IAD: frozen 2D/3D feature extractors, four trained heads, the fusion.

Example:
    >>> import torch
    >>> model = CMDRModel(rgb_backbone="resnet18", rgb_layers=[1, 2], xyz_backbone="pointmae",
    ...                   num_group=16, group_size=16, pointmae_dim=32, pointmae_depth=4,
    ...                   pointmae_heads=2, xyz_layers=(1, 3), grid_size=32, pretrained=False)
    >>> rgb, xyz = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32) + 0.1
    >>> sorted(model(rgb, xyz))  # training mode: the four losses
    ['loss_d2d', 'loss_d3d', 'loss_m2d3d', 'loss_m3d2d']
    >>> out = model.eval()(rgb, xyz)
    >>> out.anomaly_map.shape, out.pred_score.shape
    (torch.Size([2, 1, 32, 32]), torch.Size([2]))
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from anomalib.data import InferenceBatch
from torch import nn
from torch.nn import functional

from .anomaly_map import CMDRAnomalyMap, MapNormalization, Modality, feature_distance
from .backbones.pointmae import PointMAEExtractor
from .backbones.rgb import RGBBackbone
from .calibration import DiscrepancyCalibration
from .geometry import pool_point_features, scatter_to_grid, valid_points
from .heads import D3DVariant, Decoder2D, Decoder3D, MappingMLP
from .loss import masked_cosine_loss

logger = logging.getLogger(__name__)

XYZBackbone = Literal["pointmae", "fpfh"]
Calibration = Literal["none", "zscore"]
MODALITIES = ("rgb+xyz", "rgb", "xyz")
_MAP_NAMES = {"m3d2d": "d2m", "m2d3d": "d3m", "d2d": "d2r", "d3d": "d3r"}


@dataclass
class CMDRFeatures:
    """Frozen features of a batch on the head grid.

    Attributes:
        rgb: ``(B, N, C2)`` 2D feature tokens, or ``None`` without the RGB branch.
        xyz: ``(B, N, C3)`` 3D feature tokens, or ``None`` without the 3D branch.
        valid: ``(B, N)`` pixels whose 3D feature is not all zero (all ``True`` without xyz).
    """

    rgb: torch.Tensor | None
    xyz: torch.Tensor | None
    valid: torch.Tensor


def build_xyz_backbone(name: XYZBackbone, **kwargs: Any) -> nn.Module:
    """Create a 3D per-point feature extractor by name.

    Args:
        name: ``"pointmae"`` (the paper's) or ``"fpfh"`` (weight-free FPFH descriptors).
        **kwargs: Its constructor arguments.

    Returns:
        A module mapping a list of ``(N_i, 3)`` clouds to a list of ``(N_i, C)`` features, with ``out_dim``.
    """
    if name == "pointmae":
        return PointMAEExtractor(**kwargs)
    if name == "fpfh":
        from .backbones.fpfh import FPFHExtractor

        return FPFHExtractor(**kwargs)
    msg = f"xyz_backbone={name!r}: choose 'pointmae' or 'fpfh'."
    raise ValueError(msg)


class CMDRModel(nn.Module):
    """CMDR-IAD: cross-modal mapping and dual-branch reconstruction.

    Args:
        rgb_backbone: timm model name of the 2D extractor.
        rgb_layers: Its feature levels (``None``: last level, after the final norm).
        rgb_weights: Local weight file for the 2D extractor.
        rgb_model_kwargs: Extra ``timm.create_model`` arguments.
        xyz_backbone: ``"pointmae"`` or ``"fpfh"``.
        xyz_weights: Local Point-MAE checkpoint (release format).
        num_group: Point-MAE FPS centres.
        group_size: Point-MAE points per group.
        xyz_layers: Point-MAE blocks whose outputs are concatenated.
        pointmae_dim: Point-MAE width.
        pointmae_depth: Point-MAE blocks.
        pointmae_heads: Point-MAE heads.
        pointmae_batchnorm: ``"sample"`` (the authors' behaviour) or ``"running"`` statistics in
            Point-MAE's group encoder (see :class:`~.backbones.pointmae.PointMAEExtractor`).
        fpfh_kwargs: :class:`~anomalib_cmdr.models.cmdr.backbones.fpfh.FPFHExtractor` arguments.
        pretrained: Pretrained backbones (download or local files); ``False``: random weights.
        grid_size: Side of the head grid (the paper: 224, the input size).
        modality: ``"rgb+xyz"``, ``"rgb"`` or ``"xyz"``.
        d3d_variant: ``"auto"``, ``"paper"`` or ``"pooled"`` (see :class:`~.heads.Decoder3D`).
        map_normalization: ``"aupro"`` or ``"pauroc"`` (see :class:`~.anomaly_map.CMDRAnomalyMap`).
        calibration: ``"none"`` (the paper) or ``"zscore"``: each discrepancy map is z-scored per grid
            position against normal statistics before the fusion (see
            :class:`~.calibration.DiscrepancyCalibration`; needs :meth:`calibrate`).
    """

    def __init__(
        self,
        rgb_backbone: str = "vit_base_patch8_224.dino",
        rgb_layers: Sequence[int] | None = None,
        rgb_weights: str | Path | None = None,
        rgb_model_kwargs: dict[str, Any] | None = None,
        xyz_backbone: XYZBackbone = "pointmae",
        xyz_weights: str | Path | None = None,
        num_group: int = 1024,
        group_size: int = 128,
        xyz_layers: Sequence[int] = (3, 7, 11),
        pointmae_dim: int = 384,
        pointmae_depth: int = 12,
        pointmae_heads: int = 6,
        pointmae_batchnorm: Literal["sample", "running"] = "sample",
        fpfh_kwargs: dict[str, Any] | None = None,
        pretrained: bool = True,
        grid_size: int = 224,
        modality: Modality = "rgb+xyz",
        d3d_variant: D3DVariant = "auto",
        map_normalization: MapNormalization = "aupro",
        calibration: Calibration = "none",
    ) -> None:
        super().__init__()
        if modality not in MODALITIES:
            msg = f"modality={modality!r}: choose one of {MODALITIES}."
            raise ValueError(msg)
        if calibration not in {"none", "zscore"}:
            msg = f"calibration={calibration!r}: choose 'none' or 'zscore'."
            raise ValueError(msg)
        self.modality = modality
        self.grid_size = (int(grid_size), int(grid_size))
        num_tokens = self.grid_size[0] * self.grid_size[1]
        self.use_rgb = modality in {"rgb+xyz", "rgb"}
        self.use_xyz = modality in {"rgb+xyz", "xyz"}

        self.rgb_backbone: RGBBackbone | None = None
        self.xyz_backbone: nn.Module | None = None
        if self.use_rgb:
            self.rgb_backbone = RGBBackbone(rgb_backbone, rgb_layers, pretrained, rgb_weights, rgb_model_kwargs)
        if self.use_xyz:
            if xyz_backbone == "pointmae":
                xyz_kwargs: dict[str, Any] = {
                    "num_group": num_group,
                    "group_size": group_size,
                    "embed_dim": pointmae_dim,
                    "depth": pointmae_depth,
                    "num_heads": pointmae_heads,
                    "layers": xyz_layers,
                    "pretrained": pretrained,
                    "weights": xyz_weights,
                    "batchnorm": pointmae_batchnorm,
                }
            else:
                xyz_kwargs = dict(fpfh_kwargs or {})
            self.xyz_backbone = build_xyz_backbone(xyz_backbone, **xyz_kwargs)

        dim2 = self.rgb_backbone.out_dim if self.rgb_backbone is not None else 0
        dim3 = self.xyz_backbone.out_dim if self.xyz_backbone is not None else 0
        self.map2Dto3D = MappingMLP(dim2, dim3) if modality == "rgb+xyz" else None
        self.map3Dto2D = MappingMLP(dim3, dim2) if modality == "rgb+xyz" else None
        self.Dec2D = Decoder2D(dim2, self.grid_size) if self.use_rgb else None
        self.Dec3D = Decoder3D(dim3, num_tokens, d3d_variant) if self.use_xyz else None
        self.anomaly_map_generator = CMDRAnomalyMap(modality, map_normalization)
        self.calibration: DiscrepancyCalibration | None = None
        if calibration == "zscore":
            names = [_MAP_NAMES[name] for name in ("m3d2d", "m2d3d", "d2d", "d3d") if self._has_head(name)]
            self.calibration = DiscrepancyCalibration(names, self.grid_size)

    def _has_head(self, name: str) -> bool:
        attribute = {"m3d2d": "map3Dto2D", "m2d3d": "map2Dto3D", "d2d": "Dec2D", "d3d": "Dec3D"}[name]
        return getattr(self, attribute) is not None

    def heads(self) -> dict[str, nn.Module]:
        """The trained heads present in this modality, by official name."""
        names = ("map2Dto3D", "map3Dto2D", "Dec2D", "Dec3D")
        return {name: getattr(self, name) for name in names if getattr(self, name) is not None}

    def head_parameters(self) -> list[nn.Parameter]:
        """Parameters of the trained heads (the backbones are frozen)."""
        return [p for head in self.heads().values() for p in head.parameters()]

    # ------------------------------------------------------------------ features
    def _check_inputs(self, rgb: torch.Tensor | None, xyz: torch.Tensor | None) -> None:
        if self.use_rgb and (rgb is None or rgb.ndim != 4 or rgb.shape[1] != 3):
            shape = None if rgb is None else tuple(rgb.shape)
            msg = f"CMDR (modality={self.modality!r}) needs RGB images of shape (B, 3, H, W), got {shape}."
            raise ValueError(msg)
        if self.use_xyz:
            if xyz is None or xyz.ndim != 4 or xyz.shape[1] != 3:
                shape = None if xyz is None else tuple(xyz.shape)
                msg = f"CMDR (modality={self.modality!r}) needs organized point clouds (B, 3, H, W), got {shape}."
                raise ValueError(msg)
            if not torch.isfinite(xyz).all():
                msg = "The point clouds contain NaN or inf coordinates: mark missing points as (0, 0, 0)."
                raise ValueError(msg)
        if self.use_rgb and self.use_xyz and rgb.shape[0] != xyz.shape[0]:  # type: ignore[union-attr]
            msg = f"RGB batch ({rgb.shape[0]}) and xyz batch ({xyz.shape[0]}) differ in size."  # type: ignore[union-attr]
            raise ValueError(msg)

    @torch.no_grad()
    def xyz_features(self, xyz: torch.Tensor) -> torch.Tensor:
        """3D features on the head grid, ``(B, C3, h, w)`` (zero where no point is near)."""
        clouds = valid_points(xyz)
        empty = [i for i, cloud in enumerate(clouds) if cloud.points.shape[0] == 0]
        if empty:
            logger.warning("Samples %s have no valid 3D point: their anomaly maps are all zero.", empty)
        features = self.xyz_backbone([cloud.points for cloud in clouds])  # type: ignore[misc]
        feature_map = scatter_to_grid(features, clouds, xyz.shape[-2], xyz.shape[-1])
        return pool_point_features(feature_map, self.grid_size)

    @torch.no_grad()
    def rgb_features(self, rgb: torch.Tensor) -> torch.Tensor:
        """2D features upsampled bilinearly to the head grid, ``(B, C2, h, w)``."""
        features = self.rgb_backbone(rgb)  # type: ignore[misc]
        return functional.interpolate(features, size=self.grid_size, mode="bilinear", align_corners=False)

    @torch.no_grad()
    def extract_features(self, rgb: torch.Tensor | None, xyz: torch.Tensor | None) -> CMDRFeatures:
        """Frozen features of both modalities as token sequences, with the valid mask.

        Args:
            rgb: Normalised RGB ``(B, 3, H, W)`` (``None`` in ``xyz`` mode).
            xyz: Organized clouds ``(B, 3, H, W)``, holes (0, 0, 0) (``None`` in ``rgb`` mode).

        Returns:
            The batch's :class:`CMDRFeatures`.
        """
        self._check_inputs(rgb, xyz)
        f2d = self.rgb_features(rgb).flatten(2).transpose(1, 2) if self.use_rgb else None
        f3d = self.xyz_features(xyz).flatten(2).transpose(1, 2) if self.use_xyz else None
        if f3d is not None:
            valid = (f3d != 0).any(dim=-1)
        else:
            valid = torch.ones(f2d.shape[:2], dtype=torch.bool, device=f2d.device)  # type: ignore[union-attr]
        return CMDRFeatures(f2d, f3d, valid)

    # ------------------------------------------------------------------ heads
    def predict_features(self, features: CMDRFeatures) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """Run the heads: ``{name: (prediction, target)}`` token pairs."""
        pairs = {}
        if self.map3Dto2D is not None and self.map2Dto3D is not None:
            pairs["m3d2d"] = (self.map3Dto2D(features.xyz), features.rgb)
            pairs["m2d3d"] = (self.map2Dto3D(features.rgb), features.xyz)
        if self.Dec2D is not None:
            pairs["d2d"] = (self.Dec2D(features.rgb), features.rgb)
        if self.Dec3D is not None:
            pairs["d3d"] = (self.Dec3D(features.xyz), features.xyz)
        return pairs

    def losses(self, features: CMDRFeatures) -> dict[str, torch.Tensor]:
        """Masked cosine loss of each head (each depends only on its own head's parameters)."""
        return {
            f"loss_{name}": masked_cosine_loss(pred, target, features.valid)
            for name, (pred, target) in self.predict_features(features).items()
        }

    def discrepancies(self, features: CMDRFeatures) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """Raw discrepancy maps ``{"d2m", "d3m", "d2r", "d3r"}`` (those of the modality) and the valid mask.

        Args:
            features: The batch's features.

        Returns:
            ``({name: (B, h, w)}, valid (B, h, w))``; the maps are not yet zeroed on invalid pixels.
        """
        batch = features.valid.shape[0]
        distances = {
            _MAP_NAMES[name]: feature_distance(pred, target).view(batch, *self.grid_size)
            for name, (pred, target) in self.predict_features(features).items()
        }
        return distances, features.valid.view(batch, *self.grid_size)

    def anomaly_maps(self, features: CMDRFeatures) -> tuple[torch.Tensor, torch.Tensor]:
        """Fused anomaly maps ``(B, 1, h, w)`` and image scores ``(B,)`` on the head grid."""
        distances, valid = self.discrepancies(features)
        if self.calibration is not None:
            distances = self.calibration(distances)
        return self.anomaly_map_generator(distances, valid)

    @torch.no_grad()
    def calibrate(
        self,
        batches: Iterable[tuple[torch.Tensor | None, torch.Tensor | None]],
        reduce: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> int:
        """Compute the ``calibration="zscore"`` statistics from normal samples (heads in eval mode).

        Args:
            batches: ``(rgb, xyz)`` pairs of normal samples, pre-processed as for :meth:`forward`
                (``None`` for a modality the model does not use).
            reduce: Sums a tensor across processes (DDP); ``None`` for a single process.

        Returns:
            The number of samples used (over all processes).

        Raises:
            ValueError: If the model was built with ``calibration="none"``.
        """
        if self.calibration is None:
            msg = "This model was built with calibration='none': there is nothing to calibrate."
            raise ValueError(msg)
        was_training = self.training
        self.eval()
        self.calibration.reset()
        try:
            for rgb, xyz in batches:
                distances, valid = self.discrepancies(self.extract_features(rgb, xyz))
                self.calibration.update(distances, valid)
            sums, samples = self.calibration.accumulated()
            if reduce is not None:
                sums = reduce(sums)
                samples = int(reduce(torch.tensor(samples, device=sums.device)))
            self.calibration.finalize(sums, samples)
        finally:
            self.train(was_training)
        return self.calibration.num_samples

    def forward(
        self,
        rgb: torch.Tensor | None,
        xyz: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor] | InferenceBatch:
        """Training mode: the losses. Eval mode: the anomaly map at the input size and the score.

        Args:
            rgb: Normalised RGB ``(B, 3, H, W)`` or ``None`` (``xyz`` mode).
            xyz: Organized clouds ``(B, 3, H, W)`` or ``None`` (``rgb`` mode).

        Returns:
            ``{"loss_m3d2d", "loss_m2d3d", "loss_d2d", "loss_d3d"}`` (those of the modality) in
            training, else ``InferenceBatch(pred_score=(B,), anomaly_map=(B, 1, H, W))``.
        """
        features = self.extract_features(rgb, xyz)
        if self.training:
            return self.losses(features)
        anomaly_map, score = self.anomaly_maps(features)
        size = (rgb if rgb is not None else xyz).shape[-2:]  # type: ignore[union-attr]
        if anomaly_map.shape[-2:] != size:
            anomaly_map = functional.interpolate(anomaly_map, size=size, mode="bilinear", align_corners=False)
        return InferenceBatch(pred_score=score, anomaly_map=anomaly_map)
