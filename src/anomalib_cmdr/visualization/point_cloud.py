# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0

"""Per-point anomaly scores shown on the points themselves: a coloured PLY and a PNG rendering.

Both take any point set, ``points`` ``(N, 3)`` with ``scores`` ``(N,)``: a raw scan's points with their
re-assembled scores (:mod:`anomalib_cmdr.data.scans`), or the valid points of an organized cloud with its
anomaly map's values.

* :func:`write_scored_ply` writes a binary PLY whose vertices carry ``red``, ``green``, ``blue`` (``uchar``,
  the score through a matplotlib colormap, so every viewer shows it) and the score itself as a ``float``
  vertex property named ``score`` (open3d's tensor point cloud writes custom attributes; MeshLab and
  CloudCompare list it as a scalar field). Points without a score (NaN) are grey and keep ``score = nan``.
* :func:`render_scored_points` draws, with matplotlib only (no display, no OpenGL), a top view that keeps the
  highest score per pixel (so a small defect is never hidden behind normal points, whatever N) and an oblique
  3D view of at most ``max_points_3d`` points, the highest-scored ones drawn last.

Example:
    >>> import numpy as np
    >>> points = np.random.default_rng(0).random((500, 3))
    >>> scores = points[:, 0]
    >>> write_scored_ply("/tmp/scored_doctest.ply", points, scores).suffix
    '.ply'
    >>> render_scored_points("/tmp/scored_doctest.png", points, scores).suffix
    '.png'
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

__all__ = ["NAN_COLOUR", "render_scored_points", "score_colours", "write_scored_ply"]

NAN_COLOUR = (128, 128, 128)
"""Colour of points without a score."""


def _check(points: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    points = np.asarray(points, dtype=np.float64)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if points.ndim != 2 or points.shape[1] != 3:
        msg = f"points must have shape (N, 3), got {points.shape}"
        raise ValueError(msg)
    if len(scores) != len(points):
        msg = f"{len(scores)} scores for {len(points)} points"
        raise ValueError(msg)
    return points, scores


def _range(scores: np.ndarray, vmin: float | None, vmax: float | None) -> tuple[float, float]:
    finite = scores[np.isfinite(scores)]
    low = float(vmin) if vmin is not None else (float(finite.min()) if finite.size else 0.0)
    high = float(vmax) if vmax is not None else (float(finite.max()) if finite.size else 1.0)
    return low, high if high > low else low + 1e-12


def score_colours(
    scores: np.ndarray,
    vmin: float | None = None,
    vmax: float | None = None,
    colormap: str = "jet",
) -> np.ndarray:
    """Colours of scores through a matplotlib colormap; NaN scores get :data:`NAN_COLOUR`.

    Args:
        scores (np.ndarray): ``(N,)`` scores.
        vmin (float | None): Score shown with the colormap's first colour; ``None``: the smallest. Defaults to
            ``None``.
        vmax (float | None): Score shown with its last colour; ``None``: the largest. Defaults to ``None``.
        colormap (str): Matplotlib colormap name. Defaults to ``"jet"``.

    Returns:
        np.ndarray: ``(N, 3)`` ``uint8`` RGB.

    Example:
        >>> score_colours(np.array([0.0, 1.0, np.nan]), colormap="gray").tolist()
        [[0, 0, 0], [255, 255, 255], [128, 128, 128]]
    """
    from matplotlib import colormaps

    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    low, high = _range(scores, vmin, vmax)
    scaled = np.clip((np.nan_to_num(scores, nan=low) - low) / (high - low), 0, 1)
    colours = np.round(colormaps[colormap](scaled)[:, :3] * 255).astype(np.uint8)
    colours[~np.isfinite(scores)] = NAN_COLOUR
    return colours


def write_scored_ply(
    path: str | Path,
    points: np.ndarray,
    scores: np.ndarray,
    vmin: float | None = None,
    vmax: float | None = None,
    colormap: str = "jet",
) -> Path:
    """Write points coloured by score as a binary PLY, the score also kept as the vertex property ``score``.

    Args:
        path (str | Path): Output ``.ply`` file (folders are created).
        points (np.ndarray): ``(N, 3)`` coordinates (written as float32).
        scores (np.ndarray): ``(N,)`` scores; NaN for points without one.
        vmin (float | None): Score of the colormap's first colour; ``None``: the smallest. Defaults to ``None``.
        vmax (float | None): Score of its last colour; ``None``: the largest. Defaults to ``None``.
        colormap (str): Matplotlib colormap. Defaults to ``"jet"``.

    Returns:
        Path: ``path``.

    Raises:
        ValueError: If the shapes disagree.
        OSError: If open3d cannot write the file.

    Example:
        >>> import tempfile
        >>> import open3d as o3d
        >>> points = np.random.default_rng(0).random((100, 3))
        >>> scores = np.where(points[:, 0] > 0.9, np.nan, points[:, 0])  # some points without a score
        >>> path = write_scored_ply(Path(tempfile.mkdtemp()) / "scan.ply", points, scores, vmin=0.0, vmax=1.0)
        >>> cloud = o3d.t.io.read_point_cloud(str(path))
        >>> cloud.point.positions.shape, cloud.point.score.shape
        (SizeVector[100, 3], SizeVector[100, 1])
    """
    import open3d as o3d

    points, scores = _check(points, scores)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    cloud = o3d.t.geometry.PointCloud(o3d.core.Tensor(points.astype(np.float32)))
    cloud.point.colors = o3d.core.Tensor(score_colours(scores, vmin, vmax, colormap))
    cloud.point.score = o3d.core.Tensor(scores.astype(np.float32).reshape(-1, 1))
    if not o3d.t.io.write_point_cloud(str(path), cloud):
        msg = f"{path}: open3d could not write the point cloud"
        raise OSError(msg)
    return path


def _top_view(points: np.ndarray, scores: np.ndarray, pixels: int) -> tuple[np.ndarray, tuple[float, ...]]:
    """Highest score per pixel of a top-view raster (NaN where no point); and its extent for ``imshow``."""
    low, high = points[:, :2].min(axis=0), points[:, :2].max(axis=0)
    span = np.maximum(high - low, 1e-12)
    # about one point per cell (finer leaves holes between the points), at most ``pixels`` on the longer side
    cell = math.sqrt(float(span[0] * span[1]) / len(points)) if span.min() > 1e-12 else span.max() / len(points)
    scale = min((pixels - 1) / span.max(), 1 / max(1.5 * cell, 1e-12))  # 1.5: no gaps from jitter
    shape = (int(span[1] * scale) + 1, int(span[0] * scale) + 1)
    cols = ((points[:, 0] - low[0]) * scale).astype(np.int64)
    rows = ((points[:, 1] - low[1]) * scale).astype(np.int64)
    image = np.full(shape, -np.inf)
    finite = np.isfinite(scores)
    np.maximum.at(image, (rows[finite], cols[finite]), scores[finite])
    seen = np.zeros(shape, dtype=bool)
    seen[rows, cols] = True
    image[seen & ~np.isfinite(image)] = np.nan  # points without a score
    image[~seen] = np.nan
    return image, (low[0], high[0], low[1], high[1])


def render_scored_points(
    path: str | Path,
    points: np.ndarray,
    scores: np.ndarray,
    title: str | None = None,
    vmin: float | None = None,
    vmax: float | None = None,
    colormap: str = "jet",
    max_points_3d: int = 60000,
    pixels: int = 400,
    camera_frame: bool = False,
) -> Path:
    """Render points coloured by score as a PNG: a top view (max score per pixel) and an oblique 3D view.

    Uses matplotlib's Agg backend only (works without a display or OpenGL).

    Args:
        path (str | Path): Output ``.png`` file (folders are created).
        points (np.ndarray): ``(N, 3)`` coordinates.
        scores (np.ndarray): ``(N,)`` scores (NaN: no score, drawn grey in the 3D view, left out of the top view).
        title (str | None): Figure title. Defaults to ``None``.
        vmin (float | None): Score of the colormap's first colour; ``None``: the smallest. Defaults to ``None``.
        vmax (float | None): Score of its last colour; ``None``: the largest. Defaults to ``None``.
        colormap (str): Matplotlib colormap. Defaults to ``"jet"``.
        max_points_3d (int): Points drawn in the 3D view at most (a random subset, always including the highest
            scores). Defaults to ``60000``.
        pixels (int): Size of the top view's longer side, in raster cells. Defaults to ``400``.
        camera_frame (bool): The points are in a camera's frame (x right, y down, z away from the sensor, as the
            organized clouds of MVTec 3D-AD): the top view is then drawn as the camera sees it (y down, like the
            RGB image) and the 3D view shows ``-z`` as height. ``False``: z is height (a profilometer's scan).
            Defaults to ``False``.

    Returns:
        Path: ``path``.

    Raises:
        ValueError: If the shapes disagree or there is no point.

    Example:
        >>> import tempfile
        >>> points = np.random.default_rng(0).random((200, 3))
        >>> path = Path(tempfile.mkdtemp()) / "scan.png"
        >>> render_scored_points(path, points, scores=points[:, 2], title="scan 000", pixels=50).name
        'scan.png'
    """
    from matplotlib.figure import Figure

    points, scores = _check(points, scores)
    if len(points) == 0:
        msg = "no point to render"
        raise ValueError(msg)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    low, high = _range(scores, vmin, vmax)

    figure = Figure(figsize=(12, 5.5), dpi=100)
    top = figure.add_subplot(1, 2, 1)
    image, extent = _top_view(points, scores, pixels)
    shown = top.imshow(image, origin="lower", extent=extent, cmap=colormap, vmin=low, vmax=high, aspect="equal")
    top.set_title("top view (highest score per cell)")
    top.set_xlabel("x")
    top.set_ylabel("y")
    if camera_frame:
        top.invert_yaxis()
        top.set_title("camera view (highest score per cell)")
    figure.colorbar(shown, ax=top, shrink=0.8, label="anomaly score")

    view = figure.add_subplot(1, 2, 2, projection="3d")
    order = np.argsort(np.nan_to_num(scores, nan=-np.inf), kind="stable")  # highest drawn last, on top
    if len(order) > max_points_3d:
        keep_top = max_points_3d // 10
        rest = np.random.default_rng(0).choice(order[:-keep_top], max_points_3d - keep_top, replace=False)
        order = np.concatenate([np.sort(rest), order[-keep_top:]])
        order = order[np.argsort(np.nan_to_num(scores[order], nan=-np.inf), kind="stable")]
    colours = score_colours(scores[order], low, high, colormap) / 255.0
    xyz = points[order] * (np.array([1.0, 1.0, -1.0]) if camera_frame else 1.0)
    view.scatter(xyz[:, 0], xyz[:, 1], xyz[:, 2], c=colours, s=0.5, linewidths=0, depthshade=False)
    span = np.ptp(points, axis=0)
    view.set_box_aspect(np.maximum(span, span.max() * 0.05))
    view.view_init(elev=35, azim=-60)
    view.locator_params(axis="z", nbins=3)  # the height axis is short: few ticks stay readable
    if camera_frame:
        view.invert_yaxis()
        view.set_zlabel("-z (height towards the sensor)")
    view.set_title("3D view")
    if title:
        figure.suptitle(title)
    figure.savefig(path)
    return path
