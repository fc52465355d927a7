# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0

"""The chunks of a folder of raw scans, served as anomalib ``DepthItem``s that CMDR's 3D branch reads unchanged.

A scan folder is laid out like an anomalib category folder, one point-cloud file per scan (formats and the
label sidecar: :mod:`~anomalib_cmdr.data.scans.io`)::

    <root>/
        train/good/*.ply                              normal scans only
        validation/good/*.ply                         (optional; val_split_mode="from_dir")
        test/good/*.ply                               normal scans (labels optional: all normal)
        test/<defect type>/*.ply + <stem>.labels.txt  per-point labels required

:func:`make_scan_samples` lists the scans; :func:`make_chunk_samples` cuts each one with a
:class:`~anomalib_cmdr.data.scans.chunking.ScanChunker` into a **chunk cache**: per scan a folder with one
``chunk_NNNN.npz`` (normalised ``xyz`` grid, the scan point of each cell ``index``, per-cell labels) and one
``chunk_NNNN.png`` (the chunk's height, 8 bit) per chunk, and a ``manifest.json``. The cache lives in
``<root>/../.anomalib_cmdr_cache/<root name>/scans/<settings digest>/`` (next to the data, never inside it;
``cache_dir`` moves it), is rebuilt when a scan, its labels or the chunking settings change, and makes every
epoch read small files instead of whole scans. The PNG is each chunk's identity: anomalib requires an existing
``image_path`` per sample, and CMDR's feature cache keys samples by their files, so each chunk's frozen 3D
features are computed once per run.

:class:`ScanChunkDataset` serves one item per chunk: ``depth_map`` ``(3, side, side)`` the normalised chunk
(holes ``(0, 0, 0)``), ``gt_mask`` ``(side, side)`` its points' labels, ``gt_label`` the chunk's label (the
paper's 0.25 % rule), ``image`` the height picture (CMDR with ``modality="xyz"`` does not read it),
``image_path`` the chunk's PNG and ``depth_path`` the scan.

Example:
    >>> from anomalib_cmdr.data.scans import ScanChunker, make_chunk_samples, make_scan_samples
    >>> scans = make_scan_samples("./datasets/SyntheticScans", split="test")  # doctest: +SKIP
    >>> chunks = make_chunk_samples(scans, ScanChunker(), data_root="./datasets/SyntheticScans")  # doctest: +SKIP
    >>> ScanChunkDataset(chunks)[0].depth_map.shape  # doctest: +SKIP
    torch.Size([3, 96, 96])
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from anomalib import TaskType
from anomalib.data.dataclasses import DepthItem
from anomalib.data.datasets.base.depth import AnomalibDepthDataset
from anomalib.data.utils import LabelName, Split
from pandas import DataFrame
from PIL import Image as PILImage
from torchvision.transforms.v2 import Transform
from torchvision.tv_tensors import Image, Mask

from anomalib_cmdr.data.background import default_cache_dir
from anomalib_cmdr.data.io import DataFileError
from anomalib_cmdr.data.scans.chunking import ScanChunker, ScanChunks, chunk_height_image
from anomalib_cmdr.data.scans.io import is_scan_file, label_file, read_point_cloud, read_point_labels

__all__ = [
    "CHUNK_CACHE_SUBDIR",
    "ScanChunkDataset",
    "chunk_cache_dir",
    "make_chunk_samples",
    "make_scan_samples",
    "read_chunk",
]

logger = logging.getLogger(__name__)

CHUNK_CACHE_SUBDIR = "scans"
"""Sub-folder of the plug-in's cache directory holding the chunk caches."""

SPLIT_FOLDERS = {Split.TRAIN: "train", Split.VAL: "validation", Split.TEST: "test"}
"""Folder of each split inside a scan folder."""

_NORMAL_LOOKALIKES = frozenset({"good", "ok", "normal", "pass", "passed", "nominal", "defect_free", "defect-free"})
_MANIFEST = "manifest.json"
_MANIFEST_VERSION = 1


def make_scan_samples(
    root: str | Path,
    split: str | Split | None = None,
    normal_dirs: Sequence[str] = ("good",),
) -> DataFrame:
    """The table of the scans of a scan folder, one row per scan file.

    Args:
        root (str | Path): The scan folder (holding ``train/`` and ``test/``).
        split (str | Split | None): ``"train"``, ``"val"`` (folder ``validation``), ``"test"``, or ``None`` for all.
            Defaults to ``None``.
        normal_dirs (Sequence[str]): Names of the label folders holding normal scans. Defaults to ``("good",)``.

    Returns:
        DataFrame: Columns ``split``, ``label`` (the label folder), ``scan_path``, ``label_path`` (``""`` when
        the scan has no sidecar) and ``label_index`` (0 for a normal folder, 1 otherwise), sorted by path.

    Raises:
        DataFileError: If the folder does not exist or has no scan (for ``split``), ``train/`` holds a folder
            not in ``normal_dirs``, a folder looks normal (``OK``, ``Good``) without being listed, or a scan of a
            defect folder has no label sidecar.

    Example:
        >>> import tempfile
        >>> from anomalib_cmdr.data.scans.io import write_point_cloud, write_point_labels
        >>> root = Path(tempfile.mkdtemp())
        >>> _ = write_point_cloud(root / "train" / "good" / "000.npy", np.random.default_rng(0).random((50, 3)))
        >>> _ = write_point_cloud(root / "test" / "tear" / "000.npy", np.random.default_rng(1).random((50, 3)))
        >>> _ = write_point_labels(root / "test" / "tear" / "000.labels.txt", np.r_[np.zeros(45), np.ones(5)])
        >>> scans = make_scan_samples(root)
        >>> scans[["split", "label", "label_index"]].values.tolist()
        [['test', 'tear', 1], ['train', 'good', 0]]
        >>> Path(scans["label_path"].iloc[0]).name
        '000.labels.txt'
    """
    root = Path(root)
    if not root.is_dir():
        msg = f"{root}: scan folder does not exist"
        raise DataFileError(msg)
    normal_dirs = (normal_dirs,) if isinstance(normal_dirs, str) else tuple(normal_dirs)
    if isinstance(split, str):
        split = Split.VAL if split == "validation" else Split(split)
    rows = []
    for split_value, folder in SPLIT_FOLDERS.items():
        if split is not None and split_value != split:
            continue
        split_dir = root / folder
        if not split_dir.is_dir():
            continue
        for label_dir in sorted(p for p in split_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
            normal = label_dir.name in normal_dirs
            if not normal and label_dir.name.lower() in _NORMAL_LOOKALIKES:
                msg = (
                    f"{label_dir}: looks like normal scans but is not one of normal_dirs={list(normal_dirs)}; rename "
                    "the folder or add its name to normal_dirs, so that its scans are not counted as defects"
                )
                raise DataFileError(msg)
            if not normal and split_value != Split.TEST:
                msg = f"{label_dir}: {folder}/ may hold only normal scans (folders {list(normal_dirs)})"
                raise DataFileError(msg)
            for path in sorted(p for p in label_dir.iterdir() if p.is_file() and is_scan_file(p)):
                labels = label_file(path)
                if labels is None and not normal:
                    msg = (
                        f"{path}: scan of defect type {label_dir.name!r} has no per-point labels; write them to "
                        f"{path.with_name(path.stem + '.labels.txt')} (one 0/1 per point, in the scan's order)"
                    )
                    raise DataFileError(msg)
                rows.append(
                    {
                        "split": split_value.value,
                        "label": label_dir.name,
                        "scan_path": str(path.resolve()),
                        "label_path": str(labels.resolve()) if labels else "",
                        "label_index": int(LabelName.NORMAL if normal else LabelName.ABNORMAL),
                    }
                )
    columns = ["split", "label", "scan_path", "label_path", "label_index"]
    samples = DataFrame(rows, columns=columns)
    if samples.empty:
        where = root / SPLIT_FOLDERS[split] if split is not None else root
        msg = f"{where}: no scans found; expected train/good/*.ply (or .pcd, .xyz, .txt, .npy) and test/<label>/..."
        raise DataFileError(msg)
    return samples.sort_values("scan_path", ignore_index=True)


def chunk_cache_dir(data_root: str | Path, chunker: ScanChunker, cache_dir: str | Path | None = None) -> Path:
    """Folder of the chunk caches of ``data_root`` for the settings of ``chunker``.

    Args:
        data_root (str | Path): The scan folder.
        chunker (ScanChunker): The chunking settings (their digest names the folder).
        cache_dir (str | Path | None): The plug-in's cache directory for this data; ``None``:
            ``<data_root>/../.anomalib_cmdr_cache/<data_root name>``. Defaults to ``None``.

    Returns:
        Path: ``<cache_dir>/scans/<digest of the settings>``.

    Example:
        >>> folder = chunk_cache_dir("/data/scans", ScanChunker(chunk_size=9216), cache_dir="/tmp/cmdr_cache")
        >>> folder.parent.as_posix(), len(folder.name)
        ('/tmp/cmdr_cache/scans', 12)
        >>> folder == chunk_cache_dir("/data/scans", ScanChunker(chunk_size=4096), cache_dir="/tmp/cmdr_cache")
        False
    """
    base = Path(cache_dir) if cache_dir is not None else default_cache_dir(data_root)
    digest = hashlib.sha256(json.dumps(chunker.settings(), sort_keys=True).encode()).hexdigest()[:12]
    return base / CHUNK_CACHE_SUBDIR / digest


def _stat(path: str) -> list[int] | None:
    if not path:
        return None
    stat = os.stat(path)
    return [stat.st_size, stat.st_mtime_ns]


def _scan_cache(scan_path: str, data_root: Path, cache: Path) -> Path:
    """Cache folder of one scan: its path below the data root, suffix kept in the name."""
    scan = Path(scan_path)
    try:
        relative = scan.resolve().relative_to(data_root.resolve())
    except ValueError:
        relative = Path(hashlib.sha256(str(scan.resolve()).encode()).hexdigest()[:12]) / scan.name
    return cache / relative.parent / f"{relative.stem}{relative.suffix.replace('.', '_')}"


def _write_chunks(folder: Path, chunks: ScanChunks, manifest: dict) -> None:
    """Write a scan's chunk files, then its manifest (last: a cache without manifest is rebuilt)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / _MANIFEST).unlink(missing_ok=True)
    for old in folder.glob("chunk_*"):
        old.unlink()
    index_dtype = np.int32 if chunks.num_points < 2**31 else np.int64
    for k in range(len(chunks)):
        arrays = {"xyz": chunks.xyz[k], "index": chunks.index[k].astype(index_dtype)}
        if chunks.point_labels is not None:
            arrays["point_labels"] = chunks.point_labels[k].astype(np.uint8)
        np.savez(folder / f"chunk_{k:04d}.npz", **arrays)
        height = np.round(chunk_height_image(chunks.xyz[k]) * 255).astype(np.uint8)
        PILImage.fromarray(height).save(folder / f"chunk_{k:04d}.png")
    (folder / _MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")


def _chunk_scan(row: object, chunker: ScanChunker, folder: Path) -> dict:
    """The manifest of a scan's chunk cache, rebuilding the cache when it is missing or stale."""
    scan_path, label_path = str(row.scan_path), str(row.label_path)  # type: ignore[attr-defined]
    expected = {
        "version": _MANIFEST_VERSION,
        "scan": _stat(scan_path),
        "labels": _stat(label_path),
        "chunker": chunker.settings(),
    }
    manifest_path = folder / _MANIFEST
    if manifest_path.is_file():
        try:
            manifest = json.loads(manifest_path.read_text())
        except ValueError:
            manifest = {}
        if all(manifest.get(key) == value for key, value in expected.items()):
            return manifest
    points = read_point_cloud(scan_path)
    labels = read_point_labels(label_path, num_points=len(points)) if label_path else None
    if labels is None and int(row.label_index) == LabelName.NORMAL:  # type: ignore[attr-defined]
        labels = np.zeros(len(points), dtype=bool)  # a normal scan's points are all normal
    chunks = chunker(points, labels)
    if len(chunks) == 0:
        msg = (
            f"{scan_path}: {len(points)} points, fewer than one chunk of {chunker.chunk_size}; use remainder='pad' "
            "or a smaller chunk_size"
        )
        raise DataFileError(msg)
    manifest = {
        **expected,
        "num_points": len(points),
        "chunk_labels": chunks.labels.tolist() if chunks.labels is not None else None,
    }
    _write_chunks(folder, chunks, manifest)
    return manifest


def make_chunk_samples(
    scans: DataFrame,
    chunker: ScanChunker,
    data_root: str | Path,
    cache_dir: str | Path | None = None,
) -> DataFrame:
    """Cut every scan of a scan table into chunks (cached, see the module docstring): one row per chunk.

    Args:
        scans (DataFrame): From :func:`make_scan_samples`.
        chunker (ScanChunker): Chunk size, method, remainder rule and label rule.
        data_root (str | Path): The scan folder (the cache mirrors its layout).
        cache_dir (str | Path | None): The plug-in's cache directory for this data; ``None``:
            ``<data_root>/../.anomalib_cmdr_cache/<data_root name>``. Defaults to ``None``.

    Returns:
        DataFrame: Columns ``image_path`` (the chunk's PNG), ``depth_path`` (the scan), ``mask_path`` (``""``),
        ``chunk_path`` (its ``.npz``), ``chunk_index``, ``split``, ``label`` and ``defect_type`` (the scan's
        label folder), ``label_index`` (the chunk's label) and ``scan_label_index``; ``attrs["task"]`` is
        ``"segmentation"``.

    Raises:
        DataFileError: For an unreadable or empty scan, NaN/inf points, labels of the wrong length, or a scan
            with fewer points than a chunk when ``remainder="drop"`` (the message names the file).

    Example:
        >>> import tempfile
        >>> from anomalib_cmdr.data.scans.io import write_point_cloud
        >>> root = Path(tempfile.mkdtemp()) / "scans"
        >>> rows, cols = np.mgrid[0:8, 0:10]
        >>> scan = np.c_[cols.ravel() * 0.1, rows.ravel() * 0.1, np.ones(80)]
        >>> _ = write_point_cloud(root / "train" / "good" / "000.npy", scan)
        >>> chunks = make_chunk_samples(make_scan_samples(root), ScanChunker(chunk_size=36), data_root=root)
        >>> chunks[["chunk_index", "split", "label_index"]].values.tolist()
        [[0, 'train', 0], [1, 'train', 0], [2, 'train', 0]]
        >>> Path(chunks["chunk_path"][0]).name, chunks.attrs["task"]
        ('chunk_0000.npz', 'segmentation')
    """
    data_root = Path(data_root)
    cache = chunk_cache_dir(data_root, chunker, cache_dir)
    rows = []
    for row in scans.itertuples(index=False):
        folder = _scan_cache(row.scan_path, data_root, cache)
        manifest = _chunk_scan(row, chunker, folder)
        labels = manifest["chunk_labels"]
        for k in range(len(labels)):
            rows.append(
                {
                    "image_path": str(folder / f"chunk_{k:04d}.png"),
                    "depth_path": row.scan_path,
                    "mask_path": "",
                    "chunk_path": str(folder / f"chunk_{k:04d}.npz"),
                    "chunk_index": k,
                    "split": row.split,
                    "label": row.label,
                    "defect_type": row.label,
                    "label_index": int(labels[k]),
                    "scan_label_index": int(row.label_index),
                }
            )
    samples = DataFrame(rows)
    samples.attrs["task"] = TaskType.SEGMENTATION.value
    return samples


def read_chunk(chunk_path: str | Path) -> dict[str, np.ndarray]:
    """The arrays of one cached chunk: ``xyz`` ``(3, S, S)``, ``index`` ``(S, S)``, ``point_labels`` ``(S, S)``.

    Args:
        chunk_path (str | Path): A ``chunk_NNNN.npz`` of the chunk cache.

    Returns:
        dict[str, np.ndarray]: The arrays (``point_labels`` all ``False`` when the scan had no labels).

    Raises:
        DataFileError: If the file is missing or damaged (delete the cache folder to rebuild it).

    Example:
        >>> import tempfile
        >>> from anomalib_cmdr.data.scans.io import write_point_cloud
        >>> root = Path(tempfile.mkdtemp()) / "scans"
        >>> rows, cols = np.mgrid[0:6, 0:6]
        >>> _ = write_point_cloud(root / "train" / "good" / "000.npy", np.c_[cols.ravel(), rows.ravel(), np.ones(36)])
        >>> chunks = make_chunk_samples(make_scan_samples(root), ScanChunker(chunk_size=36), data_root=root)
        >>> arrays = read_chunk(chunks["chunk_path"][0])
        >>> arrays["xyz"].shape, arrays["index"].shape, int(arrays["point_labels"].sum())
        ((3, 6, 6), (6, 6), 0)
    """
    try:
        with np.load(chunk_path) as data:
            arrays = {name: data[name] for name in data.files}
    except Exception as exc:  # OSError, ValueError, BadZipFile for damaged files
        msg = f"{chunk_path}: cannot read cached chunk ({type(exc).__name__}: {exc}); delete the cache folder"
        raise DataFileError(msg) from exc
    arrays.setdefault("point_labels", np.zeros(arrays["index"].shape, dtype=np.uint8))
    return arrays


class ScanChunkDataset(AnomalibDepthDataset):
    """Chunks of raw scans as anomalib ``DepthItem``s (see the module docstring for the fields).

    Args:
        samples (DataFrame): From :func:`make_chunk_samples`.
        augmentations (Transform | None): Transforms of ``(image, depth_map, gt_mask)``, the chunk wrapped as a
            ``tv_tensors.Mask`` (anomalib adds the model's resize, a no-op when CMDR's ``image_size`` is the
            chunk side). Defaults to ``None``.

    Example:
        >>> dataset = ScanChunkDataset(make_chunk_samples(scans, ScanChunker(), root))  # doctest: +SKIP
        >>> item = dataset[0]  # doctest: +SKIP
        >>> item.depth_map.shape, item.gt_mask.shape  # doctest: +SKIP
        (torch.Size([3, 96, 96]), torch.Size([96, 96]))
    """

    def __init__(self, samples: DataFrame, augmentations: Transform | None = None) -> None:
        super().__init__(augmentations=augmentations)
        attrs = dict(samples.attrs)
        samples = samples.copy()
        samples.attrs = {"task": TaskType.SEGMENTATION.value, **attrs}
        self.samples = samples

    def __getitem__(self, index: int) -> DepthItem:
        """One chunk.

        Args:
            index (int): Row of the sample table.

        Returns:
            DepthItem: ``image``, ``depth_map``, ``gt_mask``, ``gt_label``, ``image_path``, ``depth_path``.
        """
        row = self.samples.iloc[index]
        arrays = read_chunk(row.chunk_path)
        depth = torch.from_numpy(np.ascontiguousarray(arrays["xyz"], dtype=np.float32))
        image = Image(torch.from_numpy(chunk_height_image(arrays["xyz"])).expand(3, -1, -1).clone())
        gt_mask = Mask(torch.from_numpy(arrays["point_labels"].astype(bool)))
        if self.augmentations:
            image, depth_mask, gt_mask = self.augmentations(image, Mask(depth), gt_mask)
            depth = depth_mask.as_subclass(torch.Tensor)
        return DepthItem(
            image=image,
            depth_map=depth,
            gt_mask=gt_mask,
            gt_label=torch.tensor(int(row.label_index)),
            image_path=str(row.image_path),
            depth_path=str(row.depth_path),
            mask_path="",
        )
