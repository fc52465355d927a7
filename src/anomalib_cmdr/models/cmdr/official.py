# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0

"""Import of the heads released by the CMDR-IAD authors.

Their training script saves four plain state dicts per category::

    <folder>/<category>/map2Dto3D_<category>_independent_<epochs>ep_<batch_size>bs.pth
    <folder>/<category>/map3Dto2D_<category>_independent_<epochs>ep_<batch_size>bs.pth
    <folder>/<category>/Dec2D_<category>_independent_<epochs>ep_<batch_size>bs.pth
    <folder>/<category>/Dec3D_<category>_independent_<epochs>ep_<batch_size>bs.pth

CMDR's heads carry the same attribute names, so the files load as they are.

Example:
    >>> from anomalib_cmdr import CMDR  # doctest: +SKIP
    >>> model = CMDR()  # doctest: +SKIP
    >>> load_official_heads(model, "checkpoints/CMDR_IAD_checkpoints", "bagel")  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from .heads import HEADS
from .torch_model import CMDRModel

HEAD_NAMES = tuple(head.attribute for head in HEADS)
"""The authors' head names, which prefix their checkpoint files."""


def official_head_path(folder: str | Path, category: str, head: str, epochs: int = 50, batch_size: int = 1) -> Path:
    """Path of one released head file.

    Args:
        folder (str | Path): The checkpoint folder (holding one sub-folder per category).
        category (str): e.g. ``"bagel"``.
        head (str): One of :data:`HEAD_NAMES`.
        epochs (int): Epochs in the file name. Defaults to ``50``.
        batch_size (int): Batch size in the file name. Defaults to ``1``.

    Returns:
        Path: The path (not checked).

    Example:
        >>> official_head_path("checkpoints/CMDR_IAD_checkpoints", "bagel", "Dec2D").as_posix()
        'checkpoints/CMDR_IAD_checkpoints/bagel/Dec2D_bagel_independent_50ep_1bs.pth'
    """
    return Path(folder) / category / f"{head}_{category}_independent_{epochs}ep_{batch_size}bs.pth"


def load_official_heads(
    model: nn.Module,
    folder: str | Path,
    category: str,
    epochs: int = 50,
    batch_size: int = 1,
) -> None:
    """Load the authors' four head checkpoints into a ``CMDR`` or ``CMDRModel``.

    Args:
        model (nn.Module): A ``CMDR`` (Lightning) or ``CMDRModel`` built with ``modality="rgb+xyz"`` and
            feature sizes matching the checkpoints (DINO ViT-B/8: 768, Point-MAE: 1152, 224x224 grid).
        folder (str | Path): Folder with one sub-folder per category.
        category (str): Category name.
        epochs (int): Epoch count in the file names. Defaults to ``50``.
        batch_size (int): Batch size in the file names. Defaults to ``1``.

    Raises:
        FileNotFoundError: If a head file is missing (the message lists the expected paths).
        ValueError: If a file does not match the model's head (missing/unexpected keys, shapes).

    Example:
        >>> from anomalib_cmdr import CMDR
        >>> model = CMDR()  # DINO ViT-B/8 + Point-MAE, 224x224: the authors' configuration  # doctest: +SKIP
        >>> load_official_heads(model, "checkpoints/CMDR_IAD_checkpoints", "bagel")  # doctest: +SKIP
        >>> load_official_heads(model, "checkpoints/CMDR_IAD_checkpoints", "tire", epochs=100)  # doctest: +SKIP
        Traceback (most recent call last):
            ...
        FileNotFoundError: Missing official head file(s): checkpoints/CMDR_IAD_checkpoints/tire/map2Dto3D_tire_...
    """
    torch_model = model.model if hasattr(model, "model") and isinstance(model.model, CMDRModel) else model
    if not isinstance(torch_model, CMDRModel):
        msg = f"load_official_heads expects a CMDR or CMDRModel, got {type(model).__name__}."
        raise TypeError(msg)
    heads = {head.attribute: getattr(torch_model, head.attribute) for head in HEADS}
    if any(module is None for module in heads.values()):
        present = sorted(name for name, module in heads.items() if module is not None)
        msg = (
            "The official checkpoints hold all four heads; "
            f"this model (modality={torch_model.modality!r}) has {present}."
        )
        raise ValueError(msg)
    paths = {name: official_head_path(folder, category, name, epochs, batch_size) for name in HEAD_NAMES}
    missing = [str(path) for path in paths.values() if not path.is_file()]
    if missing:
        msg = "Missing official head file(s): " + ", ".join(missing)
        raise FileNotFoundError(msg)
    for name, path in paths.items():
        state = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(state, dict):
            msg = f"{path} is not a state dict."
            raise ValueError(msg)
        try:
            heads[name].load_state_dict(state, strict=True)
        except RuntimeError as error:
            msg = f"{path} does not match CMDR's {name} head: {error}"
            raise ValueError(msg) from error
