# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0

"""Synthetic laser-profilometer scans of cut foam blocks, with per-point defect labels (no download).

Each scan is what a profilometer sees moving along a freshly cut edge of a foam block: ``profiles`` profiles
(lines along x, one per step in y) of ``points_per_profile`` points each, 0.25 mm apart, in millimetres. A
profile crosses the block's top face (height about 10 mm), the rounded cut edge, whose position wanders
slowly along the scan, and the table beyond it (height 0). On top of it:

* foam texture: smoothed random relief of a few hundredths of a millimetre (the cells of the foam);
* scan-line noise: a random height offset per profile (vibration) and per-point noise;
* dropouts: about 0.5 % of the points missing at random, and short runs missing on the steep cut face
  (occlusion), so scans have different point counts and are not multiples of a chunk.

Defects (``DEFECT_TYPES``), each on a few millimetres of the scan:

* ``burr``: a ragged ridge of leftover material standing up to 1-2 mm above the top face along the edge;
* ``tear``: a narrow groove 0.6-1.5 mm deep torn into the top face at an angle;
* ``missing``: material missing at the edge: a notch 2-4 mm deep cut back into the block.

A point is labelled anomalous where the defect changes its height by more than 0.1 mm. Points are written
in acquisition order (profile after profile), as binary PLY, with ``.labels.txt`` sidecars for the defective
test scans (see :mod:`~anomalib_cmdr.data.scans.io`)::

    <root>/train/good/000.ply ...
    <root>/test/good/000.ply ...
    <root>/test/<burr | tear | missing>/000.ply, 000.labels.txt ...
    <root>/synthetic_scans.json              (the generator's settings)

Generation is deterministic in the seed and the sizes.

Example:
    >>> from anomalib_cmdr.data.scans.synthetic import synthesize_scan
    >>> points, labels = synthesize_scan(np.random.default_rng(0), "tear", points_per_profile=64, profiles=64)
    >>> points.shape[1], bool(labels.any()), len(points) < 64 * 64
    (3, True, True)
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from scipy.ndimage import gaussian_filter

from anomalib_cmdr.data.scans.io import write_point_cloud, write_point_labels

__all__ = ["DEFECT_TYPES", "SETTINGS_FILE", "synthesize_scan", "synthesize_scans"]

logger = logging.getLogger(__name__)

DEFECT_TYPES = ("burr", "tear", "missing")
"""Defect types of the synthetic scans."""

SETTINGS_FILE = "synthetic_scans.json"
"""File, in the root, recording the settings the scans were generated with."""

SPACING = 0.25
"""Point spacing along and across the profiles, millimetres."""

_TOP = 10.0  # height of the block's top face, mm
_LABEL_THRESHOLD = 0.1  # mm of height change that makes a point anomalous


def _edge_height(x: np.ndarray, edge: np.ndarray, top: np.ndarray) -> np.ndarray:
    """Height of the block with its rounded cut edge at ``edge`` (x < edge: top face; beyond: the table)."""
    t = np.clip((x - edge + 0.75) / 1.5, 0, 1)  # a 1.5 mm wide rounded edge
    return top * (1 - t * t * (3 - 2 * t))


def _window(distance: np.ndarray, half: float) -> np.ndarray:
    """Smooth bump, 1 at 0 and 0 beyond ``half``."""
    t = np.clip(np.abs(distance) / half, 0, 1)
    return 0.5 * (1 + np.cos(np.pi * t))


def synthesize_scan(
    rng: np.random.Generator,
    defect: str | None = None,
    points_per_profile: int = 192,
    profiles: int = 288,
) -> tuple[np.ndarray, np.ndarray]:
    """One scan of a cut foam edge, with or without a defect.

    Args:
        rng (np.random.Generator): Random generator (the scan's only source of randomness).
        defect (str | None): One of :data:`DEFECT_TYPES`, or ``None`` for a normal scan. Defaults to ``None``.
        points_per_profile (int): Points along each profile (x). Defaults to ``192``.
        profiles (int): Profiles along the scan direction (y). Defaults to ``288``.

    Returns:
        tuple[np.ndarray, np.ndarray]: ``(N, 3)`` ``float64`` points in millimetres, in acquisition order, and
        ``(N,)`` ``bool`` labels (all ``False`` for a normal scan).

    Raises:
        ValueError: If ``defect`` is unknown or the sizes are below 16.

    Example:
        >>> points, labels = synthesize_scan(np.random.default_rng(0), points_per_profile=32, profiles=32)
        >>> points.shape[1], points.dtype, bool(labels.any())
        (3, dtype('float64'), False)
        >>> _, labels = synthesize_scan(np.random.default_rng(0), "burr", points_per_profile=64, profiles=64)
        >>> bool(labels.any())
        True
    """
    if defect is not None and defect not in DEFECT_TYPES:
        msg = f"defect={defect!r}: choose one of {list(DEFECT_TYPES)} or None"
        raise ValueError(msg)
    if points_per_profile < 16 or profiles < 16:
        msg = f"points_per_profile and profiles must be >= 16, got {points_per_profile} and {profiles}"
        raise ValueError(msg)
    width, length = points_per_profile * SPACING, profiles * SPACING
    y, x = np.mgrid[0:profiles, 0:points_per_profile].astype(np.float64) * SPACING
    y_line = y[:, 0]
    edge = width * rng.uniform(0.45, 0.6) + 0.6 * np.sin(2 * np.pi * y_line / rng.uniform(15, 30) + rng.uniform(0, 6))
    edge = edge + np.cumsum(rng.normal(0, 0.02, profiles))
    top = _TOP + rng.uniform(-0.5, 0.5) + 0.01 * (x - width / 2)  # a slightly tilted top face
    normal = _edge_height(x, edge[:, None], top)
    surface = normal.copy()

    if defect is not None:
        centre_y = rng.uniform(0.25, 0.75) * length
        if defect == "burr":
            half = rng.uniform(1.5, 3.0)
            ragged = 1 + 0.4 * gaussian_filter(rng.normal(0, 1, profiles), 2)[:, None]
            window = _window(y - centre_y, half)
            across = np.exp(-(((x - edge[:, None] - 0.3) / 0.6) ** 2))
            ridge = (top + rng.uniform(1.0, 2.0) * ragged) * across  # leftover material above the edge
            surface = normal + window * np.clip(ridge - normal, 0, None)
        elif defect == "tear":
            start_x = rng.uniform(0.15, 0.8) * (edge.min() - 2)
            angle = rng.uniform(-0.6, 0.6) + np.pi / 2
            half = rng.uniform(3.0, 6.0)
            # distance of each point to the tear's segment
            direction = np.array([np.cos(angle), np.sin(angle)])
            rel_x, rel_y = x - start_x, y - centre_y
            along = np.clip(rel_x * direction[0] + rel_y * direction[1], -half, half)
            dist = np.hypot(rel_x - along * direction[0], rel_y - along * direction[1])
            depth = rng.uniform(0.6, 1.5) * _window(along, half * 1.2)
            groove = depth * np.exp(-((dist / 0.35) ** 2)) * (x < edge[:, None] - 0.75)
            surface = surface - groove
        else:  # missing material: a notch cut back into the edge
            half = rng.uniform(2.0, 4.0)
            notch = rng.uniform(2.0, 4.0) * _window(y_line - centre_y, half)
            surface = _edge_height(x, (edge - notch)[:, None], top)
    labels = np.abs(surface - normal) > _LABEL_THRESHOLD

    texture = gaussian_filter(rng.normal(0, 1, (profiles, points_per_profile)), 1.5) * 0.12
    line_offset = rng.normal(0, 0.01, (profiles, 1))
    z = surface + texture + line_offset + rng.normal(0, 0.005, surface.shape)
    x_measured = x + rng.normal(0, 0.005, x.shape)
    y_measured = y + rng.normal(0, 0.002, (profiles, 1))

    keep = rng.random(surface.shape) >= 0.005
    steep = np.abs(np.gradient(normal, axis=1)) > 0.5 * SPACING
    for row in np.flatnonzero(rng.random(profiles) < 0.3):  # occlusion on the cut face
        columns = np.flatnonzero(steep[row])
        if len(columns):
            start = rng.choice(columns)
            keep[row, start : start + rng.integers(1, 4)] = False
    points = np.stack([x_measured[keep], y_measured[keep], z[keep]], axis=1)
    return points, labels[keep]


def _check_settings(root: Path, settings: dict) -> None:
    """Warn when ``root`` was generated with other settings than ``settings``."""
    record = root / SETTINGS_FILE
    if record.is_file():
        found = json.loads(record.read_text())
        if found != settings:
            changed = sorted(key for key in settings if found.get(key) != settings[key])
            logger.warning(
                "%s was generated with other settings (%s differ); it is kept. Delete it (or pass overwrite=True) "
                "to regenerate.",
                root,
                ", ".join(changed),
            )


def synthesize_scans(
    root: str | Path,
    seed: int = 0,
    num_train: int = 10,
    num_test_good: int = 4,
    num_test_defect: int = 3,
    defect_types: Sequence[str] | None = None,
    points_per_profile: int = 192,
    profiles: int = 288,
    overwrite: bool = False,
) -> Path:
    """Write a folder of synthetic scans in the :class:`~anomalib_cmdr.data.scans.ScanFolder` layout.

    An existing folder (one with the settings file) is left untouched unless ``overwrite`` is set; a warning
    says when its settings differ.

    Args:
        root (str | Path): Output folder.
        seed (int): Random seed. Defaults to ``0``.
        num_train (int): Normal training scans. Defaults to ``10``.
        num_test_good (int): Normal test scans. Defaults to ``4``.
        num_test_defect (int): Test scans per defect type. Defaults to ``3``.
        defect_types (Sequence[str] | None): Defect types, ``None`` for all of :data:`DEFECT_TYPES`. Defaults to
            ``None``.
        points_per_profile (int): Points per profile. Defaults to ``192``.
        profiles (int): Profiles per scan. Defaults to ``288`` (about 54,000 points, six 9,216-point chunks).
        overwrite (bool): Rewrite an existing folder's scans. Defaults to ``False``.

    Returns:
        Path: ``root``.

    Raises:
        ValueError: If a defect type is unknown or a count is negative.

    Example:
        >>> root = synthesize_scans("/tmp/scans_doctest", num_train=1, num_test_good=1, num_test_defect=1,
        ...                         points_per_profile=32, profiles=32, overwrite=True)
        >>> sorted(p.name for p in (root / "test").iterdir())
        ['burr', 'good', 'missing', 'tear']
    """
    root = Path(root)
    types = list(DEFECT_TYPES if defect_types is None else defect_types)
    unknown = sorted(set(types) - set(DEFECT_TYPES))
    if unknown:
        msg = f"unknown defect type(s) {unknown}; choose from {list(DEFECT_TYPES)}"
        raise ValueError(msg)
    if min(num_train, num_test_good, num_test_defect) < 0:
        msg = "the numbers of scans must be >= 0"
        raise ValueError(msg)
    settings = {
        "seed": seed,
        "num_train": num_train,
        "num_test_good": num_test_good,
        "num_test_defect": num_test_defect,
        "defect_types": sorted(types),
        "points_per_profile": points_per_profile,
        "profiles": profiles,
    }
    if (root / SETTINGS_FILE).is_file() and not overwrite:
        _check_settings(root, settings)
        return root
    jobs: list[tuple[str, str | None, int]] = [("train/good", None, i) for i in range(num_train)]
    jobs += [("test/good", None, i) for i in range(num_test_good)]
    jobs += [(f"test/{name}", name, i) for name in types for i in range(num_test_defect)]
    for number, (folder, defect, index) in enumerate(jobs):
        rng = np.random.default_rng([seed, number])
        points, labels = synthesize_scan(rng, defect, points_per_profile, profiles)
        path = write_point_cloud(root / folder / f"{index:03d}.ply", points)
        if defect is not None:
            write_point_labels(path.with_name(f"{index:03d}.labels.txt"), labels)
    (root / SETTINGS_FILE).write_text(json.dumps(settings, indent=2) + "\n")
    return root
