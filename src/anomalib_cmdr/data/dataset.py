# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0

"""RGB + organized point cloud dataset: the rows of a sample table served as anomalib ``DepthItem``s.

:class:`RGBXYZDataset` serves the rows of a sample table (see :mod:`anomalib_cmdr.data.samples`) as
anomalib ``DepthItem``s whose ``depth_map`` is the ``(3, H, W)`` organized point cloud in metres.

Example:
    >>> from anomalib_cmdr.data import RGBXYZDataset
    >>> from anomalib_cmdr.data.samples import make_rgbxyz_samples
    >>> samples = make_rgbxyz_samples("./datasets/MVTec3D/bagel", split="test")  # doctest: +SKIP
    >>> dataset = RGBXYZDataset(samples)  # doctest: +SKIP
    >>> item = dataset[0]  # doctest: +SKIP
    >>> item.image.shape, item.depth_map.shape, item.gt_mask.shape  # native size  # doctest: +SKIP
    (torch.Size([3, 800, 800]), torch.Size([3, 800, 800]), torch.Size([800, 800]))
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from anomalib import TaskType
from anomalib.data.dataclasses import DepthBatch, DepthItem
from anomalib.data.datasets.base.depth import AnomalibDepthDataset
from pandas import DataFrame
from torchvision.transforms.v2 import Transform
from torchvision.transforms.v2.functional import to_dtype_image
from torchvision.tv_tensors import Image, Mask

from anomalib_cmdr.data.background import XYZCache
from anomalib_cmdr.data.io import DataFileError, probe_image, probe_xyz, read_mask, read_rgb, read_xyz

__all__ = ["RGBXYZDataset"]


class RGBXYZDataset(AnomalibDepthDataset):
    """Dataset of RGB images and organized point clouds, served as anomalib ``DepthItem``s.

    Each item has

    * ``image``: ``tv_tensors.Image`` ``(3, H, W)`` float32 in [0, 1];
    * ``depth_map``: ``(3, H, W)`` float32 organized point cloud (x, y, z channels, raw metres), missing
      points exactly 0;
    * ``gt_mask``: ``tv_tensors.Mask`` ``(H, W)`` bool, all ``False`` for a sample without mask file
      (``None`` for every item when the table's task is classification, i.e. the category has no masks);
    * ``gt_label``, ``image_path``, ``depth_path`` (always the user's file, also with ``remove_background``) and
      ``mask_path`` (``None`` when there is none: ``DepthItem`` turns the table's ``""`` into ``None``).

    Items are served at the files' native size, like anomalib's datasets; RGB, point cloud and mask of a
    sample must have the same ``H x W``. The model's pre-processor owns the input size: under anomalib's
    Engine the datamodule adds the model's resize
    (:class:`~anomalib_cmdr.data.transforms.SquarePadResize`) to ``augmentations``, so samples of different
    native sizes are brought to the model's size, with the model's rule, before they are collated.

    ``augmentations`` (set by the datamodule) see ``(image, depth_map, gt_mask)``, the point cloud wrapped
    as a ``tv_tensors.Mask``: geometric transforms move it with the image, by nearest neighbour, and
    photometric ones (colour jitter, normalisation) leave it alone.

    Args:
        samples (DataFrame): Sample table with at least ``image_path``, ``depth_path``, ``split`` and
            ``label_index`` (see :func:`make_rgbxyz_samples`). A missing or NaN ``mask_path`` means no mask
            (this is the fix for anomalib's pandas >= 3 crash on train samples).
        augmentations (Transform | None): Augmentations, see above. Defaults to ``None``.
        remove_background (bool): Read the point cloud from the plug-in's background-removal cache instead of the
            user's file (computed on first use when absent or stale; see
            :mod:`anomalib_cmdr.data.background`). Defaults to ``False``.
        cache_dir (str | Path | None): Cache directory of ``data_root`` (only with ``remove_background``).
            Defaults to ``<data_root>/../.anomalib_cmdr_cache/<data_root name>``.
        remove_background_kwargs (dict[str, Any] | None): Parameters of
            :func:`~anomalib_cmdr.data.background.remove_background` (thresholds in the scanner's unit; the
            defaults are the paper's, in metres for MVTec 3D-AD). Defaults to ``None``.
        data_root (str | Path | None): Data tree whose layout the cache mirrors (only with ``remove_background``).
            Defaults to the category folder (column ``path``); the datamodules pass their ``root``.

    Raises:
        DataFileError: If a file named by the table does not exist.
        ValueError: If the table lacks a required column.

    Example:
        >>> dataset = RGBXYZDataset(make_rgbxyz_samples("datasets/MVTec3D/bagel", "train"))  # doctest: +SKIP
        >>> dataset[0].depth_map.shape  # doctest: +SKIP
        torch.Size([3, 800, 800])
    """

    def __init__(
        self,
        samples: DataFrame,
        augmentations: Transform | None = None,
        remove_background: bool = False,
        cache_dir: str | Path | None = None,
        data_root: str | Path | None = None,
        remove_background_kwargs: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(augmentations=augmentations)
        samples = self._normalize_samples(samples)
        check_sample_headers(samples)
        self.samples = samples
        self.remove_background = remove_background
        self.xyz_cache: XYZCache | None = None
        if remove_background:
            if data_root is None:
                roots = samples["path"].unique() if "path" in samples else []
                if len(roots) != 1:
                    msg = "remove_background=True needs data_root when the table has no single 'path' column value"
                    raise ValueError(msg)
                data_root = roots[0]
            self.xyz_cache = XYZCache(data_root, cache_dir, **(remove_background_kwargs or {}))
        if "path" in samples and samples["path"].nunique() == 1:
            self.category = Path(samples["path"].iloc[0]).name

    @staticmethod
    def _normalize_samples(samples: DataFrame) -> DataFrame:
        """Check the table's columns and files; normalise ``mask_path`` to strings and set the task.

        Args:
            samples (DataFrame): Sample table.

        Returns:
            DataFrame: A normalised copy.

        Raises:
            ValueError: If a required column is missing.
            DataFileError: If an RGB image or point cloud named by the table does not exist.
        """
        missing_columns = {"image_path", "depth_path", "split", "label_index"} - set(samples.columns)
        if missing_columns:
            msg = f"samples lack column(s) {sorted(missing_columns)}"
            raise ValueError(msg)
        attrs = dict(samples.attrs)
        samples = samples.copy()
        if "mask_path" not in samples:
            samples["mask_path"] = ""
        samples["mask_path"] = samples["mask_path"].fillna("").astype(str)
        for column in ("image_path", "depth_path"):
            samples[column] = samples[column].fillna("").astype(str)
            exists = samples[column].map(lambda path: path == "" or Path(path).is_file())
            if not exists.all():
                first = samples.loc[~exists, column].iloc[0]
                msg = f"{first}: file does not exist ({int((~exists).sum())} missing in column {column!r})"
                raise DataFileError(msg)
        neither = (samples["image_path"] == "") & (samples["depth_path"] == "")
        if neither.any():
            row = samples[neither].iloc[0]
            msg = f"sample {row.get('sample_id', row.name)!r} has neither an RGB image nor a point cloud"
            raise DataFileError(msg)
        samples.attrs = attrs
        if "task" not in samples.attrs:
            has_mask = (samples["mask_path"] != "").any()
            samples.attrs["task"] = (TaskType.SEGMENTATION if has_mask else TaskType.CLASSIFICATION).value
        return samples

    @property
    def collate_fn(self) -> Callable[[list[DepthItem]], DepthBatch]:
        """Collate items into a ``DepthBatch``; items of different sizes get a clear error.

        Returns:
            Callable[[list[DepthItem]], DepthBatch]: The collate function.
        """
        return _collate_same_size

    def _xyz_file(self, depth_path: str) -> Path:
        """File the point cloud of ``depth_path`` is read from: the user's file or its cached cleaned copy."""
        return self.xyz_cache.get(depth_path) if self.xyz_cache is not None else Path(depth_path)

    def __getitem__(self, index: int) -> DepthItem:
        """Read, check, align and return one sample.

        Args:
            index (int): Row of the sample table.

        Returns:
            DepthItem: The sample (see the class docstring).

        Raises:
            DataFileError: If a file is unreadable or malformed, or RGB, point cloud and mask sizes disagree.
        """
        row = self.samples.iloc[index]
        image_path, depth_path, mask_path = str(row.image_path), str(row.depth_path), str(row.mask_path)
        label_index = int(row.label_index)

        # a sample may lack one modality (single-modality trees, allow_incomplete): a missing RGB image is served
        # all NaN and a missing point cloud all zero (no valid point), the conventions of CMDR's missing-modality
        # branches
        rgb = read_rgb(image_path) if image_path else None
        xyz = read_xyz(self._xyz_file(depth_path)) if depth_path else None
        reference, reference_path = (rgb, image_path) if rgb is not None else (xyz, depth_path)
        mask = read_mask(mask_path) if mask_path else np.zeros(reference.shape[:2], dtype=bool)
        if mask.shape != reference.shape[:2]:
            msg = (
                f"{mask_path}: mask is {mask.shape[1]}x{mask.shape[0]} (WxH) but {reference_path} is {_wxh(reference)}"
            )
            raise DataFileError(msg)
        if xyz is not None and rgb is not None and xyz.shape[:2] != rgb.shape[:2]:
            msg = (
                f"{depth_path}: point cloud is {_wxh(xyz)} (WxH) but {image_path} is {_wxh(rgb)}; the organized "
                "cloud must have one point per RGB pixel"
            )
            raise DataFileError(msg)

        height, width = reference.shape[:2]
        if rgb is not None:
            image = Image(to_dtype_image(torch.from_numpy(rgb).permute(2, 0, 1), torch.float32, scale=True))
        else:
            image = Image(torch.full((3, height, width), torch.nan))
        if xyz is not None:
            depth = torch.from_numpy(xyz).permute(2, 0, 1).contiguous()
        else:
            depth = torch.zeros(3, height, width)
        gt_mask = Mask(torch.from_numpy(mask)) if self.task == TaskType.SEGMENTATION else None
        if self.augmentations:
            placeholder = gt_mask if gt_mask is not None else Mask(torch.zeros(image.shape[-2:], dtype=torch.bool))
            image, depth_mask, placeholder = self.augmentations(image, Mask(depth), placeholder)
            depth = depth_mask.as_subclass(torch.Tensor)
            gt_mask = placeholder if gt_mask is not None else None

        return DepthItem(
            image=image,
            depth_map=depth,
            gt_mask=gt_mask,
            gt_label=torch.tensor(label_index),
            image_path=image_path,
            depth_path=depth_path,
            mask_path=mask_path,
        )


def check_sample_headers(samples: DataFrame) -> None:
    """Read every sample's file headers now, so that a bad file stops the run before training, not after.

    Checks that each RGB image and mask opens, that each point cloud is a real-valued ``(H, W, 3)`` TIFF, and
    that the three have the same size (pixels are not decoded: this is fast). A modality a sample lacks
    (path ``""``) is skipped.

    Args:
        samples (DataFrame): The sample table (``image_path``, ``depth_path``, ``mask_path``).

    Raises:
        DataFileError: For the first bad file or size mismatch, naming the file(s).

    Example:
        >>> import tempfile
        >>> import tifffile
        >>> from PIL import Image as PILImage
        >>> folder = Path(tempfile.mkdtemp())
        >>> PILImage.fromarray(np.zeros((8, 8, 3), np.uint8)).save(folder / "000.png")
        >>> tifffile.imwrite(folder / "000.tiff", np.ones((8, 6, 3), np.float32))
        >>> samples = DataFrame({"image_path": [str(folder / "000.png")], "depth_path": [str(folder / "000.tiff")],
        ...                      "mask_path": [""]})
        >>> check_sample_headers(samples)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
            ...
        anomalib_cmdr.data.io.DataFileError: .../000.tiff: point cloud is 6x8 (WxH) but .../000.png is 8x8; ...
    """
    for image_path, depth_path, mask_path in zip(
        samples["image_path"], samples["depth_path"], samples["mask_path"], strict=True
    ):
        size = probe_image(image_path) if image_path else None
        xyz_size = probe_xyz(depth_path) if depth_path else None
        if size is None:
            size, image_path = xyz_size, depth_path
        elif xyz_size is not None and xyz_size != size:
            msg = (
                f"{depth_path}: point cloud is {xyz_size[1]}x{xyz_size[0]} (WxH) but {image_path} is "
                f"{size[1]}x{size[0]}; the organized cloud must have one point per RGB pixel"
            )
            raise DataFileError(msg)
        if mask_path and probe_image(mask_path, "mask") != size:
            mask_size = probe_image(mask_path, "mask")
            msg = f"{mask_path}: mask is {mask_size[1]}x{mask_size[0]} (WxH) but {image_path} is {size[1]}x{size[0]}"
            raise DataFileError(msg)


def _wxh(array: np.ndarray) -> str:
    """``"<W>x<H>"`` of an image-like array."""
    return f"{array.shape[1]}x{array.shape[0]}"


def _collate_same_size(items: list[DepthItem]) -> DepthBatch:
    """``DepthBatch.collate`` after checking that the items share one size (else a clear error)."""
    sizes = {tuple(item.image.shape[-2:]) for item in items}
    if len(sizes) > 1:
        first, other = (
            items[0],
            next(item for item in items if tuple(item.image.shape[-2:]) != tuple(items[0].image.shape[-2:])),
        )
        msg = (
            f"{first.image_path} ({first.image.shape[-1]}x{first.image.shape[-2]}) and {other.image_path} "
            f"({other.image.shape[-1]}x{other.image.shape[-2]}) differ in size and cannot be batched: train/test "
            "through anomalib's Engine (the datamodule then applies the model's resize to every sample), or set "
            "the datamodule's augmentations to the model's resize, e.g. "
            "anomalib_cmdr.data.transforms.SquarePadResize(224)"
        )
        raise DataFileError(msg)
    # anomalib's item validator turns a missing path ("", a sample without that modality) into None, which its
    # batch validator refuses among strings: such lists are collated with "" for the missing paths
    mixed = {}
    for field in ("image_path", "depth_path"):
        paths = [getattr(item, field) for item in items]
        if None in paths and any(path is not None for path in paths):
            mixed[field] = [path or "" for path in paths]
            for item in items:
                setattr(item, field, None)
    batch = DepthBatch.collate(items)
    for field, paths in mixed.items():
        setattr(batch, field, paths)
    return batch
