# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0

"""Measure offline (no-download) CMDR configurations on Synthetic3D.

Every backbone here has random weights or none (FPFH), so this runs on an air-gapped machine.
It trains and tests each candidate with anomalib's Engine and prints a markdown table of image
AUROC, pixel AUROC and AUPRO@0.3, the fit+test time, and the image AUROC of each defect type
against the good samples (which modality sees which defect).

The data are generated with more samples than the datamodule's defaults (40 training parts; 40 good
and 20 of each defect type in the test set), so that a per-defect-type AUROC (20 against 40) moves in
steps of 1/800 and its chance-level spread is about +-0.08, not +-0.2.

Example:
    python benchmarks/offline_candidates.py --categories disc --epochs 10
"""

from __future__ import annotations

import argparse
import logging
import statistics
import time
import warnings
from pathlib import Path

import torch
from anomalib.engine import Engine
from torchmetrics.functional.classification import binary_auroc

from anomalib_cmdr import CMDR
from anomalib_cmdr.data import Synthetic3D

VIT = {"rgb_backbone": "vit_tiny_patch16_224", "rgb_model_kwargs": {"patch_size": 8}}
CNN = {"rgb_backbone": "resnet18", "rgb_layers": [1, 2]}
POINTMAE = {"xyz_backbone": "pointmae_tiny"}
FPFH = {"xyz_backbone": "fpfh", "xyz_model_kwargs": {"normal_radius": 3.0, "feature_radius": 6.0}}
ZSCORE = {"calibration": "zscore"}

CANDIDATES = {
    "random ResNet18 + FPFH": {**CNN, **FPFH},
    "random ResNet18 + FPFH, zscore": {**CNN, **FPFH, **ZSCORE},
    "random ResNet18, rgb only": {**CNN, **FPFH, "modality": "rgb"},
    "random ResNet18, rgb only, zscore": {**CNN, **FPFH, "modality": "rgb", **ZSCORE},
    "FPFH, xyz only": {**CNN, **FPFH, "modality": "xyz"},
    "FPFH, xyz only, zscore": {**CNN, **FPFH, "modality": "xyz", **ZSCORE},
    "random ResNet18 + random Point-MAE": {**CNN, **POINTMAE},
    "random ViT + FPFH": {**VIT, **FPFH},
    "random ViT + random Point-MAE": {**VIT, **POINTMAE},
}
METRICS = ("image_AUROC", "pixel_AUROC", "pixel_AUPRO@0.3")


def per_defect_type_auroc(engine: Engine, model: CMDR, datamodule: Synthetic3D) -> dict[str, float]:
    """Image AUROC of each defect type against the good test samples."""
    batches = engine.predict(model, dataloaders=datamodule.test_dataloader())
    scores = torch.cat([b.pred_score.flatten() for b in batches])
    types = [Path(p).parts[-3] for b in batches for p in b.image_path]
    good = torch.tensor([t == "good" for t in types])
    result = {}
    for defect in sorted(set(types) - {"good"}):
        chosen = good | torch.tensor([t == defect for t in types])
        labels = torch.tensor([t == defect for t in types])[chosen].long()
        result[defect] = float(binary_auroc(scores[chosen], labels))
    return result


def run(
    kwargs: dict, datamodule: Synthetic3D, epochs: int, image_size: int, grid_size: int, out: Path, seed: int = 0
) -> dict:
    """Fit and test one candidate on one category; returns its test metrics and per-defect-type AUROC."""
    torch.manual_seed(seed)
    model = CMDR(**kwargs, pretrained=False, image_size=image_size, grid_size=grid_size)
    engine = Engine(
        max_epochs=epochs,
        default_root_dir=out,
        check_val_every_n_epoch=epochs,  # validate (thresholds, calibration) once, after training
        num_sanity_val_steps=0,
        enable_progress_bar=False,
        logger=False,
        accelerator="cpu",
    )
    start = time.perf_counter()
    engine.fit(model, datamodule=datamodule)
    metrics = engine.test(model, datamodule=datamodule, verbose=False)[0]
    seconds = time.perf_counter() - start
    by_type = per_defect_type_auroc(engine, model, datamodule)
    return {**{k: metrics[k] for k in METRICS}, "seconds": seconds, "by_type": by_type}


def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=None, help="default: datasets/Synthetic3D-<sizes>")
    parser.add_argument("--num-train", type=int, default=40)
    parser.add_argument("--num-test-good", type=int, default=40)
    parser.add_argument("--num-test-defect", type=int, default=20)
    parser.add_argument("--categories", nargs="+", default=["disc"])
    parser.add_argument("--candidates", nargs="+", default=list(CANDIDATES), choices=list(CANDIDATES))
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--grid-sizes", type=int, nargs="+", default=[64], help="head grids to compare")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="data and initialisation seeds")
    parser.add_argument("--out", type=Path, default=Path("results/offline_candidates"))
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    logging.getLogger("anomalib").setLevel(logging.ERROR)

    sizes = {"num_train": args.num_train, "num_test_good": args.num_test_good, "num_test_defect": args.num_test_defect}
    base = args.root or Path(f"datasets/Synthetic3D-{args.num_train}-{args.num_test_good}-{args.num_test_defect}")
    rows = []
    for name in args.candidates:
        for grid in args.grid_sizes:
            for seed in args.seeds:
                root = base if seed == 0 else base.with_name(f"{base.name}-seed{seed}")
                for category in args.categories:
                    datamodule = Synthetic3D(
                        root=root, category=category, seed=seed, train_batch_size=4, eval_batch_size=8, num_workers=0,
                        **sizes,
                    )  # fmt: skip
                    result = run(CANDIDATES[name], datamodule, args.epochs, args.image_size, grid, args.out, seed)
                    label = f"{name}, grid {grid}" if len(args.grid_sizes) > 1 else name
                    rows.append((label, category, seed, result))
                    print(label, category, seed, result, flush=True)
    types = sorted({t for *_, r in rows for t in r["by_type"]})
    print("\n| candidate | category | seed | I-AUROC | P-AUROC | AUPRO@0.3 | fit+test s | " + " | ".join(types) + " |")
    print("|---" * (7 + len(types)) + "|")
    for name, category, seed, r in rows:
        cells = " | ".join(f"{r['by_type'].get(t, float('nan')):.2f}" for t in types)
        print(
            f"| {name} | {category} | {seed} | {r['image_AUROC']:.3f} | {r['pixel_AUROC']:.3f} | "
            f"{r['pixel_AUPRO@0.3']:.3f} | {r['seconds']:.0f} | {cells} |"
        )
    print("\n| candidate | runs | I-AUROC mean ± std | P-AUROC mean ± std | AUPRO@0.3 mean ± std | fit+test s |")
    print("|---|---|---|---|---|---|")
    for label in dict.fromkeys(name for name, *_ in rows):
        chosen = [r for name, *_, r in rows if name == label]
        cells = []
        for metric in ("image_AUROC", "pixel_AUROC", "pixel_AUPRO@0.3"):
            values = [r[metric] for r in chosen]
            spread = statistics.stdev(values) if len(values) > 1 else 0.0
            cells.append(f"{statistics.mean(values):.3f} ± {spread:.3f}")
        seconds = statistics.mean(r["seconds"] for r in chosen)
        print(f"| {label} | {len(chosen)} | {' | '.join(cells)} | {seconds:.0f} |")


if __name__ == "__main__":
    main()
