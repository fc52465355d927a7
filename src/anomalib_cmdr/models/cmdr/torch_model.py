# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0

"""PyTorch model of CMDR-IAD: frozen 2D/3D feature extractors, four trained heads, the fusion.

Example:
    >>> import torch
    >>> model = CMDRModel(rgb_backbone="resnet18", rgb_layers=[1, 2], xyz_backbone="pointmae_tiny",
    ...                   xyz_model_kwargs={"num_group": 16, "group_size": 16}, grid_size=32, pretrained=False)
    >>> rgb, xyz = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32) + 0.1
    >>> sorted(model(rgb, xyz))  # training mode: the loss of each head
    ['loss_d2m', 'loss_d2r', 'loss_d3m', 'loss_d3r']
    >>> out = model.eval()(rgb, xyz)
    >>> out.anomaly_map.shape, out.pred_score.shape
    (torch.Size([2, 1, 32, 32]), torch.Size([2]))
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

import torch
from anomalib.data import InferenceBatch
from torch import nn

from .anomaly_map import CMDRAnomalyMap, MapNormalization, Modality, feature_distance, unit_tokens
from .backbones.registry import create_xyz_backbone, get_xyz_backbone_variant
from .backbones.rgb import RGBBackbone
from .calibration import DiscrepancyCalibration, Reduce
from .features import CMDRFeatures, SampleFeatures, assemble_features
from .geometry import PointFeatures, gather_valid_points
from .heads import HEADS, D3DVariant, Decoder2D, Decoder3D, Head, MappingMLP
from .loss import masked_cosine_loss
from .missing_modality import BRANCHES, BranchScoreAlignment, RoutedPrediction, branch_index
from .pooling import XYZ_POOLINGS, XYZPooling

logger = logging.getLogger(__name__)

Calibration = Literal["none", "zscore"]
MODALITIES = ("rgb+xyz", "rgb", "xyz")


BACKBONE_SEED = 20260303
"""Seed of the random-weight backbones (``pretrained=False``): the RGB one is drawn with this seed, the 3D one
with this seed + 1, whatever the global seed, so an offline model's frozen features are the same in every run
and on every machine (with the same torch version); the global seed drives the heads and the data order."""


@contextmanager
def backbone_rng(offset: int) -> Iterator[None]:
    """Draw random numbers from the fixed backbone seed inside the block, leaving the global RNG as it was.

    Args:
        offset (int): Added to :data:`BACKBONE_SEED` (one stream per backbone).

    Yields:
        None: Nothing.

    Example:
        >>> with backbone_rng(0):
        ...     first = torch.rand(2)
        >>> with backbone_rng(0):
        ...     torch.equal(torch.rand(2), first)  # the same stream whatever the global seed
        True
        >>> with backbone_rng(1):
        ...     torch.equal(torch.rand(2), first)  # another backbone, another stream
        False
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(BACKBONE_SEED + offset)
        yield


def full_precision(tensor: torch.Tensor) -> torch.autocast:
    """A context in which autocast is off on ``tensor``'s device: the stages that must stay in float32.

    Args:
        tensor (torch.Tensor): Any tensor on the device in question.

    Returns:
        torch.autocast: The context manager.

    Example:
        >>> x = torch.rand(2, 4)
        >>> with torch.autocast("cpu", dtype=torch.bfloat16):
        ...     with full_precision(x):
        ...         (x @ x.T).dtype
        torch.float32
    """
    return torch.autocast(tensor.device.type, enabled=False)


class CMDRModel(nn.Module):
    """CMDR-IAD: cross-modal mapping and dual-branch reconstruction.

    Args:
        rgb_backbone (str): timm model name of the 2D extractor. Defaults to ``"vit_base_patch8_224.dino"``.
        rgb_layers (Sequence[int] | None): Its feature levels; ``None``: the last level, after the final
            norm. Defaults to ``None``.
        rgb_weights (str | Path | None): Local weight file for the 2D extractor. Defaults to ``None``.
        rgb_model_kwargs (dict[str, Any] | None): Extra ``timm.create_model`` arguments. Defaults to ``None``.
        xyz_backbone (str): Registered 3D extractor variant (see
            :mod:`~anomalib_cmdr.models.cmdr.backbones.registry`): ``"pointmae"`` (the paper's),
            ``"pointmae_tiny"`` or ``"fpfh"``. Defaults to ``"pointmae"``.
        xyz_weights (str | Path | None): Local checkpoint of the 3D extractor (Point-MAE release format).
            Defaults to ``None``.
        xyz_model_kwargs (dict[str, Any] | None): Overrides of the 3D variant's arguments, e.g.
            ``{"num_group": 512, "batchnorm": "running"}`` for Point-MAE or ``{"voxel_size": 2.0}`` for FPFH.
            Defaults to ``None``.
        pretrained (bool): Pretrained backbones (download or local files); ``False``: random weights.
            Defaults to ``True``.
        grid_size (int): Side of the head grid (the paper: 224, the input size). Defaults to ``224``.
        modality (Modality): ``"rgb+xyz"``, ``"rgb"`` or ``"xyz"``. Defaults to ``"rgb+xyz"``.
        d3d_variant (D3DVariant): ``"auto"``, ``"paper"`` or ``"pooled"`` (see :class:`~.heads.Decoder3D`).
            Defaults to ``"auto"``.
        map_normalization (MapNormalization): ``"aupro"`` or ``"pauroc"`` (see
            :class:`~.anomaly_map.CMDRAnomalyMap`). Defaults to ``"aupro"``.
        calibration (Calibration): ``"none"`` (the paper) or ``"zscore"``: each discrepancy map is z-scored
            per grid position against normal statistics before the fusion (see
            :class:`~.calibration.DiscrepancyCalibration`; needs :meth:`calibrate`). Defaults to ``"none"``.
        xyz_pooling (XYZPooling): How the 3D features reach the head grid: ``"map"`` (the paper's order of
            operations: scatter to the pixels, 3x3 mean, adaptive mean; bit-identical to the authors' code) or
            ``"factored"`` (the same linear pooling applied to the compact features, equal up to float32
            rounding and much faster on a grid coarser than the input; see :mod:`~.pooling`). Defaults to
            ``"map"``.

    Example:
        >>> model = CMDRModel(rgb_backbone="resnet18", rgb_layers=[1], modality="rgb", grid_size=16,
        ...                   pretrained=False)
        >>> sorted(model.heads()), model.xyz_backbone
        (['d2r'], None)
        >>> out = model.eval()(torch.rand(2, 3, 32, 32), None)
        >>> out.anomaly_map.shape, out.pred_score.shape
        (torch.Size([2, 1, 32, 32]), torch.Size([2]))
    """

    def __init__(
        self,
        rgb_backbone: str = "vit_base_patch8_224.dino",
        rgb_layers: Sequence[int] | None = None,
        rgb_weights: str | Path | None = None,
        rgb_model_kwargs: dict[str, Any] | None = None,
        xyz_backbone: str = "pointmae",
        xyz_weights: str | Path | None = None,
        xyz_model_kwargs: dict[str, Any] | None = None,
        pretrained: bool = True,
        grid_size: int = 224,
        modality: Modality = "rgb+xyz",
        d3d_variant: D3DVariant = "auto",
        map_normalization: MapNormalization = "aupro",
        calibration: Calibration = "none",
        xyz_pooling: XYZPooling = "map",
    ) -> None:
        super().__init__()
        if modality not in MODALITIES:
            msg = f"modality={modality!r}: choose one of {MODALITIES}."
            raise ValueError(msg)
        if calibration not in {"none", "zscore"}:
            msg = f"calibration={calibration!r}: choose 'none' or 'zscore'."
            raise ValueError(msg)
        if xyz_pooling not in XYZ_POOLINGS:
            msg = f"xyz_pooling={xyz_pooling!r}: choose one of {XYZ_POOLINGS}."
            raise ValueError(msg)
        self.modality = modality
        self.xyz_pooling = xyz_pooling
        self.grid_size = (int(grid_size), int(grid_size))
        self.use_rgb = modality in {"rgb+xyz", "rgb"}
        self.use_xyz = modality in {"rgb+xyz", "xyz"}

        self.rgb_backbone: RGBBackbone | None = None
        self.xyz_backbone: nn.Module | None = None
        self._backbone_specs = {
            "rgb": (rgb_backbone, rgb_layers, dict(rgb_model_kwargs or {})),
            "xyz": (xyz_backbone, dict(xyz_model_kwargs or {})),
        }
        if self.use_rgb:
            with backbone_rng(0):
                self.rgb_backbone = RGBBackbone(rgb_backbone, rgb_layers, pretrained, rgb_weights, rgb_model_kwargs)
        if self.use_xyz:
            with backbone_rng(1):
                kwargs = xyz_model_kwargs or {}
                self.xyz_backbone = create_xyz_backbone(xyz_backbone, pretrained, xyz_weights, **kwargs)
        dims = {
            "rgb": self.rgb_backbone.out_dim if self.rgb_backbone is not None else 0,
            "xyz": self.xyz_backbone.out_dim if self.xyz_backbone is not None else 0,
        }
        for head in HEADS:
            setattr(self, head.attribute, self._build_head(head, dims, d3d_variant))
        self.anomaly_map_generator = CMDRAnomalyMap(modality, map_normalization)
        self.calibration: DiscrepancyCalibration | None = None
        if calibration == "zscore":
            self.calibration = DiscrepancyCalibration(self.heads(), self.grid_size)
        # a sample without one modality is served by the other branch, its score aligned to the fused one
        self.branch_alignment = BranchScoreAlignment() if modality == "rgb+xyz" else None

    def _build_head(self, head: Head, dims: dict[str, int], d3d_variant: D3DVariant) -> nn.Module | None:
        """The module of ``head``, or ``None`` when this modality does not have it."""
        uses = {"rgb": self.use_rgb, "xyz": self.use_xyz}
        if not (uses[head.source] and uses[head.target]):
            return None
        if head.source != head.target:
            return MappingMLP(dims[head.source], dims[head.target])
        if head.source == "rgb":
            return Decoder2D(dims["rgb"], self.grid_size)
        return Decoder3D(dims["xyz"], self.grid_size[0] * self.grid_size[1], d3d_variant)

    def load_pretrained_backbones(
        self,
        rgb_weights: str | Path | None = None,
        xyz_weights: str | Path | None = None,
        backbones: Sequence[str] = ("rgb", "xyz"),
    ) -> list[str]:
        """Load pretrained weights into backbones built with random weights (``pretrained=False``).

        The Lightning module builds its backbones without weights and loads them with this method only when
        it trains from scratch, so a checkpoint (which holds every weight) loads without the weight files or
        a network.

        Args:
            rgb_weights (str | Path | None): Local file for the 2D extractor; ``None``: the timm hub.
                Defaults to ``None``.
            xyz_weights (str | Path | None): Local file for the 3D extractor; ``None``: the variant's release.
                Defaults to ``None``.
            backbones (Sequence[str]): Which of ``"rgb"`` and ``"xyz"`` to load (the others keep their weights).
                Defaults to both.

        Returns:
            list[str]: The backbones loaded (``"rgb"``, ``"xyz"``); weight-free extractors (FPFH) are skipped.

        Raises:
            WeightsUnavailableError: If the weights cannot be downloaded and no file was given.
            FileNotFoundError: If a given file does not exist.
        """
        loaded = []
        if self.rgb_backbone is not None and "rgb" in backbones:
            name, layers, kwargs = self._backbone_specs["rgb"]
            with backbone_rng(0):  # the global RNG (heads, data order) is left alone
                source = RGBBackbone(name, layers, True, rgb_weights, kwargs)
            self.rgb_backbone.load_state_dict(source.state_dict())
            loaded.append("rgb")
        if self.xyz_backbone is not None and "xyz" in backbones:
            name, kwargs = self._backbone_specs["xyz"]
            if get_xyz_backbone_variant(name).weight_free:
                if xyz_weights is not None:
                    create_xyz_backbone(name, True, xyz_weights)  # raises the clear error
            else:
                with backbone_rng(1):
                    source = create_xyz_backbone(name, True, xyz_weights, **kwargs)
                self.xyz_backbone.load_state_dict(source.state_dict())
                loaded.append("xyz")
        return loaded

    def heads(self) -> dict[str, nn.Module]:
        """The trained heads present in this modality, by name (``d2m``, ``d3m``, ``d2r``, ``d3r``).

        Returns:
            dict[str, nn.Module]: The head modules, in :data:`~.heads.HEADS` order.
        """
        modules = {head.name: getattr(self, head.attribute) for head in HEADS}
        return {name: module for name, module in modules.items() if module is not None}

    def head_parameters(self) -> list[nn.Parameter]:
        """Parameters of the trained heads (the backbones are frozen)."""
        return [p for head in self.heads().values() for p in head.parameters()]

    def inputs(self, batch: Any) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """The ``(rgb, xyz)`` tensors this model reads from a batch (``None`` for an unused modality).

        Args:
            batch (Any): A ``DepthBatch`` or a mapping with ``image`` and ``depth_map``.

        Returns:
            tuple[torch.Tensor | None, torch.Tensor | None]: ``image`` and ``depth_map``.

        Raises:
            ValueError: If both are present and their sizes differ.
        """
        get = batch.get if isinstance(batch, dict) else lambda key: getattr(batch, key, None)
        rgb = get("image") if self.use_rgb else None
        xyz = get("depth_map") if self.use_xyz else None
        if xyz is not None and rgb is not None and xyz.shape[-2:] != rgb.shape[-2:]:
            msg = (
                f"xyz {tuple(xyz.shape[-2:])} and RGB {tuple(rgb.shape[-2:])} sizes differ: use CMDR's "
                "pre-processor (RGBXYZPreProcessor), which brings both to the model's image_size."
            )
            raise ValueError(msg)
        return rgb, xyz

    # ------------------------------------------------------------------ features
    def _check_inputs(self, rgb: torch.Tensor | None, xyz: torch.Tensor | None) -> None:
        both = self.modality == "rgb+xyz"
        if both and rgb is None and xyz is None:
            msg = "CMDR (modality='rgb+xyz') needs RGB images, point clouds or both; got neither."
            raise ValueError(msg)
        if self.use_rgb and (rgb is not None or not both) and (rgb is None or rgb.ndim != 4 or rgb.shape[1] != 3):
            shape = None if rgb is None else tuple(rgb.shape)
            msg = f"CMDR (modality={self.modality!r}) needs RGB images of shape (B, 3, H, W), got {shape}."
            raise ValueError(msg)
        for name, tensor in (("RGB images", rgb if self.use_rgb else None), ("point clouds", xyz)):
            if tensor is not None and not tensor.is_floating_point():
                msg = f"CMDR needs floating-point {name} (RGB normalised, xyz in metres), got {tensor.dtype}."
                raise ValueError(msg)
        if self.use_rgb and rgb is not None:
            finite = torch.isfinite(rgb).flatten(1)
            partly = finite.any(dim=1) & ~finite.all(dim=1)
            if partly.any() or (not both and not finite.all()):
                index = int(torch.nonzero(partly | ~finite.all(dim=1))[0])
                msg = (
                    f"The RGB image of sample {index} contains NaN or inf values (a corrupted image or a failed "
                    "camera frame)"
                    + (
                        "; an image that is entirely NaN marks a missing image (the sample is then scored by the 3D "
                        "branch)."
                        if both
                        else "."
                    )
                )
                raise ValueError(msg)
        if self.use_xyz and (xyz is not None or not both):
            if xyz is None or xyz.ndim != 4 or xyz.shape[1] != 3:
                shape = None if xyz is None else tuple(xyz.shape)
                msg = f"CMDR (modality={self.modality!r}) needs organized point clouds (B, 3, H, W), got {shape}."
                raise ValueError(msg)
            if not torch.isfinite(xyz).all():
                msg = "The point clouds contain NaN or inf coordinates: mark missing points as (0, 0, 0)."
                raise ValueError(msg)
        if rgb is not None and xyz is not None and rgb.shape[-2:] != xyz.shape[-2:]:
            msg = (
                f"RGB {tuple(rgb.shape[-2:])} and xyz {tuple(xyz.shape[-2:])} sizes differ: an organized cloud has "  # type: ignore[union-attr]
                "one point per RGB pixel (CMDR's pre-processor brings both to the model's image_size)."
            )
            raise ValueError(msg)
        if rgb is not None and xyz is not None and rgb.shape[0] != xyz.shape[0]:
            msg = f"RGB batch ({rgb.shape[0]}) and xyz batch ({xyz.shape[0]}) differ in size."  # type: ignore[union-attr]
            raise ValueError(msg)

    @torch.no_grad()
    def sample_features(self, rgb: torch.Tensor | None, xyz: torch.Tensor | None) -> list[SampleFeatures]:
        """The frozen backbones' outputs, per sample and compact (what the feature cache stores).

        The 3D path (valid points, FPS, kNN, interpolation, the 3D extractor) always runs in float32, also
        under mixed precision: half-precision distances pick wrong nearest centres (bf16) or give NaN
        interpolation weights (fp16). The 2D backbone may run in mixed precision.

        An ``rgb+xyz`` model also takes samples that lack a modality (see
        :mod:`~anomalib_cmdr.models.cmdr.missing_modality`): ``xyz=None`` or a cloud without a valid point, and
        ``rgb=None`` or an image that is entirely NaN.

        Args:
            rgb (torch.Tensor | None): Normalised RGB ``(B, 3, H, W)`` (``None`` in ``xyz`` mode, or when no
                sample has one).
            xyz (torch.Tensor | None): Organized clouds ``(B, 3, H, W)``, holes (0, 0, 0) (``None`` in ``rgb``
                mode, or when no sample has one).

        Returns:
            list[SampleFeatures]: One per sample.
        """
        self._check_inputs(rgb, xyz)
        rgb = rgb.float() if rgb is not None else None  # float64 (numpy) or float16 inputs: the weights are float32
        xyz = xyz.float() if xyz is not None else None
        reference = rgb if rgb is not None else xyz
        batch, size = reference.shape[0], (int(reference.shape[-2]), int(reference.shape[-1]))  # type: ignore[union-attr]
        maps: list[torch.Tensor | None] = [None] * batch
        points: list[PointFeatures | None] = [None] * batch
        pixels: list[torch.Tensor | None] = [None] * batch
        rgb_present = [True] * batch
        if self.use_rgb:
            if rgb is None:  # an rgb+xyz model given point clouds only
                rgb_present = [False] * batch
                rgb = torch.zeros_like(xyz)  # type: ignore[arg-type]
            elif self.use_xyz:
                present = torch.isfinite(rgb).flatten(1).all(dim=1)
                rgb_present = present.tolist()
                if not all(rgb_present):  # a blank image for the backbone; its features are never used
                    rgb = torch.where(present.view(-1, 1, 1, 1), rgb, torch.zeros_like(rgb))
            maps = list(self.rgb_backbone(rgb).float().unbind(0))  # type: ignore[misc]
        if self.use_xyz:
            if xyz is None:  # an rgb+xyz model given RGB images only
                xyz = torch.zeros_like(rgb)  # type: ignore[arg-type]
            with full_precision(xyz):
                clouds = gather_valid_points(xyz.float())
                empty = [i for i, cloud in enumerate(clouds) if cloud.points.shape[0] == 0]
                if empty and not self.use_rgb:
                    logger.warning("Samples %s have no valid 3D point: their anomaly maps are all zero.", empty)
                points = list(self._point_features([cloud.points for cloud in clouds]))
                pixels = [cloud.index for cloud in clouds]
        return [SampleFeatures(maps[i], points[i], pixels[i], size, rgb_present[i]) for i in range(batch)]

    def _point_features(self, clouds: list[torch.Tensor]) -> list[PointFeatures]:
        """The 3D extractor's features, compact when it offers it (Point-MAE), else per point (FPFH)."""
        compact = getattr(self.xyz_backbone, "compact", None)
        if compact is not None:
            return compact(clouds)
        return [PointFeatures(features) for features in self.xyz_backbone(clouds)]  # type: ignore[misc]

    def assemble(self, samples: list[SampleFeatures]) -> CMDRFeatures:
        """Bring compact per-sample features onto the head grid (in float32).

        Args:
            samples (list[SampleFeatures]): From :meth:`sample_features` (or the feature cache).

        Returns:
            CMDRFeatures: The batch's features.
        """
        any_tensor = samples[0].rgb if samples[0].rgb is not None else samples[0].pixels
        with full_precision(any_tensor):  # type: ignore[arg-type]
            return assemble_features(samples, self.grid_size, self.xyz_pooling)

    @torch.no_grad()
    def extract_features(self, rgb: torch.Tensor | None, xyz: torch.Tensor | None) -> CMDRFeatures:
        """Frozen features of both modalities as token sequences on the head grid, with the valid mask.

        Args:
            rgb (torch.Tensor | None): Normalised RGB ``(B, 3, H, W)`` (``None`` in ``xyz`` mode).
            xyz (torch.Tensor | None): Organized clouds ``(B, 3, H, W)``, holes (0, 0, 0) (``None`` in ``rgb``
                mode).

        Returns:
            CMDRFeatures: The batch's features.
        """
        return self.assemble(self.sample_features(rgb, xyz))

    # ------------------------------------------------------------------ heads
    def predict_features(self, features: CMDRFeatures) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """Run the heads.

        Args:
            features (CMDRFeatures): The batch's features.

        Returns:
            dict[str, tuple[torch.Tensor, torch.Tensor]]: ``{name: (prediction, target)}`` token pairs.
        """
        return dict(self._head_outputs(features))

    def _head_outputs(self, features: CMDRFeatures) -> Iterator[tuple[str, tuple[torch.Tensor, torch.Tensor]]]:
        """``(name, (prediction, target))`` of each head, computed when asked for (one prediction at a time)."""
        tokens = {"rgb": features.rgb, "xyz": features.xyz}
        for head in HEADS:
            module = getattr(self, head.attribute)
            if module is not None:
                yield head.name, (module(tokens[head.source]), tokens[head.target])

    def losses(self, features: CMDRFeatures) -> dict[str, torch.Tensor]:
        """Masked cosine loss of each head, ``loss_<name>`` (each depends only on its own head's parameters).

        Every head learns on the pixels that hold a 3D point. A training sample without any valid 3D point
        (a missing or empty point cloud) trains the RGB reconstruction head (D2D) on all its pixels and no
        other head; a sample without RGB image trains the 3D reconstruction head (D3D) only.
        """
        pairs = self.predict_features(features)  # the heads may run in mixed precision, the losses do not
        valid = features.valid
        rgb_valid = valid | ~valid.any(dim=1, keepdim=True) if self.use_xyz else valid
        rgb_ok = torch.ones_like(valid[:, :1]) if features.rgb_present is None else features.rgb_present.unsqueeze(1)
        masks = {"d2m": valid & rgb_ok, "d3m": valid & rgb_ok, "d2r": rgb_valid & rgb_ok, "d3r": valid}
        with full_precision(valid):
            return {
                f"loss_{name}": masked_cosine_loss(pred.float(), target.float(), masks[name])
                for name, (pred, target) in pairs.items()
            }

    def discrepancies(self, features: CMDRFeatures) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """Raw discrepancy maps ``{"d2m", "d3m", "d2r", "d3r"}`` (those of the modality) and the valid mask.

        Args:
            features (CMDRFeatures): The batch's features.

        Returns:
            tuple[dict[str, torch.Tensor], torch.Tensor]: ``({name: (B, h, w)}, valid (B, h, w))``; the maps
            are not yet zeroed on invalid pixels.
        """
        batch = features.valid.shape[0]
        tokens = {"rgb": features.rgb, "xyz": features.xyz}
        active = [head for head in HEADS if getattr(self, head.attribute) is not None]
        distances = {}
        # The heads of one target in turn, its reconstruction head (the larger temporaries) first: the target's
        # normalised tokens are computed once, contiguous, after that head has run, and serve both heads. One
        # prediction at a time is held in memory (each head's distance is taken as soon as it has run).
        for target_name in dict.fromkeys(head.target for head in active):
            unit_target = None
            for head in sorted((h for h in active if h.target == target_name), key=lambda h: h.source != h.target):
                prediction = getattr(self, head.attribute)(tokens[head.source])
                with full_precision(features.valid):
                    if unit_target is None:
                        unit_target = unit_tokens(tokens[target_name].float())  # type: ignore[union-attr]
                    distance = feature_distance(prediction.float(), unit_target, unit_target=True)
                distances[head.name] = distance.view(batch, *self.grid_size)
                del prediction
            del unit_target
        distances = {head.name: distances[head.name] for head in active}  # the fusion's order
        return distances, features.valid.view(batch, *self.grid_size)

    def anomaly_maps(
        self,
        features: CMDRFeatures,
        image_size: tuple[int, int] | None = None,
        all_branches: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Fused anomaly maps and image scores.

        Args:
            features (CMDRFeatures): The batch's features.
            image_size (tuple[int, int] | None): Size of the returned maps; ``None``: the head grid.
                Defaults to ``None``.
            all_branches (bool): See :meth:`route`. Defaults to ``False``.

        Returns:
            tuple[torch.Tensor, torch.Tensor]: Maps ``(B, 1, H, W)`` and scores ``(B,)``.
        """
        routed = self.route(features, image_size, all_branches)
        return routed.anomaly_map, routed.pred_score

    def route(
        self,
        features: CMDRFeatures,
        image_size: tuple[int, int] | None = None,
        all_branches: bool = False,
    ) -> RoutedPrediction:
        """Anomaly maps and scores, each sample from its branch (see :mod:`~.missing_modality`).

        A single-modality model has one branch. An ``rgb+xyz`` model fuses a batch whose samples all have both
        modalities the paper's way only; otherwise, or with ``all_branches``, it computes the three branch maps of
        every sample and keeps each sample's own.

        Args:
            features (CMDRFeatures): The batch's features.
            image_size (tuple[int, int] | None): Size of the returned maps; ``None``: the head grid.
                Defaults to ``None``.
            all_branches (bool): Always compute the three branches, with no data-dependent branching: for the
                exported graph (traced once, for any input) and for the branches' score statistics (the raw
                scores of every branch). Defaults to ``False``.

        Returns:
            RoutedPrediction: Maps, scores on the fused scale, branches and (with all branches) the raw branch
            scores.
        """
        distances, valid = self.discrepancies(features)
        with full_precision(valid):  # per-image sums overflow in fp16
            distances = {name: distance.float() for name, distance in distances.items()}
            if self.calibration is not None:
                distances = self.calibration(distances)
            complete = None if self.branch_alignment is None else features.has_rgb & features.has_xyz
            # one host read per batch: complete batches (the usual case) skip the single-modality branches
            if complete is None or (not all_branches and bool(complete.all())):
                anomaly_map, score = self.anomaly_map_generator(distances, valid, image_size)
                branch = torch.full_like(score, BRANCHES.index(self.modality), dtype=torch.long)
                return RoutedPrediction(anomaly_map, score, branch, complete=complete)
            fusion = self.anomaly_map_generator
            everywhere = torch.ones_like(valid)
            outputs = [
                fusion.normalize(fusion.fuse(distances, valid)),
                fusion.normalize(fusion.fuse(distances, everywhere, modality="rgb")),
                fusion.normalize(fusion.fuse(distances, valid, modality="xyz")),
            ]
            raw_scores = torch.stack([score for _, score in outputs])
            aligned = self.branch_alignment(raw_scores)
            branch = branch_index(features.has_rgb, features.has_xyz)
            pick = torch.nn.functional.one_hot(branch, len(BRANCHES)).T.to(aligned.dtype)  # (3, B)
            score = (aligned * pick).sum(dim=0)
            maps = torch.stack([anomaly_map for anomaly_map, _ in outputs])  # (3, B, 1, h, w)
            anomaly_map = (maps * pick.view(*pick.shape, 1, 1, 1)).sum(dim=0)
            if image_size is not None and tuple(anomaly_map.shape[-2:]) != tuple(image_size):
                anomaly_map = torch.nn.functional.interpolate(
                    anomaly_map, size=image_size, mode="bilinear", align_corners=False
                )
            return RoutedPrediction(anomaly_map, score, branch, raw_scores, complete)

    @torch.no_grad()
    def calibrate(
        self,
        batches: Iterable[tuple[torch.Tensor | None, torch.Tensor | None] | CMDRFeatures],
        reduce: Reduce | None = None,
    ) -> int:
        """Compute the ``calibration="zscore"`` statistics from normal samples (heads in eval mode).

        Args:
            batches (Iterable[tuple[torch.Tensor | None, torch.Tensor | None] | CMDRFeatures]): ``(rgb, xyz)``
                pairs of normal samples, pre-processed as for :meth:`forward` (``None`` for a modality the model
                does not use), or their :class:`CMDRFeatures`.
            reduce (Reduce | None): Sums a tensor across processes (DDP); ``None`` for a single process.
                Defaults to ``None``.

        Returns:
            int: The number of samples used (over all processes).

        Raises:
            ValueError: If the model was built with ``calibration="none"``.
        """
        if self.calibration is None:
            msg = "This model was built with calibration='none': there is nothing to calibrate."
            raise ValueError(msg)
        was_training = self.training
        self.eval()
        try:
            batch_maps = (
                self.discrepancies(_complete(item if isinstance(item, CMDRFeatures) else self.extract_features(*item)))
                for item in batches
            )
            return self.calibration.fit(batch_maps, reduce)
        finally:
            self.train(was_training)

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
            ``{"loss_d2m", "loss_d3m", "loss_d2r", "loss_d3r"}`` (those of the modality) in
            training, else ``InferenceBatch(pred_score=(B,), anomaly_map=(B, 1, H, W))``.
        """
        features = self.extract_features(rgb, xyz)
        if self.training:
            return self.losses(features)
        size = (rgb if rgb is not None else xyz).shape[-2:]  # type: ignore[union-attr]
        anomaly_map, score = self.anomaly_maps(features, tuple(size))
        return InferenceBatch(pred_score=score, anomaly_map=anomaly_map)


def _complete(features: CMDRFeatures) -> CMDRFeatures:
    """The samples that have every modality of the model (what the calibration statistics describe)."""
    if features.rgb is None or features.xyz is None:
        return features
    return features.select(features.has_rgb & features.has_xyz)
