# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0

"""Pre-processing of RGB + organized point-cloud batches: the single owner of CMDR's input size.

anomalib's :class:`~anomalib.pre_processing.PreProcessor` transforms ``image`` and ``gt_mask`` only;
``depth_map`` keeps its native size. :class:`RGBXYZPreProcessor` brings all three to ``image_size`` with
one rule, :class:`~anomalib_cmdr.data.transforms.SquarePadResize` (RGB bicubic, point cloud and mask by
nearest neighbour, square padding first), then ImageNet-normalises the RGB. anomalib's datamodules also
apply that resize to every item before collation, so samples of different native sizes batch together.

Example:
    >>> import torch
    >>> from anomalib.data import DepthBatch
    >>> pre = RGBXYZPreProcessor(image_size=64)
    >>> batch = DepthBatch(image=torch.rand(2, 3, 100, 80), depth_map=torch.rand(2, 3, 100, 80) + 0.1)
    >>> pre.prepare(batch)
    >>> batch.image.shape, batch.depth_map.shape
    (torch.Size([2, 3, 64, 64]), torch.Size([2, 3, 64, 64]))
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from anomalib.pre_processing import PreProcessor
from anomalib.pre_processing.utils.transform import get_exportable_transform
from torchvision import tv_tensors
from torchvision.transforms.v2 import Compose, Normalize

from anomalib_cmdr.data.transforms import SquarePadResize, as_size

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class RGBXYZPreProcessor(PreProcessor):
    """Resize RGB, point cloud and mask to ``image_size`` with one rule; ImageNet-normalise the RGB.

    Args:
        image_size (int | Sequence[int]): Model input ``(height, width)``, an int for a square.
            Defaults to ``224``.
        square_pad (bool): Centre each input in a square before resizing (RGB edge-replicated, point cloud
            and mask zero-padded), as the paper does for MVTec 3D-AD. Defaults to ``True``.
        mean (Sequence[float]): RGB normalisation mean. Defaults to ImageNet's.
        std (Sequence[float]): RGB normalisation standard deviation. Defaults to ImageNet's.

    Example:
        >>> from anomalib.data import DepthBatch
        >>> pre = RGBXYZPreProcessor(image_size=(32, 48), square_pad=False)
        >>> batch = DepthBatch(image=torch.rand(1, 3, 64, 96), depth_map=torch.rand(1, 3, 64, 96) + 0.1,
        ...                    gt_mask=torch.zeros(1, 64, 96, dtype=torch.bool))
        >>> pre.prepare(batch)
        >>> batch.image.shape, batch.depth_map.shape, batch.gt_mask.shape
        (torch.Size([1, 3, 32, 48]), torch.Size([1, 3, 32, 48]), torch.Size([1, 32, 48]))
    """

    def __init__(
        self,
        image_size: int | Sequence[int] = 224,
        square_pad: bool = True,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
    ) -> None:
        super().__init__()
        self.configure(image_size, square_pad, mean, std)

    def configure(
        self,
        image_size: int | Sequence[int],
        square_pad: bool = True,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
    ) -> None:
        """Set the input size and normalisation (the constructor's arguments; used when a checkpoint loads).

        Args:
            image_size (int | Sequence[int]): Model input ``(height, width)``, an int for a square.
            square_pad (bool): Centre each input in a square before resizing. Defaults to ``True``.
            mean (Sequence[float]): RGB normalisation mean. Defaults to ImageNet's.
            std (Sequence[float]): RGB normalisation standard deviation. Defaults to ImageNet's.
        """
        self.image_size = as_size(image_size)
        self.square_pad = bool(square_pad)
        self.mean, self.std = tuple(float(m) for m in mean), tuple(float(s) for s in std)
        self.resize = SquarePadResize(self.image_size, self.square_pad)
        self.transform = Compose([self.resize, Normalize(mean=list(self.mean), std=list(self.std))])
        self.export_transform = get_exportable_transform(self.transform)

    def prepare(self, batch: Any) -> None:
        """Pre-process a batch in place (what every batch hook does; also usable outside Lightning).

        Args:
            batch (Any): A ``DepthBatch`` (or any object with ``image``, ``gt_mask`` and ``depth_map``); a
                missing ``image`` or ``depth_map`` is left alone.
        """
        image = getattr(batch, "image", None)
        if image is not None:
            batch.image, batch.gt_mask = self.transform(tv_tensors.Image(image), batch.gt_mask)
        depth = getattr(batch, "depth_map", None)
        if depth is not None:
            depth = depth.unsqueeze(0) if depth.ndim == 3 else depth  # a single organized cloud
            resized = self.resize(tv_tensors.Mask(depth.float()))
            batch.depth_map = resized.as_subclass(torch.Tensor)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        """Pre-process the training batch."""
        self.prepare(batch)

    def on_validation_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0) -> None:
        """Pre-process the validation batch."""
        self.prepare(batch)

    def on_test_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0) -> None:
        """Pre-process the test batch."""
        self.prepare(batch)

    def on_predict_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0) -> None:
        """Pre-process the prediction batch."""
        self.prepare(batch)

    def checkpoint_config(self) -> dict[str, Any]:
        """Plain-data configuration saved in checkpoints (``weights_only``-safe).

        Returns:
            dict[str, Any]: ``image_size``, ``square_pad``, ``mean`` and ``std``.
        """
        return {"image_size": list(self.image_size), "square_pad": self.square_pad, "mean": self.mean, "std": self.std}

    def load_checkpoint_config(self, config: dict[str, Any]) -> None:
        """Restore the configuration saved by :meth:`checkpoint_config`.

        Args:
            config (dict[str, Any]): The saved configuration (anomalib's own ``{"transform": ...}`` form, from
                another pre-processor, is ignored: the constructor's settings stay).
        """
        if "image_size" in config:
            self.configure(config["image_size"], config["square_pad"], config["mean"], config["std"])
