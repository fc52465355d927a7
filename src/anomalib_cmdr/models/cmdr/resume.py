# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0

"""Checkpoints: random states for resumed trainings, and a clear error for a checkpoint of another model.

A training resumed with ``--ckpt_path`` ends where an uninterrupted one does:

Lightning restores weights, optimiser and loop counters, but not the random states: a resumed run draws other
dropout masks (the heads' attention and MLP dropout) and other data-loader seeds than the uninterrupted run.
:class:`RandomStateMixin` stores the Python, NumPy and torch (CPU and CUDA) random states in every checkpoint
and restores them when a fit resumes from one (not when a checkpoint is loaded for test, predict or export).
With the training order of :class:`~anomalib_cmdr.data.sampling.EpochShuffleSampler`, an interrupted and
resumed CPU run reaches the same weights (tested).

:func:`check_checkpoint` refuses, before any weight is loaded, a checkpoint written by another anomalib model or
by a CMDR of another architecture (e.g. ``anomalib test --model CMDR --ckpt_path`` without the training's
configuration), naming what differs, instead of Lightning's list of missing and unexpected weights.

Example:
    >>> states = random_states()
    >>> sorted(states)
    ['numpy', 'python', 'torch', 'torch_cuda']
    >>> set_random_states(states)
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch

KEY = "anomalib_cmdr_random_states"
ARCHITECTURE = (
    "modality",
    "rgb_backbone",
    "rgb_layers",
    "rgb_model_kwargs",
    "xyz_backbone",
    "xyz_model_kwargs",
    "image_size",
    "grid_size",
    "d3d_variant",
    "calibration",
)
"""CMDR's hyper-parameters that decide the checkpoint's weights (all must match to load it)."""


def check_checkpoint(checkpoint: dict[str, Any], hparams: dict[str, Any], path: str | None = None) -> None:
    """Refuse a checkpoint that is not of a CMDR with this architecture.

    Args:
        checkpoint (dict[str, Any]): The loaded checkpoint (Lightning's dict).
        hparams (dict[str, Any]): The model's hyper-parameters.
        path (str | None): The checkpoint's file, for the message. Defaults to ``None``.

    Raises:
        ValueError: If the checkpoint was written by another model, or by a CMDR whose architecture differs
            (the message lists the differences).

    Example:
        >>> saved = {"hyper_parameters": {"backbone": "resnet18", "layers": ["layer1"]}}
        >>> check_checkpoint(saved, {"modality": "rgb"})  # doctest: +ELLIPSIS
        Traceback (most recent call last):
            ...
        ValueError: the checkpoint is not a CMDR checkpoint (its hyper-parameters are backbone, layers): ...
    """
    name = path or "the checkpoint"
    saved = checkpoint.get("hyper_parameters")
    if saved is None:
        return  # a bare weights checkpoint: Lightning's state-dict check decides
    if "xyz_backbone" not in saved or "modality" not in saved:
        keys = ", ".join(sorted(saved)) or "none"
        msg = (
            f"{name} is not a CMDR checkpoint (its hyper-parameters are {keys}): test it with the model that "
            "wrote it (--model ...), or pass a CMDR checkpoint."
        )
        raise ValueError(msg)
    differences = [
        f"{key}: checkpoint {saved.get(key)!r}, this model {hparams.get(key)!r}"
        for key in ARCHITECTURE
        if key in saved and key in hparams and _normalise(saved[key]) != _normalise(hparams[key])
    ]
    if differences:
        msg = (
            f"{name} holds a CMDR of another architecture ({'; '.join(differences)}): build the model with the "
            "training's configuration (e.g. -c the config you trained with), or load it with CMDR.load_from_checkpoint."
        )
        raise ValueError(msg)


def _normalise(value: Any) -> Any:
    """Hyper-parameters as plain comparable values (tuples vs lists, mappings)."""
    if isinstance(value, list | tuple):
        return [_normalise(item) for item in value]
    if isinstance(value, dict):
        return {key: _normalise(item) for key, item in value.items()}
    return value


def random_states() -> dict[str, Any]:
    """The current random states of Python, NumPy and torch.

    Returns:
        dict[str, Any]: The states (``torch_cuda`` is an empty list without CUDA).

    Example:
        >>> states = random_states()
        >>> first = torch.rand(2)
        >>> set_random_states(states)
        >>> torch.equal(torch.rand(2), first)
        True
    """
    name, keys, position, has_gauss, cached = np.random.get_state()
    return {  # plain types and tensors only: checkpoints load with torch.load(weights_only=True)
        "python": random.getstate(),
        "numpy": [str(name), torch.from_numpy(keys.astype(np.int64)), int(position), int(has_gauss), float(cached)],
        "torch": torch.get_rng_state(),
        "torch_cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def set_random_states(states: dict[str, Any]) -> None:
    """Restore states from :func:`random_states`.

    Args:
        states (dict[str, Any]): The states.

    Example:
        >>> states = random_states()
        >>> first = (random.random(), float(np.random.rand()), float(torch.rand(1)))
        >>> set_random_states(states)
        >>> (random.random(), float(np.random.rand()), float(torch.rand(1))) == first
        True
    """
    random.setstate(states["python"])
    name, keys, position, has_gauss, cached = states["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), position, has_gauss, cached))
    torch.set_rng_state(states["torch"])
    if (
        states.get("torch_cuda")
        and torch.cuda.is_available()
        and len(states["torch_cuda"]) == torch.cuda.device_count()
    ):
        torch.cuda.set_rng_state_all(states["torch_cuda"])


class RandomStateMixin:
    """Save the random states in checkpoints; restore them when a fit resumes (mixed into the Lightning module).

    Example:
        >>> from lightning.pytorch import LightningModule
        >>> class Model(RandomStateMixin, LightningModule):
        ...     pass
        >>> checkpoint = {}
        >>> Model().on_save_checkpoint(checkpoint)
        >>> sorted(checkpoint[KEY])
        ['numpy', 'python', 'torch', 'torch_cuda']
    """

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Add the random states."""
        checkpoint[KEY] = random_states()
        super().on_save_checkpoint(checkpoint)  # type: ignore[misc]

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Restore the random states when a training resumes from ``checkpoint``."""
        trainer = getattr(self, "_trainer", None)
        fitting = trainer is not None and getattr(trainer.state.fn, "value", None) == "fit"
        if fitting and KEY in checkpoint:
            set_random_states(checkpoint[KEY])
        super().on_load_checkpoint(checkpoint)  # type: ignore[misc]
