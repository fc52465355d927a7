# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0

"""Planar shape and noise primitives of the synthetic scenes, in metres.

Signed-distance functions (negative inside) of circles and rounded rectangles, their extrusion into
chamfered height fields, a Hermite smooth step, planar rotation and :class:`_ValueNoise`, a smooth random
field for procedural textures and irregular outlines. Everything is vectorised over numpy arrays of
points. These are the building blocks of :mod:`~anomalib_cmdr.data.synthetic.parts` and
:mod:`~anomalib_cmdr.data.synthetic.defects`; they are internal to the package.

Example:
    >>> import numpy as np
    >>> _sd_circle(np.array([0.0, 3.0]), np.array([0.0, 4.0]), 1.0).tolist()
    [-1.0, 4.0]
    >>> _extrude(np.array([-0.01, 0.01]), 0.02, 0.002).tolist()
    [0.02, 0.0]
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

__all__: list[str] = []  # package-internal building blocks only

_WALL = 3e-4  # horizontal width of the steep skirt that closes every extruded side wall (m)


def _length(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Euclidean norm of ``(x, y)`` (several times faster than ``np.hypot`` on large arrays)."""
    return np.sqrt(x * x + y * y)


def _sd_circle(x: np.ndarray, y: np.ndarray, radius: float) -> np.ndarray:
    """Signed distance to a circle centred at the origin (negative inside)."""
    return _length(x, y) - radius


def _sd_box(x: np.ndarray, y: np.ndarray, half_x: float, half_y: float, corner: float = 0.0) -> np.ndarray:
    """Signed distance to an origin-centred rectangle with rounded corners (negative inside)."""
    qx = np.abs(x) - half_x + corner
    qy = np.abs(y) - half_y + corner
    outside = _length(np.maximum(qx, 0.0), np.maximum(qy, 0.0))
    return outside + np.minimum(np.maximum(qx, qy), 0.0) - corner


def _extrude(sdf: np.ndarray, height: float, chamfer: float) -> np.ndarray:
    """Height of a flat-topped prism with a 45 degree chamfer along its top edge.

    Args:
        sdf (np.ndarray): Signed distance to the footprint (negative inside).
        height (float): Top height (m).
        chamfer (float): Chamfer size (m).

    Returns:
        np.ndarray: The height field; outside the footprint it drops to 0 over a narrow skirt of width
        ``_WALL``.
    """
    inside = -sdf
    top = height - np.clip(chamfer - inside, 0.0, chamfer)
    skirt = (height - chamfer) * np.clip(1.0 + inside / _WALL, 0.0, 1.0)
    return np.where(inside >= 0.0, top, skirt)


def _smoothstep(edge0: float, edge1: float, x: np.ndarray) -> np.ndarray:
    """Hermite smooth step from 0 at ``edge0`` to 1 at ``edge1`` (either order)."""
    s = np.clip((x - edge0) / (edge1 - edge0), 0.0, 1.0)
    return s * s * (3.0 - 2.0 * s)


def _rotate(x: np.ndarray, y: np.ndarray, angle: float) -> tuple[np.ndarray, np.ndarray]:
    """Rotate points counter-clockwise by ``angle`` radians."""
    c, s = math.cos(angle), math.sin(angle)
    return c * x - s * y, s * x + c * y


class _ValueNoise:
    """A smooth random field on the plane: cubic B-spline interpolation of random lattices.

    Args:
        rng (np.random.Generator): Source of the lattice values.
        extent (float): The field is defined on ``[-extent, extent]^2`` (m); outside it is clamped.
        cell (float): Lattice spacing of the first octave (m).
        octaves (int): Number of octaves, each with half the spacing and half the amplitude.
            Defaults to ``1``.
        stretch (float): Lattice spacing along x is ``cell * stretch`` (anisotropic, brushed-looking
            noise). Defaults to ``1.0``.

    Example:
        >>> import numpy as np
        >>> noise = _ValueNoise(np.random.default_rng(0), extent=0.1, cell=0.01)
        >>> noise(np.zeros((2, 3)), np.zeros((2, 3))).shape
        (2, 3)
    """

    def __init__(
        self, rng: np.random.Generator, extent: float, cell: float, octaves: int = 1, stretch: float = 1.0
    ) -> None:
        self.extent = extent
        self.layers: list[tuple[np.ndarray, float, float, float]] = []
        for k in range(octaves):
            cell_x, cell_y = cell * stretch / 2**k, cell / 2**k
            shape = (int(2 * extent / cell_y) + 4, int(2 * extent / cell_x) + 4)
            self.layers.append((rng.standard_normal(shape), cell_x, cell_y, 0.5**k))
        # A cubic B-spline (no prefilter) of unit white noise has a standard deviation of about 0.47.
        self.norm = 0.47 * math.sqrt(sum(amp**2 for *_, amp in self.layers))

    def __call__(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Evaluate the field (zero mean, roughly unit standard deviation) at points ``(x, y)``."""
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        out = np.zeros(x.size)
        for grid, cell_x, cell_y, amp in self.layers:
            coords = np.stack([(y.ravel() + self.extent) / cell_y + 1.0, (x.ravel() + self.extent) / cell_x + 1.0])
            out += amp * ndimage.map_coordinates(grid, coords, order=3, prefilter=False, mode="nearest")
        return (out / self.norm).reshape(x.shape)
