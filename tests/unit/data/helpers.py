# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0

"""Plain helpers of the data tests: write tiny MVTec 3D-AD-like trees into a temporary folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tifffile
from PIL import Image


def scene_xyz(height: int = 60, width: int = 60, seed: int = 0, holes: bool = True) -> np.ndarray:
    """A tilted table (1 mm pixel pitch) with a 20x20 px box on it and a smaller 8x8 px block to its side."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[0:height, 0:width].astype(np.float32) * 0.001
    xyz = np.stack([cols + 0.05, rows + 0.05, 0.5 + 0.05 * cols], axis=-1).astype(np.float32)
    top, left = height // 2 - 10, width // 2 - 10
    xyz[top : top + 20, left : left + 20, 2] -= 0.02  # the object, 2 cm above the table
    xyz[4:12, 2:10, 2] -= 0.01  # a smaller second cluster: clutter
    if holes:
        xyz[rng.random((height, width)) < 0.02] = 0.0
    return xyz


def write_png(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path


def write_tiff(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tifffile.imwrite(path, array)
    return path


def write_sample(folder: Path, stem: str, size: tuple[int, int], seed: int, mask: bool | None = None) -> None:
    """Write rgb/<stem>.png, xyz/<stem>.tiff and, if ``mask`` is not None, gt/<stem>.png into ``folder``."""
    rng = np.random.default_rng(seed)
    write_png(folder / "rgb" / f"{stem}.png", rng.integers(0, 256, (*size, 3), dtype=np.uint8))
    write_tiff(folder / "xyz" / f"{stem}.tiff", scene_xyz(*size, seed=seed))
    if mask is not None:
        gt = np.zeros(size, np.uint8)
        if mask:
            gt[size[0] // 4 : size[0] // 2, size[1] // 4 : size[1] // 2] = 255
        write_png(folder / "gt" / f"{stem}.png", gt)


def write_category(root: Path, name: str = "widget", size: tuple[int, int] = (24, 32)) -> Path:
    """A tiny category: 3 train, 2 validation, 2 test/good, 2 test/crack, 1 test/dent samples."""
    category = root / name
    for i in range(3):
        write_sample(category / "train" / "good", f"{i:03d}", size, seed=i)
    for i in range(2):
        write_sample(category / "validation" / "good", f"{i:03d}", size, seed=10 + i)
        write_sample(category / "test" / "good", f"{i:03d}", size, seed=20 + i, mask=False)
        write_sample(category / "test" / "crack", f"{i:03d}", size, seed=30 + i, mask=True)
    write_sample(category / "test" / "dent", "000", size, seed=40, mask=True)
    return category


def tree_snapshot(root: Path) -> dict[str, tuple[bytes, int]]:
    return {str(p.relative_to(root)): (p.read_bytes(), p.stat().st_mtime_ns) for p in root.rglob("*") if p.is_file()}
