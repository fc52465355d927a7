# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0

"""Time the 3-nearest-centre interpolation: the reference's full sort against CMDR's top-k path.

Both run in the same process on the same cloud (paper size: 224x224 points, 1024 FPS centres), alternating,
and must give identical indices and weights.

    python benchmarks/interpolation.py [--points 50176] [--centres 1024] [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from anomalib_cmdr.models.cmdr import geometry


def reference(points: torch.Tensor, centres: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The full-sort interpolation of Point-MAE / CFM / CMDR-IAD (chunked like CMDR's)."""
    indices, weights = [], []
    for start in range(0, points.shape[0], 4096):
        dist, index = geometry.square_distance(points[start : start + 4096], centres).sort(dim=1)
        recip = 1.0 / (dist[:, :3] + 1e-8)
        indices.append(index[:, :3])
        weights.append(recip / recip.sum(dim=1, keepdim=True))
    return torch.cat(indices), torch.cat(weights)


def main() -> None:
    """Print the median time of each path and their ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=224 * 224)
    parser.add_argument("--centres", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    generator = torch.Generator().manual_seed(0)
    v, u = torch.meshgrid(torch.linspace(-0.1, 0.1, 224), torch.linspace(-0.1, 0.1, 224), indexing="ij")
    points = torch.stack([u, v, 0.5 + 0.05 * u], -1).reshape(-1, 3)[: args.points]  # metre scale, like MVTec
    points = points + 1e-4 * torch.randn(points.shape, generator=generator)
    centres = points[geometry.farthest_point_sample(points, args.centres)]
    times: dict[str, list[float]] = {"full sort": [], "top-k": []}
    for _ in range(args.repeats):
        for name, function in (("full sort", reference), ("top-k", geometry.interpolation_weights)):
            start = time.perf_counter()
            result = function(points, centres)
            times[name].append(time.perf_counter() - start)
            if name == "full sort":
                expected = result
            else:
                assert all(torch.equal(a, b) for a, b in zip(result, expected, strict=True)), "results differ"
    medians = {name: statistics.median(values) for name, values in times.items()}
    print(f"{args.points} points, {args.centres} centres, {torch.get_num_threads()} threads, median of {args.repeats}")
    for name, value in medians.items():
        print(f"  {name:9s} {value * 1000:8.1f} ms")
    print(f"  speed-up  {medians['full sort'] / medians['top-k']:.1f}x (identical indices and weights)")


if __name__ == "__main__":
    main()
