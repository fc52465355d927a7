# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0

"""The defects of the synthetic dataset: what each type looks like and how an instance is drawn.

Defects are visible in one modality or both (see :data:`DEFECT_TYPES`): geometry-only defects (dent,
bump) deform only the surface that produces ``xyz`` (the RGB is rendered from the nominal surface),
appearance-only defects (stain, discoloration) change only the albedo, and the others (crack, missing
chunk) do both. A builder of :data:`_DEFECT_BUILDERS` draws one :class:`_Defect` for a part category from
its own random stream; everything is in part coordinates (m).

Example:
    >>> import numpy as np
    >>> defect = _DEFECT_BUILDERS["stain"]("disc", np.random.default_rng(0), 1e-3)
    >>> defect.name, defect.deform is None, DEFECT_TYPES[defect.name]
    ('stain', True, 'appearance')
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from anomalib_cmdr.data.synthetic.parts import _PARTS, _Part, _part_area
from anomalib_cmdr.data.synthetic.shapes import _length, _rotate, _smoothstep, _ValueNoise

__all__ = ["DEFECT_TYPES"]

DEFECT_TYPES: dict[str, str] = {
    "dent": "geometry",
    "bump": "geometry",
    "stain": "appearance",
    "discoloration": "appearance",
    "crack": "both",
    "missing_chunk": "both",
}
"""Defect type -> the modality that shows it: ``"geometry"``, ``"appearance"`` or ``"both"``."""


@dataclass(frozen=True)
class _Defect:
    """A sampled defect instance.

    Attributes:
        name (str): Defect type (a key of :data:`DEFECT_TYPES`).
        footprint (Callable): ``(x, y, nominal_height) -> bool``: where the defect is, for the gt mask.
        deform (Callable | None): ``(x, y, height) -> height`` for geometry defects, else ``None``.
            Defaults to ``None``.
        recolor (Callable | None): ``(x, y, albedo) -> albedo`` for appearance defects, else ``None``.
            Defaults to ``None``.
    """

    name: str
    footprint: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
    deform: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray] | None = None
    recolor: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray] | None = None


class _Blob:
    """An irregular elliptical region: ``g(x, y) < 1`` inside, ``g`` grows like a normalised radius.

    Args:
        rng (np.random.Generator): Randomness for the boundary roughness.
        center (np.ndarray): Centre in part coordinates (m).
        radius (float): Radius of the circle of equal area (m).
        aspect (float): Ratio of the major to the minor axis.
        angle (float): Orientation of the major axis (rad).
        roughness (float): Relative amplitude of the boundary irregularity. Defaults to ``0.2``.
    """

    def __init__(
        self,
        rng: np.random.Generator,
        center: np.ndarray,
        radius: float,
        aspect: float,
        angle: float,
        roughness: float = 0.2,
    ) -> None:
        self.center, self.angle, self.roughness = center, angle, roughness
        self.a, self.b = radius * math.sqrt(aspect), radius / math.sqrt(aspect)
        self.noise = _ValueNoise(rng, 0.15, max(radius * 0.7, 2e-3))

    def g(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Normalised, roughened elliptical radius around the blob centre."""
        u, v = _rotate(x - self.center[0], y - self.center[1], -self.angle)
        g = _length(u / self.a, v / self.b)
        near = g < 2.0  # only there can the roughness matter (all uses saturate beyond g = 1.3)
        g[near] *= 1.0 + self.roughness * self.noise(x[near], y[near])
        return g


def _place(rng: np.random.Generator, part: _Part, clearance: float) -> np.ndarray:
    """Draw a point of the part's defect zone at least ``clearance`` inside it (shrinking if needed)."""
    b = part.bound_radius
    while True:
        for _ in range(8):
            pts = rng.uniform(-b, b, size=(256, 2))
            ok = part.zone_sdf(pts[:, 0], pts[:, 1]) < -clearance
            if ok.any():
                return pts[int(np.argmax(ok))]
        clearance *= 0.8


def _boundary_point(rng: np.random.Generator, part: _Part) -> np.ndarray:
    """Draw a point on the part's outline (footprints are star-shaped around the origin)."""
    angle = rng.uniform(0.0, 2 * math.pi)
    direction = np.array([math.cos(angle), math.sin(angle)])
    lo, hi = 0.0, part.bound_radius * 1.1
    for _ in range(40):
        mid = 0.5 * (lo + hi)
        p = mid * direction
        if part.outer_sdf(p[:1], p[1:])[0] < 0:
            lo = mid
        else:
            hi = mid
    return lo * direction


def _defect_area(rng: np.random.Generator, category: str, low: float = 0.015, high: float = 0.04) -> float:
    """Draw a defect area as a fraction (between ``low`` and ``high``) of the part's area (m^2)."""
    return rng.uniform(low, high) * _part_area(category)


def _relief(sign: float) -> Callable[[str, np.random.Generator, float], _Defect]:
    """Builder of a smooth dent (``sign=-1``) or bump (``sign=+1``) of 1-3 mm."""

    def build(category: str, rng: np.random.Generator, pixel_size: float) -> _Defect:
        part = _PARTS[category]
        radius = math.sqrt(_defect_area(rng, category) / math.pi)
        aspect, angle = rng.uniform(1.0, 1.6), rng.uniform(0.0, math.pi)
        amplitude = rng.uniform(1e-3, 3e-3)
        center = _place(rng, part, 1.3 * radius * math.sqrt(aspect))
        blob = _Blob(rng, center, radius, aspect, angle, roughness=0.1)

        def deform(x: np.ndarray, y: np.ndarray, h: np.ndarray) -> np.ndarray:
            # Full depth over the inner part of the footprint, tapering to 0 at g = 1.3 (25 % at the mask edge).
            profile = 0.5 * (1.0 + np.cos(math.pi * np.clip((blob.g(x, y) - 0.4) / 0.9, 0.0, 1.0)))
            return np.where(h > 0, np.maximum(h + sign * amplitude * profile, 0.0), h)

        return _Defect(
            name="bump" if sign > 0 else "dent",
            footprint=lambda x, y, h: blob.g(x, y) < 1.0,
            deform=deform,
        )

    return build


def _build_stain(category: str, rng: np.random.Generator, pixel_size: float) -> _Defect:
    """A dark oily/rusty blob blended over the albedo."""
    part = _PARTS[category]
    radius = math.sqrt(_defect_area(rng, category) / math.pi)
    aspect, angle = rng.uniform(1.0, 2.0), rng.uniform(0.0, math.pi)
    color = np.array([0.20, 0.13, 0.06]) * rng.uniform(0.7, 1.3)
    alpha = rng.uniform(0.6, 0.85)
    blob = _Blob(rng, _place(rng, part, 1.2 * radius * math.sqrt(aspect)), radius, aspect, angle, roughness=0.3)

    def recolor(x: np.ndarray, y: np.ndarray, albedo: np.ndarray) -> np.ndarray:
        w = (alpha * _smoothstep(1.15, 0.85, blob.g(x, y)))[..., None]
        return albedo * (1.0 - w) + color * w

    return _Defect(name="stain", footprint=lambda x, y, h: blob.g(x, y) < 1.0, recolor=recolor)


_TINTS = np.array([[1.35, 1.0, 0.45], [0.6, 0.8, 1.5], [1.4, 0.65, 0.6]])  # yellowing, bluing, reddening


def _build_discoloration(category: str, rng: np.random.Generator, pixel_size: float) -> _Defect:
    """An elongated streak whose hue is shifted (heat tint, oxidation)."""
    part = _PARTS[category]
    radius = math.sqrt(_defect_area(rng, category) / math.pi)
    aspect, angle = rng.uniform(2.5, 5.0), rng.uniform(0.0, math.pi)
    tint = _TINTS[rng.integers(len(_TINTS))] * rng.uniform(0.9, 1.1)
    alpha = rng.uniform(0.7, 1.0)
    blob = _Blob(rng, _place(rng, part, 1.15 * radius * math.sqrt(aspect)), radius, aspect, angle, roughness=0.15)

    def recolor(x: np.ndarray, y: np.ndarray, albedo: np.ndarray) -> np.ndarray:
        w = (alpha * _smoothstep(1.15, 0.85, blob.g(x, y)))[..., None]
        return albedo * (1.0 + w * (tint - 1.0))

    return _Defect(name="discoloration", footprint=lambda x, y, h: blob.g(x, y) < 1.0, recolor=recolor)


def _polyline_distance(x: np.ndarray, y: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Distance from ``(x, y)`` to the polyline through ``points`` (shape ``(K, 2)``)."""
    dist = np.full(np.shape(x), np.inf)
    for (ax, ay), (bx, by) in itertools.pairwise(points):
        ex, ey = bx - ax, by - ay
        s = np.clip(((x - ax) * ex + (y - ay) * ey) / (ex * ex + ey * ey), 0.0, 1.0)
        dist = np.minimum(dist, _length(x - ax - s * ex, y - ay - s * ey))
    return dist


def _crack_path(rng: np.random.Generator, part: _Part, length: float, segments: int, clearance: float) -> np.ndarray:
    """Draw a wandering polyline ``(segments + 1, 2)`` at least ``clearance`` inside the part's defect zone.

    The path is shortened until it fits.
    """
    while True:
        for _ in range(50):
            start = _place(rng, part, clearance)
            heading = rng.uniform(0.0, 2 * math.pi) + np.cumsum(rng.normal(0.0, 0.45, segments))
            steps = (length / segments) * np.stack([np.cos(heading), np.sin(heading)], axis=1)
            points = np.vstack([start, start + np.cumsum(steps, axis=0)])
            probe = points[:-1, None, :] + np.linspace(0, 1, 6)[None, :, None] * np.diff(points, axis=0)[:, None, :]
            if np.all(part.zone_sdf(probe[..., 0], probe[..., 1]) < -clearance):
                return points
        length *= 0.8


def _build_crack(category: str, rng: np.random.Generator, pixel_size: float) -> _Defect:
    """A thin wandering groove, 2-4 mm deep, about 2.5 pixels wide and dark in the RGB."""
    part = _PARTS[category]
    half_width = max(2e-3, 1.25 * pixel_size)
    length = min(_defect_area(rng, category, 0.01, 0.025) / (2 * half_width), 0.8 * part.bound_radius)
    depth = rng.uniform(2e-3, 4e-3)
    points = _crack_path(rng, part, length, int(rng.integers(4, 7)), half_width + 1e-3)

    def groove(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return np.clip(1.5 * (1.0 - _polyline_distance(x, y, points) / half_width), 0.0, 1.0)

    def deform(x: np.ndarray, y: np.ndarray, h: np.ndarray) -> np.ndarray:
        return np.where(h > 0, np.maximum(h - depth * groove(x, y), 0.0), h)

    def recolor(x: np.ndarray, y: np.ndarray, albedo: np.ndarray) -> np.ndarray:
        return albedo * (1.0 - 0.8 * groove(x, y))[..., None]

    return _Defect(
        name="crack",
        footprint=lambda x, y, h: _polyline_distance(x, y, points) < half_width,
        deform=deform,
        recolor=recolor,
    )


def _build_missing_chunk(category: str, rng: np.random.Generator, pixel_size: float) -> _Defect:
    """Material broken off at the outline: the table shows through, with a rough, dull fracture face."""
    part = _PARTS[category]
    radius = math.sqrt(2 * _defect_area(rng, category) / math.pi)  # about half the blob lies on the part
    blob = _Blob(rng, _boundary_point(rng, part), radius, rng.uniform(1.0, 1.5), rng.uniform(0, math.pi), 0.25)
    rough = _ValueNoise(rng, 0.15, 1.5e-3)
    top = part.max_height

    def floor(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return top * np.clip((blob.g(x, y) - 0.6) / 0.4, 0.0, 1.0) ** 1.5

    def deform(x: np.ndarray, y: np.ndarray, h: np.ndarray) -> np.ndarray:
        return np.minimum(h, floor(x, y))

    def recolor(x: np.ndarray, y: np.ndarray, albedo: np.ndarray) -> np.ndarray:
        fracture = (blob.g(x, y) < 1.0)[..., None]
        dull = albedo.mean(axis=-1, keepdims=True) * (0.75 + 0.15 * rough(x, y))[..., None]
        return np.where(fracture, 0.5 * albedo + 0.5 * dull, albedo)

    def footprint(x: np.ndarray, y: np.ndarray, h: np.ndarray) -> np.ndarray:
        return (blob.g(x, y) < 1.0) & (floor(x, y) < h - 5e-4)

    return _Defect(name="missing_chunk", footprint=footprint, deform=deform, recolor=recolor)


_DEFECT_BUILDERS: dict[str, Callable[[str, np.random.Generator, float], _Defect]] = {
    "dent": _relief(-1.0),
    "bump": _relief(+1.0),
    "stain": _build_stain,
    "discoloration": _build_discoloration,
    "crack": _build_crack,
    "missing_chunk": _build_missing_chunk,
}
