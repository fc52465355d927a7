# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0

"""Helpers shared by the tests: tiny CMDR configurations and synthetic RGB + xyz batches."""

from __future__ import annotations

from pathlib import Path

import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
"""The repository's root (``configs/`` lives there)."""

TINY = {
    "rgb_backbone": "resnet18",
    "rgb_layers": [1, 2],
    "xyz_backbone": "pointmae_tiny",
    "xyz_model_kwargs": {"num_group": 16, "group_size": 16, "embed_dim": 32, "num_heads": 2, "layers": (1, 3)},
    "pretrained": False,
}


def make_clouds(batch: int = 2, size: int = 32, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Random RGB and organized clouds (a tilted plane with a bump and some holes)."""
    generator = torch.Generator().manual_seed(seed)
    rgb = torch.rand(batch, 3, size, size, generator=generator)
    v, u = torch.meshgrid(torch.linspace(-0.05, 0.05, size), torch.linspace(-0.05, 0.05, size), indexing="ij")
    z = 0.4 + 0.2 * u + 0.01 * torch.exp(-(u**2 + v**2) / 2e-4)
    xyz = torch.stack([u, v, z]).expand(batch, 3, size, size).clone()
    xyz += 1e-4 * torch.randn(xyz.shape, generator=generator)
    xyz[:, :, : size // 8, : size // 8] = 0  # a hole
    return rgb, xyz
