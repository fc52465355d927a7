# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0

"""Speed and memory of CMDR against anomalib's CFM, measured side by side in one run.

Prints, for one 224x224 (or the configuration's size) RGB + xyz sample at batch size 1:

* per-sample inference latency (median of interleaved runs) of CMDR's paper, fast and offline
  configurations and of anomalib's CFM at the paper's backbones, and their ratios to CFM;
* peak resident memory of each model's inference (measured in a child process per model), with glibc's
  default heap and with ``MALLOC_MMAP_THRESHOLD_=1048576`` (what README advises for long-running processes);
* the FLOPs of CMDR's four heads, their achieved GFLOP/s and that rate against a 2048x2048 float32 matmul
  measured in the same run;
* the time of bringing one sample's 3D features onto the head grid by the paper's map and by
  ``xyz_pooling="factored"``, and how far apart the two are;
* the time of a training epoch of the offline configuration without and with the feature cache.

Every backbone has random weights (no download): speed does not depend on the weights.

    python benchmarks/speed.py [--repeats 3] [--epochs 3] [--skip-training] [--output docs/performance.md]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch import Callback

os.environ.setdefault("HF_HUB_OFFLINE", "1")

CONFIGS: dict[str, dict[str, Any]] = {
    "CMDR paper": {"image_size": 224, "grid_size": 224},
    "CMDR fast": {
        "image_size": 224,
        "grid_size": 56,
        "xyz_model_kwargs": {"group_encoder": "gemm"},
        "xyz_pooling": "factored",
    },
    "CMDR offline": {
        "rgb_backbone": "resnet18",
        "rgb_layers": [1, 2],
        "xyz_backbone": "fpfh",
        "image_size": 128,
        "grid_size": 64,
    },
}


def sample(size: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A normalised RGB image and an organized cloud (a tilted plate with a bump and a hole), metre scale."""
    generator = torch.Generator().manual_seed(seed)
    rgb = torch.randn(1, 3, size, size, generator=generator)
    v, u = torch.meshgrid(torch.linspace(-0.05, 0.05, size), torch.linspace(-0.05, 0.05, size), indexing="ij")
    z = 0.4 + 0.2 * u + 0.01 * torch.exp(-(u**2 + v**2) / 2e-4)
    xyz = torch.stack([u, v, z])[None] + 1e-4 * torch.randn(1, 3, size, size, generator=generator)
    xyz[:, :, : size // 8, : size // 8] = 0
    return rgb, xyz


def build(name: str) -> tuple[Callable[[], Any], int, Any]:
    """The model of a configuration: ``(inference function, input size, torch model)``."""
    if name == "CFM":
        return build_cfm()
    from anomalib_cmdr import CMDRModel

    kwargs = dict(CONFIGS[name])
    size = kwargs.pop("image_size")
    model = CMDRModel(pretrained=False, **kwargs).eval()
    rgb, xyz = sample(size)
    return (lambda: model(rgb, xyz)), size, model


def build_cfm() -> tuple[Callable[[], Any], int, Any]:
    """Anomalib's CFM with random DINO ViT-B/8 and random Point-MAE (a local random release file)."""
    import timm
    from anomalib.models.image.cfm.torch_model import CFMModel

    from anomalib_cmdr.models.cmdr.backbones.registry import create_xyz_backbone

    encoder = create_xyz_backbone("pointmae", pretrained=False)
    release = Path(tempfile.mkdtemp()) / "pointmae_random.pth"
    torch.save({"base_model": {f"MAE_encoder.{k}": v for k, v in encoder.state_dict().items()}}, release)
    create = timm.create_model
    timm.create_model = lambda *args, **kwargs: create(*args, **{**kwargs, "pretrained": False})
    try:
        model = CFMModel(pointmae_weights=release).eval()
    finally:
        timm.create_model = create
    rgb, xyz = sample(224)
    return (lambda: model(rgb, xyz)), 224, model


def matmul_gflops(size: int = 2048, repeats: int = 5) -> float:
    """Achieved GFLOP/s of a ``size`` x ``size`` float32 matmul (median)."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - start)
    return 2 * size**3 / statistics.median(times) / 1e9


@torch.no_grad()
def heads_rate(repeats: int) -> tuple[float, float, float]:
    """The paper configuration's heads: ``(GFLOP per sample, seconds, GFLOP/s)``."""
    from torch.utils.flop_counter import FlopCounterMode

    from anomalib_cmdr import CMDRModel

    model = CMDRModel(pretrained=False).eval()
    features = model.extract_features(*sample(224))
    counter = FlopCounterMode(display=False)
    with counter:
        model.predict_features(features)
    flops = counter.get_total_flops()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        model.predict_features(features)
        times.append(time.perf_counter() - start)
    seconds = statistics.median(times)
    return flops / 1e9, seconds, flops / seconds / 1e9


def _peak_child(name: str, queue: Any) -> None:
    """In a child process: build, reset the peak RSS, run one inference, report the peak (GiB)."""
    run, _, _ = build(name)
    with torch.no_grad():
        run()  # warm-up (allocator, lazy initialisation)
        Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
        run()
    status = Path("/proc/self/status").read_text().splitlines()
    peak = next(int(line.split()[1]) for line in status if line.startswith("VmHWM"))
    queue.put(peak / 2**20)


def peak_memory(name: str, mmap_threshold: int | None = None) -> float:
    """Peak resident memory (GiB) of one inference of configuration ``name``, model included.

    ``mmap_threshold``: run the child with ``MALLOC_MMAP_THRESHOLD_`` set (glibc then returns freed blocks above
    that size to the system at once instead of keeping them in its heap; see docs/performance.md).
    """
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    saved = os.environ.get("MALLOC_MMAP_THRESHOLD_")
    if mmap_threshold is not None:
        os.environ["MALLOC_MMAP_THRESHOLD_"] = str(mmap_threshold)
    try:
        process = context.Process(target=_peak_child, args=(name, queue))
        process.start()
    finally:
        if saved is None:
            os.environ.pop("MALLOC_MMAP_THRESHOLD_", None)
        else:
            os.environ["MALLOC_MMAP_THRESHOLD_"] = saved
    value = queue.get()
    process.join()
    return value


class _EpochTimer(Callback):
    """Duration of each training epoch, without the validation that Lightning runs inside the last one."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self._start: float | None = None

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._start = time.perf_counter()

    def _stop(self) -> None:
        if self._start is not None:
            self.times.append(time.perf_counter() - self._start)
            self._start = None

    def on_validation_start(self, trainer, pl_module) -> None:
        self._stop()

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self._stop()


def epoch_times(cache: str, epochs: int, root: Path) -> list[float]:
    """Training-epoch durations of the offline configuration on Synthetic3D ``disc`` (20 parts, 128 px)."""
    from anomalib.engine import Engine

    from anomalib_cmdr import CMDR
    from anomalib_cmdr.data import Synthetic3D

    kwargs = dict(CONFIGS["CMDR offline"])
    model = CMDR(pretrained=False, feature_cache=cache, **kwargs)
    datamodule = Synthetic3D(root=root, category="disc", train_batch_size=4, eval_batch_size=8, num_workers=0)
    timer = _EpochTimer()
    engine = Engine(
        max_epochs=epochs,
        callbacks=[timer],
        logger=False,
        accelerator="cpu",
        default_root_dir=root.parent / f"results_{cache}",
        check_val_every_n_epoch=epochs + 1,  # time the training epochs only
        num_sanity_val_steps=0,
        enable_progress_bar=False,
    )
    engine.fit(model, datamodule=datamodule)
    return timer.times


@torch.no_grad()
def assembly_times(repeats: int) -> list[str]:
    """The 3D tokens of one paper-size sample by the paper's map and by ``xyz_pooling="factored"``."""
    from anomalib_cmdr import CMDRModel
    from anomalib_cmdr.models.cmdr.features import assemble_features

    samples = CMDRModel(pretrained=False).eval().sample_features(*sample(224))
    lines = []
    for grid in (224, 56):
        times: dict[str, list[float]] = {"map": [], "factored": []}
        tokens = {}
        for _ in range(repeats + 1):  # the first round warms up
            for pooling in times:
                start = time.perf_counter()
                tokens[pooling] = assemble_features(samples, (grid, grid), pooling).xyz
                times[pooling].append(time.perf_counter() - start)
        difference = (tokens["factored"] - tokens["map"]).abs().max() / tokens["map"].abs().max()
        lines.append(
            f"| {grid}x{grid} | {statistics.median(times['map'][1:]):.3f} | "
            f"{statistics.median(times['factored'][1:]):.3f} | {difference:.1e} |"
        )
    return lines


def _seconds(values: list[float]) -> str:
    return ", ".join(f"{value:.1f}" for value in values)


def main() -> None:
    """Run every measurement and print (and optionally write) the report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="interleaved inference runs per model")
    parser.add_argument("--epochs", type=int, default=3, help="training epochs for the cache measurement")
    parser.add_argument("--skip-training", action="store_true", help="skip the epoch-time measurement")
    parser.add_argument("--skip-memory", action="store_true", help="skip the peak-memory measurement")
    parser.add_argument("--output", type=Path, help="also write the report (markdown) to this file")
    args = parser.parse_args()
    lines = [
        f"Measured {date.today()} on {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU, batch size 1, random-init backbones.",
        "",
    ]
    names = [*CONFIGS, "CFM"]
    models = {name: build(name) for name in names}
    times: dict[str, list[float]] = {name: [] for name in names}
    with torch.no_grad():
        for name in names:  # warm-up
            models[name][0]()
        for _ in range(args.repeats):
            for name in names:
                start = time.perf_counter()
                models[name][0]()
                times[name].append(time.perf_counter() - start)
    del models
    latency = {name: statistics.median(values) for name, values in times.items()}
    memory = {name: peak_memory(name) for name in names} if not args.skip_memory else {}
    trimmed = {name: peak_memory(name, 1 << 20) for name in names} if not args.skip_memory else {}
    lines += [
        "| model | input | latency (s) | ratio to CFM | peak memory (GiB) | with MALLOC_MMAP_THRESHOLD_=1 MB |",
        "|---|---|---|---|---|---|",
    ]
    for name in names:
        size = CONFIGS.get(name, {}).get("image_size", 224)
        peak = f"{memory[name]:.2f}" if name in memory else "-"
        low = f"{trimmed[name]:.2f}" if name in trimmed else "-"
        ratio = latency[name] / latency["CFM"]
        lines.append(f"| {name} | {size} | {latency[name]:.2f} | {ratio:.2f} | {peak} | {low} |")
    matmul = matmul_gflops()
    gflop, seconds, rate = heads_rate(args.repeats)
    lines += [
        "",
        f"Heads of the paper configuration: {gflop:.0f} GFLOP per sample in {seconds:.2f} s = {rate:.0f} GFLOP/s, "
        f"{100 * rate / matmul:.0f} % of a 2048x2048 float32 matmul ({matmul:.0f} GFLOP/s in this run).",
    ]
    lines += [
        "",
        "3D tokens of one paper-size sample (Point-MAE, 1152 channels) onto the head grid:",
        "",
        "| grid | paper's map (s) | xyz_pooling=factored (s) | largest difference (relative) |",
        "|---|---|---|---|",
        *assembly_times(args.repeats),
    ]
    if not args.skip_training:
        with tempfile.TemporaryDirectory() as folder:
            root = Path(folder) / "Synthetic3D"
            off = epoch_times("off", args.epochs, root)
            cached = epoch_times("memory", args.epochs, root)
        later_off, later_cached = statistics.mean(off[1:]), statistics.mean(cached[1:])
        lines += [
            "",
            "Training epoch of the offline configuration (Synthetic3D disc, 20 parts at 128 px, batch 4):",
            f"without the cache {_seconds(off)} s; with it {_seconds(cached)} s "
            f"(epochs after the first: {later_off / later_cached:.1f}x faster).",
        ]
    report = "\n".join(lines)
    print(report)
    if args.output is not None:
        args.output.write_text(report + "\n")


if __name__ == "__main__":
    main()
