# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0

"""The machined parts of the synthetic dataset and the table they lie on.

Each category of :data:`CATEGORIES` is a :class:`_Part`: a nominal height field over the table plane, the
signed distance to its footprint seen from above (with and without inner holes), the zone where surface
defects may lie and a procedural, per-sample surface texture (an :data:`Albedo`). Part coordinates are in
metres, with the origin at the part's centre on the table and z up from the table.

Example:
    >>> import numpy as np
    >>> disc = _PARTS["disc"]
    >>> disc.height(np.array([0.07, 0.2]), np.array([0.0, 0.0])).tolist()  # on the flange, off the part
    [0.018, 0.0]
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import cache

import numpy as np

from anomalib_cmdr.data.synthetic.shapes import _extrude, _length, _sd_box, _sd_circle, _smoothstep, _ValueNoise

__all__ = ["CATEGORIES", "Albedo", "HeightFn"]

CATEGORIES: tuple[str, ...] = ("disc", "bracket", "cylinder")
"""Part categories, each with its own geometry and surface texture."""

Albedo = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
"""Maps surface points ``(x, y, z)`` (shape ``S``; z: height above the table) to linear RGB (shape ``S + (3,)``)."""

HeightFn = Callable[[np.ndarray, np.ndarray], np.ndarray]
"""Maps part coordinates ``(x, y)`` (m) to a height above the table (m), e.g. :meth:`_Part.height`."""


class _Part:
    """A part category: its height field, footprint and procedural texture, in part coordinates (m).

    Part coordinates have their origin at the part's centre on the table, z up from the table.
    """

    name: str = ""
    max_height: float = 0.0  # highest nominal point (m)
    bound_radius: float = 0.0  # the footprint fits in this circle (m)

    def height(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Nominal height above the table (0 where there is no material)."""
        raise NotImplementedError

    def outer_sdf(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Signed distance to the outline, ignoring inner holes (where chunks can break off)."""
        raise NotImplementedError

    def sdf(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Signed distance to the footprint seen from above, holes included."""
        return self.outer_sdf(x, y)

    def zone_sdf(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Signed distance to the region where surface defects may lie (the usable top surface)."""
        return self.sdf(x, y)

    def make_albedo(self, rng: np.random.Generator) -> Albedo:
        """Draw a per-sample variant of the part's surface texture."""
        raise NotImplementedError


class _Disc(_Part):
    """A turned aluminium puck: chamfered edge, raised hub, central bore and four bolt holes."""

    name = "disc"
    radius, thickness, chamfer = 0.085, 0.018, 0.0035
    hub_radius, hub_height, bore = 0.036, 0.006, 0.018
    bolt_pitch, bolt_radius = 0.06, 0.0065
    max_height = thickness + hub_height
    bound_radius = radius

    def _holes(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Signed distance to the union of the bore and the bolt holes."""
        d = _sd_circle(x, y, self.bore)
        for k in range(4):
            a = math.pi / 4 + k * math.pi / 2
            cx, cy = self.bolt_pitch * math.cos(a), self.bolt_pitch * math.sin(a)
            d = np.minimum(d, _sd_circle(x - cx, y - cy, self.bolt_radius))
        return d

    def outer_sdf(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return _sd_circle(x, y, self.radius)

    def sdf(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return np.maximum(self.outer_sdf(x, y), -self._holes(x, y))

    def height(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        body = _extrude(self.sdf(x, y), self.thickness, self.chamfer)
        hub_sdf = np.maximum(_sd_circle(x, y, self.hub_radius), -_sd_circle(x, y, self.bore))
        return np.maximum(body, _extrude(hub_sdf, self.thickness + self.hub_height, 0.0015))

    def make_albedo(self, rng: np.random.Generator) -> Albedo:
        base = np.array([0.60, 0.62, 0.65]) * rng.uniform(0.95, 1.05)
        grain = _ValueNoise(rng, self.bound_radius, 0.003, octaves=2)
        mottle = _ValueNoise(rng, self.bound_radius, 0.03)
        period, phase = rng.uniform(0.006, 0.008), rng.uniform(0.0, 2 * math.pi)

        def albedo(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
            m = mottle(x, y)
            hub = z > self.thickness + 1e-3  # the hub's face is finish-turned: finer marks, brighter
            rings = np.sin(2 * math.pi * _length(x, y) / np.where(hub, 0.6 * period, period) + phase + 1.5 * m)
            return base * (np.where(hub, 1.08, 1.0) + 0.06 * rings + 0.05 * grain(x, y) + 0.05 * m)[..., None]

        return albedo


class _Bracket(_Part):
    """An anodised mounting bracket: a plate with four corner holes and a raised central rib."""

    name = "bracket"
    half_x, half_y, corner, thickness, chamfer = 0.1, 0.06, 0.016, 0.009, 0.0015
    hole_x, hole_y, hole_radius = 0.075, 0.036, 0.009
    rib_x, rib_y, rib_corner, rib_height, rib_chamfer = 0.056, 0.015, 0.007, 0.025, 0.0025
    max_height = rib_height
    bound_radius = math.hypot(half_x, half_y)

    def outer_sdf(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return _sd_box(x, y, self.half_x, self.half_y, self.corner)

    def sdf(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        holes = _sd_circle(np.abs(x) - self.hole_x, np.abs(y) - self.hole_y, self.hole_radius)
        return np.maximum(self.outer_sdf(x, y), -holes)

    def height(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        plate = _extrude(self.sdf(x, y), self.thickness, self.chamfer)
        rib = _extrude(_sd_box(x, y, self.rib_x, self.rib_y, self.rib_corner), self.rib_height, self.rib_chamfer)
        return np.maximum(plate, rib)

    def make_albedo(self, rng: np.random.Generator) -> Albedo:
        base = np.array([0.14, 0.27, 0.52]) * rng.uniform(0.93, 1.07)
        brushed = _ValueNoise(rng, self.bound_radius, 0.002, octaves=2, stretch=15.0)
        mottle = _ValueNoise(rng, self.bound_radius, 0.04)

        def albedo(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
            rib = z > self.thickness + 1e-3  # the rib's top is milled across the plate's brushing, and lighter
            grain = np.where(rib, brushed(y, x), brushed(x, y))
            return base * (np.where(rib, 1.25, 1.0) + 0.10 * grain + 0.06 * mottle(x, y))[..., None]

        return albedo


class _Cylinder(_Part):
    """A brass shaft lying on its side: chamfered ends and two circumferential grooves."""

    name = "cylinder"
    half_length, radius, chamfer = 0.105, 0.032, 0.0035
    groove_x, groove_half_width, groove_depth = 0.065, 0.003, 0.0018
    max_height = 2 * radius
    bound_radius = math.hypot(half_length, radius)

    def _section_radius(self, x: np.ndarray) -> np.ndarray:
        """Radius of the cross-section at axial position ``x`` (end chamfers and grooves included)."""
        ax = np.abs(x)
        end = np.clip(self.chamfer - (self.half_length - ax), 0.0, self.chamfer)
        groove = self.groove_depth * np.clip(1.0 - ((ax - self.groove_x) / self.groove_half_width) ** 2, 0.0, 1.0)
        return self.radius - end - groove

    def outer_sdf(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return _sd_box(x, y, self.half_length, self.radius)

    def zone_sdf(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return _sd_box(x, y, self.half_length - 0.01, 0.6 * self.radius)

    def height(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        r = self._section_radius(x)
        inside = (np.abs(x) <= self.half_length) & (np.abs(y) < r)
        return np.where(inside, self.radius + np.sqrt(np.maximum(r * r - y * y, 0.0)), 0.0)

    def make_albedo(self, rng: np.random.Generator) -> Albedo:
        base = np.array([0.50, 0.36, 0.09]) * rng.uniform(0.94, 1.06)
        speckle = _ValueNoise(rng, self.bound_radius, 0.0025)
        mottle = _ValueNoise(rng, self.bound_radius, 0.025)
        period, phase = rng.uniform(0.005, 0.007), rng.uniform(0.0, 2 * math.pi)

        def albedo(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
            marks = np.sin(2 * math.pi * x / period + phase)  # turning marks across the axis
            dots = _smoothstep(1.6, 2.4, speckle(x, y))  # sparse dark casting pores
            return base * ((1.0 + 0.05 * marks + 0.07 * mottle(x, y)) * (1.0 - 0.35 * dots))[..., None]

        return albedo


_PARTS: dict[str, _Part] = {part.name: part for part in (_Disc(), _Bracket(), _Cylinder())}


@cache
def _part_area(category: str) -> float:
    """Footprint area of a part seen from above (m^2), holes excluded."""
    part = _PARTS[category]
    b = part.bound_radius
    g = np.linspace(-b, b, 600)
    x, y = np.meshgrid(g, g)
    return float((part.sdf(x, y) < 0).mean() * (2 * b) ** 2)


def _make_table_albedo(rng: np.random.Generator) -> Albedo:
    """Draw a per-sample variant of the table's matte, mottled surface."""
    base = np.array([0.25, 0.27, 0.26]) * rng.uniform(0.93, 1.07)
    mottle = _ValueNoise(rng, 0.3, 0.05, octaves=2)
    grain = _ValueNoise(rng, 0.3, 0.004)

    def albedo(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        return base * (1.0 + 0.08 * mottle(x, y) + 0.06 * grain(x, y))[..., None]

    return albedo
