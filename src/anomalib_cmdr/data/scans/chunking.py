# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0

"""Scans cut into fixed-size chunks that CMDR's 3D branch reads as small organized point clouds.

The paper's 3D-only setting (a polyurethane data set from a laser profilometer) cuts each raw scan into
chunks of 9,216 points, arranged as 96x96, labels each chunk from its points, and trains D3D on the normal
chunks. :class:`ScanChunker` does the same in four steps.

1. **Split** the scan's points into chunks of ``chunk_size`` points that keep neighbours together:

   * ``"sequential"`` (the paper): consecutive runs of ``chunk_size`` points in the file's order, which for
     a profilometer is the acquisition order (profile after profile along the scan direction), so a chunk
     is a band of whole profiles;
   * ``"tiles"`` (for files whose point order is arbitrary): a spatial equal-count tiling. The points are
     sorted along the scan direction (y, then x) and cut into bands of ``m * chunk_size`` points, each band
     sorted along the profile (x, then y) and cut into ``m`` tiles, ``m`` chosen so that tiles are about
     square (``m = round(sqrt(K * width / length))`` for ``K`` chunks). It uses the coordinates only.

   The last chunk of a scan usually has fewer points: ``remainder="pad"`` (default) keeps it, its empty
   grid cells are holes, and its points are scored like the others; ``"drop"`` leaves its points out (they
   get no score).
2. **Arrange** each chunk on a ``side x side`` grid (``side = sqrt(chunk_size)``, 96) so that grid neighbours
   are spatial neighbours (CMDR smooths its maps on the grid): the points are sorted along the chunk's longer
   horizontal axis and cut into ``side`` rows of ``side`` points, each row sorted along the other axis. For a
   square tile of a regular scan this is the scan's own grid (rows along y, columns along x); a band of
   profiles comes out transposed (rows along x). Cells beyond a partial chunk's points stay empty.
3. **Normalise** each chunk as the paper does: centred on its bounding box and scaled by its largest
   half-extent, the same factor on the three axes (so its shape is kept and x, y, height lie in [-1, 1]).
   CMDR's organized-cloud conventions then place it: a point with any coordinate exactly 0 is a hole, and
   the 3D features see the sensor at the origin (FPFH orients normals towards it, as for MVTec 3D-AD, whose
   clouds lie at positive z in front of the camera). So the chunk is given the coordinates
   ``(x, y, 3 - height)``: depth from a virtual sensor 3 units above the chunk's centre, in [2, 4]; a
   coordinate that would be exactly 0 (x or y of a point on the centre line) is moved to ``1e-6`` (a
   twenty-thousandth of a grid step), and empty cells are exactly ``(0, 0, 0)``. ``z_is_height=False`` is
   for files whose z grows away from the sensor (depth instead of height).
4. **Label** each chunk from its points' labels: anomalous when at least ``anomalous_fraction`` of its points
   are (the paper: 0.25 %, i.e. 24 of 9,216).

:func:`scatter_scores` maps the chunks' anomaly maps back onto the scan's points (the original indices kept
in :attr:`ScanChunks.index`); a scan's score is the maximum over its chunks.

Example:
    >>> import numpy as np
    >>> rows, cols = np.mgrid[0:40, 0:30]
    >>> scan = np.c_[cols.ravel() * 0.1, rows.ravel() * 0.1, np.zeros(1200)]
    >>> chunks = ScanChunker(chunk_size=256)(scan)
    >>> chunks.xyz.shape, chunks.index.shape, int((chunks.index >= 0).sum())
    ((5, 3, 16, 16), (5, 16, 16), 1200)
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np

__all__ = [
    "EMPTY",
    "SENSOR_DISTANCE",
    "ChunkingMethod",
    "Remainder",
    "ScanChunker",
    "ScanChunks",
    "chunk_height_image",
    "grid_order",
    "normalize_chunk",
    "scatter_scores",
]

ChunkingMethod = Literal["sequential", "tiles"]
Remainder = Literal["pad", "drop"]

EMPTY = -1
"""Point index of an empty grid cell."""

SENSOR_DISTANCE = 3.0
"""Distance of the virtual sensor (the origin) from a normalised chunk's centre, in normalised units."""

_NONZERO = np.float32(1e-6)


def normalize_chunk(points: np.ndarray, z_is_height: bool = True) -> np.ndarray:
    """Centre and scale a chunk into [-1, 1] (one factor for all axes), then place it before the virtual sensor.

    Args:
        points (np.ndarray): ``(n, 3)`` coordinates, ``n >= 1``.
        z_is_height (bool): ``True`` when z grows towards the sensor (a profilometer's height), ``False`` when it
            grows away from it (a camera's depth). Defaults to ``True``.

    Returns:
        np.ndarray: ``(n, 3)`` ``float32``: x and y in [-1, 1], depth ``3 -/+ height`` in [2, 4]; no coordinate is
        exactly 0.

    Example:
        >>> normalize_chunk(np.array([[0.0, 0.0, 0.0], [2.0, 4.0, 1.0]])).tolist()
        [[-0.5, -1.0, 3.25], [0.5, 1.0, 2.75]]
    """
    points = np.asarray(points, dtype=np.float64)
    low, high = points.min(axis=0), points.max(axis=0)
    centre = (low + high) / 2
    half = float((high - low).max()) / 2
    scaled = (points - centre) / (half if half > 0 else 1.0)
    height = scaled[:, 2] if z_is_height else -scaled[:, 2]
    out = np.stack([scaled[:, 0], scaled[:, 1], SENSOR_DISTANCE - height], axis=1).astype(np.float32)
    out[out == 0] = _NONZERO
    return out


def grid_order(points: np.ndarray, side: int) -> np.ndarray:
    """Cells of a ``side x side`` grid for a chunk's points so that grid neighbours are spatial neighbours.

    Args:
        points (np.ndarray): ``(n, 3)`` (or ``(n, 2)``) coordinates, ``n <= side**2``.
        side (int): Grid side.

    Returns:
        np.ndarray: ``(side * side,)`` ``int64``: for each cell in raster order, the index of its point in
        ``points``, or :data:`EMPTY`.

    Raises:
        ValueError: If there are more points than cells.

    Example:
        >>> rows, cols = np.mgrid[0:2, 0:3]
        >>> points = np.c_[cols.ravel(), rows.ravel()][::-1]  # a 3 wide, 2 long patch, in reverse order
        >>> grid_order(points, 3).reshape(3, 3).tolist()  # rows along x (the longer side), columns along y
        [[5, 4, 2], [3, 1, 0], [-1, -1, -1]]
    """
    count = len(points)
    if count > side * side:
        msg = f"{count} points do not fit a {side}x{side} grid"
        raise ValueError(msg)
    cells = np.full(side * side, EMPTY, dtype=np.int64)
    if count == 0:
        return cells
    xy = np.asarray(points, dtype=np.float64)[:, :2]
    extent = np.ptp(xy, axis=0)
    major = 1 if extent[1] >= extent[0] else 0
    minor = 1 - major
    order = np.lexsort((xy[:, minor], xy[:, major]))  # along the longer axis
    rows = []
    for start in range(0, count, side):
        row = order[start : start + side]
        rows.append(row[np.lexsort((xy[row, major], xy[row, minor]))])  # each row along the other axis
    cells[:count] = np.concatenate(rows)
    return cells


def chunk_height_image(xyz: np.ndarray) -> np.ndarray:
    """A normalised chunk's height as a ``[0, 1]`` picture (empty cells 0), what the chunk items carry as ``image``.

    Args:
        xyz (np.ndarray): ``(3, side, side)`` normalised chunk (see :func:`normalize_chunk`).

    Returns:
        np.ndarray: ``(side, side)`` ``float32``.

    Example:
        >>> chunk_height_image(np.array([[[0.5, 0.0]], [[0.5, 0.0]], [[2.0, 0.0]]], np.float32)).tolist()
        [[1.0, 0.0]]
    """
    valid = np.all(xyz != 0, axis=0)
    height = np.where(valid, (SENSOR_DISTANCE + 1 - xyz[2]) / 2, 0.0)
    return np.clip(height, 0, 1).astype(np.float32)


@dataclass
class ScanChunks:
    """The chunks of one scan, on their grids.

    Attributes:
        xyz (np.ndarray): ``(K, 3, side, side)`` ``float32`` normalised chunks, empty cells ``(0, 0, 0)``.
        index (np.ndarray): ``(K, side, side)`` ``int64``: the scan point in each cell, :data:`EMPTY` for none.
        point_labels (np.ndarray | None): ``(K, side, side)`` ``bool`` per-cell ground truth, or ``None`` without
            labels.
        labels (np.ndarray | None): ``(K,)`` ``int64`` chunk labels (1 anomalous), or ``None`` without labels.
        num_points (int): Number of points of the scan.

    Example:
        >>> rows, cols = np.mgrid[0:8, 0:10]
        >>> scan = np.c_[cols.ravel() * 0.1, rows.ravel() * 0.1, np.zeros(80)]
        >>> chunks = ScanChunker(chunk_size=36)(scan)
        >>> len(chunks), chunks.xyz.shape, chunks.num_points, chunks.labels
        (3, (3, 3, 6, 6), 80, None)
        >>> int((chunks.index[-1] == EMPTY).sum())  # the partial last chunk: 8 points, 28 empty cells
        28
    """

    xyz: np.ndarray
    index: np.ndarray
    point_labels: np.ndarray | None
    labels: np.ndarray | None
    num_points: int

    def __len__(self) -> int:
        """Number of chunks."""
        return len(self.xyz)


@dataclass(frozen=True)
class ScanChunker:
    """Cut scans into normalised, labelled chunks on a square grid (see the module docstring).

    Args:
        chunk_size (int): Points per chunk, a square number (the grid is ``sqrt(chunk_size)`` on a side).
            Defaults to ``9216`` (96x96, the paper's).
        method (ChunkingMethod): ``"sequential"`` (the file's point order, the paper's) or ``"tiles"`` (spatial,
            any point order). Defaults to ``"sequential"``.
        remainder (Remainder): The last, partial chunk of a scan: ``"pad"`` (kept, empty cells are holes) or
            ``"drop"``. Defaults to ``"pad"``.
        anomalous_fraction (float): A chunk is anomalous when at least this fraction of its points are.
            Defaults to ``0.0025`` (the paper's 0.25 %).
        z_is_height (bool): z grows towards the sensor (height), else away from it (depth). Defaults to
            ``True``.

    Raises:
        ValueError: If an argument is out of range (the message says which).

    Example:
        >>> chunker = ScanChunker(chunk_size=9216)
        >>> chunker.side
        96
    """

    chunk_size: int = 9216
    method: ChunkingMethod = "sequential"
    remainder: Remainder = "pad"
    anomalous_fraction: float = 0.0025
    z_is_height: bool = True

    def __post_init__(self) -> None:
        side = math.isqrt(max(int(self.chunk_size), 0))
        if int(self.chunk_size) != self.chunk_size or self.chunk_size < 4 or side * side != self.chunk_size:
            below, above = side * side, (side + 1) ** 2
            msg = (
                f"chunk_size={self.chunk_size!r}: must be a square number >= 4 (the chunk is a square grid), "
                f"e.g. {below} or {above}"
            )
            raise ValueError(msg)
        if self.method not in {"sequential", "tiles"}:
            msg = f"method={self.method!r}: choose 'sequential' (file order, the paper's) or 'tiles' (spatial)"
            raise ValueError(msg)
        if self.remainder not in {"pad", "drop"}:
            msg = f"remainder={self.remainder!r}: choose 'pad' or 'drop'"
            raise ValueError(msg)
        if not 0 < self.anomalous_fraction <= 1:
            msg = f"anomalous_fraction={self.anomalous_fraction!r}: must be in (0, 1]"
            raise ValueError(msg)

    @property
    def side(self) -> int:
        """Side of a chunk's grid."""
        return math.isqrt(self.chunk_size)

    def settings(self) -> dict:
        """The chunker's arguments as plain data (what a chunk cache is keyed by)."""
        return asdict(self)

    def split(self, points: np.ndarray) -> list[np.ndarray]:
        """The points of each chunk, as index arrays into ``points``, in chunk order.

        Args:
            points (np.ndarray): ``(N, 3)`` scan.

        Returns:
            list[np.ndarray]: ``int64`` index arrays of at most ``chunk_size`` points; with
            ``remainder="drop"`` only full chunks (possibly none).
        """
        count = len(points)
        if self.method == "sequential":
            order = np.arange(count)
            chunks = [order[start : start + self.chunk_size] for start in range(0, count, self.chunk_size)]
        else:
            chunks = self._tiles(np.asarray(points, dtype=np.float64))
        if self.remainder == "drop":
            chunks = [chunk for chunk in chunks if len(chunk) == self.chunk_size]
        return chunks

    def _tiles(self, points: np.ndarray) -> list[np.ndarray]:
        """Equal-count tiles: bands along y, each cut along x (see the module docstring)."""
        count, size = len(points), self.chunk_size
        total = math.ceil(count / size)
        width, length = np.ptp(points[:, 0]), np.ptp(points[:, 1])
        per_band = total if length <= 0 else int(np.clip(round(math.sqrt(total * width / length)), 1, total))
        by_y = np.lexsort((points[:, 0], points[:, 1]))
        chunks = []
        for start in range(0, count, per_band * size):
            band = by_y[start : start + per_band * size]
            band = band[np.lexsort((points[band, 1], points[band, 0]))]
            chunks += [band[offset : offset + size] for offset in range(0, len(band), size)]
        return chunks

    def __call__(self, points: np.ndarray, labels: np.ndarray | None = None) -> ScanChunks:
        """Cut a scan into chunks on their grids, normalised and labelled.

        Args:
            points (np.ndarray): ``(N, 3)`` scan, finite coordinates.
            labels (np.ndarray | None): ``(N,)`` per-point labels (non-zero anomalous), or ``None``. Defaults to
                ``None``.

        Returns:
            ScanChunks: The chunks (none when ``remainder="drop"`` and the scan is smaller than one chunk).

        Raises:
            ValueError: If ``points`` is not ``(N, 3)`` or ``labels`` has another length.
        """
        points = np.asarray(points, dtype=np.float64)
        if points.ndim != 2 or points.shape[1] != 3:
            msg = f"points must have shape (N, 3), got {points.shape}"
            raise ValueError(msg)
        if labels is not None:
            labels = np.asarray(labels).reshape(-1) != 0
            if len(labels) != len(points):
                msg = f"{len(labels)} labels for {len(points)} points"
                raise ValueError(msg)
        side = self.side
        chunks = self.split(points)
        xyz = np.zeros((len(chunks), 3, side, side), dtype=np.float32)
        index = np.full((len(chunks), side, side), EMPTY, dtype=np.int64)
        for k, members in enumerate(chunks):
            cells = grid_order(points[members], side)
            filled = cells != EMPTY
            flat_index = index[k].reshape(-1)
            flat_index[filled] = members[cells[filled]]
            flat_xyz = xyz[k].reshape(3, -1)
            flat_xyz[:, filled] = normalize_chunk(points[members[cells[filled]]], self.z_is_height).T
        point_labels = chunk_labels = None
        if labels is not None:
            point_labels = np.where(index != EMPTY, labels[np.maximum(index, 0)], False)
            counts = point_labels.reshape(len(chunks), side * side).sum(axis=1)
            sizes = (index != EMPTY).reshape(len(chunks), side * side).sum(axis=1)
            chunk_labels = (counts >= self.anomalous_fraction * np.maximum(sizes, 1)) & (counts > 0)
            chunk_labels = chunk_labels.astype(np.int64)
        return ScanChunks(xyz, index, point_labels, chunk_labels, len(points))


def scatter_scores(index: np.ndarray, maps: np.ndarray, num_points: int) -> np.ndarray:
    """Per-point scores of a scan from its chunks' maps (a point in several chunks keeps its maximum).

    Args:
        index (np.ndarray): ``(K, side, side)`` point indices (:attr:`ScanChunks.index`).
        maps (np.ndarray): ``(K, side, side)`` anomaly maps of the same chunks.
        num_points (int): Points of the scan.

    Returns:
        np.ndarray: ``(num_points,)`` ``float32``; NaN for points in no chunk (``remainder="drop"``).

    Example:
        >>> scatter_scores(np.array([[[0, 2], [-1, 1]]]), np.array([[[0.1, 0.3], [0.9, 0.2]]]), 4).tolist()
        [0.10000000149011612, 0.20000000298023224, 0.30000001192092896, nan]
    """
    scores = np.full(num_points, np.nan, dtype=np.float32)
    filled = index != EMPTY
    np.fmax.at(scores, index[filled], np.asarray(maps, dtype=np.float32)[filled])
    return scores
