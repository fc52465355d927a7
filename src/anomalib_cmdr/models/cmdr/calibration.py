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

Example:
    >>> import torch
    >>> calibration = DiscrepancyCalibration(("d2r",), (4, 4))
    >>> normal = {"d2r": torch.rand(8, 4, 4)}
    >>> calibration.update(normal, torch.ones(8, 4, 4, dtype=torch.bool))
    >>> calibration.finalize()
    >>> calibration.num_samples
    8
    >>> calibration({"d2r": torch.rand(2, 4, 4)})["d2r"].shape
    torch.Size([2, 4, 4])
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class CalibrationMissingError(RuntimeError):
    """The model uses ``calibration="zscore"`` but its normal statistics were never computed."""


class DiscrepancyCalibration(nn.Module):
    """Per-position z-scoring of discrepancy maps against their statistics on normal samples.

    Use :meth:`reset`, then :meth:`update` with batches of normal samples, then :meth:`finalize`;
    afterwards the module maps discrepancies to calibrated ones.

    Args:
        names: Keys of the discrepancy maps (e.g. ``("d2m", "d3m", "d2r", "d3r")``).
        grid_size: ``(h, w)`` of the maps.
        eps: Added to the standard deviation (the discrepancies are distances in ``[0, 2]``).
    """

    def __init__(self, names: Sequence[str], grid_size: tuple[int, int], eps: float = 1e-3) -> None:
        super().__init__()
        self.names = tuple(names)
        self.eps = eps
        shape = (len(self.names), *grid_size)
        self.register_buffer("mean", torch.zeros(shape))
        self.register_buffer("std", torch.zeros(shape))
        self.register_buffer("count", torch.zeros((), dtype=torch.long))
        self._sums: torch.Tensor | None = None
        self._samples = 0

    @property
    def num_samples(self) -> int:
        """Normal samples the statistics were computed from (0: not calibrated)."""
        return int(self.count)

    def reset(self) -> None:
        """Forget the statistics and start accumulating new ones."""
        self.count.zero_()
        self._samples = 0
        self._sums = torch.zeros((3, *self.mean.shape), dtype=torch.float64, device=self.mean.device)

    @torch.no_grad()
    def update(self, distances: dict[str, torch.Tensor], valid: torch.Tensor) -> None:
        """Accumulate a batch of normal samples.

        Args:
            distances: ``(B, h, w)`` maps under :attr:`names`.
            valid: ``(B, h, w)`` valid-pixel mask; only valid positions enter the statistics.
        """
        if self._sums is None:
            self.reset()
        d = torch.stack([distances[name] for name in self.names], dim=1).double()  # (B, K, h, w)
        weight = valid.unsqueeze(1).expand_as(d).double()
        self._sums[0] += weight.sum(0)  # type: ignore[index]
        self._sums[1] += (d * weight).sum(0)  # type: ignore[index]
        self._sums[2] += (d * d * weight).sum(0)  # type: ignore[index]
        self._samples += d.shape[0]

    def accumulated(self) -> tuple[torch.Tensor, int]:
        """The running ``(3, K, h, w)`` sums (valid count, sum, sum of squares) and the number of samples.

        Returns:
            ``(sums, num_samples)``, e.g. to reduce across processes before :meth:`finalize`.
        """
        if self._sums is None:
            self.reset()
        return self._sums, self._samples  # type: ignore[return-value]

    @torch.no_grad()
    def finalize(self, sums: torch.Tensor | None = None, num_samples: int | None = None) -> None:
        """Turn the accumulated sums into mean and std.

        Args:
            sums: ``(3, K, h, w)`` sums as returned by :meth:`accumulated` (e.g. reduced across
                processes); default: this module's own.
            num_samples: Samples behind ``sums``; default: this module's own count.

        Raises:
            CalibrationMissingError: If no sample with a valid pixel was accumulated.
        """
        own_sums, own_samples = self.accumulated()
        sums = own_sums if sums is None else sums
        num_samples = own_samples if num_samples is None else num_samples
        if float(sums[0].sum()) == 0:
            msg = "No normal sample with valid pixels was seen: cannot compute the calibration statistics."
            raise CalibrationMissingError(msg)
        n = sums[0].clamp_min(1)
        mean = sums[1] / n
        var = (sums[2] / n - mean * mean).clamp_min(0) * n / (n - 1).clamp_min(1)  # unbiased
        self.mean.copy_(mean.to(self.mean.dtype))
        self.std.copy_(var.sqrt().to(self.std.dtype))
        self.count.fill_(int(num_samples))
        self._sums, self._samples = None, 0

    def forward(self, distances: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Calibrated maps ``max(d - mean, 0) / (std + eps)`` (keys other than :attr:`names` pass through).

        Args:
            distances: ``(B, h, w)`` maps.

        Returns:
            The calibrated maps.

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
