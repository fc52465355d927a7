# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0

"""Frozen 2D feature extractor: any timm ViT or CNN.

The paper uses DINO ViT-B/8 (``vit_base_patch8_224.dino``): its patch tokens after the final norm,
class token dropped, a 28x28 map of 768-d features at 224 px. Any timm model with
``forward_intermediates`` works (ViTs, ResNets, ConvNeXts, ...); ``layers`` picks the feature levels,
which are upsampled to the finest one and concatenated (as PatchCore does for CNNs).

Example:
    >>> import torch
    >>> backbone = RGBBackbone("resnet18", layers=[1, 2], pretrained=False)
    >>> backbone(torch.rand(1, 3, 64, 64)).shape
    torch.Size([1, 192, 16, 16])
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import timm
import torch
from torch import nn
from torch.nn import functional

from .weights import check_weight_file, unavailable


def _create(name: str, pretrained: bool, kwargs: dict[str, Any]) -> nn.Module:
    """``timm.create_model``; ViTs get ``dynamic_img_size=True`` so that any input size works."""
    if "dynamic_img_size" not in kwargs:
        try:
            return timm.create_model(name, pretrained=pretrained, dynamic_img_size=True, **kwargs)
        except TypeError:  # not a ViT-like model
            pass
    return timm.create_model(name, pretrained=pretrained, **kwargs)


class RGBBackbone(nn.Module):
    """A frozen timm backbone returning a dense feature map.

    Args:
        name (str): timm model name. Defaults to ``"vit_base_patch8_224.dino"``.
        layers (Sequence[int] | None): Feature levels (``forward_intermediates`` indices). ``None``: the last
            level, with the model's final norm (for a ViT, the patch tokens after the final norm, as in the
            paper). Defaults to ``None``.
        pretrained (bool): Load pretrained weights (timm hub, or ``weights``). ``False``: random weights.
            Defaults to ``True``.
        weights (str | Path | None): Local weight file (a state dict ``.pth``/``.bin`` or ``.safetensors``)
            for offline use. Defaults to ``None``.
        model_kwargs (dict[str, Any] | None): Extra ``timm.create_model`` arguments (e.g. ``{"patch_size": 8}``
            for a random-weight ViT). ViTs are created with ``dynamic_img_size=True``, so any input size
            works. Defaults to ``None``.

    Raises:
        WeightsUnavailableError: If pretrained weights cannot be downloaded and no file was given.
        FileNotFoundError: If ``weights`` is not a file.

    Example:
        >>> backbone = RGBBackbone("resnet18", layers=[1, 2], pretrained=False)
        >>> backbone(torch.rand(2, 3, 64, 64)).shape, backbone.out_dim
        (torch.Size([2, 192, 16, 16]), 192)
        >>> dino = RGBBackbone("vit_base_patch8_224.dino")  # the paper's, downloaded once  # doctest: +SKIP
    """

    def __init__(
        self,
        name: str = "vit_base_patch8_224.dino",
        layers: Sequence[int] | None = None,
        pretrained: bool = True,
        weights: str | Path | None = None,
        model_kwargs: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        weight_file = check_weight_file(weights, "rgb_weights")
        kwargs = dict(model_kwargs or {})
        if weight_file is not None:
            kwargs["pretrained_cfg_overlay"] = {"file": str(weight_file)}
        try:
            self.model = _create(name, pretrained or weight_file is not None, kwargs)
        except (OSError, RuntimeError, ConnectionError) as error:
            if pretrained and weight_file is None:
                raise unavailable(f"timm model {name!r}", "rgb_weights", error) from error
            raise
        self.name = name
        self.is_vit = hasattr(self.model, "num_prefix_tokens")
        num_levels = len(self.model.feature_info) if hasattr(self.model, "feature_info") else None
        self.layers = [int(i) for i in layers] if layers is not None else [(num_levels or 1) - 1]
        self.model.prune_intermediate_layers(self.layers, prune_norm=not self.is_vit, prune_head=True)
        self.model.eval().requires_grad_(False)
        self.out_dim = int(sum(self.model.feature_info[i]["num_chs"] for i in self.layers))

    def train(self, mode: bool = True) -> RGBBackbone:
        """Keep the backbone in eval mode (frozen; BatchNorm statistics never change)."""
        del mode
        return super().train(False)

    @torch.no_grad()
    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """Extract features.

        Args:
            image (torch.Tensor): Normalised RGB images ``(B, 3, H, W)``.

        Returns:
            torch.Tensor: ``(B, C, h, w)`` features (levels upsampled bilinearly to the finest and concatenated).
        """
        maps = self.model.forward_intermediates(image, indices=self.layers, norm=self.is_vit, intermediates_only=True)
        size = maps[0].shape[-2:]
        maps = [m if m.shape[-2:] == size else functional.interpolate(m, size, mode="bilinear") for m in maps]
        return torch.cat(maps, dim=1) if len(maps) > 1 else maps[0]
