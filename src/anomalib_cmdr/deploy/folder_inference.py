# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0

"""Score files or folders of parts with an exported CMDR: what ``anomalib-cmdr infer`` runs.

Per sample it prints the score and label, writes a picture (:func:`~anomalib_cmdr.visualization.prediction_panel`)
and a row of ``predictions.csv`` in the output folder.

Example:
    >>> from anomalib_cmdr.deploy.folder_inference import infer_files
    >>> rows = infer_files("export/weights/openvino", rgb="parts/rgb", xyz="parts/xyz", output="out")  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tqdm import tqdm

from anomalib_cmdr.data.io import read_rgb, read_xyz
from anomalib_cmdr.data.predict import RGB_SUFFIXES, XYZ_SUFFIXES, find_sample_pairs, pair_files
from anomalib_cmdr.models.cmdr.predictions import PredictionTable
from anomalib_cmdr.visualization import prediction_panel

from .inferencer import CMDROpenVINOInferencer
from .spec import DeploySpec


def _single_modality_files(path: str | Path, suffixes: tuple[str, ...]) -> list[Path]:
    path = Path(path).expanduser()
    if path.is_file():
        return [path]
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in suffixes)
        if files:
            return files
    msg = f"{path}: no such file, or a folder without {'/'.join(suffixes)} files."
    raise FileNotFoundError(msg)


def collect_samples(
    spec: DeploySpec,
    rgb: str | Path | None = None,
    xyz: str | Path | None = None,
    input_dir: str | Path | None = None,
) -> list[tuple[Path | None, Path | None]]:
    """The ``(rgb, xyz)`` files to score, as the model's modality needs them.

    Args:
        spec (DeploySpec): The export's metadata.
        rgb (str | Path | None): An RGB file or folder. Defaults to ``None``.
        xyz (str | Path | None): A point cloud file or folder. Defaults to ``None``.
        input_dir (str | Path | None): A folder of samples (see :func:`~anomalib_cmdr.data.predict.find_sample_pairs`).
            Defaults to ``None``.

    Returns:
        list[tuple[Path | None, Path | None]]: Per sample, the files (``None`` for an unused modality).

    Raises:
        ValueError: If the arguments do not fit the model's modality.

    Example:
        >>> import tempfile
        >>> import numpy as np
        >>> from PIL import Image
        >>> folder = Path(tempfile.mkdtemp())
        >>> Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(folder / "part1.png")
        >>> spec = DeploySpec(modality="rgb", image_size=(32, 32), square_pad=True, inputs=["image"], outputs=[])
        >>> [(rgb.name, xyz) for rgb, xyz in collect_samples(spec, rgb=folder)]
        [('part1.png', None)]
        >>> collect_samples(spec, xyz=folder)
        Traceback (most recent call last):
            ...
        ValueError: This model (modality 'rgb') reads RGB images only: give --rgb (or --input), not --xyz.
    """
    if input_dir is not None:
        if rgb is not None or xyz is not None:
            msg = "Give either --input (a folder of samples) or --rgb/--xyz, not both."
            raise ValueError(msg)
        if spec.modality == "rgb+xyz":
            return list(find_sample_pairs(input_dir))
        rgb, xyz = (input_dir, None) if spec.uses_rgb else (None, input_dir)
        if Path(input_dir, "rgb" if spec.uses_rgb else "xyz").is_dir():
            rgb, xyz = (Path(input_dir, "rgb"), None) if spec.uses_rgb else (None, Path(input_dir, "xyz"))
    if spec.modality == "rgb+xyz":
        if rgb is None or xyz is None:
            msg = "This model uses RGB and point clouds: give --rgb and --xyz (files or folders), or --input."
            raise ValueError(msg)
        return list(pair_files(rgb, xyz))
    if spec.uses_rgb:
        if rgb is None or xyz is not None:
            msg = "This model (modality 'rgb') reads RGB images only: give --rgb (or --input), not --xyz."
            raise ValueError(msg)
        return [(path, None) for path in _single_modality_files(rgb, RGB_SUFFIXES)]
    if xyz is None or rgb is not None:
        msg = "This model (modality 'xyz') reads point clouds only: give --xyz (or --input), not --rgb."
        raise ValueError(msg)
    return [(None, path) for path in _single_modality_files(xyz, XYZ_SUFFIXES)]


def infer_files(
    model: str | Path,
    rgb: str | Path | None = None,
    xyz: str | Path | None = None,
    input_dir: str | Path | None = None,
    output: str | Path | None = None,
    device: str = "CPU",
    report: Callable[[str], None] | None = None,
) -> list[dict]:
    """Score files with an exported CMDR; pictures and ``predictions.csv`` into ``output``.

    Args:
        model (str | Path): The export folder (or its ``.xml``).
        rgb (str | Path | None): RGB file or folder. Defaults to ``None``.
        xyz (str | Path | None): Point cloud file or folder. Defaults to ``None``.
        input_dir (str | Path | None): Folder of samples. Defaults to ``None``.
        output (str | Path | None): Where to write pictures and the CSV; ``None``: nothing written.
            Defaults to ``None``.
        device (str): OpenVINO device. Defaults to ``"CPU"``.
        report (Callable[[str], None] | None): Called with one line per sample (e.g. ``print``). Defaults to
            ``None``.

    Returns:
        list[dict]: Per sample: ``image_path``, ``depth_path``, ``pred_score``, ``pred_label``.

    Example:
        >>> rows = infer_files("results/export/weights/openvino", input_dir="parts", output="scored")  # doctest: +SKIP
        >>> rows[0]["pred_score"], rows[0]["pred_label"]  # doctest: +SKIP
        (0.8134, True)
    """
    inferencer = CMDROpenVINOInferencer(model, device=device)
    samples = collect_samples(inferencer.spec, rgb, xyz, input_dir)
    table = PredictionTable()
    out = Path(output) if output is not None else None
    if out is not None:
        (out / "images").mkdir(parents=True, exist_ok=True)
    names: set[str] = set()
    for rgb_path, xyz_path in tqdm(samples, desc="CMDR inference", disable=len(samples) < 2 or report is None):
        rgb_array = read_rgb(rgb_path) if rgb_path is not None else None
        xyz_array = read_xyz(xyz_path) if xyz_path is not None else None
        result = inferencer.predict(rgb_array, xyz_array)
        score = float(result.pred_score[0])
        label = bool(result.pred_label[0]) if result.pred_label is not None else None
        table.rows.append({"image_path": rgb_path, "depth_path": xyz_path, "pred_score": score, "pred_label": label})
        if report is not None:
            verdict = "" if label is None else ("anomalous" if label else "normal")
            report(f"{rgb_path or xyz_path}: score {score:.4f} {verdict}")
        if out is not None:
            images, clouds = inferencer.builder.resize_arrays(
                [rgb_array] if rgb_array is not None else None, [xyz_array] if xyz_array is not None else None
            )
            panel = prediction_panel(
                images[0].numpy() if images is not None else None,
                clouds[0].numpy() if clouds is not None else None,
                result.anomaly_map[0],
                result.pred_mask[0] if result.pred_mask is not None else None,
                score,
                label,
            )
            panel.save(out / "images" / f"{_picture_name(rgb_path or xyz_path, names)}.png")  # type: ignore[arg-type]
    if out is not None:
        table.write(out / "predictions.csv")
    return table.rows


def _picture_name(path: Path, taken: set[str]) -> str:
    """A picture name unique within the run: ``crack_000`` for ``.../crack/rgb/000.png``, else the stem."""
    name = f"{path.parent.parent.name}_{path.stem}" if path.parent.name in {"rgb", "xyz"} else path.stem
    candidate, count = name, 1
    while candidate in taken:
        candidate, count = f"{name}_{count}", count + 1
    taken.add(candidate)
    return candidate
