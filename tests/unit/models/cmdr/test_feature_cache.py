# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0

"""Tests of the feature cache: bounded memory, disk entries, keys, and training identical to no cache."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from anomalib.engine import Engine
from lightning.pytorch import seed_everything
from torchvision.transforms.v2 import RandomHorizontalFlip

from anomalib_cmdr import CMDR
from anomalib_cmdr.data import Synthetic3D
from anomalib_cmdr.models.cmdr.feature_cache import FeatureCache, fingerprint, sample_key
from anomalib_cmdr.models.cmdr.features import SampleFeatures
from anomalib_cmdr.models.cmdr.geometry import PointFeatures
from tests.helpers import TINY, make_clouds


def _sample(seed: int = 0, points: int = 50) -> SampleFeatures:
    generator = torch.Generator().manual_seed(seed)
    compact = PointFeatures(
        torch.rand(8, 6, generator=generator),
        torch.randint(0, 8, (points, 3), generator=generator),
        torch.rand(points, 3, generator=generator),
    )
    return SampleFeatures(torch.rand(4, 3, 3, generator=generator), compact, torch.arange(points) * 2, (16, 16))


def _equal(a: SampleFeatures, b: SampleFeatures) -> bool:
    return (
        torch.equal(a.rgb, b.rgb)
        and torch.equal(a.pixels, b.pixels)
        and torch.equal(a.points.expand(), b.points.expand())
        and a.size == b.size
    )


def test_state_round_trip_is_exact() -> None:
    sample = _sample()
    state = sample.state()
    assert state["pixels"].dtype == torch.int32 and state["points.index"].dtype == torch.int32  # compact
    assert _equal(SampleFeatures.from_state(state), sample)


def test_memory_is_bounded_and_the_rest_goes_to_disk(tmp_path: Path) -> None:
    size = _sample().nbytes
    cache = FeatureCache("f" * 64, memory_limit=2 * size + 1, directory=tmp_path)
    for i in range(5):
        cache.put(f"k{i}", _sample(i))
    assert len(cache) == 2 and cache.memory_bytes <= cache.memory_limit
    files = list((tmp_path / ("f" * 16)).glob("*.pt"))
    assert len(files) == 3 and not list(tmp_path.rglob("*.tmp"))  # atomic: no temporary left
    for i in range(5):
        assert _equal(cache.get(f"k{i}"), _sample(i)), i
    assert cache.get("unknown") is None and (cache.hits, cache.misses) == (5, 1)


def test_memory_only_cache_stops_growing_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    cache = FeatureCache("f", memory_limit=_sample().nbytes)
    for i in range(3):
        cache.put(f"k{i}", _sample(i))
    assert len(cache) == 1
    assert "memory limit" in caplog.text


def test_an_unreadable_entry_is_recomputed(tmp_path: Path) -> None:
    cache = FeatureCache("f" * 64, memory_limit=0, directory=tmp_path)
    cache.put("k", _sample())
    (entry,) = list(tmp_path.rglob("*.pt"))
    entry.write_bytes(b"truncated")
    assert cache.get("k") is None and not entry.exists()


def test_keys_follow_the_files(tmp_path: Path) -> None:
    image, depth = tmp_path / "000.png", tmp_path / "000.tiff"
    image.write_bytes(b"rgb"), depth.write_bytes(b"xyz")
    key = sample_key([str(image), str(depth)])
    assert key == sample_key([str(image), str(depth)])
    os.utime(depth, ns=(1, 1))  # the point cloud was rewritten
    assert sample_key([str(image), str(depth)]) != key
    assert sample_key([str(image), None]) is None and sample_key([str(tmp_path / "gone.png")]) is None


def test_fingerprint_follows_settings_and_weights() -> None:
    module = torch.nn.Linear(2, 2)
    base = fingerprint({"rgb_backbone": "resnet18"}, [module, None])
    assert base == fingerprint({"rgb_backbone": "resnet18"}, [module])
    assert base != fingerprint({"rgb_backbone": "resnet34"}, [module])
    with torch.no_grad():
        module.weight[0, 0] += 1
    assert base != fingerprint({"rgb_backbone": "resnet18"}, [module])


def test_cached_features_equal_fresh_ones() -> None:
    torch.manual_seed(0)
    model = CMDR(**TINY, image_size=32)
    rgb, xyz = make_clouds(batch=2, size=32)
    fresh = model.model.extract_features(rgb, xyz)
    samples = [SampleFeatures.from_state(s.state()) for s in model.model.sample_features(rgb, xyz)]
    cached = model.model.assemble(samples)
    assert torch.equal(cached.rgb, fresh.rgb) and torch.equal(cached.xyz, fresh.xyz)
    assert torch.equal(cached.valid, fresh.valid)


def test_unknown_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="feature_cache='always'"):
        CMDR(**TINY, feature_cache="always")


DATA = {
    "synth_image_size": 32,
    "num_train": 4,
    "num_val": 1,
    "num_test_good": 2,
    "num_test_defect": 1,
    "defect_types": ["dent"],
    "train_batch_size": 1,
    "eval_batch_size": 4,
    "num_workers": 0,
}


def _fit(root: Path, out: Path, mode: str, **data) -> tuple[CMDR, dict[str, torch.Tensor]]:
    seed_everything(0)
    model = CMDR(**TINY, image_size=32, grid_size=16, calibration="zscore", feature_cache=mode)
    caches = []
    original = model.setup_feature_cache

    def record():  # keep a handle on the cache of this fit
        caches.append(original())
        return caches[-1]

    model.setup_feature_cache = record
    engine = Engine(max_epochs=3, default_root_dir=out, num_sanity_val_steps=0, logger=False, accelerator="cpu")
    engine.fit(model, datamodule=Synthetic3D(root=root, **{**DATA, **data}))
    return model, caches[0]


@pytest.mark.slow
def test_training_with_the_cache_is_identical_to_training_without(tmp_path: Path) -> None:
    root = tmp_path / "data"
    reference, none = _fit(root, tmp_path / "off", "off")
    assert none is None
    for mode in ("memory", "disk"):
        model, cache = _fit(root, tmp_path / mode, mode)
        for key, value in reference.state_dict().items():
            assert torch.equal(model.state_dict()[key], value), (mode, key)
        # 4 training samples computed once, then served in 2 more epochs and 3 calibration passes
        assert cache.misses == 4 and cache.hits == 4 * 2 + 4 * 3, (mode, cache.hits, cache.misses)
        on_disk = list((tmp_path / mode).rglob("feature_cache/*/*.pt"))
        assert len(on_disk) == (4 if mode == "disk" else 0)


@pytest.mark.slow
def test_auto_is_off_with_training_augmentation(tmp_path: Path) -> None:
    _, cache = _fit(tmp_path / "data", tmp_path / "aug", "auto", train_augmentations=RandomHorizontalFlip(p=0.5))
    assert cache is None
    _, cache = _fit(tmp_path / "data", tmp_path / "plain", "auto")
    assert cache is not None and cache.memory_limit == 4 * 2**30 and cache.hits > 0
