# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0

"""Results back on the scans: per-point scores re-assembled from the chunks, coloured PLY, PNG, scan scores.

:class:`ScanReport` is a Lightning callback (``configs/model/cmdr_scan.yaml`` adds it to the trainer; with the
stock CLI also ``--trainer.callbacks+=anomalib_cmdr.data.scans.ScanReport``). During ``test`` and ``predict``
on a :class:`~anomalib_cmdr.data.scans.ScanFolder` it collects each chunk's anomaly map and score, and at the
end of the run, for every scan:

* maps the chunk maps back onto the scan's points (:func:`~anomalib_cmdr.data.scans.chunking.scatter_scores`,
  through the cell -> point indices of the chunk cache); the scan's score is the maximum of its chunks' scores;
* writes ``<default_root_dir>/scans/<split>/<label>/<stem>.ply`` (the scan's points coloured by score, the score
  as the vertex property ``score``) and ``<stem>.png`` (:mod:`anomalib_cmdr.visualization.point_cloud`);
* writes ``<default_root_dir>/scans/scan_scores.csv``: ``scan_path``, ``label``, ``num_points``, ``num_chunks``,
  ``scan_score``, ``pred_label``, ``raw_score``, ``anomalous_points``.

Scores and maps are the post-processed ones (anomalib's normalisation: 0.5 is the threshold learned on
validation) when the model has a post-processor, the colours spanning [0, 1]; the raw scores go to the CSV's
``raw_score``. After ``test`` it also logs, from the raw values, ``scan_AUROC`` (scan score against "the scan
has anomalous points") and ``point_AUROC`` (over every point of every test scan, each once, against its
label), beside anomalib's chunk-level ``image_*`` and grid-level ``pixel_*`` metrics.

Example:
    >>> from anomalib_cmdr.data.scans import ScanReport
    >>> from anomalib.engine import Engine
    >>> engine = Engine(callbacks=[ScanReport()])  # doctest: +SKIP
"""

from __future__ import annotations

import csv
import logging
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from torchmetrics.functional.classification import binary_auroc

from anomalib_cmdr.data.scans.chunking import scatter_scores
from anomalib_cmdr.data.scans.dataset import read_chunk
from anomalib_cmdr.data.scans.io import label_file, read_point_cloud, read_point_labels
from anomalib_cmdr.visualization.point_cloud import render_scored_points, write_scored_ply

__all__ = ["SCAN_COLUMNS", "ScanReport", "ScanResult"]

logger = logging.getLogger(__name__)

SCAN_COLUMNS = (
    "scan_path",
    "label",
    "num_points",
    "num_chunks",
    "scan_score",
    "pred_label",
    "raw_score",
    "anomalous_points",
)
"""Columns of ``scan_scores.csv``."""


class ScanResult:
    """One scan's re-assembled result.

    Args:
        scan_path (str): The scan file.
        points (np.ndarray): ``(N, 3)`` its points.
        scores (np.ndarray): ``(N,)`` per-point scores (post-processed when available; NaN: not scored).
        raw_scores (np.ndarray): ``(N,)`` per-point raw scores.
        scan_score (float): Maximum chunk score (post-processed when available).
        raw_score (float): Maximum raw chunk score.
        pred_label (bool | None): Predicted label (any chunk predicted anomalous), ``None`` when not thresholded.
        labels (np.ndarray | None): ``(N,)`` ground truth, ``None`` when unknown.
        num_chunks (int): Number of chunks.

    Example:
        >>> points = np.random.default_rng(0).random((4, 3))
        >>> result = ScanResult(
        ...     "test/tear/000.ply", points, scores=np.array([0.1, 0.2, 0.9, np.nan]),
        ...     raw_scores=np.array([1.0, 2.0, 9.0, np.nan]), scan_score=0.9, raw_score=9.0, pred_label=True,
        ...     labels=np.array([False, False, True, False]), num_chunks=1,
        ... )
        >>> result.scan_score, result.pred_label, int(np.isnan(result.scores).sum())
        (0.9, True, 1)
    """

    def __init__(
        self,
        scan_path: str,
        points: np.ndarray,
        scores: np.ndarray,
        raw_scores: np.ndarray,
        scan_score: float,
        raw_score: float,
        pred_label: bool | None,
        labels: np.ndarray | None,
        num_chunks: int,
    ) -> None:
        self.scan_path = scan_path
        self.points = points
        self.scores = scores
        self.raw_scores = raw_scores
        self.scan_score = scan_score
        self.raw_score = raw_score
        self.pred_label = pred_label
        self.labels = labels
        self.num_chunks = num_chunks


def _numpy(value: Any) -> np.ndarray | None:
    if value is None:
        return None
    return value.detach().float().cpu().numpy() if isinstance(value, torch.Tensor) else np.asarray(value)


class ScanReport(Callback):
    """Write per-scan results (coloured PLY, PNG, ``scan_scores.csv``) after ``test`` and ``predict``.

    Args:
        output_dir (str | Path | None): Output folder; ``None``: ``<default_root_dir>/scans``. Defaults to ``None``.
        write_ply (bool): Write the coloured PLY of each scan. Defaults to ``True``.
        render (bool): Write the PNG rendering of each scan. Defaults to ``True``.
        colormap (str): Matplotlib colormap of the scores. Defaults to ``"jet"``.

    Example:
        >>> report = ScanReport(render=False)
        >>> report.write_ply
        True
    """

    def __init__(
        self,
        output_dir: str | Path | None = None,
        write_ply: bool = True,
        render: bool = True,
        colormap: str = "jet",
    ) -> None:
        super().__init__()
        self.output_dir = Path(output_dir) if output_dir is not None else None
        self.write_ply = write_ply
        self.render = render
        self.colormap = colormap
        self._batches: list[tuple[Any, np.ndarray, np.ndarray]] = []
        self.normal_dirs: tuple[str, ...] = ("good",)
        self.results: list[ScanResult] = []
        self.csv_path: Path | None = None

    # ------------------------------------------------------------------ collection
    def _reset(self) -> None:
        self._batches = []
        self.results = []

    def on_test_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Start collecting."""
        del trainer, pl_module
        self._reset()

    def on_predict_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Start collecting."""
        del trainer, pl_module
        self._reset()

    def _collect(self, outputs: Any) -> None:
        """Keep the raw maps and scores now, and the batch itself, which the post-processor then normalises."""
        if outputs is None or getattr(outputs, "anomaly_map", None) is None:
            return
        paths = getattr(outputs, "image_path", None)
        if not paths or not str(paths[0]).endswith(".png") or "chunk_" not in Path(str(paths[0])).name:
            return  # not a batch of scan chunks
        raw_maps = _numpy(outputs.anomaly_map).reshape(len(paths), *outputs.anomaly_map.shape[-2:]).copy()
        raw_scores = _numpy(outputs.pred_score).reshape(-1).copy()
        self._batches.append((outputs, raw_maps, raw_scores))

    def on_test_batch_end(
        self,
        trainer: Trainer,
        pl_module: LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        """Collect the batch's chunk maps."""
        del trainer, pl_module, batch, batch_idx, dataloader_idx
        self._collect(outputs)

    def on_predict_batch_end(
        self,
        trainer: Trainer,
        pl_module: LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        """Collect the batch's chunk maps."""
        del trainer, pl_module, batch, batch_idx, dataloader_idx
        self._collect(outputs)

    # ------------------------------------------------------------------ assembly
    def assemble(self) -> list[ScanResult]:
        """Re-assemble the collected chunks onto their scans (reads each scan and its labels once).

        Returns:
            list[ScanResult]: One per scan, in the order scans were first seen.
        """
        chunks: dict[str, list[tuple[str, np.ndarray, np.ndarray, float, float, bool | None]]] = defaultdict(list)
        for outputs, raw_maps, raw_scores in self._batches:
            maps = _numpy(outputs.anomaly_map).reshape(raw_maps.shape)
            scores = _numpy(outputs.pred_score).reshape(-1)
            labels = _numpy(getattr(outputs, "pred_label", None))
            for i, (image_path, scan_path) in enumerate(zip(outputs.image_path, outputs.depth_path, strict=True)):
                label = None if labels is None else bool(labels.reshape(-1)[i])
                chunks[str(scan_path)].append(
                    (str(image_path), maps[i], raw_maps[i], float(scores[i]), float(raw_scores[i]), label)
                )
        results = []
        for scan_path, members in chunks.items():
            points = read_point_cloud(scan_path)
            index = np.stack([read_chunk(Path(image).with_suffix(".npz"))["index"] for image, *_ in members])
            maps = np.stack([member[1] for member in members])
            raw_maps = np.stack([member[2] for member in members])
            if maps.shape[-2:] != index.shape[-2:]:
                msg = (
                    f"{scan_path}: anomaly maps are {maps.shape[-1]}x{maps.shape[-2]} but chunks are "
                    f"{index.shape[-1]}x{index.shape[-2]}; set the model's image_size to the chunk side"
                )
                raise ValueError(msg)
            sidecar = label_file(scan_path)
            labels = read_point_labels(sidecar, len(points)) if sidecar is not None else None
            if labels is None and Path(scan_path).parent.name in self.normal_dirs:
                labels = np.zeros(len(points), dtype=bool)
            predicted = [member[5] for member in members]
            results.append(
                ScanResult(
                    scan_path=scan_path,
                    points=points,
                    scores=scatter_scores(index, maps, len(points)),
                    raw_scores=scatter_scores(index, raw_maps, len(points)),
                    scan_score=max(member[3] for member in members),
                    raw_score=max(member[4] for member in members),
                    pred_label=None if any(p is None for p in predicted) else any(predicted),
                    labels=labels,
                    num_chunks=len(members),
                )
            )
        return results

    # ------------------------------------------------------------------ output
    def _relative(self, scan_path: str, trainer: Trainer) -> Path:
        """``<split>/<label>/<stem>`` of a scan (its path below the datamodule's scan folder)."""
        root = getattr(getattr(trainer, "datamodule", None), "scan_root", None)
        path = Path(scan_path)
        if root is not None:
            try:
                return path.resolve().relative_to(Path(root).resolve()).with_suffix("")
            except ValueError:
                pass
        return Path(path.parent.parent.name) / path.parent.name / path.stem

    def write(self, results: list[ScanResult], output_dir: Path, trainer: Trainer | None = None) -> Path:
        """Write the PLY, PNG and CSV of ``results`` into ``output_dir``.

        Args:
            results (list[ScanResult]): From :meth:`assemble`.
            output_dir (Path): Output folder.
            trainer (Trainer | None): The trainer (for the scans' relative paths). Defaults to ``None``.

        Returns:
            Path: The CSV file.
        """
        finite = [r.scores[np.isfinite(r.scores)] for r in results]
        values = np.concatenate(finite) if finite else np.zeros(0)
        unit = bool(values.size == 0 or (values.min() >= 0 and values.max() <= 1))
        vmin, vmax = (0.0, 1.0) if unit else (float(values.min()), float(values.max()))
        rows = []
        for result in results:
            relative = self._relative(result.scan_path, trainer) if trainer is not None else Path(result.scan_path).stem
            target = output_dir / relative
            if self.write_ply:
                write_scored_ply(target.with_suffix(".ply"), result.points, result.scores, vmin, vmax, self.colormap)
            if self.render:
                verdict = "" if result.pred_label is None else (" ANOMALOUS" if result.pred_label else " normal")
                title = f"{relative}: score {result.scan_score:.3f}{verdict}"
                render_scored_points(
                    target.with_suffix(".png"), result.points, result.scores, title, vmin, vmax, self.colormap
                )
            rows.append(
                [
                    result.scan_path,
                    Path(result.scan_path).parent.name,
                    len(result.points),
                    result.num_chunks,
                    f"{result.scan_score:.6f}",
                    "" if result.pred_label is None else int(result.pred_label),
                    f"{result.raw_score:.6f}",
                    "" if result.labels is None else int(result.labels.sum()),
                ]
            )
        output_dir.mkdir(parents=True, exist_ok=True)
        path = output_dir / "scan_scores.csv"
        with path.open("w", newline="") as stream:
            writer = csv.writer(stream, lineterminator="\n")
            writer.writerow(SCAN_COLUMNS)
            writer.writerows(rows)
        return path

    @staticmethod
    def metrics(results: list[ScanResult]) -> dict[str, float]:
        """``scan_AUROC`` and ``point_AUROC`` from the raw scores (each only when both classes occur).

        Args:
            results (list[ScanResult]): From :meth:`assemble`.

        Returns:
            dict[str, float]: The metrics that are defined.
        """
        metrics = {}
        scan_labels = torch.tensor([bool(r.labels is not None and r.labels.any()) for r in results], dtype=torch.long)
        if 0 < int(scan_labels.sum()) < len(results):
            scores = torch.tensor([r.raw_score for r in results], dtype=torch.float64)
            metrics["scan_AUROC"] = float(binary_auroc(scores, scan_labels))
        labelled = [r for r in results if r.labels is not None]
        if labelled:
            scores = np.concatenate([r.raw_scores for r in labelled])
            labels = np.concatenate([r.labels for r in labelled])
            scored = np.isfinite(scores)
            if 0 < int(labels[scored].sum()) < int(scored.sum()):
                metrics["point_AUROC"] = float(
                    binary_auroc(torch.from_numpy(scores[scored]).double(), torch.from_numpy(labels[scored]).long())
                )
        return metrics

    def _finish(self, trainer: Trainer) -> list[ScanResult]:
        if not self._batches:
            return []
        self.normal_dirs = tuple(getattr(getattr(trainer, "datamodule", None), "normal_dirs", self.normal_dirs))
        self.results = self.assemble()
        self._batches = []
        if trainer.is_global_zero:
            output_dir = self.output_dir or Path(trainer.default_root_dir) / "scans"
            self.csv_path = self.write(self.results, output_dir, trainer)
            logger.info("Scan results (PLY, PNG, scan_scores.csv) written to %s.", output_dir)
        return self.results

    def on_test_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Re-assemble, write, and log ``scan_AUROC`` / ``point_AUROC``."""
        results = self._finish(trainer)
        for name, value in self.metrics(results).items():
            pl_module.log(name, value, sync_dist=False)

    def on_predict_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Re-assemble and write."""
        del pl_module
        self._finish(trainer)
