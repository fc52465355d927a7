# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0

"""Pictures of one RGB + 3D prediction: RGB, coloured depth, anomaly map overlays, predicted mask.

Built on anomalib's image functions (:mod:`anomalib.visualization.image.functional`), so the colours and
overlays look like anomalib's own pictures; the depth panel shows what anomalib's RGB-only picture cannot:
the point cloud's z, coloured, with its holes (no point) in black.

Example:
    >>> import numpy as np
    >>> rgb = np.zeros((32, 32, 3), np.uint8)
    >>> xyz = np.ones((32, 32, 3), np.float32)
    >>> panel = prediction_panel(rgb, xyz, anomaly_map=np.random.rand(32, 32), pred_mask=None, score=0.7, label=True)
    >>> panel.size[0] > panel.size[1]
    True
"""

from __future__ import annotations

import numpy as np
from anomalib.visualization.image.functional import (
    add_text_to_image,
    create_image_grid,
    overlay_images,
    visualize_anomaly_map,
    visualize_mask,
)
from matplotlib import colormaps
from PIL import Image

HOLE_COLOUR = (0, 0, 0)


def depth_image(xyz: np.ndarray) -> Image.Image:
    """The z channel of an organized cloud, coloured (near: bright), holes black.

    Args:
        xyz (np.ndarray): ``(H, W, 3)`` (or ``(3, H, W)``) organized cloud, missing points ``(0, 0, 0)``.

    Returns:
        Image.Image: An RGB picture of size ``W x H``.

    Example:
        >>> xyz = np.zeros((4, 6, 3), np.float32)
        >>> xyz[:, :3] = (0.1, 0.2, 0.5)  # the left half holds points, the right half is a hole
        >>> picture = depth_image(xyz)
        >>> picture.size, picture.getpixel((5, 0))
        ((6, 4), (0, 0, 0))
    """
    xyz = np.asarray(xyz, dtype=np.float32)
    if xyz.ndim == 3 and xyz.shape[0] == 3 and xyz.shape[-1] != 3:
        xyz = xyz.transpose(1, 2, 0)
    valid = np.all(xyz != 0, axis=2) & np.all(np.isfinite(xyz), axis=2)
    z = xyz[..., 2]
    out = np.zeros((*z.shape, 3), dtype=np.uint8)
    if valid.any():
        low, high = np.percentile(z[valid], [1, 99])
        scaled = np.clip((high - z) / max(high - low, 1e-12), 0, 1)  # near (small z) bright
        out[valid] = (colormaps["viridis"](scaled[valid])[:, :3] * 255).astype(np.uint8)
    out[~valid] = HOLE_COLOUR
    return Image.fromarray(out)


def _rgb_image(rgb: np.ndarray) -> Image.Image:
    rgb = np.asarray(rgb)
    if rgb.ndim == 3 and rgb.shape[0] == 3 and rgb.shape[-1] != 3:
        rgb = rgb.transpose(1, 2, 0)
    if rgb.dtype != np.uint8:
        rgb = (np.clip(rgb, 0, 1) * 255).round().astype(np.uint8)
    return Image.fromarray(rgb)


def prediction_panel(
    rgb: np.ndarray | None,
    xyz: np.ndarray | None,
    anomaly_map: np.ndarray,
    pred_mask: np.ndarray | None,
    score: float,
    label: bool | None,
    gt_mask: np.ndarray | None = None,
    note: str | None = None,
) -> Image.Image:
    """One row of pictures for a sample: inputs, anomaly map over each, predicted (and true) mask.

    Args:
        rgb (np.ndarray | None): RGB at the map's size (uint8 ``HxWx3``, or float in ``[0, 1]``), or ``None``.
        xyz (np.ndarray | None): Organized cloud at the map's size, or ``None``.
        anomaly_map (np.ndarray): ``(H, W)`` map, post-processed (``[0, 1]``, threshold 0.5) or raw.
        pred_mask (np.ndarray | None): ``(H, W)`` boolean predicted mask, or ``None``.
        score (float): Image score.
        label (bool | None): Predicted label (``None``: not thresholded).
        gt_mask (np.ndarray | None): ``(H, W)`` ground truth, or ``None``. Defaults to ``None``.
        note (str | None): Added to the title, e.g. the branch that scored a sample without one modality.
            Defaults to ``None``.

    Returns:
        Image.Image: The panels side by side, titled.

    Example:
        >>> anomaly_map = np.zeros((32, 32), np.float32)
        >>> anomaly_map[8:16, 8:16] = 0.9
        >>> panel = prediction_panel(None, np.ones((32, 32, 3), np.float32), anomaly_map, pred_mask=anomaly_map > 0.5,
        ...                          score=0.9, label=True, note="branch: xyz (no RGB image)")
        >>> panel.size  # depth, map on depth, predicted mask: three 256 px panels under a title bar
        (768, 292)
    """
    anomaly_map = np.asarray(anomaly_map, dtype=np.float32).squeeze()
    normalized = bool(anomaly_map.min() >= 0 and anomaly_map.max() <= 1)
    heat = visualize_anomaly_map(anomaly_map, normalize=not normalized)
    panels: list[tuple[str, Image.Image]] = []
    bases = []
    if rgb is not None:
        bases.append(("RGB", _rgb_image(rgb)))
    if xyz is not None:
        bases.append(("Depth", depth_image(xyz)))
    panels.extend(bases)
    for name, base in bases:
        panels.append((f"Map on {name.lower() if name == 'Depth' else name}", overlay_images(base, heat, alpha=0.5)))
    if not bases:
        panels.append(("Anomaly map", heat))
    base = bases[0][1] if bases else heat
    if pred_mask is not None:
        contour = visualize_mask(np.asarray(pred_mask).squeeze().astype(bool), mode="contour", color=(255, 0, 0))
        overlays = [contour]
        if gt_mask is not None:
            overlays.append(
                visualize_mask(np.asarray(gt_mask).squeeze().astype(bool), mode="contour", color=(0, 255, 0))
            )
        title = "Pred. red, true green" if gt_mask is not None else "Predicted mask"
        panels.append((title, overlay_images(base, overlays, alpha=1.0)))
    verdict = "" if label is None else (" ANOMALOUS" if label else " normal")
    titled = [add_text_to_image(image.convert("RGB").resize((256, 256)), text, size=20) for text, image in panels]
    grid = create_image_grid(titled, nrow=len(titled))
    framed = Image.new("RGB", (grid.width, grid.height + 36))
    framed.paste(grid.convert("RGB"), (0, 36))
    title = f"score {score:.3f}{verdict}" + (f"  |  {note}" if note else "")
    return add_text_to_image(framed, title, background=None, position=(8, 6))
