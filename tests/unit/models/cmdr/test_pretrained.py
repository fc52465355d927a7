# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0

"""Deferred pretrained weights: loaded for a run from scratch, never needed to load a checkpoint."""

import pytest
import torch
from lightning.pytorch import Trainer

from anomalib_cmdr import CMDR
from anomalib_cmdr.models.cmdr.backbones.weights import WeightsUnavailableError


@pytest.fixture
def rgb_weights(tmp_path):
    import timm
    from safetensors.torch import save_file

    reference = timm.create_model("resnet18", pretrained=False)
    torch.nn.init.constant_(reference.conv1.weight, 0.01)
    path = tmp_path / "resnet18.safetensors"
    save_file(reference.state_dict(), path)
    return path


def _model(**kwargs) -> CMDR:
    base = {"rgb_backbone": "resnet18", "rgb_layers": [1, 2], "modality": "rgb", "image_size": 32}
    return CMDR(**{**base, **kwargs})


def test_weights_load_at_first_use(rgb_weights):
    model = _model(rgb_weights=str(rgb_weights))
    conv1 = model.model.rgb_backbone.model.conv1.weight
    assert not model.backbone_weights_loaded and not torch.all(conv1 == 0.01)
    model.eval()({"image": torch.rand(1, 3, 32, 32)})  # a forward call loads them
    assert model.backbone_weights_loaded and torch.all(conv1 == 0.01)


def test_fit_start_loads_before_the_run(rgb_weights):
    model = _model(rgb_weights=str(rgb_weights))
    model.on_fit_start()
    assert torch.all(model.model.rgb_backbone.model.conv1.weight == 0.01)


def test_checkpoint_loads_without_weight_files_or_network(tmp_path, rgb_weights, monkeypatch):
    model = _model(rgb_weights=str(rgb_weights))
    model.ensure_backbone_weights()
    trainer = Trainer(logger=False, enable_checkpointing=False, accelerator="cpu")
    trainer.strategy.connect(model)
    ckpt = tmp_path / "model.ckpt"
    trainer.save_checkpoint(ckpt)
    rgb_weights.unlink()  # the file is gone, and there is no network
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    loaded = CMDR.load_from_checkpoint(ckpt)
    assert loaded.backbone_weights_loaded
    for key, value in model.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[key], value, rtol=0, atol=0, equal_nan=True, msg=key)
    out = loaded.eval()({"image": torch.rand(1, 3, 32, 32)})
    assert torch.isfinite(out.anomaly_map).all()


def test_unavailable_weights_fail_at_first_use_never_random(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    model = _model(pretrained=True)  # constructing needs no network
    with pytest.raises(WeightsUnavailableError, match="rgb_weights"):
        model.eval()({"image": torch.rand(1, 3, 32, 32)})
    assert not model.backbone_weights_loaded


def test_impossible_requests_fail_at_construction():
    with pytest.raises(ValueError, match="has no pretrained weights"):
        CMDR(rgb_backbone="resnet18", xyz_backbone="pointmae_tiny", pretrained=True)
    with pytest.raises(ValueError, match="hand-crafted"):
        CMDR(rgb_backbone="resnet18", xyz_backbone="fpfh", pretrained=False, xyz_weights="x.pth")


def test_one_weight_file_without_pretrained_loads_only_that_backbone(rgb_weights, monkeypatch):
    """pretrained=False with rgb_weights: the RGB backbone from the file, the 3D one stays random (no hub call)."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    model = _model(
        rgb_weights=str(rgb_weights), pretrained=False, modality="rgb+xyz", xyz_backbone="pointmae_tiny",
        xyz_model_kwargs={"num_group": 16, "group_size": 16},
    )  # fmt: skip
    random_xyz = {k: v.clone() for k, v in model.model.xyz_backbone.state_dict().items()}
    model.on_fit_start()  # would raise WeightsUnavailableError if it asked the release for Point-MAE's weights
    assert torch.all(model.model.rgb_backbone.model.conv1.weight == 0.01)
    for key, value in model.model.xyz_backbone.state_dict().items():
        assert torch.equal(value, random_xyz[key]), key
