# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0

"""The sample table of an MVTec 3D-AD-like category folder (which files make a sample, and its label).

A category folder is laid out as in MVTec 3D-AD::

    <category>/
        train/good/{rgb/000.png, xyz/000.tiff}
        validation/good/{rgb/000.png, xyz/000.tiff}          (optional)
        test/<good | defect type>/{rgb/000.png, xyz/000.tiff, gt/000.png}

:func:`make_rgbxyz_samples` turns such a folder into anomalib's sample table: one row per RGB / xyz pair,
matched by file stem, with the ground-truth mask when there is one. A tree with only ``xyz/`` folders (a 3D
scanner without camera) or only ``rgb/`` folders is a single-modality tree (``modality="auto"`` finds out);
with ``allow_incomplete=True`` a sample of an RGB + xyz tree may lack one of its two files (a sensor
dropout), which CMDR then scores with the other branch.

Example:
    >>> from anomalib_cmdr.data.samples import make_rgbxyz_samples
    >>> samples = make_rgbxyz_samples("./datasets/MVTec3D/bagel", split="test")  # doctest: +SKIP
    >>> samples.groupby("defect_type").size()  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from anomalib import TaskType
from anomalib.data.utils import LabelName, Split, validate_path
from pandas import DataFrame

from anomalib_cmdr.data.background import XYZ_SUFFIXES
from anomalib_cmdr.data.io import DataFileError

__all__ = ["NORMAL_LABEL", "RGB_SUFFIXES", "SPLIT_FOLDERS", "TREE_MODALITIES", "make_rgbxyz_samples"]

TREE_MODALITIES = ("auto", "rgb+xyz", "rgb", "xyz")
"""Values of ``modality`` of :func:`make_rgbxyz_samples` (``"auto"``: the modality folders the tree has)."""

NORMAL_LABEL = "good"
"""Name of the folder holding normal samples (the default of ``normal_dirs``)."""
NORMAL_LOOKALIKES = frozenset({"good", "ok", "normal", "pass", "passed", "nominal", "defect_free", "defect-free"})
"""Folder names (case-insensitive) that look like normal samples: refused unless listed in ``normal_dirs``, so that
``test/Good`` or ``test/OK`` never silently count as defects."""

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


def _is_normal(label_dir: Path, split: Split, normal_dirs: tuple[str, ...]) -> bool:
    """Whether ``label_dir`` holds normal samples; refuses ambiguous names (see :data:`NORMAL_LOOKALIKES`).

    Raises:
        DataFileError: If a normal-looking folder is not in ``normal_dirs``, or a training folder is not normal.
    """
    if label_dir.name in normal_dirs:
        return True
    if label_dir.name.lower() in NORMAL_LOOKALIKES:
        msg = (
            f"{label_dir}: looks like normal samples but is not one of normal_dirs={list(normal_dirs)} (names are "
            "case-sensitive); rename the folder or pass normal_dirs (e.g. --data.normal_dirs "
            f"'[{', '.join(normal_dirs)}, {label_dir.name}]'), so that these samples are not counted as defects."
        )
        raise DataFileError(msg)
    if split == Split.TRAIN:
        msg = (
            f"{label_dir}: train/ may hold only normal samples (folders {list(normal_dirs)}); move it to test/ or "
            "add its name to normal_dirs if its samples are normal."
        )
        raise DataFileError(msg)
    return False


def _label_rows(
    category_root: Path,
    split: Split,
    label_dir: Path,
    normal_dirs: tuple[str, ...] = (NORMAL_LABEL,),
    modality: str = "rgb+xyz",
    allow_incomplete: bool = False,
) -> list[dict[str, object]]:
    """Rows of the sample table for one ``<split>/<label>`` folder.

    Args:
        category_root (Path): Category folder.
        split (Split): Split of ``label_dir``.
        label_dir (Path): Folder holding ``rgb``, ``xyz`` and optionally ``gt``.
        normal_dirs (tuple[str, ...]): Names of the folders of normal samples. Defaults to ``("good",)``.
        modality (str): ``"rgb+xyz"``, ``"rgb"`` or ``"xyz"``: the files a sample has. Defaults to ``"rgb+xyz"``.
        allow_incomplete (bool): With ``rgb+xyz``, keep a sample that has only one of its two files (the other
            path ``""``). Defaults to ``False``.

    Returns:
        list[dict[str, object]]: One row per sample.

    Raises:
        DataFileError: If an RGB image has no point cloud with its stem, or the other way round (unless
            ``allow_incomplete``), or the folder's name is ambiguous (see :func:`_is_normal`).
    """
    normal = _is_normal(label_dir, split, normal_dirs)
    rgb = _files_by_stem(label_dir / "rgb", RGB_SUFFIXES) if modality != "xyz" else {}
    xyz = _files_by_stem(label_dir / "xyz", XYZ_SUFFIXES) if modality != "rgb" else {}
    if modality == "rgb+xyz" and not allow_incomplete:
        if missing := sorted(rgb.keys() - xyz.keys()):
            raise _unmatched_error(rgb, missing, label_dir / "xyz", "point cloud (.tiff)")
        if missing := sorted(xyz.keys() - rgb.keys()):
            raise _unmatched_error(xyz, missing, label_dir / "rgb", "RGB image")
    masks = _files_by_stem(label_dir / "gt", RGB_SUFFIXES)
    label = label_dir.name
    label_index = LabelName.NORMAL if normal else LabelName.ABNORMAL
    return [
        {
            "path": str(category_root),
            "split": split.value,
            "label": label,
            "defect_type": label,
            "sample_id": f"{category_root.name}/{label_dir.parent.name}/{label}/{stem}",
            "image_path": str(rgb[stem]) if stem in rgb else "",
            "depth_path": str(xyz[stem]) if stem in xyz else "",
            "mask_path": str(masks[stem]) if stem in masks else "",
            "label_index": int(label_index),
        }
        for stem in sorted(rgb.keys() | xyz.keys())
    ]


def _tree_modality(category_root: Path, modality: str) -> str:
    """The modality of a tree: ``modality``, or for ``"auto"`` the modality folders found under its splits.

    Raises:
        ValueError: If ``modality`` is not one of :data:`TREE_MODALITIES`.
    """
    if modality not in TREE_MODALITIES:
        msg = f"modality={modality!r}: choose one of {TREE_MODALITIES}."
        raise ValueError(msg)
    if modality != "auto":
        return modality
    found = {name for name in ("rgb", "xyz") if any(category_root.glob(f"*/*/{name}"))}
    return {"rgb": "rgb", "xyz": "xyz"}.get("".join(sorted(found)), "rgb+xyz")


def _as_split(split: str | Split) -> Split:
    """Parse a split name; ``"validation"`` is accepted for :attr:`Split.VAL`."""
    if isinstance(split, Split):
        return split
    return Split.VAL if split == SPLIT_FOLDERS[Split.VAL] else Split(split)


def make_rgbxyz_samples(
    category_root: str | Path,
    split: str | Split | None = None,
    normal_dirs: Sequence[str] = (NORMAL_LABEL,),
    modality: str = "auto",
    allow_incomplete: bool = False,
) -> DataFrame:
    """Build the sample table of an MVTec 3D-AD-like category folder.

    RGB images (``rgb/*.png``) and point clouds (``xyz/*.tiff``) are paired by file stem; a ground-truth
    mask ``gt/<stem>.png`` is attached when present. The table's ``task`` (``samples.attrs["task"]``) is
    computed over all splits of the category, like anomalib does: segmentation if any mask exists.

    Args:
        category_root (str | Path): Category folder, e.g. ``./datasets/MVTec3D/bagel``.
        split (str | Split | None): ``"train"``, ``"val"`` (folder ``validation``) or ``"test"``; ``None``
            for all splits.
        normal_dirs (Sequence[str]): Names of the label folders that hold normal samples (exact names).
            Defaults to ``("good",)``.
        modality (str): Which files make a sample: ``"rgb+xyz"`` (an RGB image and a point cloud), ``"rgb"`` or
            ``"xyz"`` (one of them; the other path is ``""``), or ``"auto"``: ``"rgb"`` / ``"xyz"`` when the tree
            has only ``rgb/`` / only ``xyz/`` folders, else ``"rgb+xyz"``. Defaults to ``"auto"``.
        allow_incomplete (bool): With ``rgb+xyz``, keep samples that have only one of their two files (their
            other path is ``""``; CMDR scores them with the branch of the modality they have) instead of
            refusing them. Defaults to ``False``.

    Returns:
        DataFrame: One row per sample, sorted by ``sample_id``, with columns ``path`` (category folder),
        ``split`` (``"train"``, ``"val"``, ``"test"``), ``label`` and ``defect_type`` (the label folder's
        name, ``"good"`` for normal samples), ``sample_id`` (``<category>/<split folder>/<label>/<stem>``,
        unique and stable, e.g. as a feature-cache key), ``image_path``, ``depth_path`` (``""`` for a modality
        the sample lacks), ``mask_path`` (``""`` when there is none) and ``label_index`` (0 normal, 1 anomalous).
        Paths are absolute.

    Raises:
        DataFileError: If the category folder does not exist (the message lists the categories found next
            to it), a sample lacks its RGB image or point cloud, an anomalous sample lacks its mask while
            others have one, the requested split has no samples, ``train/`` holds a folder not in ``normal_dirs``,
            or a folder looks normal (``Good``, ``OK``, ``normal``...) without being in ``normal_dirs``.

    Example:
        >>> samples = make_rgbxyz_samples("./datasets/MVTec3D/bagel", split="test")  # doctest: +SKIP
        >>> samples.groupby("defect_type").size()  # doctest: +SKIP
        defect_type
        color          22
        combined       27
        ...
    """
    category_root = _check_category_root(Path(category_root))
    normal_dirs = (normal_dirs,) if isinstance(normal_dirs, str) else tuple(normal_dirs)
    modality = _tree_modality(category_root, modality)
    rows: list[dict[str, object]] = []
    for split_value, folder_name in SPLIT_FOLDERS.items():
        split_dir = category_root / folder_name
        if split_dir.is_dir():
            for label_dir in sorted(p for p in split_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
                rows += _label_rows(category_root, split_value, label_dir, normal_dirs, modality, allow_incomplete)
    samples = DataFrame(rows, columns=_COLUMNS).astype({"label_index": int})
    if samples.empty:
        msg = (
            f"{category_root}: no samples found; expected <category>/train/good/rgb/*.png with matching "
            "xyz/*.tiff (and test/<good|defect>/{rgb,xyz,gt}), or only rgb/ or only xyz/ folders"
        )
        raise DataFileError(msg)

    has_mask = samples.mask_path != ""
    if has_mask.any():
        unmasked = samples[(samples.label_index == LabelName.ABNORMAL) & ~has_mask]
        if len(unmasked):
            first = Path(unmasked.image_path.iloc[0] or unmasked.depth_path.iloc[0])
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
    samples = samples.sort_values(by="sample_id", ignore_index=True)
    samples.attrs["task"] = task.value
    return samples
