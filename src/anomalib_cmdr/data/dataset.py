# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0

"""RGB + organized point cloud dataset over MVTec 3D-AD-like folder trees.

A category folder is laid out as in MVTec 3D-AD::

    <category>/
        train/good/{rgb/000.png, xyz/000.tiff}
        validation/good/{rgb/000.png, xyz/000.tiff}          (optional)
        test/<good | defect type>/{rgb/000.png, xyz/000.tiff, gt/000.png}

:func:`make_rgbxyz_samples` turns such a folder into anomalib's sample table (one row per RGB / xyz pair,
matched by file stem) and :class:`RGBXYZDataset` serves its rows as anomalib ``DepthItem``s whose
``depth_map`` is the ``(3, H, W)`` organized point cloud in metres.

Example:
    >>> from anomalib_cmdr.data import RGBXYZDataset
    >>> from anomalib_cmdr.data.dataset import make_rgbxyz_samples
    >>> samples = make_rgbxyz_samples("./datasets/MVTec3D/bagel", split="test")  # doctest: +SKIP
    >>> dataset = RGBXYZDataset(samples)  # doctest: +SKIP
    >>> item = dataset[0]  # doctest: +SKIP
    >>> item.image.shape, item.depth_map.shape, item.gt_mask.shape  # native size  # doctest: +SKIP
    (torch.Size([3, 800, 800]), torch.Size([3, 800, 800]), torch.Size([800, 800]))
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from anomalib import TaskType
from anomalib.data.dataclasses import DepthBatch, DepthItem
from anomalib.data.datasets.base.depth import AnomalibDepthDataset
from anomalib.data.utils import LabelName, Split, validate_path
from pandas import DataFrame
from torchvision.transforms.v2 import Transform
from torchvision.transforms.v2.functional import to_dtype_image
from torchvision.tv_tensors import Image, Mask

from anomalib_cmdr.data.background import XYZ_SUFFIXES, XYZCache
from anomalib_cmdr.data.io import DataFileError, read_mask, read_rgb, read_xyz

__all__ = ["NORMAL_LABEL", "SPLIT_FOLDERS", "RGBXYZDataset", "make_rgbxyz_samples"]

NORMAL_LABEL = "good"
"""Name of the folder holding normal samples."""

SPLIT_FOLDERS = {Split.TRAIN: "train", Split.VAL: "validation", Split.TEST: "test"}
"""Folder of each split inside a category folder."""

RGB_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
"""File suffixes (lower case) of RGB images and ground-truth masks."""

_COLUMNS = [
    "path",
    "split",
    "label",
    "defect_type",
    "sample_id",
    "image_path",
    "depth_path",
    "mask_path",
    "label_index",
]


# --------------------------------------------------------------------------------------------------- sample table
def _available_categories(root: Path) -> list[str]:
    """Names of the visible sub-folders of ``root``."""
    return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def _check_category_root(category_root: Path) -> Path:
    """Return the resolved category folder or raise a :class:`DataFileError` that names it.

    Args:
        category_root (Path): Category folder.

    Returns:
        Path: The resolved, validated folder.

    Raises:
        DataFileError: If the folder does not exist (listing the categories of its parent, if that exists).
    """
    if not category_root.is_dir():
        parent = category_root.parent
        hint = (
            f"; categories found in {parent}: {_available_categories(parent)}"
            if parent.is_dir()
            else f"; {parent} does not exist either"
        )
        msg = f"{category_root}: category folder does not exist{hint}"
        raise DataFileError(msg)
    return validate_path(category_root)


def _files_by_stem(folder: Path, suffixes: tuple[str, ...]) -> dict[str, Path]:
    """Map stem -> file for the files of ``folder`` with one of ``suffixes`` (case-insensitive).

    Args:
        folder (Path): Folder to list; a missing folder has no files.
        suffixes (tuple[str, ...]): Accepted lower-case suffixes.

    Returns:
        dict[str, Path]: Files by stem.

    Raises:
        DataFileError: If two files of the folder share a stem.
    """
    if not folder.is_dir():
        return {}
    files: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or path.suffix.lower() not in suffixes or not path.is_file():
            continue
        if path.stem in files:
            msg = f"{path}: ambiguous sample, {files[path.stem].name} has the same stem"
            raise DataFileError(msg)
        files[path.stem] = path
    return files


def _unmatched_error(found: dict[str, Path], missing: list[str], twin_folder: Path, twin_kind: str) -> DataFileError:
    """Error for files of one modality whose twin of the other modality is missing."""
    first = found[missing[0]]
    more = f" (and {len(missing) - 1} more sample(s) of {first.parent})" if len(missing) > 1 else ""
    msg = f"{first}: no matching {twin_kind} with stem {missing[0]!r} in {twin_folder}{more}"
    return DataFileError(msg)


def _label_rows(category_root: Path, split: Split, label_dir: Path) -> list[dict[str, object]]:
    """Rows of the sample table for one ``<split>/<label>`` folder.

    Args:
        category_root (Path): Category folder.
        split (Split): Split of ``label_dir``.
        label_dir (Path): Folder holding ``rgb``, ``xyz`` and optionally ``gt``.

    Returns:
        list[dict[str, object]]: One row per RGB / xyz pair.

    Raises:
        DataFileError: If an RGB image has no point cloud with its stem, or the other way round.
    """
    rgb = _files_by_stem(label_dir / "rgb", RGB_SUFFIXES)
    xyz = _files_by_stem(label_dir / "xyz", XYZ_SUFFIXES)
    if missing := sorted(rgb.keys() - xyz.keys()):
        raise _unmatched_error(rgb, missing, label_dir / "xyz", "point cloud (.tiff)")
    if missing := sorted(xyz.keys() - rgb.keys()):
        raise _unmatched_error(xyz, missing, label_dir / "rgb", "RGB image")
    masks = _files_by_stem(label_dir / "gt", RGB_SUFFIXES)
    label = label_dir.name
    label_index = LabelName.NORMAL if label == NORMAL_LABEL else LabelName.ABNORMAL
    return [
        {
            "path": str(category_root),
            "split": split.value,
            "label": label,
            "defect_type": label,
            "sample_id": f"{category_root.name}/{label_dir.parent.name}/{label}/{stem}",
            "image_path": str(rgb[stem]),
            "depth_path": str(xyz[stem]),
            "mask_path": str(masks[stem]) if stem in masks else "",
            "label_index": int(label_index),
        }
        for stem in sorted(rgb)
    ]


def _as_split(split: str | Split) -> Split:
    """Parse a split name; ``"validation"`` is accepted for :attr:`Split.VAL`."""
    if isinstance(split, Split):
        return split
    return Split.VAL if split == SPLIT_FOLDERS[Split.VAL] else Split(split)


def make_rgbxyz_samples(category_root: str | Path, split: str | Split | None = None) -> DataFrame:
    """Build the sample table of an MVTec 3D-AD-like category folder.

    RGB images (``rgb/*.png``) and point clouds (``xyz/*.tiff``) are paired by file stem; a ground-truth
    mask ``gt/<stem>.png`` is attached when present. The table's ``task`` (``samples.attrs["task"]``) is
    computed over all splits of the category, like anomalib does: segmentation if any mask exists.

    Args:
        category_root (str | Path): Category folder, e.g. ``./datasets/MVTec3D/bagel``.
        split (str | Split | None): ``"train"``, ``"val"`` (folder ``validation``) or ``"test"``; ``None``
            for all splits.

    Returns:
        DataFrame: One row per sample, sorted by ``image_path``, with columns ``path`` (category folder),
        ``split`` (``"train"``, ``"val"``, ``"test"``), ``label`` and ``defect_type`` (the label folder's
        name, ``"good"`` for normal samples), ``sample_id`` (``<category>/<split folder>/<label>/<stem>``,
        unique and stable, e.g. as a feature-cache key), ``image_path``, ``depth_path``, ``mask_path``
        (``""`` when there is none) and ``label_index`` (0 normal, 1 anomalous). Paths are absolute.

    Raises:
        DataFileError: If the category folder does not exist (the message lists the categories found next
            to it), a sample lacks its RGB image or point cloud, an anomalous sample lacks its mask while
            others have one, or the requested split has no samples.

    Example:
        >>> samples = make_rgbxyz_samples("./datasets/MVTec3D/bagel", split="test")  # doctest: +SKIP
        >>> samples.groupby("defect_type").size()  # doctest: +SKIP
        defect_type
        color          22
        combined       27
        ...
    """
    category_root = _check_category_root(Path(category_root))
    rows: list[dict[str, object]] = []
    for split_value, folder_name in SPLIT_FOLDERS.items():
        split_dir = category_root / folder_name
        if split_dir.is_dir():
            for label_dir in sorted(p for p in split_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
                rows += _label_rows(category_root, split_value, label_dir)
    samples = DataFrame(rows, columns=_COLUMNS).astype({"label_index": int})
    if samples.empty:
        msg = (
            f"{category_root}: no samples found; expected <category>/train/good/rgb/*.png with matching "
            "xyz/*.tiff (and test/<good|defect>/{rgb,xyz,gt})"
        )
        raise DataFileError(msg)

    has_mask = samples.mask_path != ""
    if has_mask.any():
        unmasked = samples[(samples.label_index == LabelName.ABNORMAL) & ~has_mask]
        if len(unmasked):
            first = Path(unmasked.image_path.iloc[0])
            msg = (
                f"{first}: anomalous sample has no ground-truth mask {first.parent.parent / 'gt' / first.stem}.png "
                f"({len(unmasked)} such sample(s)), while other samples of {category_root} have masks"
            )
            raise DataFileError(msg)
    task = TaskType.SEGMENTATION if has_mask.any() else TaskType.CLASSIFICATION

    if split is not None:
        split = _as_split(split)
        samples = samples[samples.split == split.value].reset_index(drop=True)
        if samples.empty:
            msg = f"{category_root / SPLIT_FOLDERS[split]}: no samples for split {split.value!r}"
            raise DataFileError(msg)
    samples = samples.sort_values(by="image_path", ignore_index=True)
    samples.attrs["task"] = task.value
    return samples


# --------------------------------------------------------------------------------------------------------- dataset
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
    ) -> None:
        super().__init__(augmentations=augmentations)
        samples = self._normalize_samples(samples)
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
            self.xyz_cache = XYZCache(data_root, cache_dir)
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
            exists = samples[column].map(lambda path: Path(path).is_file())
            if not exists.all():
                first = samples.loc[~exists, column].iloc[0]
                msg = f"{first}: file does not exist ({int((~exists).sum())} missing in column {column!r})"
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

        rgb = read_rgb(image_path)
        xyz = read_xyz(self._xyz_file(depth_path))
        mask = read_mask(mask_path) if mask_path else np.zeros(rgb.shape[:2], dtype=bool)
        if mask.shape != rgb.shape[:2]:
            msg = f"{mask_path}: mask is {mask.shape[1]}x{mask.shape[0]} (WxH) but {image_path} is {_wxh(rgb)}"
            raise DataFileError(msg)
        if xyz.shape[:2] != rgb.shape[:2]:
            msg = (
                f"{depth_path}: point cloud is {_wxh(xyz)} (WxH) but {image_path} is {_wxh(rgb)}; the organized "
                "cloud must have one point per RGB pixel"
            )
            raise DataFileError(msg)

        image = Image(to_dtype_image(torch.from_numpy(rgb).permute(2, 0, 1), torch.float32, scale=True))
        depth = torch.from_numpy(xyz).permute(2, 0, 1).contiguous()
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
    return DepthBatch.collate(items)
