# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0

"""Random states in the checkpoint: a training resumed with ``--ckpt_path`` ends where an uninterrupted one does.

Lightning restores weights, optimiser and loop counters, but not the random states: a resumed run draws other
dropout masks (the heads' attention and MLP dropout) and other data-loader seeds than the uninterrupted run.
:class:`RandomStateMixin` stores the Python, NumPy and torch (CPU and CUDA) random states in every checkpoint
and restores them when a fit resumes from one (not when a checkpoint is loaded for test, predict or export).
With the training order of :class:`~anomalib_cmdr.data.sampling.EpochShuffleSampler`, an interrupted and
resumed CPU run reaches the same weights (tested).

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


def random_states() -> dict[str, Any]:
    """The current random states of Python, NumPy and torch.

    Returns:
        dict[str, Any]: The states (``torch_cuda`` is an empty list without CUDA).
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
    """Save the random states in checkpoints; restore them when a fit resumes (mixed into the Lightning module)."""

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
