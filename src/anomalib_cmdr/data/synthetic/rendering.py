# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0

"""Rendering of one synthetic sample: ray casting, shading and sensing of a :class:`~.scene._Scene`.

The scene is a height field over the table plane (the part's nominal height, optionally deformed by a
defect); each pixel's ray is marched through it (vectorised numpy, no per-pixel Python loop), which gives
an *organized* point cloud aligned with the RGB image:

* ``rgb``: Lambertian shading of a procedural, per-sample texture, with cast shadows, light
  direction/intensity jitter and a little sensor noise.
* ``xyz``: the 3D point seen by each pixel in the camera frame (metres, x right, y down, z forward),
  with gaussian depth noise and sensor holes (random blobs, grazing-angle and occlusion dropouts)
  stored as exactly ``(0, 0, 0)``.
* ``mask``: the defect's footprint in the image.

Each sample draws its randomness from ``np.random.SeedSequence(sample_seed(...))``, so a sample is
bit-identical whatever else is requested. Nuisances (pose, light, texture, noise, holes) and the
defect use two independent child streams, so :func:`render_sample` can render the very same
sample with and without its defect.

Example:
    >>> from anomalib_cmdr.data.synthetic import render_sample, sample_seed
    >>> rgb, xyz, mask = render_sample("cylinder", sample_seed(0, "cylinder", "test", 0, "crack"), 48, "crack")
    >>> rgb.shape, xyz.shape, mask.shape
    ((48, 48, 3), (48, 48, 3), (48, 48))
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from anomalib_cmdr.data.synthetic.defects import _DEFECT_BUILDERS, DEFECT_TYPES, _Defect
from anomalib_cmdr.data.synthetic.parts import _PARTS, HeightFn
from anomalib_cmdr.data.synthetic.scene import _TABLE_DISTANCE, FOCAL_FACTOR, _Scene
from anomalib_cmdr.data.synthetic.shapes import _WALL, _length

__all__ = ["SPLITS", "render_part_mask", "render_sample", "sample_seed"]

SPLITS: tuple[str, ...] = ("train", "validation", "test")
"""MVTec 3D-AD split folder names."""

# Stable ids used in the per-sample seed; never renumber them (that would change every file).
_CATEGORY_IDS = {"disc": 1, "bracket": 2, "cylinder": 3}
_SPLIT_IDS = {"train": 0, "validation": 1, "test": 2}
_DEFECT_IDS = {"good": 0, "dent": 1, "bump": 2, "stain": 3, "discoloration": 4, "crack": 5, "missing_chunk": 6}

_FD_STEP = 2e-4  # finite-difference step for surface normals (m)
_MARCH_STEP = 1.5e-3  # vertical ray-marching step (m)
_BUMP_HEADROOM = 5e-3  # room above the part's nominal top for bumps (m)
_ON_PART = 2e-4  # a hit higher than this above the table is on the part (m)


@dataclass
class _Hits:
    """Where each pixel's ray meets the surface."""

    t: np.ndarray  # (N,): ray parameter = camera-frame depth z (m)
    points: np.ndarray  # (N, 3): hit points in the table frame
    part_xy: tuple[np.ndarray, np.ndarray]  # hit points in part coordinates
    on_part: np.ndarray  # (N,) bool
    normals: np.ndarray  # (N, 3): unit surface normals, table frame


def _may_reach_part(scene: _Scene, x: np.ndarray, y: np.ndarray, reach: np.ndarray) -> np.ndarray:
    """Indices of the table points ``(x, y)`` lying within ``reach`` of the part's outline.

    A ray or light path whose horizontal travel from ``(x, y)`` is at most ``reach`` can only meet the
    part if this holds (the outline's signed distance is exact or a lower bound).
    """
    px, py = scene.to_part(x, y)
    return np.flatnonzero(scene.part.outer_sdf(px, py) < reach + 2 * _WALL)


def _cast(scene: _Scene, part_height: HeightFn) -> _Hits:
    """Intersect every pixel's ray with the height field ``part_height`` on the table plane.

    Rays far from the part hit the plane analytically; the others are marched from the top of the
    part's bounding slab down to the table in steps of ``_MARCH_STEP`` height, then refined by bisection.
    """
    c, d = scene.ray_origin, scene.rays
    height = scene.table_height(part_height)
    top = scene.part.max_height + _BUMP_HEADROOM
    t = c[2] / -d[:, 2]  # table plane z = 0
    slope = _length(d[:, 0], d[:, 1]) / -d[:, 2]  # horizontal travel per unit of height
    idx = _may_reach_part(scene, c[0] + t * d[:, 0], c[1] + t * d[:, 1], top * slope)
    if idx.size:
        dz = -d[idx, 2]
        t_bot, t_top = c[2] / dz, (c[2] - top) / dz
        n_steps = math.ceil(top / _MARCH_STEP) + 1
        ts = t_top[:, None] + (t_bot - t_top)[:, None] * np.linspace(0.0, 1.0, n_steps)[None, :]
        rays = d[idx]
        above = c[2] + ts * rays[:, 2:3] > height(c[0] + ts * rays[:, 0:1], c[1] + ts * rays[:, 1:2])
        above[:, -1] = False  # the table always stops the ray
        first = np.argmax(~above, axis=1)
        rows = np.arange(idx.size)
        hi, lo = ts[rows, first], ts[rows, np.maximum(first - 1, 0)]
        for _ in range(10):
            mid = 0.5 * (lo + hi)
            up = c[2] + mid * rays[:, 2] > height(c[0] + mid * rays[:, 0], c[1] + mid * rays[:, 1])
            lo, hi = np.where(up, mid, lo), np.where(up, hi, mid)
        t[idx] = hi
    points = c + t[:, None] * d
    normals = np.zeros_like(points)
    normals[:, 2] = 1.0
    on_part = np.zeros(t.shape, dtype=bool)
    if idx.size:
        x, y, e = points[idx, 0], points[idx, 1], _FD_STEP
        gx = (height(x + e, y) - height(x - e, y)) / (2 * e)
        gy = (height(x, y + e) - height(x, y - e)) / (2 * e)
        n = np.stack([-gx, -gy, np.ones_like(gx)], axis=1)
        normals[idx] = n / np.linalg.norm(n, axis=1, keepdims=True)
        on_part[idx] = points[idx, 2] > _ON_PART
    return _Hits(
        t=t, points=points, part_xy=scene.to_part(points[:, 0], points[:, 1]), on_part=on_part, normals=normals
    )


def _shadow(scene: _Scene, hits: _Hits, part_height: HeightFn) -> np.ndarray:
    """Fraction of direct light reaching each hit (cast shadows by marching towards the light)."""
    light = scene.light
    height = scene.table_height(part_height)
    top = scene.part.max_height + _BUMP_HEADROOM
    rise = np.maximum(top - hits.points[:, 2], 0.0) / light[2]  # path length up to the top of the part
    idx = _may_reach_part(scene, hits.points[:, 0], hits.points[:, 1], rise * math.hypot(light[0], light[1]))
    lit = np.ones(hits.t.shape)
    if idx.size:
        p = hits.points[idx]
        s = np.linspace(0.0, 1.0, 13)[1:] * np.maximum(top - p[:, 2:3], 0.0) / light[2] + 1e-3
        blocked = height(p[:, 0:1] + s * light[0], p[:, 1:2] + s * light[1]) > p[:, 2:3] + s * light[2] + 2e-4
        lit[idx] = ~blocked.any(axis=1)
    return ndimage.gaussian_filter(lit.reshape(scene.size, scene.size), 0.6).ravel()


def _shade(scene: _Scene, hits: _Hits, part_height: HeightFn, defect: _Defect | None) -> np.ndarray:
    """Render the 8-bit RGB image of ``hits`` (``defect`` only recolours; its geometry is in ``hits``)."""
    albedo = scene.table_albedo(hits.points[:, 0], hits.points[:, 1], hits.points[:, 2])
    on = hits.on_part
    px, py = hits.part_xy[0][on], hits.part_xy[1][on]
    part_albedo = scene.part_albedo(px, py, hits.points[on, 2])
    if defect is not None and defect.recolor is not None:
        part_albedo = defect.recolor(px, py, part_albedo)
    albedo[on] = part_albedo
    direct = np.clip(np.einsum("ni,i->n", hits.normals, scene.light), 0.0, None) * _shadow(scene, hits, part_height)
    radiance = scene.intensity * albedo * (scene.ambient + (1.0 - scene.ambient) * 1.25 * direct)[:, None]
    srgb = 255.0 * np.clip(radiance, 0.0, 1.0) ** (1 / 2.2) + scene.rgb_noise
    return np.clip(np.rint(srgb), 0, 255).astype(np.uint8).reshape(scene.size, scene.size, 3)


def _sense(scene: _Scene, hits: _Hits) -> np.ndarray:
    """Organized point cloud of ``hits`` as a structured-light sensor would see it (noise and holes)."""
    size = scene.size
    xyz = (hits.t + scene.depth_noise)[:, None] * scene.rays_cam
    view = scene.rays_cam / np.linalg.norm(scene.rays_cam, axis=1, keepdims=True)
    cos_view = np.abs(np.einsum("ni,ji,nj->n", hits.normals, scene.frame, view))
    grazing = (cos_view < 0.12) | ((cos_view < 0.3) & (scene.dropout[0] < 0.5))
    depth = hits.t.reshape(size, size)
    jump = np.zeros((size, size), dtype=bool)
    jump[:, 1:] = np.abs(np.diff(depth, axis=1)) > 5e-3  # occlusion shadow on one side of depth edges
    occluded = jump.ravel() & (scene.dropout[1] < 0.6)
    xyz[scene.blob_holes | grazing | occluded] = 0.0
    return xyz.astype(np.float32).reshape(size, size, 3)


def sample_seed(seed: int, category: str, split: str, index: int, defect: str | None = None) -> tuple[int, ...]:
    """Entropy tuple of one sample: ``(seed, category id, split id, defect id, index)``.

    Args:
        seed (int): Dataset seed.
        category (str): One of :data:`~anomalib_cmdr.data.synthetic.parts.CATEGORIES`.
        split (str): One of :data:`SPLITS`.
        index (int): Sample index within its folder.
        defect (str | None): Defect type of a test sample, or ``None`` / ``"good"`` for normal samples.
            Defaults to ``None``.

    Returns:
        tuple[int, ...]: A tuple for :func:`render_sample` (and ``np.random.SeedSequence``).

    Example:
        >>> sample_seed(0, "disc", "test", 3, "dent")
        (0, 1, 2, 1, 3)
    """
    return (seed, _CATEGORY_IDS[category], _SPLIT_IDS[split], _DEFECT_IDS[defect or "good"], index)


def _render(
    category: str, rng_seed: Sequence[int], image_size: int, defect: str | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Render one sample; returns ``(rgb, xyz, mask, nominal part mask)``."""
    part = _PARTS[category]
    scene_seq, defect_seq = np.random.SeedSequence(list(rng_seed)).spawn(2)
    scene = _Scene.sample(part, image_size, np.random.default_rng(scene_seq))
    nominal = _cast(scene, part.height)
    part_mask = nominal.on_part.reshape(image_size, image_size)
    if defect is None:
        rgb = _shade(scene, nominal, part.height, None)
        return rgb, _sense(scene, nominal), np.zeros_like(part_mask), part_mask

    pixel_size = _TABLE_DISTANCE / (FOCAL_FACTOR * image_size)
    instance = _DEFECT_BUILDERS[defect](category, np.random.default_rng(defect_seq), pixel_size)
    modality = DEFECT_TYPES[defect]
    deformed_height, deformed = part.height, nominal
    if instance.deform is not None:
        deform = instance.deform

        def deformed_height(x: np.ndarray, y: np.ndarray) -> np.ndarray:
            return deform(x, y, part.height(x, y))

        deformed = _cast(scene, deformed_height)
    if modality == "both":
        rgb = _shade(scene, deformed, deformed_height, instance)
    else:  # geometry-only defects are shaded from the nominal surface, so the RGB cannot show them
        rgb = _shade(scene, nominal, part.height, instance)
    xyz = _sense(scene, deformed)
    px, py = nominal.part_xy
    mask = (nominal.on_part & instance.footprint(px, py, nominal.points[:, 2])).reshape(image_size, image_size)
    return rgb, xyz, mask, part_mask


def render_sample(
    category: str, rng_seed: Sequence[int], image_size: int = 128, defect: str | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Render one sample in memory, with or without a defect (same pose, light, texture, noise).

    Args:
        category (str): One of :data:`~anomalib_cmdr.data.synthetic.parts.CATEGORIES`.
        rng_seed (Sequence[int]): Entropy of the sample, e.g. from :func:`sample_seed`.
        image_size (int): Image width and height in pixels. Defaults to ``128``.
        defect (str | None): A key of :data:`~anomalib_cmdr.data.synthetic.defects.DEFECT_TYPES`, or
            ``None`` for the defect-free version. Defaults to ``None``.

    Returns:
        tuple[np.ndarray, np.ndarray, np.ndarray]: ``(rgb, xyz, mask)``: ``uint8 (H, W, 3)``,
        ``float32 (H, W, 3)`` (holes are exactly 0) and ``bool (H, W)`` (the defect's footprint; all
        ``False`` without a defect).

    Example:
        >>> seed = sample_seed(0, "disc", "test", 0, "dent")
        >>> rgb, xyz, mask = render_sample("disc", seed, 64, "dent")
        >>> rgb.shape, xyz.dtype, bool(mask.any())
        ((64, 64, 3), dtype('float32'), True)
    """
    rgb, xyz, mask, _ = _render(category, rng_seed, image_size, defect)
    return rgb, xyz, mask


def render_part_mask(category: str, rng_seed: Sequence[int], image_size: int = 128) -> np.ndarray:
    """Pixels that see the (defect-free) part rather than the table, ignoring sensor holes.

    Args:
        category (str): One of :data:`~anomalib_cmdr.data.synthetic.parts.CATEGORIES`.
        rng_seed (Sequence[int]): Entropy of the sample, e.g. from :func:`sample_seed`.
        image_size (int): Image width and height in pixels. Defaults to ``128``.

    Returns:
        np.ndarray: ``bool (H, W)``.

    Example:
        >>> bool(render_part_mask("bracket", sample_seed(0, "bracket", "train", 0), 64).mean() > 0.1)
        True
    """
    return _render(category, rng_seed, image_size, None)[3]
