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

    def _align(self, batch: Any) -> None:
        depth = getattr(batch, "depth_map", None)
        image = getattr(batch, "image", None)
        if depth is None or image is None:
            return
        if depth.ndim == 3:  # a single organized cloud
            depth = depth.unsqueeze(0)
        batch.depth_map = align_xyz(depth.float(), tuple(image.shape[-2:]))

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        """Transform the RGB and mask, align the xyz."""
        super().on_train_batch_start(trainer, pl_module, batch, batch_idx)
        self._align(batch)

    def on_validation_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0) -> None:
        """Transform the RGB and mask, align the xyz."""
        super().on_validation_batch_start(trainer, pl_module, batch, batch_idx)
        self._align(batch)

    def on_test_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0) -> None:
        """Transform the RGB and mask, align the xyz."""
        super().on_test_batch_start(trainer, pl_module, batch, batch_idx, dataloader_idx)
        self._align(batch)

    def on_predict_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0) -> None:
        """Transform the RGB and mask, align the xyz."""
        super().on_predict_batch_start(trainer, pl_module, batch, batch_idx, dataloader_idx)
        self._align(batch)
