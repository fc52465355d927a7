# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0

"""Writing the synthetic dataset to disk with MVTec 3D-AD's layout.

:func:`synthesize` checks its arguments, plans every sample of the requested categories, renders each
with :func:`~anomalib_cmdr.data.synthetic.rendering.render_sample` and writes it as
``rgb/NNN.png`` (8-bit RGB), ``xyz/NNN.tiff`` (``float32 (H, W, 3)``, holes ``(0, 0, 0)``) and, for
test samples, ``gt/NNN.png`` (0 or 255). The files carry no metadata, so the same arguments always
give the same bytes.

Example:
    >>> from anomalib_cmdr.data.synthetic import synthesize
    >>> root = synthesize("datasets/synthetic_3d", categories=["disc"], image_size=64)  # doctest: +SKIP
    >>> sorted(p.name for p in (root / "disc").iterdir())  # doctest: +SKIP
    ['test', 'train', 'validation']
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import tifffile
from PIL import Image
from tqdm import tqdm

from anomalib_cmdr.data.synthetic.defects import DEFECT_TYPES
from anomalib_cmdr.data.synthetic.parts import CATEGORIES
from anomalib_cmdr.data.synthetic.rendering import render_sample, sample_seed

logger = logging.getLogger(__name__)

__all__ = ["synthesize"]


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
    """Raise a ``ValueError`` naming ``name`` unless ``value`` is an integer (not a bool) >= ``minimum``."""
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
    """Write ``rgb/NNN.png``, ``xyz/NNN.tiff`` and, unless ``mask`` is ``None``, ``gt/NNN.png`` under ``folder``."""
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
        root (str | Path): Dataset root folder (created if missing).
        categories (Sequence[str] | None): Subset of :data:`~anomalib_cmdr.data.synthetic.parts.CATEGORIES`,
            or ``None`` for all. Defaults to ``None``.
        image_size (int): Width and height of every image in pixels (>= 32). Defaults to ``128``.
        seed (int): Dataset seed (>= 0); each sample's content depends only on
            ``(seed, category, split, defect type, index)`` and ``image_size``. Defaults to ``0``.
        num_train (int): Normal training samples per category. Defaults to ``20``.
        num_val (int): Normal validation samples per category. Defaults to ``5``.
        num_test_good (int): Normal test samples per category. Defaults to ``8``.
        num_test_defect (int): Test samples per defect type and category. Defaults to ``4``.
        defect_types (Sequence[str] | None): Subset of
            :data:`~anomalib_cmdr.data.synthetic.defects.DEFECT_TYPES`, or ``None`` for all.
            Defaults to ``None``.
        overwrite (bool): Rewrite the generator's files in existing, non-empty category folders.
            Defaults to ``False``.
        progress (bool): Show a tqdm progress bar over samples. Defaults to ``True``.

    Returns:
        Path: ``Path(root)``.

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
    settings = {
        "image_size": image_size,
        "seed": seed,
        "num_train": num_train,
        "num_val": num_val,
        "num_test_good": num_test_good,
        "num_test_defect": num_test_defect,
        "defect_types": sorted(defects),
    }

    plan: list[tuple[str, str, str, int]] = []  # (category, split, label, index)
    for category in selected:
        folder = root / category
        if folder.exists() and not folder.is_dir():
            msg = f"{folder} exists and is not a folder"
            raise FileExistsError(msg)
        if folder.is_dir() and any(folder.iterdir()) and not overwrite:
            check_generated_with(folder, settings)
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
    for category in sorted({category for category, *_ in plan}):
        (root / category / SETTINGS_FILE).write_text(json.dumps(settings, indent=2))
    return root


SETTINGS_FILE = ".synthetic3d.json"
"""The generator's settings, written into each category folder it creates."""


def check_generated_with(folder: Path, settings: dict[str, Any]) -> None:
    """Refuse to reuse a category folder generated with other settings.

    Args:
        folder (Path): The existing category folder.
        settings (dict[str, Any]): The settings asked for now.

    Raises:
        ValueError: If the folder's recorded settings differ (the message lists the differences). Folders
            without a record (user data, older versions) are accepted.

    Example:
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> _ = (folder / SETTINGS_FILE).write_text(json.dumps({"image_size": 128, "seed": 0}))
        >>> check_generated_with(folder, {"image_size": 128, "seed": 0})
        >>> check_generated_with(folder, {"image_size": 64, "seed": 0})  # doctest: +ELLIPSIS
        Traceback (most recent call last):
            ...
        ValueError: ... was generated with other settings (image_size: folder 128, asked 64); use another root, ...
    """
    path = folder / SETTINGS_FILE
    if not path.is_file():
        return
    try:
        recorded = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return
    differences = {k: (recorded.get(k), v) for k, v in settings.items() if recorded.get(k) != v}
    if differences:
        listed = ", ".join(f"{k}: folder {old!r}, asked {new!r}" for k, (old, new) in differences.items())
        msg = (
            f"{folder} was generated with other settings ({listed}); use another root, or regenerate it with "
            "overwrite=True (anomalib-cmdr synth --overwrite)."
        )
        raise ValueError(msg)
