# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0

"""Mixed precision (Lightning's ``bf16-mixed`` / ``16-mixed``): geometry, losses and fusion stay in float32."""

from __future__ import annotations

import pytest
import torch

from anomalib_cmdr import CMDRModel
from tests.helpers import TINY, make_clouds


@pytest.fixture(scope="module")
def model_and_reference() -> tuple[CMDRModel, tuple[torch.Tensor, torch.Tensor], object]:
    torch.manual_seed(0)
    model = CMDRModel(**TINY, grid_size=32).eval()
    inputs = make_clouds(batch=2, size=64, seed=0)
    with torch.no_grad():
        reference = model(*inputs)
    return model, inputs, reference


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_autocast_gives_the_float32_result_within_half_precision_noise(model_and_reference, dtype) -> None:
    model, inputs, reference = model_and_reference
    with torch.no_grad(), torch.autocast("cpu", dtype=dtype):
        features = model.extract_features(*inputs)
        out = model(*inputs)
    with torch.no_grad():
        exact = model.extract_features(*inputs)
    assert torch.equal(features.xyz, exact.xyz) and torch.equal(features.valid, exact.valid)  # geometry in fp32
    assert out.anomaly_map.dtype == torch.float32 and torch.isfinite(out.anomaly_map).all()
    torch.testing.assert_close(out.pred_score, reference.pred_score, rtol=2e-2, atol=0)
    cosine = torch.nn.functional.cosine_similarity(out.anomaly_map.flatten(1), reference.anomaly_map.flatten(1))
    assert (cosine > 0.999).all()


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_losses_stay_finite_and_close_under_autocast(model_and_reference, dtype) -> None:
    model, inputs, _ = model_and_reference
    model.train()
    try:
        torch.manual_seed(0)
        with torch.no_grad():
            exact = model(*inputs)
        torch.manual_seed(0)
        with torch.no_grad(), torch.autocast("cpu", dtype=dtype):
            mixed = model(*inputs)
    finally:
        model.eval()
    for name, value in exact.items():
        assert mixed[name].dtype == torch.float32 and torch.isfinite(mixed[name]), name
        torch.testing.assert_close(mixed[name], value, rtol=5e-2, atol=1e-3)


def test_large_maps_do_not_overflow_in_the_fusion(monkeypatch: pytest.MonkeyPatch) -> None:
    """fp16 overflows above 65504: the per-image sum over 224x224 pixels of a map with mean ~1.5 would."""
    model = CMDRModel(**{**TINY, "xyz_backbone": "fpfh", "xyz_model_kwargs": None}, modality="xyz", grid_size=224)
    distances = {"d3r": torch.full((1, 224, 224), 1.5, dtype=torch.float16)}
    distances["d3r"][0, 100:110, 100:110] = 1.9  # one anomalous region
    valid = torch.ones(1, 224, 224, dtype=torch.bool)
    monkeypatch.setattr(model, "discrepancies", lambda features: (distances, valid))
    with torch.autocast("cpu", dtype=torch.float16):
        anomaly_map, score = model.anomaly_maps(features=None)
    expected_map, expected_score = model.anomaly_map_generator({"d3r": distances["d3r"].float()}, valid)
    assert anomaly_map.dtype == torch.float32 and score.item() > 1
    torch.testing.assert_close(score, expected_score)
    torch.testing.assert_close(anomaly_map, expected_map)
