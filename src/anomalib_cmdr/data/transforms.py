# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0

"""The one resize rule for RGB images, organized point clouds and masks.

Datasets serve files at their native size; the model's pre-processor owns the input size (as in
anomalib). Its :class:`SquarePadResize` is a torchvision ``Resize``, so anomalib's datamodules also apply
it to every item before collation (``AnomalibDataModule._update_augmentations``): samples of different
native sizes then collate, with exactly the rule the model uses. The rule follows the paper (and BTF/CFM):

* each image is first centred in a square (``square_pad``): RGB by replicating its edge pixels, point
  clouds with holes ``(0, 0, 0)``, masks with ``False``;
* RGB is resized bicubically with antialiasing at 8-bit precision (the authors resize 8-bit PIL images);
* point clouds and masks are resized by *nearest neighbour* with the integer rule
  ``source = floor(destination * input / output)``: every output value is a copy of an input value, so
  holes stay exactly zero and no point that does not exist is invented (bilinear resizing would blend
  points with holes).

The depth map travels through torchvision transforms wrapped as a ``tv_tensors.Mask``, which is what
makes geometric augmentations and this resize treat it by nearest neighbour.

Example:
    >>> import torch
    >>> from torchvision import tv_tensors
    >>> resize = SquarePadResize(16)
    >>> image = tv_tensors.Image(torch.rand(3, 30, 40))
    >>> xyz = tv_tensors.Mask(torch.rand(3, 30, 40) + 0.1)
    >>> out_image, out_xyz = resize(image, xyz)
    >>> tuple(out_image.shape), tuple(out_xyz.shape)
    ((3, 16, 16), (3, 16, 16))
    >>> out_xyz[:, 0, 0].tolist()  # the square padding is a hole
    [0.0, 0.0, 0.0]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch.nn import functional
from torchvision import tv_tensors
from torchvision.transforms.v2 import InterpolationMode, Resize
from torchvision.transforms.v2.functional import resize, to_dtype_image

__all__ = ["SquarePadResize", "as_size", "resize_nearest", "resize_rgb", "square_padding"]

_EIGHT_BIT_MAX = 255


def as_size(size: int | Sequence[int]) -> tuple[int, int]:
    """``(height, width)`` from an int (a square) or a pair.

    Args:
        size (int | Sequence[int]): The size.

    Returns:
        tuple[int, int]: ``(height, width)``.

    Raises:
        ValueError: If the size is not one or two positive integers.

    Example:
        >>> as_size(224), as_size([60, 80])
        ((224, 224), (60, 80))
    """
    sizes = [size] if isinstance(size, int) else list(size)
    if len(sizes) == 1:
        sizes = sizes * 2
    if len(sizes) != 2 or any(int(s) != s or s < 1 for s in sizes):
        msg = f"image_size={size!r}: expected a positive int or a (height, width) pair."
        raise ValueError(msg)
    return int(sizes[0]), int(sizes[1])


def square_padding(height: int, width: int) -> tuple[int, int, int, int]:
    """Padding ``(left, right, top, bottom)`` that centres an image in a square (BTF/CFM convention).

    Args:
        height (int): Image height.
        width (int): Image width.

    Returns:
        tuple[int, int, int, int]: The padding in ``torch.nn.functional.pad`` order.

    Example:
        >>> square_padding(30, 40)
        (0, 0, 5, 5)
    """
    side = max(height, width)
    top, left = (side - height) // 2, (side - width) // 2
    return left, side - width - left, top, side - height - top


def _pad_square(tensor: torch.Tensor, mode: str) -> torch.Tensor:
    """Centre ``(..., H, W)`` in a square: ``"replicate"`` edges or ``"constant"`` zeros."""
    padding = square_padding(*tensor.shape[-2:])
    if not any(padding):
        return tensor
    if mode == "constant":
        return functional.pad(tensor, padding)
    leading = tensor.shape[:-2]
    flat = tensor.reshape(-1, 1, *tensor.shape[-2:]).float()
    padded = functional.pad(flat, padding, mode=mode).to(tensor.dtype)
    return padded.reshape(*leading, *padded.shape[-2:])


def resize_nearest(tensor: torch.Tensor, size: int | Sequence[int], square_pad: bool = True) -> torch.Tensor:
    """Square-pad with zeros (optional), then nearest-neighbour resize by index selection.

    For point clouds (holes are ``(0, 0, 0)``) and masks (padding ``False``). Every output value is a copy
    of an input value (``source = floor(destination * input / output)``).

    Args:
        tensor (torch.Tensor): ``(..., H, W)`` point clouds ``(..., 3, H, W)`` or masks ``(..., H, W)``.
        size (int | Sequence[int]): Output ``(height, width)``, an int for a square.
        square_pad (bool): Centre in a square of zeros first. Defaults to ``True``.

    Returns:
        torch.Tensor: ``(..., *size)``, same dtype.

    Example:
        >>> import torch
        >>> resize_nearest(torch.arange(4.0).view(1, 2, 2), 4)[0]
        tensor([[0., 0., 1., 1.],
                [0., 0., 1., 1.],
                [2., 2., 3., 3.],
                [2., 2., 3., 3.]])
    """
    out_h, out_w = as_size(size)
    if square_pad:
        tensor = _pad_square(tensor, "constant")
    height, width = tensor.shape[-2:]
    if (height, width) == (out_h, out_w):
        return tensor
    rows = torch.div(torch.arange(out_h, device=tensor.device) * height, out_h, rounding_mode="floor")
    cols = torch.div(torch.arange(out_w, device=tensor.device) * width, out_w, rounding_mode="floor")
    return tensor.index_select(-2, rows).index_select(-1, cols)


def resize_rgb(image: torch.Tensor, size: int | Sequence[int], square_pad: bool = True) -> torch.Tensor:
    """Square-pad by edge replication (optional), then bicubic resize with antialiasing.

    A float image in ``[0, 1]`` is resized at 8-bit precision, as the authors resize 8-bit PIL images (for
    8-bit source files this is the same as resizing the file); other value ranges are resized in float.

    Args:
        image (torch.Tensor): ``(..., 3, H, W)`` float in ``[0, 1]`` or ``uint8``.
        size (int | Sequence[int]): Output ``(height, width)``, an int for a square.
        square_pad (bool): Centre in a square first, replicating the edge pixels. Defaults to ``True``.

    Returns:
        torch.Tensor: ``(..., 3, *size)``, same dtype.

    Example:
        >>> import torch
        >>> resize_rgb(torch.rand(3, 30, 40), 16).shape
        torch.Size([3, 16, 16])
    """
    size = as_size(size)
    if square_pad:
        image = _pad_square(image, "replicate")
    if tuple(image.shape[-2:]) == size:
        return image
    bicubic = {"interpolation": InterpolationMode.BICUBIC, "antialias": True}
    if image.is_floating_point() and bool(image.min() >= 0) and bool(image.max() <= 1):
        quantized = (image * _EIGHT_BIT_MAX).round().to(torch.uint8)
        return to_dtype_image(resize(quantized, list(size), **bicubic), image.dtype, scale=True)
    return resize(image, list(size), **bicubic)


class SquarePadResize(Resize):
    """The model's resize: :func:`resize_rgb` for images, :func:`resize_nearest` for ``Mask`` inputs.

    A ``torchvision.transforms.v2.Resize`` (bicubic, antialiased) so that anomalib's datamodules find it in
    the model's pre-processor and apply it to every item before collation; point clouds and masks must
    be wrapped as ``tv_tensors.Mask``.

    Args:
        size (int | Sequence[int]): Output ``(height, width)``, an int for a square.
        square_pad (bool): Centre each input in a square first (RGB edge-replicated, clouds and masks
            zero-padded), as the paper does. Defaults to ``True``.

    Example:
        >>> import torch
        >>> from torchvision import tv_tensors
        >>> mask = tv_tensors.Mask(torch.ones(30, 40, dtype=torch.bool))
        >>> SquarePadResize((20, 20))(mask).shape
        torch.Size([20, 20])
    """

    def __init__(self, size: int | Sequence[int], square_pad: bool = True) -> None:
        super().__init__(size=list(as_size(size)), interpolation=InterpolationMode.BICUBIC, antialias=True)
        self.square_pad = square_pad

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        """Resize one input (torchvision's per-input hook).

        Args:
            inpt (Any): A ``Mask`` (point cloud or mask), an ``Image`` or a plain image tensor.
            params (dict[str, Any]): Unused.

        Returns:
            Any: The resized input, of the same type.

        Raises:
            TypeError: For inputs other than images and masks (e.g. bounding boxes).
        """
        del params
        if isinstance(inpt, tv_tensors.Mask):
            return tv_tensors.wrap(
                resize_nearest(inpt.as_subclass(torch.Tensor), self.size, self.square_pad), like=inpt
            )
        if isinstance(inpt, tv_tensors.Image) or type(inpt) is torch.Tensor:
            out = resize_rgb(inpt.as_subclass(torch.Tensor), self.size, self.square_pad)
            return tv_tensors.wrap(out, like=inpt) if isinstance(inpt, tv_tensors.Image) else out
        msg = f"SquarePadResize resizes images and masks (point clouds as Mask), not {type(inpt).__name__}."
        raise TypeError(msg)
