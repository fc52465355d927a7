# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0

"""The fusion against an independent NumPy transcription of the method's equations."""

import numpy as np
import pytest
import torch

from anomalib_cmdr.models.cmdr.anomaly_map import CMDRAnomalyMap, feature_distance, unit_tokens


def box(x: np.ndarray, k: int, passes: int) -> np.ndarray:
    """k x k mean with zero padding, by explicit loops."""
    for _ in range(passes):
        padded = np.pad(x, k // 2)
        out = np.zeros_like(x)
        for i in range(x.shape[0]):
            for j in range(x.shape[1]):
                out[i, j] = padded[i : i + k, j : j + k].sum() / (k * k)
        x = out
    return x


def reference(d2m, d3m, d2r, d3r, valid):
    d2m, d3m, d2r, d3r = (d * valid for d in (d2m, d3m, d2r, d3r))
    d2r = box(box(d2r, 5, 3), 7, 2)
    joint = d2m * d3m
    s = np.sqrt(box((joint - joint.mean()) ** 2, 7, 1))
    gain = 4 + 2 * s / (s.mean() + 1e-8)
    a_map = joint / (1 + np.exp(-gain * joint))
    w2, w3 = np.exp(-0.3 * d2r), np.exp(-0.3 * d3r)
    a_rec = (w2 * d2r + w3 * d3r) / (w2 + w3 + 1e-8)
    psi = box(box(a_map * a_rec * valid, 5, 5), 7, 3)
    nonzero = psi[psi != 0].mean()
    return psi, psi.max() / np.sqrt(nonzero), psi / nonzero, psi / np.sqrt(psi.mean())


@pytest.fixture
def case():
    rng = np.random.default_rng(0)
    maps = [rng.uniform(0, 1.5, (12, 12)) for _ in range(4)]
    valid = np.ones((12, 12))
    valid[:3, :4] = 0
    return maps, valid


def run(maps, valid, **kwargs):
    names = ("d2m", "d3m", "d2r", "d3r")
    distances = {n: torch.tensor(m, dtype=torch.float64)[None] for n, m in zip(names, maps, strict=True)}
    fusion = CMDRAnomalyMap(**kwargs)
    psi = fusion.fuse(distances, torch.tensor(valid, dtype=torch.bool)[None])
    anomaly_map, score = fusion.normalize(psi)
    return psi[0, 0].numpy(), float(score[0]), anomaly_map[0, 0].numpy()


def test_fusion_matches_hand_computation(case):
    maps, valid = case
    psi_ref, score_ref, aupro_ref, pauroc_ref = reference(*maps, valid)
    psi, score, anomaly_map = run(maps, valid)
    np.testing.assert_allclose(psi, psi_ref, rtol=1e-10)
    assert score == pytest.approx(score_ref, rel=1e-10)
    np.testing.assert_allclose(anomaly_map, aupro_ref, rtol=1e-10)
    _, _, anomaly_map = run(maps, valid, map_normalization="pauroc")
    np.testing.assert_allclose(anomaly_map, pauroc_ref, rtol=1e-10)


def test_single_modality_uses_its_reconstruction_only(case):
    maps, valid = case
    ones = np.ones_like(valid)
    psi_rgb, _, _ = run(maps, ones, modality="rgb")
    np.testing.assert_allclose(psi_rgb, box(box(maps[2], 5, 5), 7, 3), rtol=1e-10)
    psi_xyz, _, _ = run(maps, valid, modality="xyz")
    np.testing.assert_allclose(psi_xyz, box(box(maps[3] * valid, 5, 5), 7, 3), rtol=1e-10)


def test_all_invalid_gives_zero_map_and_score(case):
    maps, valid = case
    _, score, anomaly_map = run(maps, np.zeros_like(valid))
    assert score == 0 and not anomaly_map.any() and np.isfinite(anomaly_map).all()


def test_feature_distance_is_normalised_euclidean():
    a = torch.tensor([[3.0, 0.0]])
    b = torch.tensor([[0.0, 5.0]])
    assert float(feature_distance(a, b)) == pytest.approx(2**0.5)
    assert float(feature_distance(a, 2 * a)) == pytest.approx(0.0)


def test_feature_distance_in_chunks_equals_the_whole_computation_bit_for_bit():
    generator = torch.Generator().manual_seed(0)
    prediction = torch.randn(2, 1000, 48, generator=generator)
    target = torch.randn(2, 48, 1000, generator=generator).transpose(1, 2)  # channel-major, as the 3D tokens
    whole = (
        (torch.nn.functional.normalize(prediction, dim=-1) - torch.nn.functional.normalize(target, dim=-1))
        .pow(2)
        .sum(-1)
        .sqrt()
    )
    assert torch.equal(feature_distance(prediction, target, chunk=96), whole)


def test_a_target_normalised_once_gives_the_same_distances_bit_for_bit():
    """unit_tokens makes a channel-major target contiguous with the values feature_distance would compute."""
    generator = torch.Generator().manual_seed(1)
    prediction = torch.randn(2, 1000, 48, generator=generator)
    target = torch.randn(2, 48, 1000, generator=generator).transpose(1, 2)  # channel-major, as the tokens
    target[0, :5] = 0  # tokens without a feature stay zero
    unit = unit_tokens(target, chunk=96)
    assert unit.is_contiguous() and torch.equal(unit, torch.nn.functional.normalize(target, dim=-1))
    assert (unit[0, :5] == 0).all()
    expected = feature_distance(prediction, target, chunk=96)
    assert torch.equal(feature_distance(prediction, unit, chunk=96, unit_target=True), expected)
    assert torch.equal(feature_distance(prediction, unit, chunk=1000, unit_target=True), expected)
