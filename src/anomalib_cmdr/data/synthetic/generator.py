"""Deterministic synthetic RGB + 3D anomaly-detection dataset, laid out exactly like MVTec 3D-AD.

Every sample is one machined part lying on a slightly tilted table, seen from above by a pinhole
camera. The scene is a height field over the table plane (the part's nominal height, optionally
deformed by a defect); each pixel's ray is marched through it (vectorised numpy, no per-pixel
Python loop), which gives an *organized* point cloud aligned with the RGB image:

* ``rgb``: Lambertian shading of a procedural, per-sample texture, with cast shadows, light
  direction/intensity jitter and a little sensor noise.
* ``xyz``: the 3D point seen by each pixel in the camera frame (metres, x right, y down, z forward),
  with gaussian depth noise and sensor holes (random blobs, grazing-angle and occlusion dropouts)
  stored as exactly ``(0, 0, 0)``.
* ``gt``: the defect's footprint in the image (0 or 255).

Defects are visible in one modality or both (see :data:`DEFECT_TYPES`): geometry-only defects
deform only the surface that produces ``xyz`` (the RGB is rendered from the nominal surface),
appearance-only defects change only the albedo, and the others do both.

Each sample draws its randomness from ``np.random.SeedSequence(sample_seed(...))``, so a sample is
bit-identical whatever else is requested. Nuisances (pose, light, texture, noise, holes) and the
defect use two independent child streams, so :func:`render_sample` can render the very same
sample with and without its defect.

Example:
    >>> from anomalib_cmdr.data.synthetic import synthesize
    >>> root = synthesize("datasets/synthetic_3d", categories=["disc"], image_size=64)  # doctest: +SKIP
    >>> sorted(p.name for p in (root / "disc").iterdir())  # doctest: +SKIP
    ['test', 'train', 'validation']
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import tifffile
from PIL import Image
from scipy import ndimage
from tqdm import tqdm

logger = logging.getLogger(__name__)

__all__ = [
    "CATEGORIES",
    "DEFECT_TYPES",
    "SPLITS",
    "camera_intrinsics",
    "render_part_mask",
    "render_sample",
    "sample_seed",
    "synthesize",
]

CATEGORIES: tuple[str, ...] = ("disc", "bracket", "cylinder")
"""Part categories, each with its own geometry and surface texture."""

DEFECT_TYPES: dict[str, str] = {
    "dent": "geometry",
    "bump": "geometry",
    "stain": "appearance",
    "discoloration": "appearance",
    "crack": "both",
    "missing_chunk": "both",
}
"""Defect type -> the modality that shows it: ``"geometry"``, ``"appearance"`` or ``"both"``."""

SPLITS: tuple[str, ...] = ("train", "validation", "test")
"""MVTec 3D-AD split folder names."""

# Stable ids used in the per-sample seed; never renumber them (that would change every file).
_CATEGORY_IDS = {"disc": 1, "bracket": 2, "cylinder": 3}
_SPLIT_IDS = {"train": 0, "validation": 1, "test": 2}
_DEFECT_IDS = {"good": 0, "dent": 1, "bump": 2, "stain": 3, "discoloration": 4, "crack": 5, "missing_chunk": 6}

FOCAL_FACTOR = 1.2
"""Focal length in pixels divided by the image size (fx = fy = FOCAL_FACTOR * image_size)."""

_TABLE_DISTANCE = 0.42  # nominal camera-to-table distance along the optical axis (m)
_WALL = 3e-4  # horizontal width of the steep skirt that closes every extruded side wall (m)
_FD_STEP = 2e-4  # finite-difference step for surface normals (m)
_MARCH_STEP = 1.5e-3  # vertical ray-marching step (m)
_BUMP_HEADROOM = 5e-3  # room above the part's nominal top for bumps (m)
_ON_PART = 2e-4  # a hit higher than this above the table is on the part (m)


# ----------------------------------------------------------------------------------------------
# small geometric helpers
# ----------------------------------------------------------------------------------------------
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
        sdf: Signed distance to the footprint (negative inside).
        height: Top height (m).
        chamfer: Chamfer size (m).

    Returns:
        The height field; outside the footprint it drops to 0 over a narrow skirt of width ``_WALL``.
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
        rng: Source of the lattice values.
        extent: The field is defined on ``[-extent, extent]^2`` (m); outside it is clamped.
        cell: Lattice spacing of the first octave (m).
        octaves: Number of octaves, each with half the spacing and half the amplitude.
        stretch: Lattice spacing along x is ``cell * stretch`` (anisotropic, brushed-looking noise).
    """

    def __init__(self, rng: np.random.Generator, extent: float, cell: float, octaves: int = 1, stretch: float = 1.0):
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


Albedo = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
"""Maps surface points ``(x, y, z)`` (shape ``S``; z: height above the table) to linear RGB (shape ``S + (3,)``)."""


# ----------------------------------------------------------------------------------------------
# parts
# ----------------------------------------------------------------------------------------------
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


# ----------------------------------------------------------------------------------------------
# defects (all in part coordinates)
# ----------------------------------------------------------------------------------------------
HeightFn = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class _Defect:
    """A sampled defect instance.

    Attributes:
        name: Defect type (a key of :data:`DEFECT_TYPES`).
        footprint: ``(x, y, nominal_height) -> bool``: where the defect is, for the gt mask.
        deform: ``(x, y, height) -> height`` for geometry defects, else ``None``.
        recolor: ``(x, y, albedo) -> albedo`` for appearance defects, else ``None``.
    """

    name: str
    footprint: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
    deform: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray] | None = None
    recolor: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray] | None = None


class _Blob:
    """An irregular elliptical region: ``g(x, y) < 1`` inside, ``g`` grows like a normalised radius.

    Args:
        rng: Randomness for the boundary roughness.
        center: Centre in part coordinates (m).
        radius: Radius of the circle of equal area (m).
        aspect: Ratio of the major to the minor axis.
        angle: Orientation of the major axis (rad).
        roughness: Relative amplitude of the boundary irregularity.
    """

    def __init__(
        self,
        rng: np.random.Generator,
        center: np.ndarray,
        radius: float,
        aspect: float,
        angle: float,
        roughness: float = 0.2,
    ):
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


# ----------------------------------------------------------------------------------------------
# scene, ray casting, shading and sensing
# ----------------------------------------------------------------------------------------------
def camera_intrinsics(image_size: int) -> tuple[float, float, float, float]:
    """Pinhole intrinsics ``(fx, fy, cx, cy)`` of the synthetic camera, in pixels.

    Pixel ``(u, v)`` (column, row) looks along ``((u + 0.5 - cx) / fx, (v + 0.5 - cy) / fy, 1)``.

    Args:
        image_size: Image width and height in pixels.

    Returns:
        ``(fx, fy, cx, cy)``.

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


# ----------------------------------------------------------------------------------------------
# sample-level API
# ----------------------------------------------------------------------------------------------
def sample_seed(seed: int, category: str, split: str, index: int, defect: str | None = None) -> tuple[int, ...]:
    """Entropy tuple of one sample: ``(seed, category id, split id, defect id, index)``.

    Args:
        seed: Dataset seed.
        category: One of :data:`CATEGORIES`.
        split: One of :data:`SPLITS`.
        index: Sample index within its folder.
        defect: Defect type of a test sample, or ``None`` / ``"good"`` for normal samples.

    Returns:
        A tuple for :func:`render_sample` (and ``np.random.SeedSequence``).

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
        category: One of :data:`CATEGORIES`.
        rng_seed: Entropy of the sample, e.g. from :func:`sample_seed`.
        image_size: Image width and height in pixels.
        defect: A key of :data:`DEFECT_TYPES`, or ``None`` for the defect-free version.

    Returns:
        ``(rgb, xyz, mask)``: ``uint8 (H, W, 3)``, ``float32 (H, W, 3)`` (holes are exactly 0) and
        ``bool (H, W)`` (the defect's footprint; all ``False`` without a defect).

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
        category: One of :data:`CATEGORIES`.
        rng_seed: Entropy of the sample, e.g. from :func:`sample_seed`.
        image_size: Image width and height in pixels.

    Returns:
        ``bool (H, W)``.

    Example:
        >>> bool(render_part_mask("bracket", sample_seed(0, "bracket", "train", 0), 64).mean() > 0.1)
        True
    """
    return _render(category, rng_seed, image_size, None)[3]


# ----------------------------------------------------------------------------------------------
# dataset writer
# ----------------------------------------------------------------------------------------------
def _choices(name: str, values: Sequence[str] | None, valid: Sequence[str]) -> list[str]:
    """Validate a selection (``None`` = all, a bare string = one item); keeps ``valid``'s order."""
    if values is None:
        return list(valid)
    if isinstance(values, str):
        values = [values]
    unknown = [v for v in values if v not in valid]
    if unknown:
        msg = f"{name}: unknown value(s) {unknown}; valid values are {list(valid)}"
        raise ValueError(msg)
    if not values:
        msg = f"{name}: empty selection; give None for all of {list(valid)}"
        raise ValueError(msg)
    return [v for v in valid if v in values]


def _check_int(name: str, value: int, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        msg = f"{name} must be an integer, got {value!r}"
        raise ValueError(msg)
    if value < minimum:
        msg = f"{name} must be >= {minimum}, got {value}"
        raise ValueError(msg)


def _save_png(path: Path, array: np.ndarray) -> None:
    """Write an 8-bit PNG without any metadata chunk (bit-reproducible; fast, light compression)."""
    Image.fromarray(array).save(path, format="PNG", compress_level=1)


def _write_sample(folder: Path, index: int, rgb: np.ndarray, xyz: np.ndarray, mask: np.ndarray | None) -> None:
    name = f"{index:03d}"
    for sub in ("rgb", "xyz") if mask is None else ("rgb", "xyz", "gt"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    _save_png(folder / "rgb" / f"{name}.png", rgb)
    tifffile.imwrite(folder / "xyz" / f"{name}.tiff", xyz, photometric="rgb", metadata=None)
    if mask is not None:
        _save_png(folder / "gt" / f"{name}.png", mask.astype(np.uint8) * 255)


def synthesize(
    root: str | Path,
    categories: Sequence[str] | None = None,
    image_size: int = 128,
    seed: int = 0,
    num_train: int = 20,
    num_val: int = 5,
    num_test_good: int = 8,
    num_test_defect: int = 4,
    defect_types: Sequence[str] | None = None,
    overwrite: bool = False,
    progress: bool = True,
) -> Path:
    """Write a synthetic RGB + 3D dataset with MVTec 3D-AD's layout.

    ``<root>/<category>/{train,validation}/good/{rgb/NNN.png, xyz/NNN.tiff}`` and
    ``<root>/<category>/test/{good,<defect_type>}/{rgb/NNN.png, xyz/NNN.tiff, gt/NNN.png}``.
    A category folder that already exists and is not empty is left alone (with a warning) unless
    ``overwrite`` is set, in which case only the generator's own files are rewritten: nothing is
    ever deleted.

    Args:
        root: Dataset root folder (created if missing).
        categories: Subset of :data:`CATEGORIES` (default: all).
        image_size: Width and height of every image in pixels (>= 32).
        seed: Dataset seed (>= 0); each sample's content depends only on
            ``(seed, category, split, defect type, index)`` and ``image_size``.
        num_train: Normal training samples per category.
        num_val: Normal validation samples per category.
        num_test_good: Normal test samples per category.
        num_test_defect: Test samples per defect type and category.
        defect_types: Subset of :data:`DEFECT_TYPES` (default: all).
        overwrite: Rewrite the generator's files in existing, non-empty category folders.
        progress: Show a tqdm progress bar over samples.

    Returns:
        ``Path(root)``.

    Raises:
        ValueError: If an argument is invalid (the message names it).
        FileExistsError: If ``<root>/<category>`` exists but is not a folder.

    Example:
        >>> root = synthesize("/tmp/synthetic_3d", categories=["disc"], image_size=64, num_train=2,
        ...                   num_val=1, num_test_good=1, num_test_defect=1, progress=False)  # doctest: +SKIP
        >>> (root / "disc" / "test" / "crack" / "gt" / "000.png").is_file()  # doctest: +SKIP
        True
    """
    selected = _choices("categories", categories, CATEGORIES)
    defects = _choices("defect_types", defect_types, tuple(DEFECT_TYPES))
    _check_int("image_size", image_size, 32)
    _check_int("seed", seed, 0)
    for name, value in (
        ("num_train", num_train),
        ("num_val", num_val),
        ("num_test_good", num_test_good),
        ("num_test_defect", num_test_defect),
    ):
        _check_int(name, value, 0)
    root = Path(root)

    plan: list[tuple[str, str, str, int]] = []  # (category, split, label, index)
    for category in selected:
        folder = root / category
        if folder.exists() and not folder.is_dir():
            msg = f"{folder} exists and is not a folder"
            raise FileExistsError(msg)
        if folder.is_dir() and any(folder.iterdir()) and not overwrite:
            logger.warning(
                "%s already exists and is not empty: skipping category %r (overwrite=False)", folder, category
            )
            continue
        counts = [("train", "good", num_train), ("validation", "good", num_val), ("test", "good", num_test_good)]
        counts += [("test", defect, num_test_defect) for defect in defects]
        plan += [(category, split, label, i) for split, label, count in counts for i in range(count)]

    for category, split, label, index in tqdm(plan, desc="synthesize", unit="sample", disable=not progress):
        defect = None if label == "good" else label
        rgb, xyz, mask = render_sample(category, sample_seed(seed, category, split, index, defect), image_size, defect)
        _write_sample(root / category / split / label, index, rgb, xyz, mask if split == "test" else None)
    return root
