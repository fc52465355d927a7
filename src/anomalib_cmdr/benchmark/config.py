# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0

"""Benchmark configuration: which models, on which categories and seeds, with which data and training.

A YAML file like ``configs/benchmark/synthetic.yaml``::

    root: datasets/Synthetic3D          # any folder in the MVTec 3D-AD layout
    categories: null                    # null: every category folder found (or generated) under root
    seeds: [0, 1]
    image_size: 128                     # one input size for every model
    synthetic: {synth_image_size: 128}  # generate missing Synthetic3D categories with these arguments
    trainer: {max_epochs: 10}
    models:
      - label: CMDR rgb+xyz
        class_path: anomalib_cmdr.CMDR
        init_args: {rgb_backbone: resnet18, rgb_layers: [1, 2], xyz_backbone: fpfh, pretrained: false}
      - label: PatchCore
        class_path: anomalib.models.Patchcore
        init_args: {backbone: resnet18, pre_trained: false}
        input: rgb
        trainer: {max_epochs: 1}

Example:
    >>> config = BenchmarkConfig.from_dict({"models": [{"label": "PaDiM", "class_path": "anomalib.models.Padim"}]})
    >>> config.models[0].input, config.seeds
    ('rgb+xyz', [0])
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

__all__ = ["BenchmarkConfig", "ModelSpec"]


def _check_keys(data: dict[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        msg = f"{where}: unknown key(s) {unknown}; allowed: {sorted(allowed)}"
        raise ValueError(msg)


@dataclass
class ModelSpec:
    """One labelled model of the benchmark.

    Attributes:
        label (str): Name in the results (e.g. ``"CMDR rgb"``).
        class_path (str): Import path of the anomalib model class (``anomalib.models.Patchcore``).
        init_args (dict[str, Any]): Its constructor arguments.
        input (str): ``"rgb+xyz"`` or ``"rgb"``: what the model reads (RGB-only models get the RGB image).
        trainer (dict[str, Any]): Overrides of the benchmark's trainer settings for this model.
        train_batch_size (int | None): Overrides the benchmark's training batch size (e.g. 1 for CFM).
        eval_batch_size (int | None): Overrides the benchmark's evaluation batch size.

    Example:
        >>> spec = ModelSpec("PatchCore", "anomalib.models.Patchcore", {"backbone": "resnet18"}, input="rgb")
        >>> spec.label, spec.input, spec.trainer, spec.train_batch_size
        ('PatchCore', 'rgb', {}, None)
    """

    label: str
    class_path: str
    init_args: dict[str, Any] = field(default_factory=dict)
    input: str = "rgb+xyz"
    trainer: dict[str, Any] = field(default_factory=dict)
    train_batch_size: int | None = None
    eval_batch_size: int | None = None


@dataclass
class BenchmarkConfig:
    """Every setting of a benchmark run (see the module docstring for the YAML form).

    Attributes:
        models (list[ModelSpec]): The models.
        root (Path): Data folder in the MVTec 3D-AD layout.
        categories (list[str] | None): Categories; ``None``: the folders found under ``root`` (or, with
            ``synthetic``, every Synthetic3D category).
        seeds (list[int]): Seeds of the model initialisation and training.
        image_size (int): The input size of every model.
        synthetic (dict[str, Any] | None): ``Synthetic3D`` arguments used to generate missing categories;
            ``None``: the categories must exist.
        data (dict[str, Any]): Further datamodule arguments (e.g. ``remove_background: true``).
        trainer (dict[str, Any]): ``Engine`` arguments (e.g. ``max_epochs``).
        train_batch_size (int): Training batch size.
        eval_batch_size (int): Evaluation batch size.
        num_workers (int): Data-loader workers.
        timeout_s (float): Wall-clock limit of one job (its child process is then killed: a failed row).
        output (Path): Folder of ``results.csv``, the summary and the plots.

    Example:
        >>> config = BenchmarkConfig(models=[ModelSpec("PaDiM", "anomalib.models.Padim")], seeds=[0, 1])
        >>> str(config.root), config.seeds, config.trainer
        ('datasets/Synthetic3D', [0, 1], {'max_epochs': 1})
    """

    models: list[ModelSpec]
    root: Path = Path("datasets/Synthetic3D")
    categories: list[str] | None = None
    seeds: list[int] = field(default_factory=lambda: [0])
    image_size: int = 128
    synthetic: dict[str, Any] | None = None
    data: dict[str, Any] = field(default_factory=dict)
    trainer: dict[str, Any] = field(default_factory=lambda: {"max_epochs": 1})
    train_batch_size: int = 8
    eval_batch_size: int = 8
    num_workers: int = 0
    timeout_s: float = 3600.0
    output: Path = Path("results/benchmark")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BenchmarkConfig:
        """Build and check a configuration.

        Args:
            data (dict[str, Any]): The parsed YAML.

        Returns:
            BenchmarkConfig: The configuration.

        Raises:
            ValueError: On an unknown key, no model, a duplicate label or a bad ``input``.
        """
        _check_keys(data, {f.name for f in fields(cls)}, "benchmark config")
        models = []
        for index, model in enumerate(data.get("models") or []):
            _check_keys(model, {f.name for f in fields(ModelSpec)}, f"models[{index}]")
            spec = ModelSpec(**model)
            if spec.input not in {"rgb+xyz", "rgb"}:
                msg = f"models[{index}] ({spec.label}): input={spec.input!r}; choose 'rgb+xyz' or 'rgb'"
                raise ValueError(msg)
            models.append(spec)
        if not models:
            msg = "benchmark config: 'models' lists no model"
            raise ValueError(msg)
        labels = [spec.label for spec in models]
        if len(set(labels)) != len(labels):
            msg = f"benchmark config: model labels must be unique, got {labels}"
            raise ValueError(msg)
        values = {key: value for key, value in data.items() if key != "models"}
        for key in ("root", "output"):
            if key in values:
                values[key] = Path(values[key])
        return cls(models=models, **values)

    @classmethod
    def from_yaml(cls, path: str | Path) -> BenchmarkConfig:
        """Read a configuration file.

        Args:
            path (str | Path): The YAML file.

        Returns:
            BenchmarkConfig: The configuration.

        Raises:
            FileNotFoundError: If the file does not exist.
            ValueError: If it is not a mapping or has unknown keys.
        """
        path = Path(path)
        if not path.is_file():
            msg = f"{path}: benchmark config not found"
            raise FileNotFoundError(msg)
        data = yaml.safe_load(path.read_text())
        if not isinstance(data, dict):
            msg = f"{path}: a benchmark config is a mapping (root, categories, seeds, models, ...)"
            raise ValueError(msg)
        try:
            return cls.from_dict(data)
        except ValueError as error:
            msg = f"{path}: {error}"
            raise ValueError(msg) from error
