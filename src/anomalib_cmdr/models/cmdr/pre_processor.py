"""Pre-processing of RGB + organized point-cloud batches.

anomalib's :class:`~anomalib.pre_processing.PreProcessor` transforms ``image`` and ``gt_mask`` only;
``depth_map`` keeps its native size. :class:`RGBXYZPreProcessor` also brings the organized cloud to
the image's final size by *nearest-neighbour* resizing: bilinear resizing would blend points with
holes into points that do not exist. Holes stay exactly (0, 0, 0).

Example:
    >>> pre = RGBXYZPreProcessor.default(image_size=(64, 64))
    >>> pre.transform is not None
    True
"""

from __future__ import annotations

from typing import Any

import torch
from anomalib.pre_processing import PreProcessor
from torch.nn import functional
from torchvision.transforms.v2 import Compose, InterpolationMode, Normalize, Resize

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def align_xyz(xyz: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Resize organized clouds ``(B, 3, H, W)`` to ``size`` by nearest neighbour (holes stay holes).

    Args:
        xyz: Organized clouds.
        size: Target ``(H, W)``.

    Returns:
        The resized clouds (the input itself when already at ``size``).
    """
    if tuple(xyz.shape[-2:]) == tuple(size):
        return xyz
    return functional.interpolate(xyz, size=tuple(size), mode="nearest")


def _align_batch(batch: Any) -> None:
    """Align a batch's ``depth_map`` to its ``image`` size in place (nothing without both)."""
    depth = getattr(batch, "depth_map", None)
    image = getattr(batch, "image", None)
    if depth is None or image is None:
        return
    if depth.ndim == 3:  # a single organized cloud
        depth = depth.unsqueeze(0)
    batch.depth_map = align_xyz(depth.float(), tuple(image.shape[-2:]))


class RGBXYZPreProcessor(PreProcessor):
    """Resize + ImageNet-normalise RGB (bicubic, antialiased), nearest-resize xyz to the same size."""

    @classmethod
    def default(cls, image_size: tuple[int, int] = (224, 224)) -> RGBXYZPreProcessor:
        """The paper's pre-processing at ``image_size``.

        Args:
            image_size: Model input ``(H, W)``.

        Returns:
            The pre-processor.
        """
        transform = Compose(
            [
                Resize(list(image_size), interpolation=InterpolationMode.BICUBIC, antialias=True),
                Normalize(mean=list(IMAGENET_MEAN), std=list(IMAGENET_STD)),
            ]
        )
        return cls(transform=transform)

    def prepare(self, batch: Any) -> None:
        """Pre-process a batch in place: transform the RGB and mask, align the xyz (what every hook does).

        Args:
            batch: A ``DepthBatch`` (or any object with ``image``, ``gt_mask`` and ``depth_map``).
        """
        if self.transform:
            batch.image, batch.gt_mask = self.transform(batch.image, batch.gt_mask)
        _align_batch(batch)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        """Transform the RGB and mask, align the xyz."""
        self.prepare(batch)

    def on_validation_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0) -> None:
        """Transform the RGB and mask, align the xyz."""
        self.prepare(batch)

    def on_test_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0) -> None:
        """Transform the RGB and mask, align the xyz."""
        self.prepare(batch)

    def on_predict_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0) -> None:
        """Transform the RGB and mask, align the xyz."""
        self.prepare(batch)


def prepare_batch(pre_processor: PreProcessor | None, batch: Any) -> None:
    """Apply a model's pre-processing to a batch in place, outside Lightning's batch hooks.

    Args:
        pre_processor: The model's pre-processor (an :class:`RGBXYZPreProcessor`, anomalib's
            ``PreProcessor`` or ``None``); the xyz is aligned to the image size in every case.
        batch: A ``DepthBatch``.
    """
    if isinstance(pre_processor, RGBXYZPreProcessor):
        pre_processor.prepare(batch)
        return
    if isinstance(pre_processor, PreProcessor) and pre_processor.transform:
        batch.image, batch.gt_mask = pre_processor.transform(batch.image, batch.gt_mask)
    _align_batch(batch)
