# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0

"""Serving a sample that lacks a modality with the branch that remains, on the fused score scale.

An ``rgb+xyz`` CMDR has a reconstruction head per modality, so a part whose 3D scan failed can still be
judged from its RGB image (D2D) and a part whose camera frame is missing from its point cloud (D3D). Each
sample is routed to a *branch*:

============  ==========================================================  =================================
branch        when                                                        map
============  ==========================================================  =================================
``rgb+xyz``   RGB image and at least one valid 3D point (the paper)       the fusion of the four heads
``rgb``       no point cloud, or one without a valid point                ``d2r`` on every pixel
``xyz``       no RGB image (``rgb=None``, or an image that is all NaN)    ``d3r`` on the valid pixels
``rgb+xyz``   neither                                                     all zero, score 0
============  ==========================================================  =================================

Each branch's map is smoothed and normalised like the fused map (see
:class:`~anomalib_cmdr.models.cmdr.anomaly_map.CMDRAnomalyMap`). Its image score has another scale, so
:class:`BranchScoreAlignment` maps it onto the fused one: on the normal samples of the validation set, which
have both modalities, the score of every branch is computed; a branch score ``s`` then becomes

    ``mean_fused + (s - mean_branch) * std_fused / std_branch``

so that normal parts have the same mean and spread of scores whichever branch judged them, and the
thresholds learned on fused scores apply to all. The statistics are saved in the checkpoint and exported
with the model.

Example:
    >>> import torch
    >>> alignment = BranchScoreAlignment()
    >>> sums = alignment.new_sums()
    >>> alignment.accumulate(sums, torch.tensor([[1.0, 3.0], [10.0, 30.0], [5.0, 5.5]]))
    >>> alignment.finalize(sums)
    True
    >>> alignment(torch.tensor([[2.0], [20.0], [5.25]]))[:, 0]
    tensor([2., 2., 2.])
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

logger = logging.getLogger(__name__)

BRANCHES = ("rgb+xyz", "rgb", "xyz")
"""The branches, in the order of :attr:`RoutedPrediction.branch` and of the score statistics."""
MIN_NORMAL_SAMPLES = 2
"""Normal samples needed for the score statistics (a standard deviation needs two)."""

Reduce = Callable[[torch.Tensor], torch.Tensor]


def branch_index(has_rgb: torch.Tensor, has_xyz: torch.Tensor) -> torch.Tensor:
    """The branch of each sample: 0 ``rgb+xyz`` (both, or neither), 1 ``rgb`` only, 2 ``xyz`` only.

    Args:
        has_rgb (torch.Tensor): ``(B,)`` samples with an RGB image.
        has_xyz (torch.Tensor): ``(B,)`` samples with at least one valid 3D point.

    Returns:
        torch.Tensor: ``(B,)`` long indices into :data:`BRANCHES`.

    Example:
        >>> branch_index(torch.tensor([True, True, False, False]), torch.tensor([True, False, True, False]))
        tensor([0, 1, 2, 0])
    """
    return (has_rgb & ~has_xyz).long() + 2 * (~has_rgb & has_xyz).long()


def branch_names(branch: torch.Tensor) -> list[str]:
    """The names of the branches in ``branch`` (what CMDR writes to a batch's ``explanation``).

    Args:
        branch (torch.Tensor): ``(B,)`` indices from :func:`branch_index`.

    Returns:
        list[str]: ``"branch: rgb+xyz"``, ``"branch: rgb (no valid 3D point)"`` or ``"branch: xyz (no RGB
        image)"`` per sample.

    Example:
        >>> branch_names(torch.tensor([0, 1, 2]))
        ['branch: rgb+xyz', 'branch: rgb (no valid 3D point)', 'branch: xyz (no RGB image)']
    """
    reasons = ("", " (no valid 3D point)", " (no RGB image)")
    return [f"branch: {BRANCHES[i]}{reasons[i]}" for i in branch.tolist()]


class BranchScoreAlignment(nn.Module):
    """Affine map of each branch's image score onto the fused score's scale (see the module docstring).

    Until it is fitted (fewer than :data:`MIN_NORMAL_SAMPLES` normal samples seen), scores pass unchanged.

    Example:
        >>> alignment = BranchScoreAlignment()
        >>> alignment(torch.tensor([[2.0], [20.0], [5.0]]))[:, 0]  # not fitted yet: unchanged
        tensor([ 2., 20.,  5.])
        >>> sums = alignment.new_sums()
        >>> alignment.accumulate(sums, torch.tensor([[1.0, 3.0], [10.0, 30.0], [5.0, 5.5]]))
        >>> alignment.finalize(sums), alignment.fitted
        (True, True)
        >>> alignment(torch.tensor([[3.0], [30.0], [5.5]]))[:, 0]  # every branch onto the fused scale
        tensor([3., 3., 3.])
    """

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(len(BRANCHES)))
        self.register_buffer("std", torch.ones(len(BRANCHES)))
        self.register_buffer("num_samples", torch.zeros((), dtype=torch.long))

    @property
    def fitted(self) -> bool:
        """Whether the statistics were computed (a host read of one number)."""
        return int(self.num_samples) >= MIN_NORMAL_SAMPLES

    def new_sums(self) -> torch.Tensor:
        """Zeroed accumulators ``(3, n | sum | sum of squares)`` in float64, on the module's device."""
        return torch.zeros(3, len(BRANCHES), dtype=torch.float64, device=self.mean.device)

    @staticmethod
    def accumulate(sums: torch.Tensor, scores: torch.Tensor, weight: torch.Tensor | None = None) -> None:
        """Add normal samples' raw branch scores to ``sums`` (in place, on the device: no synchronisation).

        Args:
            sums (torch.Tensor): From :meth:`new_sums`.
            scores (torch.Tensor): ``(3, B)`` raw scores of every branch (rows in :data:`BRANCHES` order) of
                normal samples that have both modalities.
            weight (torch.Tensor | None): ``(B,)`` which samples count (boolean or 0/1); ``None``: all.
                Defaults to ``None``.
        """
        scores = scores.detach().double()
        weight = torch.ones_like(scores[0]) if weight is None else weight.detach().to(scores.dtype)
        sums[0] += weight.sum()
        sums[1] += (scores * weight).sum(dim=1)
        sums[2] += (scores.pow(2) * weight).sum(dim=1)

    def finalize(self, sums: torch.Tensor, reduce: Reduce | None = None) -> bool:
        """Set the statistics from ``sums`` (summed over processes by ``reduce``), if there are enough samples.

        Args:
            sums (torch.Tensor): Accumulated by :meth:`accumulate`.
            reduce (Reduce | None): Sums a tensor across processes (DDP); ``None`` for one process.
                Defaults to ``None``.

        Returns:
            bool: Whether the statistics were updated (else the previous ones are kept).
        """
        if reduce is not None:
            sums = reduce(sums)
        count = int(sums[0, 0])
        if count < MIN_NORMAL_SAMPLES:
            return False
        mean = sums[1] / count
        var = (sums[2] / count - mean.pow(2)).clamp_min(0) * count / (count - 1)
        self.mean.copy_(mean.float())
        self.std.copy_(var.sqrt().float().clamp_min(1e-6))
        self.num_samples.fill_(count)
        return True

    def forward(self, scores: torch.Tensor) -> torch.Tensor:
        """Map every branch's raw scores onto the fused scale.

        Args:
            scores (torch.Tensor): ``(3, B)`` raw scores (rows in :data:`BRANCHES` order).

        Returns:
            torch.Tensor: ``(3, B)``; row 0 (the fused branch) unchanged.
        """
        mean, std = self.mean.unsqueeze(1), self.std.unsqueeze(1)
        fitted = self.num_samples >= MIN_NORMAL_SAMPLES
        aligned = mean[0] + (scores - mean) * (std[0] / std)
        aligned = torch.where(fitted, aligned, scores)
        return torch.cat([scores[:1], aligned[1:]])


@dataclass
class RoutedPrediction:
    """Each sample's anomaly map and score from its branch.

    Attributes:
        anomaly_map (torch.Tensor): ``(B, 1, H, W)`` normalised map.
        pred_score (torch.Tensor): ``(B,)`` score on the fused scale.
        branch (torch.Tensor): ``(B,)`` index into :data:`BRANCHES`.
        branch_scores (torch.Tensor | None): ``(3, B)`` raw score of every branch (``rgb+xyz`` models, when all
            branches were computed), what the score statistics are computed from.
        complete (torch.Tensor | None): ``(B,)`` samples with both modalities (``rgb+xyz`` models only).

    Example:
        >>> routed = RoutedPrediction(anomaly_map=torch.zeros(2, 1, 8, 8), pred_score=torch.tensor([0.2, 0.9]),
        ...                           branch=branch_index(torch.tensor([True, True]), torch.tensor([True, False])))
        >>> branch_names(routed.branch), routed.branch_scores
        (['branch: rgb+xyz', 'branch: rgb (no valid 3D point)'], None)
    """

    anomaly_map: torch.Tensor
    pred_score: torch.Tensor
    branch: torch.Tensor
    branch_scores: torch.Tensor | None = None
    complete: torch.Tensor | None = None


class BranchAlignmentMixin:
    """Lightning side: fits :class:`BranchScoreAlignment` on each validation's normal, complete samples.

    The model's ``validation_step`` passes every batch's :class:`RoutedPrediction` and labels to
    :meth:`record_branch_scores`; at the end of the validation epoch the sums are reduced over processes (DDP)
    and the statistics set (not during Lightning's sanity check, whose heads are untrained). Samples scored
    by a branch before any statistics exist get a warning, once.

    Example:
        >>> from anomalib_cmdr import CMDR
        >>> model = CMDR(rgb_backbone="resnet18", rgb_layers=[1], xyz_backbone="fpfh", pretrained=False)
        >>> isinstance(model, BranchAlignmentMixin), model.model.branch_alignment.fitted
        (True, False)
        >>> engine.fit(model, datamodule=datamodule)  # each validation sets the statistics  # doctest: +SKIP
        >>> model.model.branch_alignment.fitted  # doctest: +SKIP
        True
    """

    model: Any
    trainer: Any

    def on_validation_epoch_start(self) -> None:
        """Start the sums of this validation."""
        alignment = self.model.branch_alignment
        self._branch_sums = alignment.new_sums() if alignment is not None else None
        super().on_validation_epoch_start()  # type: ignore[misc]

    def record_branch_scores(self, routed: RoutedPrediction, gt_label: torch.Tensor | None) -> list[str] | None:
        """Add a validation batch's normal complete samples to the sums; name each sample's branch.

        Args:
            routed (RoutedPrediction): The batch's prediction.
            gt_label (torch.Tensor | None): ``(B,)`` labels (0 normal), ``None`` when unknown.

        Returns:
            list[str] | None: The branch of each sample (for the batch's ``explanation``); ``None`` for a
            single-modality model.
        """
        alignment = self.model.branch_alignment
        if alignment is None:
            return None
        validating = getattr(self, "_trainer", None) is not None and self.trainer.validating
        sums = getattr(self, "_branch_sums", None)
        if validating and sums is not None and gt_label is not None and routed.branch_scores is not None:
            alignment.accumulate(sums, routed.branch_scores, routed.complete & (gt_label == 0))
        names = branch_names(routed.branch)
        if (
            not getattr(self, "_warned_unaligned", False)
            and not alignment.fitted
            and any(not name.startswith("branch: rgb+xyz") for name in names)
        ):
            self._warned_unaligned = True
            logger.warning(
                "Samples without one modality are scored by the other branch, but its score statistics are not "
                "computed yet (a validation with at least %d normal samples that have both modalities sets them): "
                "their scores are not on the fused scale.",
                MIN_NORMAL_SAMPLES,
            )
        return names

    def on_validation_epoch_end(self) -> None:
        """Set the statistics from this validation's normal samples (all processes)."""
        sums = getattr(self, "_branch_sums", None)
        if sums is not None and not self.trainer.sanity_checking:
            strategy = self.trainer.strategy
            reduce = (lambda t: strategy.reduce(t, reduce_op="sum")) if self.trainer.world_size > 1 else None
            if self.model.branch_alignment.finalize(sums, reduce):
                self._warned_unaligned = False
            else:
                logger.info(
                    "Fewer than %d normal validation samples with both modalities: the score statistics of the "
                    "single-modality branches were not updated.",
                    MIN_NORMAL_SAMPLES,
                )
        self._branch_sums = None
        super().on_validation_epoch_end()  # type: ignore[misc]
