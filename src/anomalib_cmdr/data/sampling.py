# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0

"""A training order that depends only on a seed and the epoch, so that a resumed run sees the same batches.

anomalib's datamodules shuffle with ``shuffle=True``: each epoch's order is drawn from the global random
state, which a run resumed from a checkpoint (``--ckpt_path``) does not restore, so its later epochs see other
batches than the uninterrupted run, and end with other weights. :class:`EpochShuffleSampler` draws epoch ``e``'s
order from ``seed + e``; Lightning calls :meth:`~EpochShuffleSampler.set_epoch` at the start of every epoch
(under DDP it uses its own ``DistributedSampler``, which works the same way).

Example:
    >>> sampler = EpochShuffleSampler(range(5), seed=0)
    >>> sampler.set_epoch(1)
    >>> first = list(sampler)
    >>> sampler.set_epoch(1)
    >>> list(sampler) == first and sorted(first) == [0, 1, 2, 3, 4]
    True
"""

from __future__ import annotations

from collections.abc import Iterator, Sized

import torch
from torch.utils.data import Sampler


class EpochShuffleSampler(Sampler[int]):
    """Random permutation of the dataset's indices, drawn from ``seed + epoch``.

    Args:
        data_source (Sized): The dataset.
        seed (int): Base seed.

    Example:
        >>> sampler = EpochShuffleSampler(range(4), seed=7)
        >>> sampler.set_epoch(0)
        >>> epoch0 = list(sampler)
        >>> sampler.set_epoch(0)
        >>> list(sampler) == epoch0, len(sampler)
        (True, 4)
    """

    def __init__(self, data_source: Sized, seed: int) -> None:
        self.data_source = data_source
        self.seed = int(seed)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose order :meth:`__iter__` gives (Lightning calls this every epoch).

        Args:
            epoch (int): The epoch.
        """
        self.epoch = int(epoch)

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        return iter(torch.randperm(len(self.data_source), generator=generator).tolist())

    def __len__(self) -> int:
        return len(self.data_source)
