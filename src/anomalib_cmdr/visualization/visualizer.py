# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0

"""CMDR's default visualizer: anomalib's visualizer mechanism, with the 3D side shown.

anomalib's ``ImageVisualizer`` draws the RGB image, the mask and the map over the image. For an RGB + 3D
model the point cloud is half the evidence, so :class:`CMDRVisualizer` writes, per test or predicted sample,
:func:`~anomalib_cmdr.visualization.panels.prediction_panel`: RGB, depth (coloured, holes black), the anomaly
map over each, and the predicted mask with the ground truth when known, titled with score and label. Only
the panels of the model's modality are drawn. Files go where anomalib puts its pictures
(``<default_root_dir>/images/...``, named by anomalib's ``generate_output_filename``), and
``CMDR(visualizer=False)`` turns them off as for any anomalib model. With ``point_clouds=True`` each sample
with a point cloud also gets a 3D view: its valid points coloured by the anomaly map, as a PLY any viewer opens
(with the score as a vertex property) and a PNG rendered headless (see
:mod:`~anomalib_cmdr.visualization.point_cloud`), beside the picture.

Example:
    >>> from anomalib_cmdr import CMDR
    >>> model = CMDR(rgb_backbone="resnet18", rgb_layers=[1], xyz_backbone="fpfh", pretrained=False)
    >>> type(model.visualizer).__name__
    'CMDRVisualizer'
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from anomalib.utils.path import generate_output_filename
from anomalib.visualization import ImageVisualizer
from torchvision import tv_tensors

from anomalib_cmdr.data.background import XYZ_SUFFIXES
from anomalib_cmdr.data.io import read_rgb, read_xyz
from anomalib_cmdr.data.transforms import SquarePadResize

from .panels import prediction_panel


def _numpy(value: Any) -> np.ndarray | None:
    if value is None:
        return None
    return value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else np.asarray(value)


class CMDRVisualizer(ImageVisualizer):
    """Write one RGB + depth prediction picture per test or predicted sample.

    Args:
        output_dir (str | Path | None): Folder of the pictures; ``None``: ``<default_root_dir>/images``.
            Defaults to ``None``.
        square_pad (bool): Square-pad the inputs before resizing them to the map, as CMDR's pre-processor does.
            Defaults to ``True``.
        point_clouds (bool): Also write each sample's points coloured by the anomaly map, ``<picture>.ply`` and
            ``<picture>_3d.png``. Defaults to ``False``.

    Example:
        From the stock CLI, the 3D views of every test sample::

            anomalib test -c configs/model/cmdr_offline.yaml --data ... --ckpt_path ...
                --model.visualizer anomalib_cmdr.visualization.CMDRVisualizer
                --model.visualizer.point_clouds true
    """

    def __init__(
        self, output_dir: str | Path | None = None, square_pad: bool = True, point_clouds: bool = False
    ) -> None:
        super().__init__(output_dir=output_dir)
        self.square_pad = square_pad
        self.point_clouds = point_clouds

    def _inputs(self, item: Any, size: tuple[int, int], modality: str) -> tuple[np.ndarray | None, np.ndarray | None]:
        """The sample's RGB and point cloud, read from its files and resized like the model's input."""
        resize = SquarePadResize(size, self.square_pad)
        rgb = xyz = None
        if modality != "xyz" and getattr(item, "image_path", None):
            image = torch.from_numpy(read_rgb(item.image_path)).permute(2, 0, 1)
            rgb = resize(tv_tensors.Image(image)).permute(1, 2, 0).numpy()
        depth_path = getattr(item, "depth_path", None)
        if modality != "rgb" and depth_path and Path(depth_path).suffix.lower() in XYZ_SUFFIXES:
            cloud = torch.from_numpy(read_xyz(depth_path)).permute(2, 0, 1)
            xyz = resize(tv_tensors.Mask(cloud)).permute(1, 2, 0).numpy()
        elif modality != "rgb" and getattr(item, "depth_map", None) is not None:
            # not an organized-cloud file (e.g. a chunk of a raw scan): the model's own input, already at its size
            cloud = item.depth_map.detach().float().cpu().reshape(3, *item.depth_map.shape[-2:])
            xyz = resize(tv_tensors.Mask(cloud)).permute(1, 2, 0).numpy()
        return rgb, xyz

    @staticmethod
    def _write_point_cloud(picture: Path, xyz: np.ndarray, anomaly_map: np.ndarray, title: str) -> None:
        """The sample's valid points coloured by the map: ``<picture>.ply`` and ``<picture>_3d.png``."""
        from .point_cloud import render_scored_points, write_scored_ply

        valid = np.all(np.isfinite(xyz), axis=2) & np.any(xyz != 0, axis=2)
        if not valid.any():
            return
        points, scores = xyz[valid], np.asarray(anomaly_map, dtype=np.float32)[valid]
        vmin, vmax = (0.0, 1.0) if anomaly_map.min() >= 0 and anomaly_map.max() <= 1 else (None, None)
        write_scored_ply(picture.with_suffix(".ply"), points, scores, vmin=vmin, vmax=vmax)
        view = picture.with_name(f"{picture.stem}_3d.png")
        render_scored_points(view, points, scores, title=title, vmin=vmin, vmax=vmax, camera_frame=True)

    def on_test_batch_end(
        self,
        trainer: Any,
        pl_module: Any,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        """Write the pictures of the batch's samples."""
        del outputs, batch_idx, dataloader_idx
        if self.output_dir is None:
            self.output_dir = Path(trainer.default_root_dir) / "images"
        modality = getattr(getattr(pl_module, "model", None), "modality", "rgb+xyz")
        datamodule = getattr(trainer, "datamodule", None)
        for item in batch:
            if item.anomaly_map is None:
                continue
            anomaly_map = _numpy(item.anomaly_map).squeeze()
            rgb, xyz = self._inputs(item, tuple(anomaly_map.shape[-2:]), modality)
            label = item.pred_label
            panel = prediction_panel(
                rgb,
                xyz,
                anomaly_map,
                _numpy(item.pred_mask),
                float(item.pred_score) if item.pred_score is not None else float(anomaly_map.max()),
                None if label is None else bool(label),
                gt_mask=_numpy(item.gt_mask) if getattr(item, "gt_mask", None) is not None else None,
                note=_branch_note(getattr(item, "explanation", None)),
            )
            filename = generate_output_filename(
                input_path=item.image_path or item.depth_path or "",
                output_path=self.output_dir,
                dataset_name=getattr(datamodule, "name", None) if datamodule else None,
                category=getattr(datamodule, "category", None) if datamodule else None,
            )
            picture = Path(filename).with_suffix(".png")  # a picture, also for a sample named by its .tiff cloud
            panel.save(picture)
            if self.point_clouds and xyz is not None:
                self._write_point_cloud(picture, xyz, anomaly_map, panel_title(item, anomaly_map))


def _branch_note(explanation: str | None) -> str | None:
    """The title note of a sample scored by a single-modality branch (``None`` for the fused one)."""
    if not explanation or explanation.startswith("branch: rgb+xyz"):
        return None
    return explanation


def panel_title(item: Any, anomaly_map: np.ndarray) -> str:
    """``<file name>: score <s> <label>`` for a sample's 3D view.

    Example:
        >>> from types import SimpleNamespace
        >>> item = SimpleNamespace(pred_score=torch.tensor(0.8125), pred_label=torch.tensor(True),
        ...                        image_path="data/bagel/test/crack/rgb/000.png", depth_path=None)
        >>> panel_title(item, np.zeros((4, 4)))
        '000.png: score 0.812 ANOMALOUS'
        >>> panel_title(SimpleNamespace(pred_score=None, pred_label=None, image_path=None, depth_path="a.tiff"),
        ...             np.full((4, 4), 0.25))
        'a.tiff: score 0.250'
    """
    score = float(item.pred_score) if item.pred_score is not None else float(anomaly_map.max())
    label = "" if item.pred_label is None else (" ANOMALOUS" if bool(item.pred_label) else " normal")
    return f"{Path(item.image_path or item.depth_path or 'sample').name}: score {score:.3f}{label}"
