# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0

"""The synthetic camera and the per-sample scene: table pose, part pose, light, textures and sensor noise.

A pinhole camera (:func:`camera_intrinsics`) looks down at a slightly tilted table about
``_TABLE_DISTANCE`` metres away. :meth:`_Scene.sample` draws every nuisance of one sample (table tilt and
distance, part position and angle, light direction and intensity, textures, depth and RGB noise, sensor
holes) from one random stream, always in the same number and order, so that a sample renders
identically with and without its defect.

Example:
    >>> import numpy as np
    >>> from anomalib_cmdr.data.synthetic.parts import _PARTS
    >>> scene = _Scene.sample(_PARTS["disc"], 32, np.random.default_rng(0))
    >>> scene.rays_cam.shape, scene.blob_holes.shape
    ((1024, 3), (1024,))
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from anomalib_cmdr.data.synthetic.parts import Albedo, HeightFn, _make_table_albedo, _Part
from anomalib_cmdr.data.synthetic.shapes import _rotate

__all__ = ["FOCAL_FACTOR", "camera_intrinsics"]

FOCAL_FACTOR = 1.2
"""Focal length in pixels divided by the image size (fx = fy = FOCAL_FACTOR * image_size)."""

_TABLE_DISTANCE = 0.42  # nominal camera-to-table distance along the optical axis (m)


def camera_intrinsics(image_size: int) -> tuple[float, float, float, float]:
    """Pinhole intrinsics ``(fx, fy, cx, cy)`` of the synthetic camera, in pixels.

    Pixel ``(u, v)`` (column, row) looks along ``((u + 0.5 - cx) / fx, (v + 0.5 - cy) / fy, 1)``.

    Args:
        image_size (int): Image width and height in pixels.

    Returns:
        tuple[float, float, float, float]: ``(fx, fy, cx, cy)``.

    Example:
        >>> camera_intrinsics(100)
        (120.0, 120.0, 50.0, 50.0)
    """
    f = FOCAL_FACTOR * image_size
    return f, f, image_size / 2, image_size / 2


@dataclass
class _Scene:
    """Everything about a sample that does not depend on its defect (all drawn from one stream)."""

    part: _Part
    size: int
    frame: np.ndarray  # (3, 3): columns are the table's x, y, z axes in the camera frame
    origin: np.ndarray  # (3,): camera-frame position of the table frame's origin
    rays_cam: np.ndarray  # (N, 3): per-pixel ray directions with unit z, camera frame
    ray_origin: np.ndarray  # (3,): camera centre in the table frame
    rays: np.ndarray  # (N, 3): rays_cam in the table frame
    pose: tuple[float, float, float]  # part position (x, y) on the table and in-plane angle
    light: np.ndarray  # (3,): unit direction towards the light, table frame
    ambient: float
    intensity: float
    part_albedo: Albedo
    table_albedo: Albedo
    depth_noise: np.ndarray  # (N,): additive depth noise (m)
    rgb_noise: np.ndarray  # (N, 3): additive sensor noise (8-bit levels)
    dropout: np.ndarray  # (2, N): uniforms deciding grazing-angle and occlusion dropouts
    blob_holes: np.ndarray  # (N,) bool: random sensor holes

    @classmethod
    def sample(cls, part: _Part, size: int, rng: np.random.Generator) -> _Scene:
        """Draw the nuisances of one sample (the number and order of draws never vary)."""
        n = size * size
        tilt_x, tilt_y = np.deg2rad(rng.uniform(-6.0, -3.0)), np.deg2rad(rng.uniform(-2.0, 2.0))
        c1, s1, c2, s2 = math.cos(tilt_x), math.sin(tilt_x), math.cos(tilt_y), math.sin(tilt_y)
        about_x = np.array([[1.0, 0.0, 0.0], [0.0, c1, -s1], [0.0, s1, c1]])
        about_y = np.array([[c2, 0.0, s2], [0.0, 1.0, 0.0], [-s2, 0.0, c2]])
        frame = about_x @ about_y @ np.diag([1.0, -1.0, -1.0])  # table x right, y up (image), z towards camera
        origin = np.array([0.0, 0.0, _TABLE_DISTANCE * rng.uniform(0.97, 1.03)])

        fx, fy, cx, cy = camera_intrinsics(size)
        v, u = np.mgrid[0:size, 0:size].reshape(2, -1) + 0.5
        rays_cam = np.stack([(u - cx) / fx, (v - cy) / fy, np.ones(n)], axis=1)

        shift = 0.03 * _TABLE_DISTANCE / FOCAL_FACTOR  # 3 % of the imaged table width
        pose = (rng.uniform(-shift, shift), rng.uniform(-shift, shift), np.deg2rad(rng.uniform(-4.0, 4.0)))
        light = np.array([-0.45 + rng.uniform(-0.15, 0.15), 0.35 + rng.uniform(-0.15, 0.15), 1.0])
        ambient, intensity = rng.uniform(0.25, 0.32), rng.uniform(0.88, 1.12)
        part_albedo, table_albedo = part.make_albedo(rng), _make_table_albedo(rng)
        depth_noise = rng.normal(0.0, rng.uniform(3e-4, 5e-4), n)
        rgb_noise = rng.normal(0.0, 1.0, (n, 3))
        dropout = rng.uniform(size=(2, n))
        blob_holes = np.zeros((size, size), dtype=bool)
        scale = max(size / 128, 0.75)  # hole radii in pixels at 128 px, at least about one pixel
        for _ in range(int(rng.integers(3, 7))):
            (bu, bv), (ra, rb), ang = rng.uniform(0, size, 2), rng.uniform(0.7, 2.2, 2) * scale, rng.uniform(0, np.pi)
            du, dv = _rotate(u.reshape(size, size) - bu, v.reshape(size, size) - bv, -ang)
            blob_holes |= (du / ra) ** 2 + (dv / rb) ** 2 < 1.0
        return cls(
            part=part,
            size=size,
            frame=frame,
            origin=origin,
            rays_cam=rays_cam,
            ray_origin=frame.T @ -origin,
            rays=np.einsum("ni,ij->nj", rays_cam, frame),
            pose=pose,
            light=light / np.linalg.norm(light),
            ambient=ambient,
            intensity=intensity,
            part_albedo=part_albedo,
            table_albedo=table_albedo,
            depth_noise=depth_noise,
            rgb_noise=rgb_noise,
            dropout=dropout,
            blob_holes=blob_holes.ravel(),
        )

    def to_part(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Table coordinates -> part coordinates."""
        tx, ty, angle = self.pose
        return _rotate(x - tx, y - ty, -angle)

    def table_height(self, part_height: HeightFn) -> HeightFn:
        """Wrap a part-coordinate height field into a table-coordinate one."""
        return lambda x, y: part_height(*self.to_part(x, y))
