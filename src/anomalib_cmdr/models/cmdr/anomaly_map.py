# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0

"""CMDR's inference fusion: from four discrepancy maps to one anomaly map and an image score.

With ``d(a, b) = || a/||a|| - b/||b|| ||`` per pixel: ``d2m`` (M3D->2D vs 2D), ``d3m`` (M2D->3D vs 3D),
``d2r`` (D2D vs 2D) and ``d3r`` (D3D vs 3D), all zero on invalid pixels.

1. ``d2r`` is pre-smoothed (3 passes of a 5x5 box, then 2 of a 7x7 box, zero padding).
2. Reliability-gated mapping anomaly: ``J = d2m * d3m``, ``s = sqrt(box7((J - mean J)^2))``,
   ``W = 4 + 2 s / (mean s + 1e-8)``, ``A_map = sigmoid(W J) * J``.
3. Confidence-weighted reconstruction anomaly: ``w = exp(-0.3 d)``,
   ``A_rec = (w2 d2r + w3 d3r) / (w2 + w3 + 1e-8)``.
4. ``Psi = A_map * A_rec``, zeroed on invalid pixels, smoothed (5 passes 5x5 box, 3 passes 7x7 box).
5. Image score ``max(Psi / sqrt(mean of non-zero Psi))``; the map normalised per image,
   ``Psi / mean(non-zero Psi)`` (the authors' AUPRO form, default) or ``Psi / sqrt(mean Psi)``
   (their P-AUROC form).
6. The map is brought back to the model's input size (bilinear), like anomalib's anomaly-map
   generators do, when the heads run on a coarser grid than the input.

Single-modality variants use the reconstruction discrepancy of their modality alone, smoothed as in
step 4 and scored as in step 5. All means are per image.

Example:
    >>> import torch
    >>> fusion = CMDRAnomalyMap()
    >>> d = {k: torch.rand(2, 16, 16) for k in ("d2m", "d3m", "d2r", "d3r")}
    >>> anomaly_map, score = fusion(d, valid=torch.ones(2, 16, 16, dtype=torch.bool))
    >>> anomaly_map.shape, score.shape
    (torch.Size([2, 1, 16, 16]), torch.Size([2]))
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn
from torch.nn import functional

Modality = Literal["rgb+xyz", "rgb", "xyz"]
MapNormalization = Literal["aupro", "pauroc"]


def unit_tokens(tokens: torch.Tensor, chunk: int = 4096) -> torch.Tensor:
    """L2-normalised tokens, as a new contiguous ``(B, N, C)`` tensor.

    Each block of ``chunk`` tokens is normalised in the input's own memory layout, so the values are the same bit
    for bit as :func:`feature_distance` normalising the same tokens. Used to normalise a target once for the two
    heads that predict it: the targets are channel-major views (the authors' layout), whose normalisation reads
    memory with a stride, and whose difference with a contiguous prediction would too.

    Args:
        tokens (torch.Tensor): ``(B, N, C)`` in any memory layout.
        chunk (int): Tokens per step. Defaults to ``4096``.

    Returns:
        torch.Tensor: ``(B, N, C)`` contiguous unit vectors (zero vectors stay zero).

    Example:
        >>> target = torch.tensor([[[3.0, 4.0], [0.0, 0.0]]])
        >>> unit_tokens(target)
        tensor([[[0.6000, 0.8000],
                 [0.0000, 0.0000]]])
    """
    out = torch.empty(tokens.shape, dtype=tokens.dtype, device=tokens.device)
    for start in range(0, tokens.shape[1], chunk):
        rows = slice(start, start + chunk)
        out[:, rows] = functional.normalize(tokens[:, rows], dim=-1)
    return out


def feature_distance(
    prediction: torch.Tensor,
    target: torch.Tensor,
    chunk: int = 4096,
    unit_target: bool = False,
) -> torch.Tensor:
    """Euclidean distance between L2-normalised features, per token.

    Computed ``chunk`` tokens at a time: the temporaries (normalised features, their difference) stay small and
    in cache instead of four copies of the whole ``(B, N, C)`` features (924 MB at the paper's size); each
    token's arithmetic, so its float32 result, is the same.

    Args:
        prediction (torch.Tensor): ``(B, N, C)`` (or any ``(..., C)``).
        target (torch.Tensor): Same shape.
        chunk (int): Tokens per step. Defaults to ``4096``.
        unit_target (bool): ``target`` is already normalised (:func:`unit_tokens`, the same values as
            normalising it here). Defaults to ``False``.

    Returns:
        torch.Tensor: ``(B, N)`` (``(...)``) distances in ``[0, 2]``.

    Example:
        >>> feature_distance(torch.tensor([[[1.0, 0.0], [2.0, 0.0]]]), torch.tensor([[[0.0, 3.0], [5.0, 0.0]]]))
        tensor([[1.4142, 0.0000]])
        >>> target = torch.tensor([[[0.0, 3.0], [5.0, 0.0]]])
        >>> feature_distance(torch.tensor([[[1.0, 0.0], [2.0, 0.0]]]), unit_tokens(target), unit_target=True)
        tensor([[1.4142, 0.0000]])
    """
    if prediction.ndim != 3:
        channels = prediction.shape[-1]
        flat = feature_distance(
            prediction.reshape(1, -1, channels), target.reshape(1, -1, channels), chunk, unit_target
        )
        return flat.view(prediction.shape[:-1])
    out = prediction.new_empty(prediction.shape[:-1])
    for start in range(0, prediction.shape[1], chunk):
        rows = slice(start, start + chunk)
        unit = target[:, rows] if unit_target else functional.normalize(target[:, rows], dim=-1)
        difference = functional.normalize(prediction[:, rows], dim=-1) - unit
        out[:, rows] = difference.pow(2).sum(-1).sqrt()
    return out


def box_smooth(maps: torch.Tensor, size: int, passes: int) -> torch.Tensor:
    """Repeated ``size x size`` box filter with zero padding (the border sees the zeros).

    Args:
        maps (torch.Tensor): ``(B, 1, H, W)``.
        size (int): Odd box size.
        passes (int): Number of passes.

    Returns:
        torch.Tensor: The smoothed maps, same shape.

    Example:
        >>> maps = torch.zeros(1, 1, 5, 5)
        >>> maps[0, 0, 2, 2] = 9.0
        >>> smoothed = box_smooth(maps, size=3, passes=1)
        >>> smoothed[0, 0, 1:4, 1:4]
        tensor([[1., 1., 1.],
                [1., 1., 1.],
                [1., 1., 1.]])
        >>> float(smoothed.sum()), box_smooth(torch.ones(1, 1, 3, 3), 3, 1)[0, 0, 0, 0].item()  # the border sees zeros
        (9.0, 0.4444444477558136)
    """
    for _ in range(passes):
        maps = functional.avg_pool2d(maps, size, stride=1, padding=size // 2, count_include_pad=True)
    return maps


def _per_image_mean(maps: torch.Tensor, where: torch.Tensor | None = None) -> torch.Tensor:
    """Mean over each image's pixels (or the pixels in ``where``), shaped ``(B, 1, 1, 1)``."""
    if where is None:
        return maps.mean(dim=(1, 2, 3), keepdim=True)
    count = where.sum(dim=(1, 2, 3), keepdim=True)
    return (maps * where).sum(dim=(1, 2, 3), keepdim=True) / count.clamp_min(1)


def reliability_gated_mapping_anomaly(d2m: torch.Tensor, d3m: torch.Tensor) -> torch.Tensor:
    """``A_map = sigmoid(W J) * J`` with ``J = d2m * d3m`` and the local-variability gain ``W``.

    Args:
        d2m (torch.Tensor): ``(B, 1, H, W)`` 3D->2D mapping discrepancy.
        d3m (torch.Tensor): ``(B, 1, H, W)`` 2D->3D mapping discrepancy.

    Returns:
        torch.Tensor: ``(B, 1, H, W)``.

    Example:
        >>> d2m, d3m = torch.rand(2, 1, 16, 16), torch.rand(2, 1, 16, 16)
        >>> a_map = reliability_gated_mapping_anomaly(d2m, d3m)
        >>> a_map.shape, bool((a_map <= d2m * d3m).all())
        (torch.Size([2, 1, 16, 16]), True)
    """
    joint = d2m * d3m
    spread = functional.avg_pool2d((joint - _per_image_mean(joint)) ** 2, 7, stride=1, padding=3).sqrt()
    gain = 4.0 + 2.0 * spread / (_per_image_mean(spread) + 1e-8)
    return torch.sigmoid(gain * joint) * joint


def confidence_weighted_reconstruction_anomaly(d2r: torch.Tensor, d3r: torch.Tensor, beta: float = 0.3):
    """``A_rec = (w2 d2r + w3 d3r) / (w2 + w3 + 1e-8)`` with ``w = exp(-beta d)``.

    Args:
        d2r (torch.Tensor): ``(B, 1, H, W)`` 2D reconstruction discrepancy (pre-smoothed).
        d3r (torch.Tensor): ``(B, 1, H, W)`` 3D reconstruction discrepancy.
        beta (float): Confidence decay. Defaults to ``0.3``.

    Returns:
        torch.Tensor: ``(B, 1, H, W)``.

    Example:
        >>> d2r, d3r = torch.full((1, 1, 2, 2), 1.0), torch.full((1, 1, 2, 2), 1.0)
        >>> confidence_weighted_reconstruction_anomaly(d2r, d3r)[0, 0]
        tensor([[1., 1.],
                [1., 1.]])
        >>> d2r, d3r = torch.zeros(1, 1, 1, 1), torch.full((1, 1, 1, 1), 2.0)
        >>> round(confidence_weighted_reconstruction_anomaly(d2r, d3r).item(), 4)  # below the plain mean, 1.0
        0.7087
    """
    w2, w3 = torch.exp(-beta * d2r), torch.exp(-beta * d3r)
    return (w2 * d2r + w3 * d3r) / (w2 + w3 + 1e-8)


class CMDRAnomalyMap(nn.Module):
    """Fuses the discrepancy maps into CMDR's anomaly map and image score.

    Args:
        modality (Modality): ``"rgb+xyz"`` (the fusion above), ``"rgb"`` (``d2r`` alone) or ``"xyz"``
            (``d3r`` alone). Defaults to ``"rgb+xyz"``.
        map_normalization (MapNormalization): ``"aupro"``: ``Psi / mean(non-zero Psi)``; ``"pauroc"``:
            ``Psi / sqrt(mean Psi)``. Both are per image; an all-zero ``Psi`` gives a zero map and score.
            Defaults to ``"aupro"``.

    Example:
        >>> fusion = CMDRAnomalyMap(modality="rgb")
        >>> d2r = torch.rand(2, 16, 16)
        >>> anomaly_map, score = fusion({"d2r": d2r}, valid=torch.ones(2, 16, 16, dtype=torch.bool))
        >>> anomaly_map.shape, score.shape
        (torch.Size([2, 1, 16, 16]), torch.Size([2]))
    """

    def __init__(self, modality: Modality = "rgb+xyz", map_normalization: MapNormalization = "aupro") -> None:
        super().__init__()
        self.modality = modality
        self.map_normalization = map_normalization

    def fuse(
        self,
        distances: dict[str, torch.Tensor],
        valid: torch.Tensor,
        modality: Modality | None = None,
    ) -> torch.Tensor:
        """Unnormalised smoothed anomaly map ``Psi``.

        Args:
            distances (dict[str, torch.Tensor]): ``(B, H, W)`` maps; ``d2m``, ``d3m``, ``d2r``, ``d3r`` for
                ``rgb+xyz``, else the reconstruction map of the modality.
            valid (torch.Tensor): ``(B, H, W)`` valid-pixel mask.
            modality (Modality | None): Fuse as this modality instead of the model's (the branch of a sample
                that lacks one modality: ``"rgb"`` uses ``d2r`` alone, ``"xyz"`` ``d3r`` alone). Defaults to
                ``None``.

        Returns:
            torch.Tensor: ``(B, 1, H, W)`` ``Psi``.
        """
        modality = modality or self.modality
        names = {"rgb+xyz": ("d2m", "d3m", "d2r", "d3r"), "rgb": ("d2r",), "xyz": ("d3r",)}[modality]
        mask = valid.unsqueeze(1).to(distances[names[0]].dtype)
        d = {key: distances[key].unsqueeze(1) * mask for key in names}
        if modality == "rgb+xyz":
            d2r = box_smooth(box_smooth(d["d2r"], 5, 3), 7, 2)
            psi = reliability_gated_mapping_anomaly(d["d2m"], d["d3m"])
            psi = psi * confidence_weighted_reconstruction_anomaly(d2r, d["d3r"])
        else:
            psi = d["d2r"] if modality == "rgb" else d["d3r"]
        return box_smooth(box_smooth(psi * mask, 5, 5), 7, 3)

    def normalize(self, psi: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-image normalised map and image score.

        Args:
            psi (torch.Tensor): ``(B, 1, H, W)`` from :meth:`fuse`.

        Returns:
            tuple[torch.Tensor, torch.Tensor]: ``(anomaly_map (B, 1, H, W), pred_score (B,))``.
        """
        nonzero_mean = _per_image_mean(psi, psi != 0)
        safe = torch.where(nonzero_mean > 0, nonzero_mean, torch.ones_like(nonzero_mean))
        score = (psi / safe.sqrt()).amax(dim=(1, 2, 3))
        if self.map_normalization == "aupro":
            anomaly_map = psi / safe
        else:
            mean = _per_image_mean(psi)
            anomaly_map = psi / torch.where(mean > 0, mean, torch.ones_like(mean)).sqrt()
        return anomaly_map, score

    def forward(
        self,
        distances: dict[str, torch.Tensor],
        valid: torch.Tensor,
        image_size: tuple[int, int] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Fuse, normalise and bring the map to the input size.

        Args:
            distances (dict[str, torch.Tensor]): ``(B, h, w)`` discrepancy maps on the head grid.
            valid (torch.Tensor): ``(B, h, w)`` valid-pixel mask.
            image_size (tuple[int, int] | None): ``(H, W)`` of the returned map (bilinear upsampling);
                ``None`` keeps the head grid. Defaults to ``None``.

        Returns:
            tuple[torch.Tensor, torch.Tensor]: ``anomaly_map (B, 1, H, W)`` and ``pred_score (B,)``.
        """
        anomaly_map, score = self.normalize(self.fuse(distances, valid))
        if image_size is not None and tuple(anomaly_map.shape[-2:]) != tuple(image_size):
            anomaly_map = functional.interpolate(anomaly_map, size=image_size, mode="bilinear", align_corners=False)
        return anomaly_map, score
