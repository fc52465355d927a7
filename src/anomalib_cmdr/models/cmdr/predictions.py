# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0

"""``predictions.csv``: the score and label of every sample of ``anomalib predict``, beside the pictures.

anomalib's visualizer writes one picture per sample under ``<default_root_dir>/images``; a quality engineer
also wants the numbers in a table. :class:`PredictionTable` (a callback CMDR adds to the trainer) collects
the post-processed score and label of every predicted sample (and, for an ``rgb+xyz`` model, the branch that
scored it: ``rgb+xyz``, or ``rgb`` / ``xyz`` for a sample that lacks a modality) and writes
``<default_root_dir>/predictions.csv`` atomically at the end of the run.

Example:
    >>> table = PredictionTable()
    >>> table.rows = [{"image_path": "a.png", "depth_path": "a.tiff", "pred_score": 0.7, "pred_label": True}]
    >>> table.write("/tmp/predictions_doctest.csv").read_text().splitlines()[1]
    'a.png,a.tiff,0.700000,1,'
"""

from __future__ import annotations

import csv
import io
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch import Callback, LightningModule, Trainer

COLUMNS = ("image_path", "depth_path", "pred_score", "pred_label", "branch")


class PredictionTable(Callback):
    """Collect per-sample scores and labels during ``predict`` and write them as CSV.

    Args:
        filename (str): File name under the trainer's ``default_root_dir``. Defaults to ``"predictions.csv"``.

    Example:
        >>> from types import SimpleNamespace
        >>> table = PredictionTable()
        >>> table.on_predict_start(trainer=None, pl_module=None)
        >>> outputs = SimpleNamespace(pred_score=torch.tensor([0.2, 0.9]), pred_label=torch.tensor([False, True]),
        ...                           image_path=["a.png", "b.png"], depth_path=["a.tiff", "b.tiff"],
        ...                           explanation=["branch: rgb+xyz", "branch: rgb (no valid 3D point)"])
        >>> table.on_predict_batch_end(None, None, outputs, batch=None, batch_idx=0)
        >>> print(table.write(Path(tempfile.mkdtemp()) / "predictions.csv").read_text(), end="")
        image_path,depth_path,pred_score,pred_label,branch
        a.png,a.tiff,0.200000,0,rgb+xyz
        b.png,b.tiff,0.900000,1,rgb
    """

    def __init__(self, filename: str = "predictions.csv") -> None:
        super().__init__()
        self.filename = filename
        self.rows: list[dict[str, Any]] = []
        self.path: Path | None = None

    def on_predict_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Start a new table."""
        del trainer, pl_module
        self.rows = []

    def on_predict_batch_end(
        self,
        trainer: Trainer,
        pl_module: LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        """Add the batch's samples (after the post-processor has normalised and thresholded them)."""
        del trainer, pl_module, batch, batch_idx, dataloader_idx
        if outputs is None or getattr(outputs, "pred_score", None) is None:
            return
        scores = outputs.pred_score.detach().float().cpu().reshape(-1)
        labels = getattr(outputs, "pred_label", None)
        labels = labels.detach().cpu().reshape(-1) if isinstance(labels, torch.Tensor) else [None] * len(scores)
        images = getattr(outputs, "image_path", None) or [None] * len(scores)
        depths = getattr(outputs, "depth_path", None) or [None] * len(scores)
        branches = getattr(outputs, "explanation", None) or [None] * len(scores)
        for image, depth, score, label, branch in zip(images, depths, scores, labels, branches, strict=True):
            self.rows.append(
                {
                    "image_path": image,
                    "depth_path": depth,
                    "pred_score": float(score),
                    "pred_label": None if label is None else bool(label),
                    "branch": branch.removeprefix("branch: ").split(" ")[0] if branch else None,
                }
            )

    def on_predict_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Write the table (only on the main process)."""
        del pl_module
        if self.rows and trainer.is_global_zero:
            self.path = self.write(Path(trainer.default_root_dir) / self.filename)

    def write(self, path: str | Path) -> Path:
        """Write the rows to ``path`` atomically (a temporary file renamed into place).

        Args:
            path (str | Path): The CSV file.

        Returns:
            Path: ``path``.
        """
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(COLUMNS)
        for row in self.rows:
            label = "" if row["pred_label"] is None else int(row["pred_label"])
            row_values = [row["image_path"] or "", row["depth_path"] or "", f"{row['pred_score']:.6f}", label]
            writer.writerow([*row_values, row.get("branch") or ""])
        handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(handle, "w") as stream:
            stream.write(buffer.getvalue())
        Path(tmp).replace(path)
        return path
