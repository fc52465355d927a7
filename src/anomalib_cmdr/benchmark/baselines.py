# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0

"""Baselines that need a switch anomalib does not offer, for offline benchmarks.

anomalib 2.7's ``CFM`` always asks timm for pretrained DINO weights and downloads Point-MAE's (falling back
to random weights with only a warning). :class:`RandomInitCfm` is the same model built with random
weights on purpose and without any network access, so that offline benchmark rows say what they are.

Example:
    >>> from anomalib_cmdr.benchmark.baselines import RandomInitCfm
    >>> model = RandomInitCfm()  # doctest: +SKIP
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import timm
import torch
from anomalib.models import CFM

__all__ = ["RandomInitCfm"]


class RandomInitCfm(CFM):
    """anomalib's CFM with random-weight DINO and Point-MAE (no download), for offline benchmarks.

    Args:
        dynamic_img_size (bool): Build the ViT with timm's ``dynamic_img_size`` so that inputs other than
            224 px work (anomalib's CFM fixes 224). Defaults to ``True``.
        **kwargs: ``CFM`` arguments except ``pointmae_weights``.

    Example:
        >>> model = RandomInitCfm(image_size=128)  # doctest: +SKIP
        >>> model.learning_type  # doctest: +SKIP
        <LearningType.ONE_CLASS: 'one_class'>
    """

    def __init__(self, dynamic_img_size: bool = True, **kwargs: Any) -> None:
        from anomalib_cmdr.models.cmdr.backbones.registry import create_xyz_backbone

        num_group, group_size = kwargs.get("num_group", 1024), kwargs.get("group_size", 128)
        encoder = create_xyz_backbone("pointmae", pretrained=False, num_group=num_group, group_size=group_size)
        release = Path(tempfile.mkdtemp(prefix="random_pointmae_")) / "pretrain.pth"
        torch.save({"base_model": {f"MAE_encoder.{k}": v for k, v in encoder.state_dict().items()}}, release)
        create = timm.create_model
        resize = {"dynamic_img_size": True} if dynamic_img_size else {}
        timm.create_model = lambda *args, **options: create(*args, **{**options, "pretrained": False, **resize})
        try:
            super().__init__(pointmae_weights=release, **kwargs)
        finally:
            timm.create_model = create
