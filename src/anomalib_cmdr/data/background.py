# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0

"""MVTec 3D-AD background removal (the paper's offline preprocessing), with an on-disk cache.

The method (as in the official code, inherited from CFM and BTF) cleans every organized point cloud once:

1. fit a plane with RANSAC (open3d ``segment_plane``: distance threshold 0.004, ``ransac_n`` 50, 1000
   iterations) to the valid points of a 10-pixel frame along the image border;
2. zero every point closer than 0.005 to that plane;
3. keep only the largest DBSCAN cluster (eps 0.006, ``min_points`` 30) of the remaining valid points;
   every other point becomes ``(0, 0, 0)``.

Decisions of this implementation (documented deviations, none of which changes a regular MVTec 3D-AD
result):

* The official code zero-pads the cloud to a square whose side is a multiple of 100 before clustering and
  saves it padded (it pads RGB and ground truth the same way). Padding only adds ``(0, 0, 0)`` points,
  which are excluded from clustering, so it cannot change which points survive. It is therefore skipped:
  the output keeps the input's ``H x W`` and stays pixel-aligned with the untouched RGB image and mask.
  The square padding is done online by the model's pre-processor
  (:class:`anomalib_cmdr.models.cmdr.pre_processor.RGBXYZPreProcessor`, ``square_pad=True``).
* RANSAC is seeded (``o3d.utility.random.seed``), so the same file always gives the same result.
* The border frame is taken without duplicated corners, and DBSCAN noise (label -1) is never chosen as
  "the largest cluster" (the official code can pick it when the cloud is nearly empty).
* Degenerate clouds (too few valid border points for RANSAC, too few points left for clustering, no
  cluster found) are returned unchanged with a :class:`~anomalib_cmdr.data.io.DataFileWarning` naming the
  file, instead of an exception from inside open3d.

Cache layout: the plug-in never writes into the user's data tree. Cleaned clouds of the tree ``root`` go to
``<cache_dir>/preprocessed_xyz/<path relative to root>``, where ``cache_dir`` defaults to
``<root>/../.anomalib_cmdr_cache/<root name>`` (a hidden sibling of the data tree, next to it on the same
disk; pass ``cache_dir`` when that location is not writable). A cached file is reused while it is at least
as new as its source; delete the cache folder to force a rebuild.

Example:
    >>> from anomalib_cmdr.data.background import remove_background_tree
    >>> mirror = remove_background_tree("./datasets/MVTec3D", categories=["bagel"])  # doctest: +SKIP
    >>> mirror  # doctest: +SKIP
    PosixPath('datasets/.anomalib_cmdr_cache/MVTec3D/preprocessed_xyz')
"""

from __future__ import annotations

import inspect
import json
import logging
import os
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import tifffile
from anomalib.data.utils import is_within_directory
from tqdm import tqdm

from anomalib_cmdr.data.io import DataFileError, DataFileWarning, read_xyz, valid_pixel_mask

__all__ = [
    "CACHE_DIR_NAME",
    "XYZ_SUFFIXES",
    "XYZCache",
    "default_cache_dir",
    "remove_background",
    "remove_background_file",
    "remove_background_tree",
]

logger = logging.getLogger(__name__)

CACHE_DIR_NAME = ".anomalib_cmdr_cache"
"""Name of the hidden folder created next to a data tree to hold the plug-in's caches."""

PREPROCESSED_SUBDIR = "preprocessed_xyz"
"""Sub-folder of a cache directory that mirrors the data tree with background-free clouds."""

XYZ_SUFFIXES = (".tiff", ".tif")
"""File suffixes (lower case) of organized point clouds."""

_PLANE_DIMS = 3


def _unchanged(xyz: np.ndarray, name: str, reason: str) -> np.ndarray:
    """Warn that the background of a degenerate cloud is not removed, and return the cloud unchanged.

    Args:
        xyz (np.ndarray): The input cloud of :func:`remove_background`.
        name (str): The file (or ``"point cloud"``) named in the warning.
        reason (str): Why the cloud is degenerate.

    Returns:
        np.ndarray: A ``float32`` copy of ``xyz``.
    """
    # stacklevel 3: the warning points at the caller of remove_background, not at this helper
    warnings.warn(f"{name}: {reason}; background not removed", DataFileWarning, stacklevel=3)
    return np.array(xyz, dtype=np.float32)


def remove_background(
    xyz: np.ndarray,
    *,
    border: int = 10,
    plane_distance_threshold: float = 0.004,
    ransac_n: int = 50,
    num_iterations: int = 1000,
    plane_removal_distance: float = 0.005,
    dbscan_eps: float = 0.006,
    dbscan_min_points: int = 30,
    seed: int = 0,
    source: str | Path | None = None,
) -> np.ndarray:
    """Remove the supporting plane and the clutter around the object of an organized point cloud.

    Defaults are the paper's MVTec 3D-AD settings. See the module docstring for the algorithm and for how
    it differs from the official code.

    Args:
        xyz (np.ndarray): Organized point cloud ``(H, W, 3)``, missing points ``(0, 0, 0)``.
        border (int): Width in pixels of the image-border frame whose points define the background plane.
        plane_distance_threshold (float): RANSAC inlier distance for the plane fit.
        ransac_n (int): Points per RANSAC hypothesis.
        num_iterations (int): RANSAC iterations.
        plane_removal_distance (float): Points at most this far from the plane are removed.
        dbscan_eps (float): DBSCAN neighbourhood radius.
        dbscan_min_points (int): DBSCAN minimum neighbours of a core point.
        seed (int): Seed of open3d's random generator, making RANSAC deterministic.
        source (str | Path | None): File the cloud came from, named in warnings.

    Returns:
        np.ndarray: A new ``float32`` array of the input's shape: the kept points bit-identical to the
        input, every other point ``(0, 0, 0)``. For a degenerate cloud, an unchanged copy of the input.

    Raises:
        ValueError: If ``xyz`` is not of shape ``(H, W, 3)`` or ``border`` is not positive.

    Example:
        >>> import numpy as np
        >>> xyz = np.zeros((60, 60, 3), np.float32)
        >>> ys, xs = np.mgrid[0:60, 0:60] * 0.001
        >>> xyz[..., 0], xyz[..., 1], xyz[..., 2] = xs + 0.1, ys + 0.1, 0.5   # a plane ...
        >>> xyz[20:40, 20:40, 2] = 0.48                                         # ... and a box on it
        >>> cleaned = remove_background(xyz)
        >>> int((cleaned[..., 2] != 0).sum())
        400
    """
    if xyz.ndim != _PLANE_DIMS or xyz.shape[2] != _PLANE_DIMS:
        msg = f"point cloud must have shape (H, W, 3), found {xyz.shape}"
        raise ValueError(msg)
    if border < 1:
        msg = f"border must be at least 1 pixel, got {border}"
        raise ValueError(msg)
    import open3d as o3d  # deferred: importing open3d costs about a second

    name = str(source) if source is not None else "point cloud"
    result = np.array(xyz, dtype=np.float32)
    valid = valid_pixel_mask(result)

    frame = np.zeros(valid.shape, dtype=bool)
    frame[:border], frame[-border:], frame[:, :border], frame[:, -border:] = True, True, True, True
    border_points = result[frame & valid].astype(np.float64)
    if len(border_points) < max(ransac_n, _PLANE_DIMS):
        reason = (
            f"only {len(border_points)} valid point(s) in the {border}-pixel border, fewer than the "
            f"{ransac_n} RANSAC needs"
        )
        return _unchanged(xyz, name, reason)

    with o3d.utility.VerbosityContextManager(o3d.utility.VerbosityLevel.Error):
        o3d.utility.random.seed(seed)
        border_cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(border_points))
        plane, _ = border_cloud.segment_plane(
            distance_threshold=plane_distance_threshold,
            ransac_n=ransac_n,
            num_iterations=num_iterations,
        )
        normal, offset = np.asarray(plane[:3], dtype=np.float64), float(plane[3])
        distance = np.abs(result.astype(np.float64) @ normal + offset) / max(np.linalg.norm(normal), 1e-12)
        valid &= distance > plane_removal_distance
        result[~valid] = 0.0

        rows, cols = np.nonzero(valid)
        if len(rows) < dbscan_min_points:
            reason = (
                f"only {len(rows)} valid point(s) left off the background plane, fewer than DBSCAN's "
                f"min_points={dbscan_min_points}"
            )
            return _unchanged(xyz, name, reason)
        cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(result[rows, cols].astype(np.float64)))
        labels = np.asarray(cloud.cluster_dbscan(eps=dbscan_eps, min_points=dbscan_min_points, print_progress=False))

    clustered = labels >= 0
    if not clustered.any():
        return _unchanged(xyz, name, f"DBSCAN found no cluster among {len(rows)} point(s)")
    largest = np.bincount(labels[clustered]).argmax()
    drop = labels != largest
    result[rows[drop], cols[drop]] = 0.0
    return result


def default_cache_dir(root: str | Path) -> Path:
    """Default cache directory of a data tree: ``<root>/../.anomalib_cmdr_cache/<root name>``.

    Args:
        root (str | Path): Data tree (e.g. ``./datasets/MVTec3D``).

    Returns:
        Path: Absolute path of the default cache directory (not created).

    Example:
        >>> default_cache_dir("/data/MVTec3D")
        PosixPath('/data/.anomalib_cmdr_cache/MVTec3D')
    """
    root = Path(os.path.abspath(root))
    return root.parent / CACHE_DIR_NAME / root.name


class XYZCache:
    """Background-free copies of a data tree's point clouds, mirroring the tree's relative paths.

    Args:
        root (str | Path): Data tree whose point clouds are cached; files outside it cannot be cached.
        cache_dir (str | Path | None): Cache directory of that tree. Defaults to
            :func:`default_cache_dir` of ``root``. Must not lie inside ``root``.
        **kwargs: Parameters of :func:`remove_background` (e.g. thresholds in the scanner's unit).

    Raises:
        ValueError: If the cache directory lies inside the data tree, or a parameter name is unknown.

    Example:
        >>> cache = XYZCache("/data/MVTec3D")
        >>> cache.path_for("/data/MVTec3D/bagel/test/crack/xyz/000.tiff")
        PosixPath('/data/.anomalib_cmdr_cache/MVTec3D/preprocessed_xyz/bagel/test/crack/xyz/000.tiff')
    """

    def __init__(self, root: str | Path, cache_dir: str | Path | None = None, **kwargs: object) -> None:
        self.parameters = dict(kwargs)
        _parameters(self.parameters)  # unknown names fail now, not at the first read
        self.root = Path(os.path.abspath(root))
        self.cache_dir = Path(os.path.abspath(cache_dir)) if cache_dir is not None else default_cache_dir(self.root)
        if is_within_directory(self.root, self.cache_dir):
            msg = f"cache_dir {self.cache_dir} lies inside the data tree {self.root}; the plug-in never writes there"
            raise ValueError(msg)
        self.mirror = self.cache_dir / PREPROCESSED_SUBDIR

    def __repr__(self) -> str:
        return f"{type(self).__name__}(root={str(self.root)!r}, cache_dir={str(self.cache_dir)!r})"

    def path_for(self, source: str | Path) -> Path:
        """Cache location of a point cloud of the tree.

        Args:
            source (str | Path): Point cloud file inside ``root``.

        Returns:
            Path: Where its background-free copy is (or will be) stored.

        Raises:
            ValueError: If ``source`` is not inside ``root``.
        """
        source = Path(source)
        # compare as given first, then with symbolic links resolved (sample tables hold resolved paths)
        for base, path in ((self.root, Path(os.path.abspath(source))), (self.root.resolve(), source.resolve())):
            if path.is_relative_to(base):
                return self.mirror / path.relative_to(base)
        msg = f"{source} is not inside the data tree {self.root}"
        raise ValueError(msg)

    def get(self, source: str | Path) -> Path:
        """Path of the up-to-date background-free copy of ``source``, computing it first if needed.

        Args:
            source (str | Path): Point cloud file inside ``root``.

        Returns:
            Path: The cached file.
        """
        target = self.path_for(source)
        remove_background_file(source, target, **self.parameters)
        return target


CACHE_FORMAT = 1
"""Version of the cache record; a change invalidates every cached file."""


def cache_record(source: Path, parameters: dict[str, object]) -> str:
    """What a cached file was computed from: the source's path, size and modification time, and the parameters.

    Stored in the cached TIFF's description. A cached file is used only when its record equals the current one:
    a source replaced by another file (even with an older modification time, as ``cp -p``, ``rsync -a`` or
    ``tar x`` leave it), other removal parameters, or another tree sharing the cache folder all recompute it.

    Args:
        source (Path): The point cloud file.
        parameters (dict[str, object]): Keyword arguments of :func:`remove_background`.

    Returns:
        str: A JSON record.

    Example:
        >>> source = Path(tempfile.mkdtemp()) / "000.tiff"
        >>> tifffile.imwrite(source, np.ones((4, 4, 3), np.float32))
        >>> record = json.loads(cache_record(source, {"ransac_iterations": 1000, "eps": 0.006}))
        >>> sorted(record), record["parameters"]
        (['format', 'mtime_ns', 'parameters', 'size', 'source'], {'eps': 0.006, 'ransac_iterations': 1000})
    """
    stat = source.stat()
    return json.dumps(
        {
            "format": CACHE_FORMAT,
            "source": os.path.abspath(source),
            "size": stat.st_size,
            "mtime_ns": stat.st_mtime_ns,
            "parameters": {key: parameters[key] for key in sorted(parameters)},
        },
        sort_keys=True,
    )


def _stored_record(target: Path) -> str | None:
    """The record in a cached file's description, or ``None`` if unreadable."""
    try:
        with tifffile.TiffFile(target) as tiff:
            return tiff.pages[0].description if tiff.pages else None
    except Exception:  # a damaged cache file is simply recomputed
        return None


def _is_up_to_date(target: Path, record: str) -> bool:
    """Whether ``target`` exists and was computed from exactly what ``record`` describes."""
    return target.is_file() and _stored_record(target) == record


def _file_mode() -> int:
    """Permissions of a new file under the process's umask (``mkstemp`` would leave 0600)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def remove_background_file(source: str | Path, target: str | Path, *, force: bool = False, **kwargs: object) -> bool:
    """Remove the background of one point cloud file and write the result to ``target``.

    The target is written atomically (temporary file + rename), so that concurrent data-loader workers or an
    interrupted run never leave a half-written cache file. ``source`` is only read.

    Args:
        source (str | Path): Point cloud TIFF (``(H, W, 3)``).
        target (str | Path): Output TIFF; its parent folders are created.
        force (bool): Recompute even if ``target`` is up to date.
        **kwargs: Keyword arguments of :func:`remove_background`.

    Returns:
        bool: ``True`` if the file was (re)computed, ``False`` if an up-to-date ``target`` was kept.

    Raises:
        DataFileError: If ``source`` is missing or malformed, or ``target`` cannot be written.

    Example:
        >>> remove_background_file("tree/bagel/test/crack/xyz/000.tiff", "cache/000.tiff")  # doctest: +SKIP
        True
    """
    source, target = Path(source), Path(target)
    if not source.is_file():
        msg = f"{source}: file does not exist"
        raise DataFileError(msg)
    record = cache_record(source, _parameters(kwargs))
    if not force and _is_up_to_date(target, record):
        return False
    cleaned = remove_background(read_xyz(source), source=source, **kwargs)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.stem}.", suffix=target.suffix)
        os.close(handle)
        try:
            tifffile.imwrite(temporary, cleaned, description=record, metadata=None)
            os.chmod(temporary, _file_mode())
            os.replace(temporary, target)
        finally:
            Path(temporary).unlink(missing_ok=True)
    except OSError as exc:
        msg = f"{target}: cannot write the preprocessed point cloud ({exc})"
        raise DataFileError(msg) from exc
    return True


def _parameters(kwargs: dict[str, object]) -> dict[str, object]:
    """:func:`remove_background`'s parameters with their defaults filled in (what the result depends on)."""
    signature = inspect.signature(remove_background)
    defaults = {
        name: parameter.default
        for name, parameter in signature.parameters.items()
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY and name != "source"
    }
    unknown = sorted(set(kwargs) - set(defaults))
    if unknown:
        msg = f"remove_background_kwargs: unknown argument(s) {unknown}; valid: {sorted(defaults)}"
        raise ValueError(msg)
    return {**defaults, **kwargs}


def _xyz_files(folder: Path) -> list[Path]:
    """All point cloud files in ``xyz`` folders below ``folder``, sorted."""
    return sorted(path for path in folder.glob("**/xyz/*") if path.suffix.lower() in XYZ_SUFFIXES and path.is_file())


def remove_background_tree(
    root: str | Path,
    categories: Sequence[str] | None = None,
    cache_dir: str | Path | None = None,
    progress: bool = True,
    **kwargs: object,
) -> Path:
    """Remove the background of every point cloud of an MVTec 3D-AD-like tree, once, into the plug-in's cache.

    Every ``xyz/*.tiff`` below ``root/<category>`` (or below ``root`` when ``categories`` is ``None``) is
    processed with the paper's settings (or ``kwargs``), unless its cached copy was computed from the same file
    (path, size, modification time) with the same parameters (see :func:`cache_record`). The tree itself is
    never written to.

    Args:
        root (str | Path): Data tree, e.g. ``./datasets/MVTec3D`` (or a single category folder).
        categories (Sequence[str] | None): Category folders of ``root`` to process; ``None`` for all files
            below ``root``.
        cache_dir (str | Path | None): Cache directory of the tree; defaults to
            ``<root>/../.anomalib_cmdr_cache/<root name>``.
        progress (bool): Show a tqdm progress bar over the files.
        **kwargs: Parameters of :func:`remove_background` (its defaults are the paper's, in metres).

    Returns:
        Path: The folder that mirrors ``root``: the cleaned copy of ``root/<rel>`` is ``returned/<rel>``.

    Raises:
        DataFileError: If ``root`` or a category folder does not exist, or a file is malformed.
        ValueError: If ``cache_dir`` lies inside ``root``.

    Example:
        >>> mirror = remove_background_tree("./datasets/MVTec3D", categories=["bagel"])  # doctest: +SKIP
        >>> (mirror / "bagel/test/crack/xyz/000.tiff").is_file()  # doctest: +SKIP
        True
    """
    root = Path(root)
    if not root.is_dir():
        msg = f"{root}: data folder does not exist"
        raise DataFileError(msg)
    cache = XYZCache(root, cache_dir, **kwargs)
    folders = [root] if categories is None else [root / category for category in categories]
    for folder in folders:
        if not folder.is_dir():
            available = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
            msg = f"{folder}: category folder does not exist; categories found in {root}: {available}"
            raise DataFileError(msg)
    files = [path for folder in folders for path in _xyz_files(folder)]
    computed = 0
    for path in tqdm(files, desc="Removing point cloud background", unit="file", disable=not progress):
        computed += remove_background_file(path, cache.path_for(path), **kwargs)
    logger.info(
        "Preprocessed %d point cloud(s), %d already cached, in %s", computed, len(files) - computed, cache.mirror
    )
    return cache.mirror
