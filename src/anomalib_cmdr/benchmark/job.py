# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0

"""One benchmark job: fit one model on one category with one seed, test it, measure it.

Every model gets the same datamodule (RGB + xyz; RGB-only models read ``image`` only), the same input size
(CMDR through its ``image_size``, anomalib's models through a plain resize + ImageNet normalisation, no
centre crop, so that every model sees and is scored on the whole image) and the same evaluator (image
AUROC, pixel AUROC, AUPRO at FPR 0.3 and 0.01). The runner executes each job in a child process, so a
crash or an out-of-memory kill becomes a failed row.

Example:
    >>> from anomalib_cmdr.benchmark.config import ModelSpec
    >>> spec = ModelSpec("PaDiM", "anomalib.models.Padim", {"backbone": "resnet18", "pre_trained": False})
    >>> row = run_job(config, spec, "disc", seed=0, work_dir=Path("results/tmp"))  # doctest: +SKIP
    >>> row["status"], 0 <= row["image_AUROC"] <= 1  # doctest: +SKIP
    ('ok', True)
"""

from __future__ import annotations

import importlib
import resource
import time
from pathlib import Path
from typing import Any

import torch
from torchmetrics.functional.classification import binary_auroc

from .config import BenchmarkConfig, ModelSpec

METRICS = ("image_AUROC", "pixel_AUROC", "pixel_AUPRO@0.3", "pixel_AUPRO@0.01")
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def import_class(class_path: str) -> type:
    """The class named by ``package.module.Class``.

    Args:
        class_path (str): Import path.

    Returns:
        type: The class.

    Raises:
        ValueError: If it cannot be imported.

    Example:
        >>> import_class("anomalib_cmdr.benchmark.config.ModelSpec") is ModelSpec
        True
        >>> import_class("anomalib.models.NoSuchModel")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
            ...
        ValueError: class_path='anomalib.models.NoSuchModel' cannot be imported (...)
    """
    module, _, name = class_path.rpartition(".")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError) as error:
        msg = f"class_path={class_path!r} cannot be imported ({error})"
        raise ValueError(msg) from error


def make_model(spec: ModelSpec, image_size: int) -> Any:
    """Build a model with the benchmark's input size, evaluator and no visualizer.

    Args:
        spec (ModelSpec): The model.
        image_size (int): Input side in pixels.

    Returns:
        AnomalibModule: The model.

    Example:
        >>> spec = ModelSpec("PaDiM", "anomalib.models.Padim", {"backbone": "resnet18", "pre_trained": False})
        >>> model = make_model(spec, image_size=128)  # doctest: +SKIP
        >>> type(model).__name__, model.visualizer  # doctest: +SKIP
        ('Padim', None)
    """
    from anomalib.pre_processing import PreProcessor
    from torchvision.transforms.v2 import Compose, Normalize, Resize

    from anomalib_cmdr import CMDR

    cls = import_class(spec.class_path)
    kwargs = dict(spec.init_args)
    if issubclass(cls, CMDR):
        kwargs.setdefault("image_size", image_size)
    else:
        resize = Resize((image_size, image_size), antialias=True)
        kwargs.setdefault("pre_processor", PreProcessor(Compose([resize, Normalize(IMAGENET_MEAN, IMAGENET_STD)])))
    kwargs.setdefault("evaluator", CMDR.configure_evaluator())
    kwargs.setdefault("visualizer", False)
    return cls(**kwargs)


def make_datamodule(config: BenchmarkConfig, spec: ModelSpec, category: str, seed: int) -> Any:
    """The category's datamodule: the folder under ``root``, generated first when ``synthetic`` is set.

    Args:
        config (BenchmarkConfig): The benchmark.
        spec (ModelSpec): The model (for its batch sizes).
        category (str): Category folder.
        seed (int): Seed of the random splits.

    Returns:
        AnomalibDataModule: An :class:`~anomalib_cmdr.data.RGBXYZFolder` or :class:`~anomalib_cmdr.data.Synthetic3D`.

    Example:
        >>> spec = ModelSpec("PaDiM", "anomalib.models.Padim")
        >>> config = BenchmarkConfig(models=[spec], root=Path("datasets/MVTec3D"), train_batch_size=4)
        >>> datamodule = make_datamodule(config, spec, "bagel", seed=0)  # doctest: +SKIP
        >>> type(datamodule).__name__, datamodule.train_batch_size  # doctest: +SKIP
        ('RGBXYZFolder', 4)
    """
    from anomalib_cmdr.data import RGBXYZFolder, Synthetic3D

    loader = {
        "train_batch_size": spec.train_batch_size or config.train_batch_size,
        "eval_batch_size": spec.eval_batch_size or config.eval_batch_size,
        "num_workers": config.num_workers,
        **config.data,
    }
    if config.synthetic is not None:
        return Synthetic3D(root=config.root, category=category, **{**config.synthetic, **loader})
    return RGBXYZFolder(root=config.root, category=category, seed=seed, **loader)


def defect_type_auroc(batches: list[Any]) -> dict[str, float]:
    """Image AUROC of each defect type against the good samples, from predicted batches.

    Args:
        batches (list[Any]): ``Engine.predict`` output (``pred_score`` and ``image_path``).

    Returns:
        dict[str, float]: ``{defect type: AUROC}``.

    Example:
        >>> from types import SimpleNamespace
        >>> paths = [f"data/disc/test/{kind}/rgb/000.png" for kind in ("good", "good", "crack", "hole")]
        >>> batch = SimpleNamespace(pred_score=torch.tensor([0.1, 0.4, 0.9, 0.3]), image_path=paths)
        >>> defect_type_auroc([batch])
        {'crack': 1.0, 'hole': 0.5}
    """
    scores = torch.cat([batch.pred_score.flatten().float() for batch in batches])
    types = [Path(path).parts[-3] for batch in batches for path in batch.image_path]
    good = torch.tensor([t == "good" for t in types])
    result = {}
    for defect in sorted(set(types) - {"good"}):
        is_defect = torch.tensor([t == defect for t in types])
        chosen = good | is_defect
        result[defect] = float(binary_auroc(scores[chosen], is_defect[chosen].long()))
    return result


def run_job(config: BenchmarkConfig, spec: ModelSpec, category: str, seed: int, work_dir: Path) -> dict[str, Any]:
    """Fit, test and measure one model on one category with one seed (in the calling process).

    Args:
        config (BenchmarkConfig): The benchmark.
        spec (ModelSpec): The model.
        category (str): Category.
        seed (int): Seed of initialisation and training.
        work_dir (Path): Folder for the job's checkpoints.

    Returns:
        dict[str, Any]: The row: ``status``, the metrics, per-defect-type image AUROC
        (``image_AUROC[<type>]``), ``fit_s``, ``latency_ms``, ``peak_rss_mb``, ``trainable_params``,
        ``total_params``.

    Example:
        >>> config = BenchmarkConfig.from_yaml("configs/benchmark/synthetic.yaml")  # doctest: +SKIP
        >>> row = run_job(config, config.models[0], "disc", seed=0, work_dir=Path("results/tmp"))  # doctest: +SKIP
        >>> row["status"], sorted(key for key in row if key.startswith("image_AUROC["))  # doctest: +SKIP
        ('ok', ['image_AUROC[crack]', 'image_AUROC[dent]'])
    """
    from anomalib.engine import Engine
    from lightning.pytorch import seed_everything

    seed_everything(seed, verbose=False)
    datamodule = make_datamodule(config, spec, category, seed)
    model = make_model(spec, config.image_size)
    trainer = {"accelerator": "auto", "devices": 1, **config.trainer, **spec.trainer}
    engine = Engine(
        default_root_dir=work_dir,
        logger=False,
        enable_progress_bar=False,
        num_sanity_val_steps=0,
        **trainer,
    )
    start = time.perf_counter()
    engine.fit(model, datamodule=datamodule)
    fit_s = time.perf_counter() - start
    metrics = engine.test(model, datamodule=datamodule, verbose=False)[0]
    start = time.perf_counter()
    batches = engine.predict(model, dataloaders=datamodule.test_dataloader())
    samples = sum(len(batch.pred_score.flatten()) for batch in batches)
    latency_ms = 1000 * (time.perf_counter() - start) / max(samples, 1)
    parameters = list(model.model.parameters())
    row: dict[str, Any] = {
        "status": "ok",
        **{name: float(metrics[name]) for name in METRICS if name in metrics},
        **{f"image_AUROC[{defect}]": value for defect, value in defect_type_auroc(batches).items()},
        "fit_s": round(fit_s, 2),
        "latency_ms": round(latency_ms, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "trainable_params": sum(p.numel() for p in parameters if p.requires_grad),
        "total_params": sum(p.numel() for p in parameters),
    }
    return row
