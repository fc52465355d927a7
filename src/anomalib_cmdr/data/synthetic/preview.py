# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0

"""A picture of a few test samples of an MVTec 3D-AD-style dataset: RGB | depth | ground truth.

Example:
    >>> from anomalib_cmdr.data.synthetic import render_preview, synthesize
    >>> root = synthesize("/tmp/synthetic_3d", image_size=128)  # doctest: +SKIP
    >>> render_preview(root, "/tmp/synthetic_3d/preview.png", num_samples=6)  # doctest: +SKIP
    PosixPath('/tmp/synthetic_3d/preview.png')
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import tifffile
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image
from scipy import ndimage

from anomalib_cmdr.data.synthetic.defects import DEFECT_TYPES

__all__ = ["colorize_depth", "render_preview"]

_LIGHT = np.array([-1.0, -1.0, -1.5]) / np.linalg.norm([-1.0, -1.0, -1.5])  # from the upper left, camera side
_SMOOTH = 1.2  # pixels of gaussian smoothing before estimating normals (sensor noise would hide small relief)
_RELIEF = 3.0  # gain of the hill shading


def colorize_depth(xyz: np.ndarray) -> np.ndarray:
    """Colour-map the depth ``z`` of an organized point cloud, hill-shaded so small relief shows; holes black.

    Args:
        xyz: ``(H, W, 3)`` points; missing points are ``(0, 0, 0)``.

    Returns:
        ``uint8 (H, W, 3)``: near is red, far is blue, holes are black.

    Example:
        >>> xyz = np.zeros((4, 4, 3), np.float32)
        >>> xyz[..., 2] = 0.5
        >>> colorize_depth(xyz).shape
        (4, 4, 3)
    """
    valid = np.any(xyz != 0, axis=-1)
    out = np.zeros((*xyz.shape[:2], 3), dtype=np.uint8)
    if not valid.any():
        return out
    z = xyz[..., 2].astype(np.float64)
    lo, hi = np.percentile(z[valid], [0.2, 99.8])
    near = np.clip((hi - z) / max(hi - lo, 1e-9), 0.0, 1.0)
    colors = colormaps["turbo"](0.08 + 0.82 * near)[..., :3]  # without turbo's dark ends, so the relief shows
    # Normals of the hole-aware smoothed point cloud (normalised convolution), for hill shading.
    weight = ndimage.gaussian_filter(valid.astype(np.float64), _SMOOTH)
    smooth = np.stack([ndimage.gaussian_filter(xyz[..., k] * valid, _SMOOTH) for k in range(3)], axis=-1)
    smooth /= np.maximum(weight, 1e-6)[..., None]
    normals = np.cross(np.gradient(smooth, axis=0), np.gradient(smooth, axis=1))  # towards the camera
    normals /= np.maximum(np.linalg.norm(normals, axis=-1, keepdims=True), 1e-12)
    shade = np.einsum("hwi,i->hw", normals, _LIGHT)
    relief = np.clip(0.8 + _RELIEF * (shade - np.median(shade[valid])), 0.25, 1.3)  # exaggerated hill shading
    rgb = np.clip(colors * relief[..., None], 0.0, 1.0)
    out[valid] = (255 * rgb[valid]).astype(np.uint8)
    return out


def _pick_samples(root: Path, categories: list[str], num_samples: int) -> list[tuple[str, str, Path]]:
    """Pick test samples that vary both the category and the label (defect types first, ``good`` last)."""
    queues: dict[str, dict[str, list[Path]]] = {}
    for category in categories:
        test = root / category / "test"
        labels = sorted(p.name for p in test.iterdir() if p.is_dir() and p.name != "good") if test.is_dir() else []
        found = {label: sorted((test / label / "rgb").glob("*.png")) for label in [*labels, "good"]}
        if any(found.values()):
            queues[category] = found
    # Deal the labels out to the categories in turn (category i of round r gets label r * n + i, plus a
    # shift that makes one pass visit every (category, label) pair even when the counts share a factor),
    # so that consecutive rows differ in category and in label.
    names = {category: list(labels) for category, labels in queues.items()}
    n = len(names)
    visit = [
        (category, labels[(r * n + i + r // (len(labels) // math.gcd(n, len(labels)))) % len(labels)])
        for r in range(max(map(len, names.values()), default=0))
        for i, (category, labels) in enumerate(names.items())
    ]
    picks: list[tuple[str, str, Path]] = []
    while len(picks) < num_samples and any(files for labels in queues.values() for files in labels.values()):
        for category, label in visit:
            if queues[category][label] and len(picks) < num_samples:
                picks.append((category, label, queues[category][label].pop(0)))
    return picks


def _read_png(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB") if image.mode not in ("L", "RGB") else image)


def render_preview(root: str | Path, output: str | Path, category: str | None = None, num_samples: int = 4) -> Path:
    """Draw a PNG grid of test samples: one row per sample, columns RGB | depth | gt mask.

    Samples mix the defect types (and categories, when ``category`` is ``None``); each row is titled
    with its category, defect type and the modality that shows the defect.

    Args:
        root: Dataset root (``<root>/<category>/test/<label>/{rgb,xyz,gt}``).
        output: Where to write the PNG (parent folders are created).
        category: Only this category (default: all categories found under ``root``).
        num_samples: Number of rows (>= 1).

    Returns:
        ``Path(output)``.

    Raises:
        ValueError: If ``num_samples`` < 1, ``category`` is not under ``root`` or there are no test samples.

    Example:
        >>> render_preview("datasets/synthetic_3d", "preview.png", category="disc")  # doctest: +SKIP
        PosixPath('preview.png')
    """
    root, output = Path(root), Path(output)
    if num_samples < 1:
        msg = f"num_samples must be >= 1, got {num_samples}"
        raise ValueError(msg)
    found = sorted(p.name for p in root.iterdir() if (p / "test").is_dir()) if root.is_dir() else []
    if category is not None and category not in found:
        msg = f"category: {category!r} has no test split under {root}; found {found}"
        raise ValueError(msg)
    picks = _pick_samples(root, [category] if category else found, num_samples)
    if not picks:
        msg = f"root: no test samples under {root}"
        raise ValueError(msg)

    fig = Figure(figsize=(8.4, 2.7 * len(picks)), dpi=110)
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(picks), 3, squeeze=False)
    for row, (cat, label, rgb_path) in zip(axes, picks, strict=True):
        folder, stem = rgb_path.parent.parent, rgb_path.stem
        xyz = tifffile.imread(folder / "xyz" / f"{stem}.tiff")
        gt_path = folder / "gt" / f"{stem}.png"
        gt = _read_png(gt_path) if gt_path.is_file() else np.zeros(xyz.shape[:2], np.uint8)
        modality = DEFECT_TYPES.get(label, "normal")
        images = (_read_png(rgb_path), colorize_depth(xyz), gt)
        titles = (
            f"{cat} / {label} {stem} ({modality})",
            "depth z (holes black)",
            f"gt mask ({int((gt > 0).sum())} px)",
        )
        for ax, image, title in zip(row, images, titles, strict=True):
            ax.imshow(image, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
            ax.set_title(title, fontsize=8.5)
            ax.set_axis_off()
    fig.tight_layout()
    output.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(output, format="png")
    return output
