# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0

"""Sensor degradations applied to test samples, for robustness curves.

Each :class:`Corruption` degrades one ``DepthItem`` (RGB in ``[0, 1]``, organized cloud with ``(0, 0, 0)``
holes) at a ``level`` whose meaning it states; level 0 leaves the sample unchanged. The noise is drawn from a
generator seeded by the corruption, the level, the seed and the sample index, so every model sees the same
degraded samples.

=================  ==========================================================================================
name               level
=================  ==========================================================================================
``depth_noise``    Gaussian noise on the z of valid points, std as a fraction of the part's depth range
``missing_points`` fraction of the valid points removed (set to the ``(0, 0, 0)`` hole)
``rgb_noise``      Gaussian noise on RGB in ``[0, 1]``, std
``rgb_blur``       Gaussian blur of RGB, sigma in pixels
``missing_xyz``    fraction of the samples whose point cloud is missing (all holes)
``missing_rgb``    fraction of the samples whose RGB image is missing (all NaN for a model that serves a missing
                   image, see :mod:`~anomalib_cmdr.models.cmdr.missing_modality`; else a black frame)
=================  ==========================================================================================

Example:
    >>> import torch
    >>> from anomalib.data.dataclasses import DepthItem
    >>> item = DepthItem(image=torch.rand(3, 8, 8), depth_map=torch.rand(3, 8, 8) + 1, gt_label=torch.tensor(0))
    >>> noisy = CORRUPTIONS["missing_points"].apply(item, 0.5, seed=0, index=0)
    >>> float((noisy.depth_map == 0).all(dim=0).float().mean())
    0.5
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.data import Dataset
from torchvision.transforms.v2.functional import gaussian_blur

__all__ = ["CORRUPTIONS", "CorruptedDataset", "Corruption"]


def _generator(name: str, level: float, seed: int, index: int) -> torch.Generator:
    digest = hashlib.sha256(f"{name}/{level}/{seed}/{index}".encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") % 2**63)


def _valid(depth: torch.Tensor) -> torch.Tensor:
    return (depth != 0).any(dim=0) & torch.isfinite(depth).all(dim=0)


def _depth_noise(item: Any, level: float, generator: torch.Generator, nan_image: bool) -> Any:
    del nan_image
    depth, valid = item.depth_map.clone(), _valid(item.depth_map)
    if valid.sum() > 1:
        z = depth[2][valid]
        extent = float(torch.quantile(z, 0.99) - torch.quantile(z, 0.01)) or float(z.abs().mean())
        noise = torch.randn(z.shape, generator=generator) * level * extent
        depth[2][valid] = z + noise
    item.depth_map = depth
    return item


def _missing_points(item: Any, level: float, generator: torch.Generator, nan_image: bool) -> Any:
    del nan_image
    depth, valid = item.depth_map.clone(), _valid(item.depth_map)
    index = torch.nonzero(valid.flatten()).squeeze(1)
    drop = index[torch.randperm(len(index), generator=generator)[: round(level * len(index))]]
    depth.view(3, -1)[:, drop] = 0
    item.depth_map = depth
    return item


def _rgb_noise(item: Any, level: float, generator: torch.Generator, nan_image: bool) -> Any:
    del nan_image
    noise = torch.randn(item.image.shape, generator=generator) * level
    item.image = type(item.image)((item.image + noise).clamp(0, 1))
    return item


def _rgb_blur(item: Any, level: float, generator: torch.Generator, nan_image: bool) -> Any:
    del generator, nan_image
    kernel = 2 * round(3 * level) + 1
    item.image = type(item.image)(gaussian_blur(item.image.as_subclass(torch.Tensor), [kernel, kernel], [level]))
    return item


def _missing_xyz(item: Any, level: float, generator: torch.Generator, nan_image: bool) -> Any:
    del nan_image
    if float(torch.rand(1, generator=generator)) < level:
        item.depth_map = torch.zeros_like(item.depth_map)
    return item


def _missing_rgb(item: Any, level: float, generator: torch.Generator, nan_image: bool) -> Any:
    if float(torch.rand(1, generator=generator)) < level:
        fill = torch.nan if nan_image else 0.0
        item.image = type(item.image)(torch.full_like(item.image.as_subclass(torch.Tensor), fill))
    return item


@dataclass(frozen=True)
class Corruption:
    """A degradation of test samples.

    Attributes:
        name (str): Its name (a key of :data:`CORRUPTIONS`).
        modality (str): ``"rgb"`` or ``"xyz"``: the input it degrades.
        unit (str): What its level means (for plots and tables).
        levels (tuple[float, ...]): The default levels of a robustness curve (0 first).
        function (Callable): ``(item, level, generator, nan_image) -> item``.

    Example:
        >>> import torch
        >>> from anomalib.data.dataclasses import DepthItem
        >>> blur = CORRUPTIONS["rgb_blur"]
        >>> blur.modality, blur.unit, blur.levels
        ('rgb', 'blur sigma (px)', (0.0, 1.0, 2.0, 4.0))
        >>> item = DepthItem(image=torch.rand(3, 8, 8), depth_map=torch.rand(3, 8, 8) + 1, gt_label=torch.tensor(0))
        >>> blurred = blur.apply(item, 1.0, seed=0, index=0)
        >>> blurred.image.shape, bool((blurred.image != item.image).any())
        (torch.Size([3, 8, 8]), True)
    """

    name: str
    modality: str
    unit: str
    levels: tuple[float, ...]
    function: Callable[[Any, float, torch.Generator, bool], Any]

    def apply(self, item: Any, level: float, seed: int = 0, index: int = 0, nan_image: bool = False) -> Any:
        """A degraded copy of ``item`` (the input is left unchanged).

        Args:
            item (Any): A ``DepthItem`` (``image`` in ``[0, 1]``, ``depth_map`` organized cloud).
            level (float): The degradation's level; ``0`` returns an unchanged copy.
            seed (int): Seed of the noise. Defaults to ``0``.
            index (int): The sample's index (each sample gets its own noise). Defaults to ``0``.
            nan_image (bool): A missing RGB image is all NaN (for models that serve a missing image), else
                black. Defaults to ``False``.

        Returns:
            Any: The degraded item.
        """
        item = copy.copy(item)
        if level == 0:
            return item
        return self.function(item, float(level), _generator(self.name, level, seed, index), nan_image)


CORRUPTIONS: dict[str, Corruption] = {
    c.name: c
    for c in (
        Corruption("depth_noise", "xyz", "z noise std / depth range", (0.0, 0.01, 0.03, 0.1), _depth_noise),
        Corruption("missing_points", "xyz", "fraction of points removed", (0.0, 0.2, 0.5, 0.8), _missing_points),
        Corruption("rgb_noise", "rgb", "RGB noise std", (0.0, 0.05, 0.1, 0.2), _rgb_noise),
        Corruption("rgb_blur", "rgb", "blur sigma (px)", (0.0, 1.0, 2.0, 4.0), _rgb_blur),
        Corruption("missing_xyz", "xyz", "fraction of samples without cloud", (0.0, 0.25, 0.5, 1.0), _missing_xyz),
        Corruption("missing_rgb", "rgb", "fraction of samples without RGB", (0.0, 0.25, 0.5, 1.0), _missing_rgb),
    )
}
"""The degradations, by name."""


class CorruptedDataset(Dataset):
    """A dataset whose items are degraded by one corruption at one level.

    Args:
        dataset (Dataset): The clean dataset (its ``collate_fn`` is reused).
        corruption (str | Corruption): The degradation, or its name in :data:`CORRUPTIONS`.
        level (float): Its level.
        seed (int): Seed of the noise. Defaults to ``0``.
        nan_image (bool): See :meth:`Corruption.apply`. Defaults to ``False``.

    Example:
        >>> corrupted = CorruptedDataset(dataset, "depth_noise", 0.03)  # doctest: +SKIP
    """

    def __init__(
        self,
        dataset: Dataset,
        corruption: str | Corruption,
        level: float,
        seed: int = 0,
        nan_image: bool = False,
    ) -> None:
        if isinstance(corruption, str):
            if corruption not in CORRUPTIONS:
                msg = f"corruption={corruption!r}: choose one of {sorted(CORRUPTIONS)}."
                raise ValueError(msg)
            corruption = CORRUPTIONS[corruption]
        self.dataset, self.corruption, self.level, self.seed, self.nan_image = (
            dataset,
            corruption,
            level,
            seed,
            nan_image,
        )

    def __len__(self) -> int:
        """Number of samples."""
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> Any:
        """The degraded sample ``index``."""
        return self.corruption.apply(self.dataset[index], self.level, self.seed, index, self.nan_image)

    @property
    def collate_fn(self) -> Callable[[Sequence[Any]], Any]:
        """The clean dataset's collate function."""
        return self.dataset.collate_fn  # type: ignore[attr-defined]
