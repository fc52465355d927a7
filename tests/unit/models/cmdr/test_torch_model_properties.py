# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0

"""Property-based test: the model's inference sees random shapes, dtypes and values and gives a valid output
or a clear ``ValueError``, never an error from deep inside torch."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from anomalib_cmdr import CMDRModel
from tests.helpers import TINY

MODEL = None


def _model() -> CMDRModel:
    global MODEL
    if MODEL is None:
        torch.manual_seed(0)
        MODEL = CMDRModel(**TINY, grid_size=16).eval()
    return MODEL


def _tensor(draw, shape: tuple[int, ...], dtype: torch.dtype, special: str) -> torch.Tensor:
    seed = draw(st.integers(0, 2**16))
    values = torch.rand(shape, generator=torch.Generator().manual_seed(seed)) + 0.1
    if special == "nan":
        values.view(-1)[0] = float("nan")
    elif special == "inf":
        values.view(-1)[-1] = float("inf")
    elif special == "zeros":
        values.zero_()
    return (values * 100).to(dtype) if not dtype.is_floating_point else values.to(dtype)


@st.composite
def inputs(draw):
    batch = draw(st.integers(1, 2))
    size = draw(st.sampled_from([16, 20]))
    shapes = st.sampled_from(
        [(batch, 3, size, size), (batch, 1, size, size), (3, size, size), (batch, 3, size, size + 4)]
    )
    dtypes = st.sampled_from([torch.float32, torch.float64, torch.float16, torch.uint8, torch.int64])
    specials = st.sampled_from(["none", "none", "nan", "inf", "zeros"])
    rgb = _tensor(draw, draw(shapes), draw(dtypes), draw(specials))
    xyz = _tensor(draw, draw(shapes), draw(dtypes), draw(specials))
    return rgb, xyz


@settings(max_examples=40, deadline=None, derandomize=True)  # the same examples in every run: CI stays deterministic
@given(inputs())
def test_inference_gives_valid_output_or_a_clear_error(pair):
    rgb, xyz = pair
    try:
        with torch.no_grad():
            out = _model()(rgb, xyz)
    except ValueError as error:
        assert any(word in str(error) for word in ("RGB", "point cloud", "batch", "sizes differ", "NaN")), error
        return
    assert out.anomaly_map.shape == (rgb.shape[0], 1, *rgb.shape[-2:])
    assert torch.isfinite(out.anomaly_map).all() and torch.isfinite(out.pred_score).all()


def test_the_strategy_reaches_both_outcomes():
    """Guard against a strategy that only ever produces errors (or only valid inputs)."""
    with torch.no_grad():
        rgb, xyz = torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 16) + 0.1
        assert torch.isfinite(_model()(rgb, xyz).anomaly_map).all()
        with pytest.raises(ValueError, match="NaN"):
            _model()(rgb, xyz * float("nan"))
