# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0
"""Tests of anomalib_cmdr.models.cmdr.loss: the masked cosine loss of CMDR's heads."""

from __future__ import annotations

import pytest
import torch

from anomalib_cmdr.models.cmdr.loss import masked_cosine_loss


def _inputs(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    prediction = torch.randn(2, 5, 4, generator=generator)
    target = torch.randn(2, 5, 4, generator=generator)
    valid = torch.tensor([[True, False, True, True, False], [False, True, False, False, True]])
    return prediction, target, valid


def test_value_is_one_minus_mean_cosine_over_valid_tokens() -> None:
    prediction, target, valid = _inputs()
    cosines = [
        float(prediction[b, n] @ target[b, n] / (prediction[b, n].norm() * target[b, n].norm()))
        for b in range(2)
        for n in range(5)
        if valid[b, n]
    ]
    assert len(cosines) == 5
    expected = 1.0 - sum(cosines) / len(cosines)  # mean over the batch's valid tokens, not per sample
    loss = masked_cosine_loss(prediction, target, valid)
    assert loss.shape == ()
    assert float(loss) == pytest.approx(expected, abs=1e-6)


def test_scale_invariant_and_bounds() -> None:
    prediction, target, valid = _inputs(1)
    loss = masked_cosine_loss(prediction, target, valid)
    assert torch.allclose(masked_cosine_loss(3.0 * prediction, 0.5 * target, valid), loss, atol=1e-6)
    assert float(masked_cosine_loss(-target, target, valid)) == pytest.approx(2.0, abs=1e-6)  # opposite: maximum


def test_invalid_tokens_are_ignored() -> None:
    prediction, target, valid = _inputs(2)
    loss = masked_cosine_loss(prediction, target, valid)
    changed_prediction, changed_target = prediction.clone(), target.clone()
    changed_prediction[~valid] = torch.randn(int((~valid).sum()), 4) * 100
    changed_target[~valid] = -changed_target[~valid]
    assert torch.equal(masked_cosine_loss(changed_prediction, changed_target, valid), loss)
    # while a change at a valid token does change it
    changed_prediction[0, 0] = -changed_prediction[0, 0]
    assert not torch.allclose(masked_cosine_loss(changed_prediction, changed_target, valid), loss)


def test_identical_prediction_and_target_give_zero() -> None:
    prediction, _, valid = _inputs(3)
    assert float(masked_cosine_loss(prediction, prediction.clone(), valid)) == pytest.approx(0.0, abs=1e-6)
    target = prediction.clone()
    target[~valid] = -target[~valid]  # disagreement only where it does not count
    assert float(masked_cosine_loss(prediction, target, valid)) == pytest.approx(0.0, abs=1e-6)


def test_gradient_reaches_only_the_valid_prediction_tokens() -> None:
    prediction, target, valid = _inputs(4)
    prediction.requires_grad_(True)
    masked_cosine_loss(prediction, target, valid).backward()
    grad = prediction.grad
    assert grad is not None and target.grad is None
    assert (grad[~valid] == 0).all()
    assert (grad[valid].abs().sum(-1) > 0).all()


def test_no_valid_token_gives_zero_with_a_zero_gradient() -> None:
    prediction, target, _ = _inputs(5)
    prediction.requires_grad_(True)
    loss = masked_cosine_loss(prediction, target, torch.zeros(2, 5, dtype=torch.bool))
    assert loss.shape == () and float(loss.detach()) == 0.0
    assert loss.requires_grad  # still attached to the graph: backward() works in a training step
    loss.backward()
    assert prediction.grad is not None and (prediction.grad == 0).all()
