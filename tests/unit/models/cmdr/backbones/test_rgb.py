# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0
"""Tests of anomalib_cmdr.models.cmdr.backbones.rgb: the frozen timm 2D feature extractor."""

from __future__ import annotations

from pathlib import Path

import pytest
import timm
import torch
from torch.nn import functional

from anomalib_cmdr.models.cmdr.backbones.rgb import RGBBackbone
from anomalib_cmdr.models.cmdr.backbones.weights import WeightsUnavailableError

VIT = "vit_tiny_patch16_224"
VIT_KWARGS = {"patch_size": 8}


def _image(height: int = 64, width: int = 64, seed: int = 0) -> torch.Tensor:
    return torch.rand(2, 3, height, width, generator=torch.Generator().manual_seed(seed))


def _copy_weights(backbone: RGBBackbone, reference: torch.nn.Module) -> None:
    """Give the (pruned) backbone the weights of a full timm model."""
    missing, _ = backbone.model.load_state_dict(reference.state_dict(), strict=False)
    assert missing == []


def test_cnn_levels_are_upsampled_and_concatenated() -> None:
    backbone = RGBBackbone("resnet18", layers=[1, 2], pretrained=False)
    reference = timm.create_model("resnet18", pretrained=False).eval()
    _copy_weights(backbone, reference)
    image = _image()
    features = backbone(image)
    assert backbone.out_dim == 64 + 128
    assert features.shape == (2, backbone.out_dim, 16, 16)  # layer1 (stride 4) is the finest level
    layer1, layer2 = reference.forward_intermediates(image, indices=[1, 2], intermediates_only=True)
    assert layer1.shape == (2, 64, 16, 16) and layer2.shape == (2, 128, 8, 8)
    expected = torch.cat([layer1, functional.interpolate(layer2, (16, 16), mode="bilinear")], dim=1)
    assert torch.allclose(features, expected, atol=1e-5)


def test_vit_gives_the_patch_grid_without_class_token() -> None:
    backbone = RGBBackbone(VIT, pretrained=False, model_kwargs=VIT_KWARGS)
    reference = timm.create_model(VIT, pretrained=False, dynamic_img_size=True, **VIT_KWARGS).eval()
    _copy_weights(backbone, reference)
    image = _image(48, 72)  # not 224, not square
    features = backbone(image)
    assert backbone.is_vit and backbone.out_dim == 192
    assert features.shape == (2, 192, 6, 9)  # 8 px patches
    tokens = reference.forward_features(image)  # final norm applied, class token first
    assert tokens.shape == (2, 1 + 6 * 9, 192) and reference.num_prefix_tokens == 1
    expected = tokens[:, 1:].reshape(2, 6, 9, 192).permute(0, 3, 1, 2)
    assert torch.allclose(features, expected, atol=1e-5)


def test_frozen_and_always_in_eval_mode() -> None:
    backbone = RGBBackbone("resnet18", layers=[1, 2], pretrained=False)
    assert not any(p.requires_grad for p in backbone.parameters())
    assert backbone.train() is backbone
    assert not any(m.training for m in backbone.modules())
    norm = backbone.model.bn1
    before = {k: v.clone() for k, v in norm.state_dict().items()}
    assert before.keys() == {"weight", "bias", "running_mean", "running_var", "num_batches_tracked"}
    features = backbone(_image())
    assert not features.requires_grad
    assert all(torch.equal(before[k], v) for k, v in norm.state_dict().items())  # BatchNorm statistics unchanged


@pytest.mark.parametrize("pretrained", [True, False])
def test_local_weight_file_is_loaded(tmp_path: Path, pretrained: bool) -> None:
    torch.manual_seed(1)
    source = timm.create_model("resnet18", pretrained=False).eval()
    torch.save(source.state_dict(), tmp_path / "resnet18.pth")
    torch.manual_seed(2)
    backbone = RGBBackbone("resnet18", layers=[1, 2], pretrained=pretrained, weights=tmp_path / "resnet18.pth")
    random = RGBBackbone("resnet18", layers=[1, 2], pretrained=False)
    _copy_weights(random, source)
    image = _image(seed=3)
    assert torch.equal(backbone(image), random(image))
    assert not torch.allclose(backbone(image), RGBBackbone("resnet18", layers=[1, 2], pretrained=False)(image))


def test_missing_weight_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"rgb_weights=.*missing\.pth"):
        RGBBackbone("resnet18", layers=[1, 2], pretrained=True, weights=tmp_path / "missing.pth")


@pytest.mark.parametrize("error", [OSError("hub unreachable"), ConnectionError("hub unreachable")])
def test_pretrained_without_hub_fails_clearly(monkeypatch: pytest.MonkeyPatch, error: Exception) -> None:
    create_model = timm.create_model

    def offline(name: str, pretrained: bool = False, **kwargs: object) -> torch.nn.Module:
        if pretrained:
            raise error
        return create_model(name, pretrained=pretrained, **kwargs)

    monkeypatch.setattr(timm, "create_model", offline)
    with pytest.raises(WeightsUnavailableError, match=r"rgb_weights.*pretrained=False") as info:
        RGBBackbone("resnet18", layers=[1, 2], pretrained=True)
    assert info.value.__cause__ is error and "hub unreachable" in str(info.value)
    assert RGBBackbone("resnet18", layers=[1, 2], pretrained=False).out_dim == 192  # random weights still work
