# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0

"""The frozen features of CMDR, per sample in compact form and per batch on the head grid.

The backbones are frozen, so a sample's backbone outputs never change: they are computed once into a
compact :class:`SampleFeatures` (the 2D backbone's native feature map, e.g. 28x28 tokens for ViT-B/8 at
224 px, and the 3D extractor's :class:`~anomalib_cmdr.models.cmdr.geometry.PointFeatures`: Point-MAE's
centre features with each point's interpolation indices and weights), which the feature cache can keep,
and :func:`assemble_features` brings a batch of them onto the head grid. The model computes its features
through the same two steps whether the cache is used or not, so both give the same numbers.

Example:
    >>> import torch
    >>> from anomalib_cmdr.models.cmdr.geometry import PointFeatures
    >>> sample = SampleFeatures(rgb=torch.rand(8, 4, 4), points=PointFeatures(torch.rand(3, 5)),
    ...                         pixels=torch.tensor([0, 5, 9]), size=(4, 4))
    >>> batch = assemble_features([sample, sample], grid_size=(4, 4))
    >>> batch.rgb.shape, batch.xyz.shape, batch.valid.shape
    (torch.Size([2, 16, 8]), torch.Size([2, 16, 5]), torch.Size([2, 16]))
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.nn import functional

from .geometry import PointFeatures, pool_point_features, scatter_to_grid
from .pooling import XYZPooling, factored_pooling


@dataclass
class CMDRFeatures:
    """Frozen features of a batch on the head grid.

    Attributes:
        rgb (torch.Tensor | None): ``(B, N, C2)`` 2D feature tokens, or ``None`` without the RGB branch.
        xyz (torch.Tensor | None): ``(B, N, C3)`` 3D feature tokens, or ``None`` without the 3D branch.
        valid (torch.Tensor): ``(B, N)`` pixels whose 3D feature is not all zero (all ``True`` without xyz).
        rgb_present (torch.Tensor | None): ``(B,)`` samples that have an RGB image (a sample of an ``rgb+xyz``
            model may lack it, see :mod:`~anomalib_cmdr.models.cmdr.missing_modality`); ``None``: all have one.

    Example:
        >>> xyz = torch.rand(2, 4, 5)
        >>> xyz[1] = 0  # the second sample has no valid point
        >>> features = CMDRFeatures(rgb=torch.rand(2, 4, 8), xyz=xyz, valid=(xyz != 0).any(-1))
        >>> features.has_rgb, features.has_xyz
        (tensor([True, True]), tensor([ True, False]))
        >>> features.select(torch.tensor([False, True])).xyz.shape
        torch.Size([1, 4, 5])
    """

    rgb: torch.Tensor | None
    xyz: torch.Tensor | None
    valid: torch.Tensor
    rgb_present: torch.Tensor | None = None

    @property
    def has_rgb(self) -> torch.Tensor:
        """``(B,)`` samples with an RGB image (all ``False`` without the RGB branch)."""
        batch = self.valid.shape[0]
        if self.rgb is None:
            return torch.zeros(batch, dtype=torch.bool, device=self.valid.device)
        if self.rgb_present is None:
            return torch.ones(batch, dtype=torch.bool, device=self.valid.device)
        return self.rgb_present

    @property
    def has_xyz(self) -> torch.Tensor:
        """``(B,)`` samples with at least one valid 3D point (all ``False`` without the 3D branch)."""
        if self.xyz is None:
            return torch.zeros(self.valid.shape[0], dtype=torch.bool, device=self.valid.device)
        return self.valid.any(dim=1)

    def select(self, keep: torch.Tensor) -> CMDRFeatures:
        """The features of the samples in ``keep``.

        Args:
            keep (torch.Tensor): ``(B,)`` boolean mask or indices.

        Returns:
            CMDRFeatures: The selected samples.
        """
        return CMDRFeatures(
            self.rgb[keep] if self.rgb is not None else None,
            self.xyz[keep] if self.xyz is not None else None,
            self.valid[keep],
            self.rgb_present[keep] if self.rgb_present is not None else None,
        )


@dataclass
class SampleFeatures:
    """The backbone outputs of one sample, compact (what the feature cache stores).

    Attributes:
        rgb (torch.Tensor | None): ``(C2, h', w')`` native 2D feature map, or ``None`` without RGB.
        points (PointFeatures | None): Per-point 3D features of the valid points, or ``None`` without xyz.
        pixels (torch.Tensor | None): ``(N,)`` flat (row-major) pixel index of each valid point.
        size (tuple[int, int]): ``(H, W)`` of the organized cloud (the model's input size).
        rgb_present (bool): Whether the sample has an RGB image (``rgb`` is then the features of a blank
            image, never used). Defaults to ``True``.

    Example:
        >>> from anomalib_cmdr.models.cmdr.geometry import PointFeatures
        >>> sample = SampleFeatures(rgb=torch.zeros(8, 4, 4), points=PointFeatures(torch.zeros(3, 5)),
        ...                         pixels=torch.tensor([0, 5, 9]), size=(4, 4))
        >>> sample.nbytes
        596
        >>> SampleFeatures.from_state(sample.state()).size
        (4, 4)
    """

    rgb: torch.Tensor | None
    points: PointFeatures | None
    pixels: torch.Tensor | None
    size: tuple[int, int]
    rgb_present: bool = True

    @property
    def nbytes(self) -> int:
        """Memory held by the tensors."""
        tensors = [t for t in (self.rgb, self.pixels) if t is not None]
        return sum(t.numel() * t.element_size() for t in tensors) + (self.points.nbytes if self.points else 0)

    def to(self, device: torch.device | str) -> SampleFeatures:
        """The same features on ``device``.

        Args:
            device (torch.device | str): Target device.

        Returns:
            SampleFeatures: A copy on ``device`` (``self`` when already there).
        """
        return SampleFeatures(
            self.rgb.to(device) if self.rgb is not None else None,
            self.points.to(device) if self.points is not None else None,
            self.pixels.to(device) if self.pixels is not None else None,
            self.size,
            self.rgb_present,
        )

    def state(self) -> dict[str, torch.Tensor]:
        """A flat dict of tensors (``torch.save``-able, loadable with ``weights_only=True``).

        Returns:
            dict[str, torch.Tensor]: The tensors; indices stored as int32.
        """
        state = {"size": torch.tensor(self.size), "rgb_present": torch.tensor(self.rgb_present)}
        if self.rgb is not None:
            state["rgb"] = self.rgb
        if self.points is not None and self.pixels is not None:
            state["pixels"] = self.pixels.int()
            state.update({f"points.{key}": value for key, value in self.points.state().items()})
        return state

    @classmethod
    def from_state(cls, state: dict[str, torch.Tensor]) -> SampleFeatures:
        """Rebuild from :meth:`state`.

        Args:
            state (dict[str, torch.Tensor]): The saved tensors.

        Returns:
            SampleFeatures: The features.
        """
        points = {key.removeprefix("points."): value for key, value in state.items() if key.startswith("points.")}
        return cls(
            rgb=state.get("rgb"),
            points=PointFeatures.from_state(points) if points else None,
            pixels=state["pixels"].long() if "pixels" in state else None,
            size=(int(state["size"][0]), int(state["size"][1])),
            rgb_present=bool(state["rgb_present"]) if "rgb_present" in state else True,
        )


def rgb_tokens(maps: torch.Tensor, grid_size: tuple[int, int]) -> torch.Tensor:
    """2D feature maps as tokens on the head grid (bilinear upsampling).

    Args:
        maps (torch.Tensor): ``(B, C2, h', w')`` backbone feature maps.
        grid_size (tuple[int, int]): ``(h, w)`` of the head grid.

    Returns:
        torch.Tensor: ``(B, h * w, C2)`` tokens.

    Example:
        >>> rgb_tokens(torch.rand(2, 64, 7, 7), grid_size=(14, 14)).shape
        torch.Size([2, 196, 64])
    """
    maps = functional.interpolate(maps.float(), size=grid_size, mode="bilinear", align_corners=False)
    return maps.flatten(2).transpose(1, 2)


def xyz_tokens(
    feature_map: torch.Tensor,
    grid_size: tuple[int, int],
    channel_chunk: int | None = 128,
) -> torch.Tensor:
    """Scattered per-pixel 3D features as tokens on the head grid (the paper's pooling).

    Args:
        feature_map (torch.Tensor): ``(B, C3, H, W)`` features at the pixels that hold a point, zero elsewhere.
        grid_size (tuple[int, int]): ``(h, w)`` of the head grid.
        channel_chunk (int | None): See :func:`~anomalib_cmdr.models.cmdr.geometry.pool_point_features`.
            Defaults to ``128``.

    Returns:
        torch.Tensor: ``(B, h * w, C3)`` tokens, a view of a channel-major ``(B, C3, h * w)`` tensor (the
        authors' layout: the heads' float32 rounding depends on it, so it is kept for bit-identical maps).

    Example:
        >>> feature_map = torch.zeros(1, 5, 8, 8)
        >>> feature_map[0, :, 2, 3] = 1.0  # one pixel holds a point: the pooling spreads it over nearby tokens
        >>> tokens = xyz_tokens(feature_map, grid_size=(4, 4))
        >>> tokens.shape, int((tokens != 0).any(-1).sum())
        (torch.Size([1, 16, 5]), 6)
    """
    return pool_point_features(feature_map, grid_size, channel_chunk).flatten(2).transpose(1, 2)


def token_features(
    f2d: torch.Tensor | None,
    f3d: torch.Tensor | None,
    rgb_present: torch.Tensor | None = None,
) -> CMDRFeatures:
    """Tokens of the modalities with the valid mask: pixels whose 3D feature is not all zero (all without 3D).

    Args:
        f2d (torch.Tensor | None): ``(B, N, C2)`` from :func:`rgb_tokens`, or ``None``.
        f3d (torch.Tensor | None): ``(B, N, C3)`` from :func:`xyz_tokens`, or ``None``.
        rgb_present (torch.Tensor | None): ``(B,)`` samples that have an RGB image; ``None``: all.
            Defaults to ``None``.

    Returns:
        CMDRFeatures: The batch's features.

    Example:
        >>> f3d = torch.rand(2, 16, 5)
        >>> f3d[0, :3] = 0  # three pixels without a 3D feature
        >>> features = token_features(torch.rand(2, 16, 8), f3d)
        >>> features.valid.sum(dim=1)
        tensor([13, 16])
        >>> token_features(torch.rand(2, 16, 8), None).valid.all()
        tensor(True)
    """
    if f3d is not None:
        valid = (f3d != 0).any(dim=-1)
    else:
        valid = torch.ones(f2d.shape[:2], dtype=torch.bool, device=f2d.device)  # type: ignore[union-attr]
    return CMDRFeatures(f2d, f3d, valid, rgb_present)


def assemble_features(
    samples: list[SampleFeatures],
    grid_size: tuple[int, int],
    xyz_pooling: XYZPooling = "map",
) -> CMDRFeatures:
    """Bring a batch of compact features onto the head grid.

    The 2D maps are upsampled bilinearly (:func:`rgb_tokens`); the 3D features are expanded to the points,
    scattered to their pixels and pooled the paper's way (:func:`xyz_tokens`: 3x3 mean, then adaptive mean);
    pixels whose 3D feature is all zero are invalid. Runs in float32.

    Args:
        samples (list[SampleFeatures]): One per sample, all of one modality set and one input size.
        grid_size (tuple[int, int]): ``(h, w)`` of the head grid.
        xyz_pooling (XYZPooling): ``"map"``: the paper's order of operations (bit-identical to the authors'
            code); ``"factored"``: the same pooling as one linear map of the compact features, without the
            per-pixel map (:func:`~anomalib_cmdr.models.cmdr.pooling.factored_pooling`; equal up to float32
            rounding, much faster on grids coarser than the input). Defaults to ``"map"``.

    Returns:
        CMDRFeatures: The batch's token features and valid mask.

    Example:
        >>> from anomalib_cmdr.models.cmdr.geometry import PointFeatures
        >>> sample = SampleFeatures(rgb=torch.rand(8, 2, 2), points=None, pixels=None, size=(8, 8))
        >>> batch = assemble_features([sample, sample, sample], grid_size=(4, 4))
        >>> batch.rgb.shape, batch.xyz, bool(batch.valid.all())
        (torch.Size([3, 16, 8]), None, True)
    """
    f2d = f3d = None
    if samples[0].rgb is not None:
        f2d = rgb_tokens(torch.stack([sample.rgb for sample in samples]), grid_size)  # type: ignore[misc]
    if samples[0].points is not None and xyz_pooling == "factored":
        pooled = [factored_pooling(s.points, s.pixels, s.size, grid_size) for s in samples]  # type: ignore[arg-type]
        f3d = torch.stack(pooled)
    elif samples[0].points is not None:
        height, width = samples[0].size
        points = [sample.points.expand() for sample in samples]  # type: ignore[union-attr]
        feature_map = scatter_to_grid(points, [sample.pixels for sample in samples], height, width)  # type: ignore[misc]
        f3d = xyz_tokens(feature_map, grid_size)
    rgb_present = None
    if not all(sample.rgb_present for sample in samples):
        device = f2d.device if f2d is not None else None
        rgb_present = torch.tensor([sample.rgb_present for sample in samples], device=device)
    return token_features(f2d, f3d, rgb_present)
