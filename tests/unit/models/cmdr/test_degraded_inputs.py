# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0

"""Degraded point clouds: each gets a defined behaviour (finite output, or a clear error)."""

import pytest
import torch

from anomalib_cmdr import CMDRModel
from tests.helpers import make_clouds


@pytest.fixture(params=["pointmae_tiny", "fpfh"])
def model(request, tiny_kwargs):
    torch.manual_seed(0)
    kwargs = dict(tiny_kwargs)
    if request.param == "fpfh":
        kwargs.update(xyz_backbone="fpfh", xyz_model_kwargs=None)
    return CMDRModel(**kwargs, grid_size=32).eval()


def _keep(xyz: torch.Tensor, count: int) -> torch.Tensor:
    """The clouds with only their first ``count`` valid points."""
    out = torch.zeros_like(xyz)
    for i in range(xyz.shape[0]):
        valid = torch.nonzero((xyz[i] != 0).any(dim=0).flatten()).squeeze(1)[:count]
        out[i].view(3, -1)[:, valid] = xyz[i].view(3, -1)[:, valid]
    return out


def _finite(out) -> bool:
    return bool(torch.isfinite(out.anomaly_map).all() and torch.isfinite(out.pred_score).all())


@pytest.mark.parametrize("count", [1, 2, 40])
def test_fewer_points_than_groups_times_group_size(model, count):
    """Point-MAE's 16 groups of 16 points need 256; fewer (down to one) still give a finite map on those points."""
    rgb, xyz = make_clouds(2)
    sparse = _keep(xyz, count)
    out = model(rgb, sparse)
    assert _finite(out)
    routed = model.route(model.extract_features(rgb, sparse))
    # the fused branch while the 3D extractor describes the points; FPFH needs neighbours, so one or two points
    # have no descriptor and the sample counts as having no valid point: the RGB branch scores it
    expected = 1 if model.xyz_backbone.__class__.__name__.lower().startswith("fpfh") and count < 3 else 0
    assert routed.branch.tolist() == [expected, expected]


def test_millimetres_instead_of_metres_give_a_finite_map(model):
    """The unit is the user's (a model must be tested in the unit it was trained in); any scale is computed."""
    rgb, xyz = make_clouds(2)
    out = model(rgb, xyz * 1000)
    assert _finite(out) and out.anomaly_map.shape == (2, 1, 32, 32)


def test_extreme_depth_noise_gives_a_finite_map(model):
    rgb, xyz = make_clouds(2)
    valid = (xyz != 0).any(dim=1, keepdim=True)
    noisy = xyz + valid * torch.randn(xyz.shape, generator=torch.Generator().manual_seed(0)) * 10.0
    noisy = torch.where(valid, noisy, torch.zeros_like(noisy))
    assert _finite(model(rgb, noisy))


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_coordinates_get_a_clear_error(model, value):
    rgb, xyz = make_clouds(2)
    xyz[1, 0, 10, 10] = value
    with pytest.raises(ValueError, match=r"NaN or inf coordinates: mark missing points as \(0, 0, 0\)"):
        model(rgb, xyz)
