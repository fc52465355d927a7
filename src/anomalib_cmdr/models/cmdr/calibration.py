# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0

"""Per-position calibration of CMDR's discrepancy maps against normal data (an option; off in the paper).

With frozen backbones whose features are not trained for the task (random-weight CNNs, hand-crafted
FPFH), the heads reconstruct some structures of *normal* parts worse than others: bores, holes and
outer edges, whose appearance changes with light and pose, give larger discrepancies than a faint stain.
The image score is a maximum, so these structures set it in every image, defective or not.

For parts presented in a fixture (roughly the same place and orientation in every image),
:class:`DiscrepancyCalibration` learns the mean and standard deviation of each discrepancy map at
every grid position over normal samples, and replaces a discrepancy ``d`` by its positive deviation
``max(d - mean, 0) / (std + eps)`` before the fusion. A position that is always hard to reconstruct
then no longer outranks a small, consistent change elsewhere. Positions never seen valid keep
``mean = std = 0`` and stay zero, since the discrepancies are zero on invalid pixels.

The statistics are persistent buffers, saved with the checkpoint and exported with the model.

Two parts live here: :class:`DiscrepancyCalibration`, the statistics and the z-scoring (a plain
``nn.Module`` inside the torch model), and :class:`CalibrationMixin`, the Lightning hooks that compute
them after training, the way anomalib's ``MemoryBankMixin`` fits PatchCore's memory bank, so that the
Lightning module itself stays glue.

Example:
    >>> import torch
    >>> calibration = DiscrepancyCalibration(("d2r",), (4, 4))
    >>> normal = [({"d2r": torch.rand(8, 4, 4)}, torch.ones(8, 4, 4, dtype=torch.bool))]
    >>> calibration.fit(normal)
    8
    >>> calibration({"d2r": torch.rand(2, 4, 4)})["d2r"].shape
    torch.Size([2, 4, 4])
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

if TYPE_CHECKING:
    from .features import CMDRFeatures
    from .torch_model import CMDRModel

logger = logging.getLogger(__name__)

Reduce = Callable[[torch.Tensor], torch.Tensor]

MIN_SAMPLES = 2
"""Normal samples a grid position must be valid in for its own statistics; fewer: the map's pooled ones."""


class CalibrationMissingError(RuntimeError):
    """The model uses ``calibration="zscore"`` but its normal statistics were never computed.

    Example:
        >>> calibration = DiscrepancyCalibration(("d2r",), (4, 4))
        >>> calibration.finalize(calibration.new_sums(), num_samples=0)
        Traceback (most recent call last):
            ...
        anomalib_cmdr.models.cmdr.calibration.CalibrationMissingError: No normal sample with valid pixels was seen: ...
    """


class DiscrepancyCalibration(nn.Module):
    """Per-position z-scoring of discrepancy maps against their statistics on normal samples.

    :meth:`fit` computes the statistics from batches of normal discrepancy maps; afterwards the module
    maps discrepancies to calibrated ones. The sums are accumulated apart from the buffers and swapped in
    at the end, so a pass that fails (or is interrupted) leaves the previous statistics intact.

    Args:
        names (Iterable[str]): Keys of the discrepancy maps (e.g. ``("d2m", "d3m", "d2r", "d3r")``).
        grid_size (tuple[int, int]): ``(h, w)`` of the maps.
        eps (float): Added to the standard deviation (the discrepancies are distances in ``[0, 2]``).
            Defaults to ``1e-3``.

    Example:
        >>> calibration = DiscrepancyCalibration(("d2m", "d3m"), (2, 2))
        >>> sums = calibration.new_sums()
        >>> valid = torch.ones(4, 2, 2, dtype=torch.bool)
        >>> d2m = torch.tensor([0.1, 0.2, 0.3, 0.4]).view(4, 1, 1).expand(4, 2, 2)
        >>> normal = {"d2m": d2m, "d3m": torch.rand(4, 2, 2)}
        >>> calibration.accumulate(sums, normal, valid)
        >>> calibration.finalize(sums, num_samples=4)
        >>> calibration.num_samples
        4
        >>> calibrated = calibration({"d2m": torch.full((1, 2, 2), 0.25), "d3m": torch.zeros(1, 2, 2)})
        >>> calibrated["d2m"].max().item(), calibrated["d3m"].max().item()  # at the mean, and below it
        (0.0, 0.0)
    """

    def __init__(self, names: Iterable[str], grid_size: tuple[int, int], eps: float = 1e-3) -> None:
        super().__init__()
        self.names = tuple(names)
        self.eps = eps
        shape = (len(self.names), *grid_size)
        self.register_buffer("mean", torch.zeros(shape))
        self.register_buffer("std", torch.zeros(shape))
        self.register_buffer("count", torch.zeros((), dtype=torch.long))

    @property
    def num_samples(self) -> int:
        """Normal samples the statistics were computed from (0: not calibrated)."""
        return int(self.count)

    def new_sums(self) -> torch.Tensor:
        """Fresh ``(3, K, h, w)`` float64 sums: valid count, sum and sum of squares per map and position."""
        return torch.zeros((3, *self.mean.shape), dtype=torch.float64, device=self.mean.device)

    @torch.no_grad()
    def accumulate(self, sums: torch.Tensor, distances: dict[str, torch.Tensor], valid: torch.Tensor) -> None:
        """Add a batch of normal samples to ``sums`` in place.

        Args:
            sums (torch.Tensor): From :meth:`new_sums`.
            distances (dict[str, torch.Tensor]): ``(B, h, w)`` maps under :attr:`names`.
            valid (torch.Tensor): ``(B, h, w)`` valid-pixel mask; only valid positions enter the statistics.
        """
        d = torch.stack([distances[name] for name in self.names], dim=1).double()  # (B, K, h, w)
        weight = valid.unsqueeze(1).expand_as(d).double()
        sums[0] += weight.sum(0)
        sums[1] += (d * weight).sum(0)
        sums[2] += (d * d * weight).sum(0)

    @torch.no_grad()
    def finalize(self, sums: torch.Tensor, num_samples: int) -> None:
        """Turn accumulated sums into the mean and (unbiased) standard deviation buffers.

        Args:
            sums (torch.Tensor): ``(3, K, h, w)`` sums (e.g. reduced across processes).
            num_samples (int): Samples behind ``sums``.

        Raises:
            CalibrationMissingError: If no sample with a valid pixel was accumulated (buffers untouched).
        """
        if float(sums[0].sum()) == 0:
            msg = "No normal sample with valid pixels was seen: cannot compute the calibration statistics."
            raise CalibrationMissingError(msg)
        n = sums[0].clamp_min(1)
        mean = sums[1] / n
        var = (sums[2] / n - mean * mean).clamp_min(0) * n / (n - 1).clamp_min(1)  # unbiased
        # Positions seen valid in fewer than MIN_SAMPLES normal samples have no usable statistics (a single
        # sample gives std 0, and the eps alone would amplify any discrepancy a thousandfold): they take the
        # map's statistics pooled over all its well-sampled positions.
        reliable = sums[0] >= MIN_SAMPLES
        pooled = reliable | ~reliable.flatten(1).any(dim=1)[:, None, None]  # every position if none is reliable
        pooled_n = (sums[0] * pooled).sum(dim=(1, 2))  # (K,)
        pooled_sum = (sums[1] * pooled).sum(dim=(1, 2))
        pooled_sq = (sums[2] * pooled).sum(dim=(1, 2))
        pooled_mean = pooled_sum / pooled_n.clamp_min(1)
        pooled_var = (pooled_sq / pooled_n.clamp_min(1) - pooled_mean**2).clamp_min(0)
        pooled_var = pooled_var * pooled_n / (pooled_n - 1).clamp_min(1)
        mean = torch.where(reliable, mean, pooled_mean[:, None, None])
        var = torch.where(reliable, var, pooled_var[:, None, None])
        self.mean.copy_(mean.to(self.mean.dtype))
        self.std.copy_(var.sqrt().to(self.std.dtype))
        self.count.fill_(int(num_samples))

    def fit(
        self,
        batches: Iterable[tuple[dict[str, torch.Tensor], torch.Tensor]],
        reduce: Reduce | None = None,
    ) -> int:
        """Compute the statistics from ``(distances, valid)`` batches of normal samples.

        Args:
            batches (Iterable[tuple[dict[str, torch.Tensor], torch.Tensor]]): Discrepancy maps and valid masks.
            reduce (Reduce | None): Sums a tensor across processes (DDP); ``None`` for one process.
                Defaults to ``None``.

        Returns:
            int: The number of samples the statistics come from (over all processes).
        """
        sums, samples = self.new_sums(), 0
        for distances, valid in batches:
            self.accumulate(sums, distances, valid)
            samples += valid.shape[0]
        if reduce is not None:
            sums = reduce(sums)
            samples = int(reduce(torch.tensor(samples, device=sums.device)))
        self.finalize(sums, samples)
        return samples

    def forward(self, distances: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Calibrated maps ``max(d - mean, 0) / (std + eps)`` (keys other than :attr:`names` pass through).

        Args:
            distances (dict[str, torch.Tensor]): ``(B, h, w)`` maps.

        Returns:
            dict[str, torch.Tensor]: The calibrated maps.

        Raises:
            CalibrationMissingError: If the statistics were never computed.
        """
        if self.num_samples == 0:
            msg = (
                "calibration='zscore' needs the normal statistics, which this model does not have: train it "
                "(they are computed on the training data before validation), or call "
                "CMDR.calibrate(dataloader) / CMDRModel.calibrate(batches) on normal samples."
            )
            raise CalibrationMissingError(msg)
        out = dict(distances)
        for index, name in enumerate(self.names):
            out[name] = (distances[name] - self.mean[index]).clamp_min(0) / (self.std[index] + self.eps)
        return out


class CalibrationMixin:
    """Lightning hooks that keep the ``calibration="zscore"`` statistics in step with the heads.

    For a Lightning module whose ``model`` is a :class:`~anomalib_cmdr.models.cmdr.torch_model.CMDRModel`
    and whose ``pre_processor`` is CMDR's. The statistics are (re)computed on the datamodule's training
    data before validation, test or prediction whenever they are missing or the heads were trained since;
    a model loaded from a checkpoint uses the statistics it carries.

    Example:
        >>> from anomalib_cmdr import CMDR
        >>> model = CMDR(calibration="zscore", pretrained=False)  # doctest: +SKIP
        >>> model.calibrate(datamodule.train_dataloader())  # doctest: +SKIP
        20
    """

    model: CMDRModel
    _calibration_stale: bool = False  # the heads changed since the statistics were computed

    def calibrate(self, dataloader: Iterable[Any]) -> int:
        """Compute the ``calibration="zscore"`` statistics on normal samples.

        Batches are pre-processed as in training and moved to the model's device; anomalous samples
        (``gt_label == 1``) are skipped. Under DDP every process reads its shard and the sums are reduced
        across processes.

        Args:
            dataloader (Iterable[Any]): Batches of (normal) samples, e.g. the datamodule's ``train_dataloader()``.

        Returns:
            int: The number of samples the statistics come from.

        Raises:
            ValueError: If the model was built with ``calibration="none"``.
        """
        if self.model.calibration is None:
            msg = "calibrate() needs a model built with calibration='zscore'."
            raise ValueError(msg)
        trainer = self._trainer  # type: ignore[attr-defined]
        show = trainer is None or (trainer.progress_bar_callback is not None and trainer.is_global_zero)
        reduce: Reduce | None = None
        if trainer is not None and trainer.world_size > 1:

            def reduce(tensor: torch.Tensor) -> torch.Tensor:
                return trainer.strategy.reduce(tensor, reduce_op="sum")

        batches = tqdm(dataloader, desc="CMDR calibration", unit="batch", disable=not show, leave=False)
        count = self.model.calibrate(self._normal_inputs(batches), reduce=reduce)
        self._calibration_stale = False
        logger.info("CMDR calibration statistics computed on %d normal samples.", count)
        return count

    def _normal_inputs(self, batches: Iterable[Any]) -> Iterator[CMDRFeatures]:
        """Features of the normal samples of each batch (from the feature cache where it has them)."""
        for batch in batches:
            batch = self.transfer_batch_to_device(batch, self.device, 0)  # type: ignore[attr-defined]
            if self.pre_processor is not None:  # type: ignore[attr-defined]
                self.pre_processor.prepare(batch)  # type: ignore[attr-defined]
            features = self.batch_features(batch)  # type: ignore[attr-defined]
            labels = getattr(batch, "gt_label", None)
            if labels is not None and bool((labels != 0).any()):
                keep = labels.view(-1) == 0
                if not keep.any():
                    continue
                features = features.select(keep)
            yield features

    def _ensure_calibrated(self) -> None:
        """Before validation, test or prediction: (re)compute the statistics when missing or stale."""
        calibration = self.model.calibration
        if calibration is None or (calibration.num_samples and not self._calibration_stale):
            return
        trainer = self._trainer  # type: ignore[attr-defined]
        datamodule = getattr(trainer, "datamodule", None) if trainer is not None else None
        try:
            loader = datamodule.train_dataloader() if datamodule is not None else None
        except (AttributeError, RuntimeError, TypeError, ValueError) as error:
            logger.debug("No training data for the calibration: %s", error)
            loader = None
        if loader is None:
            if calibration.num_samples:  # stale but nothing to recompute from: keep the last statistics
                logger.warning("CMDR calibration statistics predate the last training steps (no training data).")
                return
            msg = (
                "CMDR(calibration='zscore') has no normal statistics and the datamodule gives no training data: "
                "load a checkpoint of a trained model, pass a datamodule with training data, or call "
                "model.calibrate(dataloader) first."
            )
            raise CalibrationMissingError(msg)
        if trainer.world_size > 1:  # DDP: each process reads its own shard; calibrate() sums over processes
            loader = shard_loader(loader, trainer.global_rank, trainer.world_size)
        self.calibrate(loader)

    def on_train_batch_end(self, *args: Any, **kwargs: Any) -> None:
        """The heads changed: the statistics are stale."""
        self._calibration_stale = True
        super().on_train_batch_end(*args, **kwargs)  # type: ignore[misc]

    def on_validation_start(self) -> None:
        """Calibrate when the statistics are missing or the heads were trained since."""
        self._ensure_calibrated()
        super().on_validation_start()  # type: ignore[misc]

    def on_test_start(self) -> None:
        """Calibrate when the statistics are missing or stale."""
        self._ensure_calibrated()
        super().on_test_start()  # type: ignore[misc]

    def on_predict_start(self) -> None:
        """Calibrate when the statistics are missing or stale."""
        self._ensure_calibrated()
        super().on_predict_start()  # type: ignore[misc]


def shard_loader(loader: DataLoader, rank: int, world_size: int) -> DataLoader:
    """The samples ``rank, rank + world_size, ...`` of ``loader``'s dataset, in order (no sample twice or dropped).

    Unlike Lightning's ``DistributedSampler``, nothing is padded: the shards of all processes together hold every
    sample exactly once, so statistics summed over processes equal a single process's.

    Args:
        loader (DataLoader): The full data loader (its batch size, workers and collate function are kept).
        rank (int): This process's rank.
        world_size (int): Number of processes.

    Returns:
        DataLoader: The shard's loader.

    Example:
        >>> loader = DataLoader(list(range(5)), batch_size=2)
        >>> [batch.tolist() for batch in shard_loader(loader, rank=1, world_size=2)]
        [[1, 3]]
    """
    indices = list(range(rank, len(loader.dataset), world_size))  # type: ignore[arg-type]
    return DataLoader(
        loader.dataset,
        batch_size=loader.batch_size,
        sampler=indices,
        num_workers=loader.num_workers,
        collate_fn=loader.collate_fn,
    )
