# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0

"""Tests of the named 3D feature-extractor variants (``xyz_backbone`` + ``xyz_model_kwargs``)."""

from __future__ import annotations

import pytest
import torch

from anomalib_cmdr import CMDRModel
from anomalib_cmdr.models.cmdr.backbones import registry
from anomalib_cmdr.models.cmdr.backbones.fpfh import FPFHExtractor
from anomalib_cmdr.models.cmdr.backbones.pointmae import PointMAEExtractor
from anomalib_cmdr.models.cmdr.backbones.registry import (
    XYZBackboneVariant,
    create_xyz_backbone,
    get_xyz_backbone_variant,
    list_xyz_backbones,
    register_xyz_backbone,
)


def test_builtin_variants_are_registered() -> None:
    assert {"pointmae", "pointmae_tiny", "fpfh"} <= set(list_xyz_backbones())


def test_pointmae_is_the_papers_encoder() -> None:
    variant = get_xyz_backbone_variant("pointmae")
    assert variant.defaults == {
        "num_group": 1024,
        "group_size": 128,
        "embed_dim": 384,
        "depth": 12,
        "num_heads": 6,
        "layers": (3, 7, 11),
        "batchnorm": "sample",
    }
    assert "Point-MAE release" in variant.weights


def test_kwargs_override_the_variant_defaults() -> None:
    encoder = create_xyz_backbone("pointmae_tiny", pretrained=False, num_group=8, group_size=4, layers=(0, 3))
    assert isinstance(encoder, PointMAEExtractor)
    assert (encoder.num_group, encoder.group_size, encoder.layers) == (8, 4, [0, 3])
    assert encoder.out_dim == 2 * 96  # width of pointmae_tiny, two blocks
    assert not any(p.requires_grad for p in encoder.parameters())


def test_fpfh_is_weight_free_and_takes_its_own_arguments() -> None:
    encoder = create_xyz_backbone("fpfh", pretrained=True, voxel_size=2.0)  # pretrained does not apply
    assert isinstance(encoder, FPFHExtractor) and encoder.out_dim == 33 and not list(encoder.state_dict())
    with pytest.raises(ValueError, match="has no weights"):
        create_xyz_backbone("fpfh", weights=__file__)


def test_unknown_name_and_argument_have_clear_errors() -> None:
    with pytest.raises(ValueError, match=r"xyz_backbone='pointnet'.*\['fpfh', 'pointmae'"):
        create_xyz_backbone("pointnet")
    with pytest.raises(ValueError, match=r"xyz_model_kwargs: unknown argument\(s\) \['num_groups'\].*'pointmae'"):
        create_xyz_backbone("pointmae", pretrained=False, num_groups=8)
    with pytest.raises(ValueError, match="xyz_model_kwargs"):
        CMDRModel(rgb_backbone="resnet18", pretrained=False, xyz_backbone="fpfh", xyz_model_kwargs={"radius": 3})


def test_variant_without_weights_refuses_pretrained() -> None:
    with pytest.raises(ValueError, match=r"pointmae_tiny' has no pretrained weights.*pretrained=False"):
        create_xyz_backbone("pointmae_tiny", pretrained=True)


def test_local_file_is_accepted_for_a_variant_without_release(tmp_path) -> None:
    torch.manual_seed(0)
    source = create_xyz_backbone("pointmae_tiny", pretrained=False, num_group=8, group_size=8)
    release = {"base_model": {f"MAE_encoder.{key}": value for key, value in source.state_dict().items()}}
    torch.save(release, tmp_path / "tiny.pth")
    torch.manual_seed(1)
    loaded = create_xyz_backbone("pointmae_tiny", weights=tmp_path / "tiny.pth", num_group=8, group_size=8)
    cloud = [torch.rand(64, 3)]
    torch.testing.assert_close(loaded(cloud)[0], source(cloud)[0])


def test_registered_variant_is_usable_by_name_in_cmdr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "_XYZ_BACKBONES", dict(registry._XYZ_BACKBONES))  # leave the registry as it was
    register_xyz_backbone(XYZBackboneVariant("test_pointmae_micro", PointMAEExtractor, {
        "num_group": 8, "group_size": 8, "embed_dim": 16, "depth": 2, "num_heads": 2, "layers": (0, 1),
    }))  # fmt: skip
    model = CMDRModel(
        rgb_backbone="resnet18", rgb_layers=[1], xyz_backbone="test_pointmae_micro", pretrained=False, grid_size=16
    )
    assert model.xyz_backbone.out_dim == 32 and model.map2Dto3D.output.out_features == 32
