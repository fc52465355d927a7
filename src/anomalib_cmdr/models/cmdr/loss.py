# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0

"""CMDR's training loss: masked cosine distance between predicted and target features.

Example:
    >>> import torch
    >>> x = torch.rand(1, 4, 8)
    >>> round(float(masked_cosine_loss(x, x, torch.ones(1, 4, dtype=torch.bool))), 6)  # float32 rounding aside
    0.0
"""

from __future__ import annotations

import torch
from torch.nn import functional


def masked_cosine_loss(prediction: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """``1 - mean cos(prediction, target)`` over the valid tokens of the whole batch.

    Args:
        prediction (torch.Tensor): ``(B, N, C)``.
        target (torch.Tensor): ``(B, N, C)``.
        valid (torch.Tensor): ``(B, N)`` boolean mask of the tokens that count.

    Returns:
        torch.Tensor: Scalar loss; ``0`` (with no gradient path through invalid tokens) when no token is valid.

    Example:
        >>> prediction = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])
        >>> target = torch.tensor([[[2.0, 0.0], [1.0, 0.0]]])
        >>> masked_cosine_loss(prediction, target, valid=torch.tensor([[True, False]]))
        tensor(0.)
        >>> masked_cosine_loss(prediction, target, valid=torch.tensor([[True, True]]))
        tensor(0.5000)
    """
    cosine = (functional.normalize(prediction, dim=-1, eps=1e-6) * functional.normalize(target, dim=-1, eps=1e-6)).sum(
        -1
    )
    count = valid.sum()
    if count == 0:
        return (cosine * 0).sum()
    return 1.0 - cosine[valid].sum() / count
