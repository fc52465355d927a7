# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0

"""Named 3D feature-extractor variants, timm-style: one name, its architecture and its weight source.

The 2D side names a timm model (``rgb_backbone``) and overrides its arguments with ``rgb_model_kwargs``;
the 3D side mirrors it: ``xyz_backbone`` names a variant registered here and ``xyz_model_kwargs``
overrides the variant's arguments. A variant says where its pretrained weights come from, so a request
for weights that do not exist fails with a clear error instead of silently using random ones.

Registered variants:

* ``pointmae``: the paper's Point-MAE encoder (1024 groups of 128 points, width 384, 12 blocks, 6 heads,
  the normed outputs of blocks 3, 7 and 11 concatenated: 1152-d); weights: the Point-MAE release.
* ``pointmae_tiny``: the same network at 128 groups of 32 points, width 96, 4 blocks, 4 heads, blocks
  1, 2 and 3 (288-d); no pretrained weights: for CPU tests and smoke runs (``pretrained=False``).
* ``fpfh``: weight-free FPFH descriptors computed with open3d (33-d).

Example:
    >>> import torch
    >>> {"fpfh", "pointmae", "pointmae_tiny"} <= set(list_xyz_backbones())
    True
    >>> encoder = create_xyz_backbone("pointmae_tiny", pretrained=False, num_group=16, group_size=8)
    >>> encoder.out_dim, encoder.num_group
    (288, 16)
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from .weights import check_weight_file

__all__ = ["XYZBackboneVariant", "create_xyz_backbone", "list_xyz_backbones", "register_xyz_backbone"]


@dataclass(frozen=True)
class XYZBackboneVariant:
    """A registered 3D feature extractor.

    Attributes:
        name (str): Registry name (the value of ``xyz_backbone``).
        builder (Callable[..., nn.Module] | str): Class that builds it, or its import path
            ``"package.module:Class"`` (imported on first use). The module maps a list of ``(N_i, 3)`` clouds
            to a list of ``(N_i, C)`` features and has an ``out_dim`` attribute.
        defaults (dict[str, Any]): The variant's architecture arguments (``xyz_model_kwargs`` override them).
        weights (str | None): Where pretrained weights come from, in words; ``None`` when the variant has no
            pretrained weights (``pretrained=True`` then needs ``xyz_weights``).
        weight_free (bool): The extractor has no learned weights at all (``pretrained`` does not apply).

    Example:
        >>> variant = XYZBackboneVariant("tiny", "anomalib_cmdr.models.cmdr.backbones.pointmae:PointMAEExtractor",
        ...                              defaults={"embed_dim": 96, "depth": 4, "num_heads": 4, "layers": (1, 2, 3)})
        >>> variant.resolve().__name__, "num_group" in variant.argument_names()
        ('PointMAEExtractor', True)
    """

    name: str
    builder: Callable[..., nn.Module] | str
    defaults: dict[str, Any] = field(default_factory=dict)
    weights: str | None = None
    weight_free: bool = False

    def resolve(self) -> Callable[..., nn.Module]:
        """The builder, imported first when given by its import path."""
        if isinstance(self.builder, str):
            module, _, attribute = self.builder.partition(":")
            return getattr(importlib.import_module(module), attribute)
        return self.builder

    def argument_names(self) -> set[str]:
        """Arguments the builder accepts (``pretrained`` and ``weights`` are passed by the factory)."""
        return set(inspect.signature(self.resolve()).parameters) - {"self", "pretrained", "weights"}


_XYZ_BACKBONES: dict[str, XYZBackboneVariant] = {}


def register_xyz_backbone(variant: XYZBackboneVariant) -> XYZBackboneVariant:
    """Add a variant to the registry (a later registration of the same name replaces it).

    Args:
        variant (XYZBackboneVariant): The variant.

    Returns:
        XYZBackboneVariant: The same variant.

    Example:
        >>> from anomalib_cmdr.models.cmdr.backbones.pointmae import PointMAEExtractor
        >>> _ = register_xyz_backbone(XYZBackboneVariant("pointmae_8", PointMAEExtractor, {"num_group": 8}))
        >>> "pointmae_8" in list_xyz_backbones()
        True
    """
    _XYZ_BACKBONES[variant.name] = variant
    return variant


def list_xyz_backbones() -> list[str]:
    """Names of the registered 3D feature extractors.

    Returns:
        list[str]: The names, sorted.

    Example:
        >>> list_xyz_backbones()
        ['fpfh', 'pointmae', 'pointmae_tiny']
    """
    return sorted(_XYZ_BACKBONES)


def get_xyz_backbone_variant(name: str) -> XYZBackboneVariant:
    """Look a variant up by name.

    Args:
        name (str): A registered name.

    Returns:
        XYZBackboneVariant: The variant.

    Raises:
        ValueError: If ``name`` is not registered (the message lists the registered names).

    Example:
        >>> variant = get_xyz_backbone_variant("fpfh")
        >>> variant.weight_free, variant.weights
        (True, None)
        >>> get_xyz_backbone_variant("pointnet")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
            ...
        ValueError: xyz_backbone='pointnet' is not a registered 3D feature extractor; choose one of ['fpfh', ...].
    """
    if name not in _XYZ_BACKBONES:
        msg = f"xyz_backbone={name!r} is not a registered 3D feature extractor; choose one of {list_xyz_backbones()}."
        raise ValueError(msg)
    return _XYZ_BACKBONES[name]


def create_xyz_backbone(
    name: str,
    pretrained: bool = True,
    weights: str | Path | None = None,
    **kwargs: Any,
) -> nn.Module:
    """Build a registered 3D feature extractor.

    Args:
        name (str): Registered variant, e.g. ``"pointmae"`` (the paper's), ``"pointmae_tiny"`` or ``"fpfh"``.
        pretrained (bool): Load the variant's pretrained weights (downloaded once when needed). ``False``:
            random weights. Ignored by weight-free variants. Defaults to ``True``.
        weights (str | Path | None): Local weight file in the variant's release format (offline use); takes
            precedence over the download. Defaults to ``None``.
        **kwargs: Overrides of the variant's architecture arguments (``xyz_model_kwargs``).

    Returns:
        nn.Module: The extractor, frozen.

    Raises:
        ValueError: If the name or an argument is unknown, or pretrained weights are asked of a variant
            that has none (and no ``weights`` file is given).
        FileNotFoundError: If ``weights`` is not a file.
        WeightsUnavailableError: If pretrained weights cannot be downloaded.

    Example:
        >>> import torch
        >>> extractor = create_xyz_backbone("pointmae_tiny", pretrained=False, num_group=16, group_size=16)
        >>> extractor.out_dim, extractor([torch.rand(100, 3)])[0].shape
        (288, torch.Size([100, 288]))
        >>> create_xyz_backbone("pointmae", weights="/tmp/pointmae_pretrain.pth")  # offline  # doctest: +SKIP
    """
    variant = get_xyz_backbone_variant(name)
    unknown = sorted(set(kwargs) - variant.argument_names())
    if unknown:
        msg = (
            f"xyz_model_kwargs: unknown argument(s) {unknown} for xyz_backbone={name!r}; "
            f"valid: {sorted(variant.argument_names())}."
        )
        raise ValueError(msg)
    arguments = {**variant.defaults, **kwargs}
    if variant.weight_free:
        if weights is not None:
            msg = f"xyz_weights: xyz_backbone={name!r} has no weights (it is hand-crafted); remove xyz_weights."
            raise ValueError(msg)
        return variant.resolve()(**arguments)
    weight_file = check_weight_file(weights, "xyz_weights")
    if pretrained and weight_file is None and variant.weights is None:
        msg = (
            f"xyz_backbone={name!r} has no pretrained weights: pass pretrained=False for random weights, "
            "or a compatible checkpoint with xyz_weights=/path/to/file."
        )
        raise ValueError(msg)
    return variant.resolve()(pretrained=pretrained, weights=weight_file, **arguments)


def _register_defaults() -> None:
    """Register the built-in variants (FPFH by import path: open3d is imported only when it is used)."""
    from .pointmae import POINTMAE_RELEASE, PointMAEExtractor

    paper = {
        "num_group": 1024,
        "group_size": 128,
        "embed_dim": 384,
        "depth": 12,
        "num_heads": 6,
        "layers": (3, 7, 11),
        "batchnorm": "sample",
    }
    tiny = {**paper, "num_group": 128, "group_size": 32, "embed_dim": 96, "depth": 4, "num_heads": 4}
    tiny["layers"] = (1, 2, 3)
    register_xyz_backbone(XYZBackboneVariant("pointmae", PointMAEExtractor, paper, weights=POINTMAE_RELEASE))
    register_xyz_backbone(XYZBackboneVariant("pointmae_tiny", PointMAEExtractor, tiny))
    register_xyz_backbone(XYZBackboneVariant("fpfh", f"{__package__}.fpfh:FPFHExtractor", weight_free=True))


_register_defaults()
