# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0
"""Tests of anomalib_cmdr.models.cmdr.backbones.pointmae: the frozen Point-MAE 3D feature extractor."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from anomalib_cmdr.models.cmdr.backbones.pointmae import PointMAEExtractor, load_pointmae_state_dict

TINY = {"num_group": 8, "group_size": 16, "embed_dim": 32, "depth": 4, "num_heads": 2, "layers": (1, 3)}


def _extractor(seed: int = 0, **kwargs: object) -> PointMAEExtractor:
    torch.manual_seed(seed)
    return PointMAEExtractor(**{**TINY, "pretrained": False, **kwargs})


def _cloud(points: int, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(points, 3, generator=generator) * torch.tensor([0.1, 0.1, 0.02]) + torch.tensor([0, 0, 0.5])


def _batchnorms(extractor: PointMAEExtractor) -> list[torch.nn.modules.batchnorm._BatchNorm]:
    norms = [m for m in extractor.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    assert len(norms) == 2  # the group encoder's two BatchNorm layers
    return norms


def _perturb_batchnorm_statistics(extractor: PointMAEExtractor) -> None:
    """Random weights have mean 0 / var 1 running statistics; make "running" differ from "sample"."""
    for norm in _batchnorms(extractor):
        norm.running_mean.uniform_(-1, 1)
        norm.running_var.uniform_(0.5, 2)


def test_per_point_features() -> None:
    extractor = _extractor()
    assert extractor.out_dim == 32 * 2
    clouds = [_cloud(100, 0), _cloud(50, 1)]
    features = extractor(clouds)
    assert [f.shape for f in features] == [(100, 64), (50, 64)]
    assert all(torch.isfinite(f).all() and not f.requires_grad for f in features)
    assert not torch.allclose(features[0][:50], features[1])
    # each level is one block's output through the final LayerNorm: zero mean over its channels at the centres
    centre_features = extractor([clouds[0][:8]])[0]  # 8 points, 8 groups: every point is a centre
    assert torch.allclose(centre_features.view(8, 2, 32).mean(-1), torch.zeros(8, 2), atol=1e-5)


def test_empty_cloud_gives_an_empty_tensor() -> None:
    extractor = _extractor()
    clouds = [_cloud(60, 0), torch.zeros(0, 3), _cloud(40, 1)]
    features = extractor(clouds)
    assert features[1].shape == (0, 64) and features[1].dtype == clouds[1].dtype
    assert [f.shape for f in (features[0], features[2])] == [(60, 64), (40, 64)]
    assert torch.allclose(features[0], extractor([clouds[0]])[0], atol=1e-5)
    assert torch.allclose(features[2], extractor([clouds[2]])[0], atol=1e-5)
    assert [f.shape for f in extractor([torch.zeros(0, 3)])] == [(0, 64)]


@pytest.mark.parametrize("batchnorm", ["sample", "running"])
def test_a_cloud_does_not_depend_on_the_others(batchnorm: str) -> None:
    extractor = _extractor(batchnorm=batchnorm)
    _perturb_batchnorm_statistics(extractor)
    cloud, other, third = _cloud(70, 0), _cloud(90, 1) * 3, _cloud(30, 2) + 1
    alone = extractor([cloud])[0]
    assert torch.allclose(extractor([cloud, other])[0], alone, atol=1e-5)
    assert torch.allclose(extractor([other, third, cloud])[2], alone, atol=1e-5)


def test_batchnorm_modes_differ_and_update_nothing() -> None:
    sample = _extractor(batchnorm="sample")
    _perturb_batchnorm_statistics(sample)
    running = _extractor(batchnorm="running")
    running.load_state_dict(sample.state_dict())
    before = {k: v.clone() for k, v in sample.state_dict().items()}
    clouds = [_cloud(80, 0), _cloud(40, 1)]
    with_sample, with_running = sample(clouds), running(clouds)
    assert not any(torch.allclose(a, b, atol=1e-3) for a, b in zip(with_sample, with_running, strict=True))
    for extractor in (sample, running):
        after = extractor.state_dict()
        assert all(torch.equal(before[k], after[k]) for k in before)  # running stats, num_batches_tracked, weights
        assert not any(norm.training for norm in _batchnorms(extractor))
    assert all(torch.equal(a, b) for a, b in zip(with_sample, sample(clouds), strict=True))  # repeatable
    with pytest.raises(ValueError, match="batchnorm='batch'"):
        _extractor(batchnorm="batch")


def test_frozen_and_always_in_eval_mode() -> None:
    extractor = _extractor()
    assert not any(p.requires_grad for p in extractor.parameters())
    assert extractor.train() is extractor
    assert not any(m.training for m in extractor.modules())


@pytest.mark.parametrize("layers", [(1, 4), (-1, 2), (7,)])
def test_layers_out_of_range(layers: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match=r"layers=.* must lie in \[0, .*4\)"):
        _extractor(layers=layers)


def test_release_checkpoint(tmp_path: Path) -> None:
    source = _extractor(seed=5)
    state = source.state_dict()
    prefixes = ["module.MAE_encoder.", "MAE_encoder.", "base_model.", ""]
    release = {"base_model": {f"{prefixes[i % 4]}{k}": v for i, (k, v) in enumerate(state.items())}}
    torch.save(release, tmp_path / "pretrain.pth")
    loaded = load_pointmae_state_dict(tmp_path / "pretrain.pth")
    assert loaded.keys() == state.keys()
    assert all(torch.equal(loaded[k], state[k]) for k in state)

    extractor = _extractor(seed=6, pretrained=True, weights=tmp_path / "pretrain.pth")
    clouds = [_cloud(60, 0), _cloud(30, 1)]
    assert all(torch.equal(a, b) for a, b in zip(extractor(clouds), source(clouds), strict=True))
    assert not torch.allclose(_extractor(seed=6)(clouds)[0], source(clouds)[0])

    torch.save(state, tmp_path / "plain.pth")  # a bare state dict is not the release format
    with pytest.raises(ValueError, match=r"xyz_weights=.*plain\.pth.*not a Point-MAE checkpoint"):
        load_pointmae_state_dict(tmp_path / "plain.pth")
    with pytest.raises(ValueError, match=r"xyz_weights=.*plain\.pth"):
        _extractor(weights=tmp_path / "plain.pth")
    with pytest.raises(FileNotFoundError, match=r"xyz_weights=.*missing\.pth"):
        _extractor(weights=tmp_path / "missing.pth")


def test_checkpoint_of_another_size_is_rejected(tmp_path: Path) -> None:
    state = _extractor().state_dict()
    del state["norm.weight"]
    torch.save({"base_model": state}, tmp_path / "partial.pth")
    with pytest.raises(ValueError, match=r"xyz_weights=.*partial\.pth.*does not fit.*norm\.weight"):
        _extractor(weights=tmp_path / "partial.pth")


def test_checkpoint_of_another_width_names_the_argument(tmp_path: Path) -> None:
    wide = PointMAEExtractor(
        num_group=8, group_size=16, embed_dim=64, depth=4, num_heads=2, layers=(1, 3), pretrained=False
    )
    torch.save({"base_model": wide.state_dict()}, tmp_path / "wide.pth")
    with pytest.raises(ValueError, match=r"xyz_weights=.*wide\.pth.*does not fit this encoder \(xyz_model_kwargs\)"):
        _extractor(weights=tmp_path / "wide.pth")


@pytest.mark.parametrize("group_encoder", ["conv", "gemm"])
@pytest.mark.parametrize("batchnorm", ["sample", "running"])
def test_group_tokens_equal_the_authors_encoder_cloud_by_cloud(batchnorm: str, group_encoder: str) -> None:
    """Both group encoders (and the dense form of the exported graph) equal anomalib's (the authors') Conv1d
    encoder run one cloud at a time: bit for bit for the default, to float32 rounding for the GEMM form."""
    from anomalib_cmdr.models.cmdr.geometry import stack_groups

    extractor = _extractor(batchnorm=batchnorm, group_encoder=group_encoder)
    _perturb_batchnorm_statistics(extractor)
    generator = torch.Generator().manual_seed(0)
    clouds = [torch.rand(300, 3, generator=generator), torch.rand(120, 3, generator=generator) * 2]
    neighbourhoods, _ = stack_groups(clouds, extractor.group(clouds))
    norms = _batchnorms(extractor)
    with torch.no_grad():
        expected = []
        for group in neighbourhoods:
            for norm in norms:  # the authors encode each cloud alone, BatchNorm with its own statistics
                norm.train(batchnorm == "sample")
                norm.momentum = 0.0
            expected.append(extractor.encoder(group[None]))
            for norm in norms:
                norm.eval()
        expected = torch.cat(expected)
        tokens = extractor.group_tokens(neighbourhoods)
        if group_encoder == "conv":
            assert torch.equal(tokens, expected)
        else:
            torch.testing.assert_close(tokens, expected, rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(extractor.group_tokens_dense(neighbourhoods), expected, rtol=1e-4, atol=1e-4)


def test_unknown_group_encoder_is_refused() -> None:
    with pytest.raises(ValueError, match="group_encoder='fast'"):
        _extractor(group_encoder="fast")
