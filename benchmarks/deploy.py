# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0

"""OpenVINO deployment of CMDR against torch: parity, latency and the accuracy of FP16/INT8, in one run.

1. **Parity and latency** (batch size 1, one Synthetic3D test part, median of ``--repeats`` interleaved runs) of
   the paper configuration (ViT-B/8 + Point-MAE 1024x128 at 224 px, heads on 224x224) and the offline one
   (ResNet18 + FPFH, 128 px, 64x64 grid): torch CPU against OpenVINO CPU in FP32, FP16 (weights) and INT8
   (NNCF weight compression), with the stage before the graph (resizing, valid points, FPS/kNN/interpolation
   or FPFH) timed apart from the graph, and the same FP32 graph with the CPU's bf16 precision hint. Parity:
   the largest absolute difference of the anomaly map and of the score against torch, and whether the labels
   agree.
2. **Accuracy** of each precision (offline configuration trained on every Synthetic3D category, the same
   protocol as ``configs/benchmark/synthetic.yaml``): image AUROC and AUPRO@30 % of torch and of OpenVINO
   FP32, FP16, INT8 weights and INT8 post-training quantisation (calibrated on the normal training parts).

All backbones have random weights (no download); the paper configuration's heads are untrained (parity and
speed do not depend on training), so its outputs are raw (the post-processor has no statistics yet).

    python benchmarks/deploy.py [--repeats 3] [--seeds 0 1] [--output docs/deployment.md]

The measured rows are also saved under ``results/deploy_benchmark/``; ``--reuse-speed`` reports the saved parity
and speed rows with a new accuracy run.

With ``--output``, the report replaces the block between ``<!-- deploy-benchmark:start -->`` and
``<!-- deploy-benchmark:end -->`` of that file.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

OFFLINE = {
    "rgb_backbone": "resnet18",
    "rgb_layers": [1, 2],
    "xyz_backbone": "fpfh",
    "xyz_model_kwargs": {"normal_radius": 3.0, "feature_radius": 6.0},
    "image_size": 128,
    "grid_size": 64,
}
CONFIGS = {"paper": {"image_size": 224}, "offline": OFFLINE}
VARIANTS = {"FP32": None, "FP16": "FP16", "INT8 weights": "INT8"}
START, END = "<!-- deploy-benchmark:start -->", "<!-- deploy-benchmark:end -->"
SYNTH = {"synth_image_size": 128, "num_train": 20, "num_val": 5, "num_test_good": 8, "num_test_defect": 4}


def _median(times: list[float]) -> float:
    return statistics.median(times) if times else float("nan")


def torch_latency(model: Any, rgb: np.ndarray, xyz: np.ndarray, builder: Any) -> tuple[float, dict]:
    """Seconds of one torch inference of a native-size sample (resize, features, heads, post-processing)."""
    from anomalib_cmdr.deploy.inferencer import torch_reference

    start = time.perf_counter()
    reference = torch_reference(model, *builder.resize_arrays([rgb], [xyz]))
    return time.perf_counter() - start, reference


def parity_and_speed(name: str, repeats: int, data_root: Path, work: Path) -> list[dict]:
    """Export configuration ``name`` in every variant and time torch and OpenVINO side by side."""
    from anomalib.deploy import CompressionType

    from anomalib_cmdr import CMDR
    from anomalib_cmdr.data import RGBXYZPredictDataset, read_rgb, read_xyz
    from anomalib_cmdr.deploy import CMDROpenVINOInferencer

    torch.manual_seed(0)
    model = CMDR(pretrained=False, **CONFIGS[name]).eval()
    rgb_path, xyz_path = RGBXYZPredictDataset(data_root / "disc" / "test").pairs[-1]
    rgb, xyz = read_rgb(rgb_path), read_xyz(xyz_path)
    inferencers = {}
    export_seconds = {}
    for variant, compression in VARIANTS.items():
        start = time.perf_counter()
        compression_type = compression and CompressionType[compression]
        path = model.to_openvino(work / f"{name}_{variant}", compression_type=compression_type)
        export_seconds[variant] = time.perf_counter() - start
        inferencers[variant] = CMDROpenVINOInferencer(path.parent)
    inferencers["FP32, bf16 hint"] = CMDROpenVINOInferencer(
        work / f"{name}_FP32" / "weights" / "openvino", config={"INFERENCE_PRECISION_HINT": "bf16"}
    )
    builder = inferencers["FP32"].builder
    torch_latency(model, rgb, xyz, builder)  # warm-up
    for inferencer in inferencers.values():
        inferencer.predict(rgb, xyz)
    times: dict[str, list[tuple[float, float]]] = {key: [] for key in ["torch", *inferencers]}
    reference: dict = {}
    results: dict[str, Any] = {}
    for _ in range(repeats):
        seconds, reference = torch_latency(model, rgb, xyz, builder)
        times["torch"].append((seconds, 0.0))
        for variant, inferencer in inferencers.items():
            results[variant] = inferencer.predict(rgb, xyz)
            times[variant].append((inferencer.timings.prepare, inferencer.timings.graph))
    torch_total = _median([t for t, _ in times["torch"]])
    rows = [{"config": name, "runtime": "torch CPU", "total": torch_total, "prepare": None, "graph": None}]
    for variant, result in results.items():
        total = _median([p + g for p, g in times[variant]])
        rows.append(
            {
                "config": name,
                "runtime": f"OpenVINO CPU {variant}",
                "total": total,
                "prepare": _median([p for p, _ in times[variant]]),
                "graph": _median([g for _, g in times[variant]]),
                "ratio": total / torch_total,
                "map_diff": float(np.abs(result.anomaly_map - reference["anomaly_map"]).max()),
                "map_scale": float(np.abs(reference["anomaly_map"]).max()),
                "score_diff": float(np.abs(result.pred_score - reference["pred_score"]).max()),
                "labels_equal": bool(np.array_equal(result.pred_label, reference["pred_label"])),
                "export_s": export_seconds.get(variant),
            }
        )
    return rows


def accuracy(seeds: list[int], data_root: Path, work: Path) -> list[dict]:
    """Image AUROC and AUPRO@30% of torch and of each OpenVINO precision, offline configuration, every category."""
    from anomalib.deploy import CompressionType
    from anomalib.engine import Engine
    from anomalib.metrics import AUPRO, AUROC
    from torchvision import tv_tensors

    from anomalib_cmdr import CMDR
    from anomalib_cmdr.data import Synthetic3D
    from anomalib_cmdr.data.synthetic import CATEGORIES
    from anomalib_cmdr.deploy import CMDROpenVINOInferencer
    from anomalib_cmdr.deploy.inferencer import torch_reference

    variants = {"torch": None, "OpenVINO FP32": None, "OpenVINO FP16": "FP16", "OpenVINO INT8 weights": "INT8"}
    variants["OpenVINO INT8 PTQ"] = "INT8_PTQ"
    rows = []
    for category in CATEGORIES:
        for seed in seeds:
            torch.manual_seed(seed)
            model = CMDR(pretrained=False, **OFFLINE)
            datamodule = Synthetic3D(
                root=data_root, category=category, train_batch_size=4, eval_batch_size=8, num_workers=0,
                **SYNTH,
            )  # fmt: skip
            engine = Engine(
                max_epochs=10, check_val_every_n_epoch=10, num_sanity_val_steps=0, logger=False, accelerator="cpu",
                default_root_dir=work / f"train_{category}_{seed}", enable_progress_bar=False,
            )  # fmt: skip
            engine.fit(model, datamodule=datamodule)
            model.eval()
            inferencers = {}
            for label, compression in variants.items():
                if label == "torch":
                    continue
                path = model.to_openvino(
                    work / f"acc_{category}_{seed}_{label.replace(' ', '_')}",
                    compression_type=compression and CompressionType[compression],
                    datamodule=datamodule if compression == "INT8_PTQ" else None,
                )
                inferencers[label] = CMDROpenVINOInferencer(path.parent)
            builder = inferencers["OpenVINO FP32"].builder
            metrics = {
                label: (
                    AUROC(fields=["pred_score", "gt_label"]),
                    AUPRO(fields=["anomaly_map", "gt_mask"], fpr_limit=0.3),
                )
                for label in variants
            }
            for item in datamodule.test_data:
                rgb8 = (item.image.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
                xyz = item.depth_map.permute(1, 2, 0).numpy()
                images, clouds = builder.resize_arrays([rgb8], [xyz])
                mask = builder.resize(tv_tensors.Mask(item.gt_mask[None])).as_subclass(torch.Tensor)
                truth = {"gt_label": item.gt_label.view(1), "gt_mask": mask.bool()}
                outputs = {"torch": torch_reference(model, images, clouds)}
                for label, inferencer in inferencers.items():
                    result = inferencer.predict(rgb8, xyz)
                    outputs[label] = {"pred_score": result.pred_score, "anomaly_map": result.anomaly_map}
                for label, out in outputs.items():
                    batch = _Batch(
                        pred_score=torch.as_tensor(out["pred_score"]).float().view(1),
                        anomaly_map=torch.as_tensor(out["anomaly_map"]).float().view(1, *mask.shape[-2:]),
                        **truth,
                    )
                    for metric in metrics[label]:
                        metric.update(batch)
            for label, (auroc, aupro) in metrics.items():
                rows.append(
                    {
                        "category": category,
                        "seed": seed,
                        "runtime": label,
                        "image_AUROC": float(auroc.compute()),
                        "AUPRO@0.3": float(aupro.compute()),
                    }
                )
            print(
                f"  accuracy {category} seed {seed}: "
                + ", ".join(f"{r['runtime']} {r['image_AUROC']:.3f}" for r in rows[-len(variants) :])
            )
    return rows


class _Batch:
    def __init__(self, **fields: Any) -> None:
        self.__dict__.update(fields)


def _cpu_name() -> str:
    """The CPU's model name (Linux), else the machine type."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def report(speed_rows: list[dict], accuracy_rows: list[dict], repeats: int) -> str:
    """The markdown report."""
    lines = [
        f"Measured {date.today().isoformat()} on {_cpu_name()} "
        f"({os.cpu_count()} cores), torch {torch.__version__}, OpenVINO "
        f"{__import__('openvino').__version__}; `python benchmarks/deploy.py --repeats {repeats}`. "
        "Random-init backbones; batch size 1; median of interleaved runs.",
        "",
        "| configuration | runtime | latency (s) | before the graph (s) | graph (s) | vs torch | map max abs diff "
        "(map max) | score max abs diff | labels equal | export (s) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in speed_rows:
        if row["runtime"] == "torch CPU":
            lines.append(f"| {row['config']} | torch CPU | {row['total']:.3f} | | | 1.00 | | | | |")
            continue
        export = f"{row['export_s']:.0f}" if row.get("export_s") else ""
        lines.append(
            f"| {row['config']} | {row['runtime']} | {row['total']:.3f} | {row['prepare']:.3f} | {row['graph']:.3f} "
            f"| {row['ratio']:.2f} | {row['map_diff']:.2e} ({row['map_scale']:.2f}) | {row['score_diff']:.2e} "
            f"| {'yes' if row['labels_equal'] else 'no'} | {export} |"
        )
    if accuracy_rows:
        import pandas as pd

        table = pd.DataFrame(accuracy_rows)
        per_seed = table.groupby(["runtime", "seed"], sort=False)[["image_AUROC", "AUPRO@0.3"]].mean()
        summary = per_seed.groupby(level=0, sort=False).agg(["mean", "std"])
        seeds = sorted(int(seed) for seed in table["seed"].unique())
        lines += [
            "",
            f"Accuracy, offline configuration, mean over the {table['category'].nunique()} Synthetic3D categories "
            f"(mean and spread over seeds {seeds}):",
            "",
            "| runtime | image AUROC | AUPRO@30% |",
            "|---|---|---|",
        ]
        for runtime, row in summary.iterrows():
            lines.append(
                f"| {runtime} | {row[('image_AUROC', 'mean')]:.3f} ± {np.nan_to_num(row[('image_AUROC', 'std')]):.3f} "
                f"| {row[('AUPRO@0.3', 'mean')]:.3f} ± {np.nan_to_num(row[('AUPRO@0.3', 'std')]):.3f} |"
            )
    return "\n".join(lines)


def main() -> None:
    """Run the measurements and print (and optionally write) the report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="interleaved inference runs")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1], help="seeds of the accuracy runs")
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--skip-accuracy", action="store_true", help="parity and speed only")
    parser.add_argument(
        "--reuse-speed", action="store_true", help="take parity and speed from the last run's saved rows"
    )
    parser.add_argument(
        "--report-only", action="store_true", help="rewrite the report from the last run's saved rows (no measurement)"
    )
    parser.add_argument("--results", type=Path, default=Path("results/deploy_benchmark"), help="saved rows")
    parser.add_argument("--data-root", type=Path, default=Path("datasets/Synthetic3D"))
    parser.add_argument("--output", type=Path, help="markdown file whose deploy-benchmark block to replace")
    args = parser.parse_args()

    from anomalib_cmdr.data.synthetic import synthesize

    synthesize(args.data_root, image_size=128, seed=0, **{k: v for k, v in SYNTH.items() if k != "synth_image_size"})
    args.results.mkdir(parents=True, exist_ok=True)
    if args.report_only:
        speed_rows = json.loads((args.results / "speed.json").read_text())
        accuracy_file = args.results / "accuracy.json"
        accuracy_rows = json.loads(accuracy_file.read_text()) if accuracy_file.is_file() else []
        _write_report(report(speed_rows, accuracy_rows, args.repeats), args.output)
        return
    with tempfile.TemporaryDirectory() as work:
        if args.reuse_speed:
            speed_rows = json.loads((args.results / "speed.json").read_text())
        else:
            speed_rows = []
            for name in args.configs:
                print(f"parity and speed: {name}")
                speed_rows += parity_and_speed(name, args.repeats, args.data_root, Path(work))
            (args.results / "speed.json").write_text(json.dumps(speed_rows, indent=1))
        accuracy_rows = [] if args.skip_accuracy else accuracy(args.seeds, args.data_root, Path(work))
        if accuracy_rows:
            (args.results / "accuracy.json").write_text(json.dumps(accuracy_rows, indent=1))
    _write_report(report(speed_rows, accuracy_rows, args.repeats), args.output)


def _write_report(text: str, output: Path | None) -> None:
    """Print the report and replace the marked block of ``output`` with it."""
    print(text)
    if output:
        content = output.read_text()
        if START not in content or END not in content:
            raise SystemExit(f"{output}: no {START} ... {END} block to replace")
        head, rest = content.split(START, 1)
        tail = rest.split(END, 1)[1]
        output.write_text(f"{head}{START}\n{text}\n{END}{tail}")
        print(f"written to {output}")


if __name__ == "__main__":
    main()
