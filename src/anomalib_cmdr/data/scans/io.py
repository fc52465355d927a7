# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0

"""Readers and writers of raw (unorganized) point clouds and of their per-point label sidecars.

A *scan* is an unorganized point cloud, ``(N, 3)`` coordinates in the scanner's unit, in one of these files:

========================  =====================================================================
suffix                    content
========================  =====================================================================
``.ply``, ``.pcd``        read with open3d (binary or ASCII); only the vertex positions are used
``.xyz``, ``.txt``        text, one point per line: ``x y z`` (more columns are ignored); blanks or
                          commas between values; lines starting with ``#`` are comments
``.npy``                  a NumPy array of shape ``(N, 3)`` (or ``(N, C)``, C > 3: the first three)
========================  =====================================================================

Per-point ground truth of a test scan lives in a **label sidecar** next to it, with the scan's stem and
``.labels.txt`` or ``.labels.npy``: ``test/tear/003.ply`` -> ``test/tear/003.labels.txt``. It holds one
integer per point, in the scan's point order (``0`` normal, anything else anomalous): one per line for
``.txt``, a 1-D array of length ``N`` for ``.npy``. Files whose name ends in ``.labels.<suffix>`` are never
taken for scans.

Every reader fails with :class:`~anomalib_cmdr.data.io.DataFileError`, whose message names the file and
what is wrong: a missing file, an unknown suffix, an unreadable or truncated file, an empty cloud,
NaN or infinite coordinates, labels of the wrong length.

Example:
    >>> import numpy as np
    >>> np.save("/tmp/scan_doctest.npy", np.random.default_rng(0).random((100, 3)))
    >>> read_point_cloud("/tmp/scan_doctest.npy").shape
    (100, 3)
    >>> write_point_labels("/tmp/scan_doctest.labels.txt", np.r_[np.zeros(99), 1])
    PosixPath('/tmp/scan_doctest.labels.txt')
    >>> int(read_point_labels(label_file("/tmp/scan_doctest.npy"), num_points=100).sum())
    1
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from anomalib_cmdr.data.io import DataFileError, existing_file

__all__ = [
    "LABEL_SUFFIXES",
    "SCAN_SUFFIXES",
    "is_scan_file",
    "label_file",
    "read_point_cloud",
    "read_point_labels",
    "write_point_cloud",
    "write_point_labels",
]

SCAN_SUFFIXES = (".ply", ".pcd", ".xyz", ".txt", ".npy")
"""Suffixes (lower case) of the point-cloud files read as scans."""

LABEL_SUFFIXES = (".labels.txt", ".labels.npy")
"""Name endings of per-point label sidecars, in the order they are looked for."""

_XYZ = 3
_HEADER_BYTES = 65536


def is_scan_file(path: str | Path) -> bool:
    """Whether ``path`` names a scan: a known point-cloud suffix and not a label sidecar or a hidden file.

    Args:
        path (str | Path): A file name.

    Returns:
        bool: ``True`` for ``scan.ply``, ``False`` for ``scan.labels.txt``, ``.hidden.ply`` or ``notes.md``.

    Example:
        >>> is_scan_file("a/003.ply"), is_scan_file("a/003.labels.npy"), is_scan_file("a/readme.md")
        (True, False, False)
    """
    name = Path(path).name.lower()
    if name.startswith(".") or name.endswith(LABEL_SUFFIXES):
        return False
    return Path(name).suffix in SCAN_SUFFIXES


def label_file(scan_path: str | Path) -> Path | None:
    """The label sidecar of a scan (``<stem>.labels.txt`` or ``<stem>.labels.npy`` beside it), if any.

    Args:
        scan_path (str | Path): The scan file.

    Returns:
        Path | None: The sidecar, or ``None`` when there is none.

    Raises:
        DataFileError: If the scan has both a ``.labels.txt`` and a ``.labels.npy`` sidecar (ambiguous).

    Example:
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> np.save(folder / "003.npy", np.zeros((4, 3)))
        >>> label_file(folder / "003.npy") is None
        True
        >>> _ = write_point_labels(folder / "003.labels.txt", [0, 0, 1, 0])
        >>> label_file(folder / "003.npy").name
        '003.labels.txt'
    """
    scan_path = Path(scan_path)
    found = [scan_path.with_name(scan_path.stem + suffix) for suffix in LABEL_SUFFIXES]
    found = [path for path in found if path.is_file()]
    if len(found) > 1:
        msg = f"{scan_path}: two label sidecars ({found[0].name}, {found[1].name}); keep one"
        raise DataFileError(msg)
    return found[0] if found else None


def _header_count(path: Path) -> int:
    """Number of points a PLY or PCD header declares (checks the magic bytes and the header's syntax).

    Raises:
        DataFileError: If the header is not a PLY / PCD header or declares no vertex count.
    """
    with path.open("rb") as stream:
        head = stream.read(_HEADER_BYTES)
    text = head.decode("latin-1")
    suffix = path.suffix.lower()
    if suffix == ".ply":
        if not text.startswith("ply"):
            msg = f"{path}: not a PLY file (it does not start with 'ply'); the file may be damaged or mislabelled"
            raise DataFileError(msg)
        if "end_header" not in text:
            msg = f"{path}: PLY header has no 'end_header' (the file is truncated or damaged)"
            raise DataFileError(msg)
        count = _ply_vertex_count(path, head)
        if count is None:
            msg = f"{path}: PLY header declares no 'element vertex' (not a point cloud)"
            raise DataFileError(msg)
        return count
    fields = dict(line.split(maxsplit=1) for line in text.splitlines()[:20] if len(line.split(maxsplit=1)) == 2)
    if "DATA" not in fields or "POINTS" not in fields or not fields["POINTS"].strip().isdigit():
        msg = f"{path}: not a PCD file (no POINTS / DATA header lines); the file may be damaged or mislabelled"
        raise DataFileError(msg)
    return int(fields["POINTS"].strip())


_PLY_SIZES = {
    "char": 1, "uchar": 1, "int8": 1, "uint8": 1, "short": 2, "ushort": 2, "int16": 2, "uint16": 2,
    "int": 4, "uint": 4, "int32": 4, "uint32": 4, "float": 4, "float32": 4, "double": 8, "float64": 8,
}  # fmt: skip


def _ply_vertex_count(path: Path, head: bytes) -> int | None:
    """Vertex count of a PLY header; checks that the body is long enough for it (open3d silently pads).

    Raises:
        DataFileError: If the body holds fewer vertices than declared.
    """
    header = head.partition(b"end_header")[0]
    body_start = len(header) + len(b"end_header")
    lines = header.decode("latin-1").splitlines()
    count, stride, element, first_element = None, 0, None, None
    binary = any(line.startswith("format binary") for line in lines)
    for line in lines:
        parts = line.split()
        if len(parts) == 3 and parts[0] == "element":
            element = parts[1]
            first_element = first_element or element
            if element == "vertex" and parts[2].isdigit():
                count = int(parts[2])
        elif parts[:1] == ["property"] and element == "vertex":
            stride = -1 if parts[1] == "list" or stride < 0 else stride + _PLY_SIZES.get(parts[1], -(10**9))
    if count is None or first_element != "vertex":
        return count
    newline = head.find(b"\n", body_start)
    data_start = newline + 1 if newline >= 0 else len(head)
    size = path.stat().st_size
    if binary and stride > 0:
        available = (size - data_start) // stride
    elif not binary:
        with path.open("rb") as stream:
            stream.seek(data_start)
            available = sum(1 for line in stream if line.strip())
    else:
        return count
    if available < count:
        msg = f"{path}: the PLY header declares {count} points but the file holds {available} (truncated or damaged)"
        raise DataFileError(msg)
    return count


def _read_open3d(path: Path) -> np.ndarray:
    """Vertex positions of a PLY or PCD file through open3d, after checking its header."""
    import open3d as o3d

    declared = _header_count(path)
    if declared == 0:
        msg = f"{path}: empty point cloud (the header declares 0 points)"
        raise DataFileError(msg)
    with o3d.utility.VerbosityContextManager(o3d.utility.VerbosityLevel.Error):
        cloud = o3d.io.read_point_cloud(str(path), remove_nan_points=False, remove_infinite_points=False)
    points = np.asarray(cloud.points, dtype=np.float64)
    if len(points) != declared:
        msg = (
            f"{path}: open3d read {len(points)} of the {declared} points the header declares (the file is "
            "truncated or damaged, or its vertex properties are not float x, y, z)"
        )
        raise DataFileError(msg)
    return points


def _read_text(path: Path) -> np.ndarray:
    """Columns x, y, z of a text point cloud (blank- or comma-separated)."""
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        msg = f"{path}: cannot read text point cloud ({type(exc).__name__}: {exc})"
        raise DataFileError(msg) from exc
    first = next((line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")), "")
    try:  # fast path; the loop below only runs to say which line is wrong
        points = np.loadtxt(
            text.splitlines(), comments="#", delimiter="," if "," in first else None, usecols=(0, 1, 2), ndmin=2
        )
        return np.asarray(points, dtype=np.float64).reshape(-1, _XYZ)
    except (ValueError, IndexError):
        pass
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        values = line.replace(",", " ").split()
        try:
            row = [float(value) for value in values[:_XYZ]]
        except ValueError:
            msg = f"{path}: line {number} is not numeric ({line[:60]!r}); expected 'x y z' per line"
            raise DataFileError(msg) from None
        if len(row) < _XYZ:
            msg = f"{path}: line {number} has {len(row)} value(s); expected at least 3 (x y z)"
            raise DataFileError(msg)
        rows.append(row)
    return np.asarray(rows, dtype=np.float64).reshape(-1, _XYZ)


def _read_npy(path: Path) -> np.ndarray:
    try:
        array = np.load(path, allow_pickle=False)
    except Exception as exc:  # numpy raises ValueError, OSError, EOFError... for broken files
        msg = f"{path}: cannot read NumPy array ({type(exc).__name__}: {exc})"
        raise DataFileError(msg) from exc
    if not isinstance(array, np.ndarray) or array.ndim != 2 or array.shape[1] < _XYZ:
        msg = f"{path}: point cloud array must have shape (N, 3) (or (N, C), C > 3), found {np.shape(array)}"
        raise DataFileError(msg)
    if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
        msg = f"{path}: point cloud must be real-valued, found dtype {array.dtype}"
        raise DataFileError(msg)
    return np.asarray(array[:, :_XYZ], dtype=np.float64)


def read_point_cloud(path: str | Path) -> np.ndarray:
    """Read an unorganized point cloud (the points of a scan) in its file's point order.

    Args:
        path (str | Path): A ``.ply``, ``.pcd``, ``.xyz``, ``.txt`` or ``.npy`` file (see the module docstring).

    Returns:
        np.ndarray: ``float64`` array of shape ``(N, 3)``, ``N >= 1``, in the file's unit and point order.

    Raises:
        DataFileError: If the file is missing, has an unknown suffix, cannot be read, holds no point, or has
            NaN or infinite coordinates (the message says how many and the first one's index).

    Example:
        >>> import numpy as np
        >>> write_point_cloud("/tmp/read_doctest.ply", np.eye(3) + 1)
        PosixPath('/tmp/read_doctest.ply')
        >>> read_point_cloud("/tmp/read_doctest.ply").tolist()
        [[2.0, 1.0, 1.0], [1.0, 2.0, 1.0], [1.0, 1.0, 2.0]]
    """
    path = existing_file(path)
    suffix = path.suffix.lower()
    if suffix not in SCAN_SUFFIXES:
        msg = f"{path}: unknown point-cloud format {suffix!r}; use one of {list(SCAN_SUFFIXES)}"
        raise DataFileError(msg)
    if suffix in {".ply", ".pcd"}:
        points = _read_open3d(path)
    elif suffix == ".npy":
        points = _read_npy(path)
    else:
        points = _read_text(path)
    if len(points) == 0:
        msg = f"{path}: empty point cloud (no point in the file)"
        raise DataFileError(msg)
    finite = np.isfinite(points).all(axis=1)
    if not finite.all():
        bad = np.flatnonzero(~finite)
        msg = (
            f"{path}: {len(bad)} point(s) with NaN or infinite coordinates (first at index {bad[0]}); remove them "
            "from the scan (and the same rows from its label sidecar)"
        )
        raise DataFileError(msg)
    return points


def read_point_labels(path: str | Path, num_points: int | None = None) -> np.ndarray:
    """Read a per-point label sidecar (``.labels.txt``: one integer per line; ``.labels.npy``: a 1-D array).

    Args:
        path (str | Path): The sidecar.
        num_points (int | None): Number of points of its scan, checked when given. Defaults to ``None``.

    Returns:
        np.ndarray: ``bool`` array of shape ``(N,)``, ``True`` for anomalous points.

    Raises:
        DataFileError: If the file is missing or unreadable, holds anything else than finite non-negative
            integers, or does not have ``num_points`` entries.

    Example:
        >>> write_point_labels("/tmp/labels_doctest.labels.npy", [0, 1, 0])
        PosixPath('/tmp/labels_doctest.labels.npy')
        >>> read_point_labels("/tmp/labels_doctest.labels.npy", num_points=3).tolist()
        [False, True, False]
    """
    path = existing_file(path)
    name = path.name.lower()
    try:
        if name.endswith(".npy"):
            labels = np.load(path, allow_pickle=False)
        else:
            lines = [line.strip() for line in path.read_text().splitlines()]
            labels = np.asarray([float(line) for line in lines if line and not line.startswith("#")])
    except Exception as exc:  # ValueError for non-numbers, OSError / EOFError for broken files
        msg = f"{path}: cannot read point labels ({type(exc).__name__}: {exc}); expected one integer per point"
        raise DataFileError(msg) from exc
    labels = np.asarray(labels)
    if labels.ndim != 1 or not (np.issubdtype(labels.dtype, np.number) or labels.dtype == bool):
        msg = f"{path}: point labels must be a 1-D array of integers, found shape {labels.shape} ({labels.dtype})"
        raise DataFileError(msg)
    values = labels.astype(np.float64)
    if not np.isfinite(values).all() or (values < 0).any() or (values != np.round(values)).any():
        msg = f"{path}: point labels must be non-negative integers (0 normal, >0 anomalous)"
        raise DataFileError(msg)
    if num_points is not None and len(labels) != num_points:
        msg = f"{path}: {len(labels)} label(s) for a scan of {num_points} points; give one label per point"
        raise DataFileError(msg)
    return values > 0


def write_point_cloud(path: str | Path, points: np.ndarray) -> Path:
    """Write points as a binary PLY (float32 x, y, z), a ``.npy`` or an ``.xyz``/``.txt`` text file.

    Args:
        path (str | Path): Output file; its suffix picks the format (``.ply``, ``.npy``, ``.xyz``, ``.txt``).
        points (np.ndarray): ``(N, 3)`` coordinates.

    Returns:
        Path: ``path``.

    Raises:
        ValueError: If ``points`` is not ``(N, 3)`` or the suffix is not writable here.

    Example:
        >>> import tempfile
        >>> from anomalib_cmdr.data.scans.io import read_point_cloud
        >>> points = np.random.default_rng(0).random((100, 3))
        >>> path = write_point_cloud(Path(tempfile.mkdtemp()) / "scan.xyz", points)
        >>> read_point_cloud(path).shape
        (100, 3)
    """
    path = Path(path)
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != _XYZ:
        msg = f"points must have shape (N, 3), got {points.shape}"
        raise ValueError(msg)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix.lower()
    if suffix == ".ply":
        import open3d as o3d

        cloud = o3d.t.geometry.PointCloud(o3d.core.Tensor(points.astype(np.float32)))
        if not o3d.t.io.write_point_cloud(str(path), cloud):
            msg = f"{path}: open3d could not write the point cloud"
            raise OSError(msg)
    elif suffix == ".npy":
        np.save(path, points.astype(np.float32))
    elif suffix in {".xyz", ".txt"}:
        np.savetxt(path, points, fmt="%.6f")
    else:
        msg = f"{path}: cannot write point clouds as {suffix!r}; use .ply, .npy, .xyz or .txt"
        raise ValueError(msg)
    return path


def write_point_labels(path: str | Path, labels: np.ndarray | list) -> Path:
    """Write a label sidecar: ``.labels.txt`` (one 0/1 per line) or ``.labels.npy`` (``uint8`` array).

    Args:
        path (str | Path): Output file, ending in ``.labels.txt`` or ``.labels.npy``.
        labels (np.ndarray | list): ``(N,)`` labels, non-zero for anomalous points.

    Returns:
        Path: ``path``.

    Raises:
        ValueError: If ``path`` does not end in ``.labels.txt`` or ``.labels.npy``.

    Example:
        >>> import tempfile
        >>> path = write_point_labels(Path(tempfile.mkdtemp()) / "000.labels.txt", [0, 2, 0, 1])
        >>> path.read_text().split()
        ['0', '1', '0', '1']
    """
    path = Path(path)
    values = (np.asarray(labels).reshape(-1) != 0).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.name.endswith(".labels.npy"):
        np.save(path, values)
    elif path.name.endswith(".labels.txt"):
        path.write_text("".join(f"{value}\n" for value in values.tolist()))
    else:
        msg = f"{path}: label sidecars end in .labels.txt or .labels.npy"
        raise ValueError(msg)
    return path
