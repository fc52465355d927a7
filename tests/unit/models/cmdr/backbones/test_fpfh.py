# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0

"""Tests of the weight-free FPFH 3D feature extractor."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import open3d as o3d
import pytest
import torch

from anomalib_cmdr.models.cmdr.backbones.fpfh import (
    FPFH_DIM,
    MIN_POINTS,
    FPFHExtractor,
    normalize_fpfh,
    point_spacing,
)

SPACING = 1e-3  # 1 mm grid, 0.5 m in front of the camera: close to an MVTec 3D-AD cloud at 224x224.


def grid_cloud(n: int = 40, noise: float = 0.0, bump: float = 0.0, wave: float = 0.0, seed: int = 0) -> np.ndarray:
    """An organized n x n surface patch, camera frame (z forward), optional Gaussian bump at the centre."""
    rng = np.random.default_rng(seed)
    c = (np.arange(n) - (n - 1) / 2) * SPACING
    x, y = np.meshgrid(c, c, indexing="ij")
    z = 0.5 + wave * np.sin(x * 150) * np.cos(y * 110)
    z = z - bump * np.exp(-(x**2 + y**2) / (2 * (4 * SPACING) ** 2))  # towards the camera
    z = z + rng.normal(0.0, noise, z.shape)
    return np.stack([x, y, z], -1).reshape(-1, 3)


def open3d_reference(points: np.ndarray, flip_first: bool = False) -> np.ndarray:
    """open3d's own FPFH with the extractor's default radii, raw (sub-histograms summing to 200)."""
    s = point_spacing(points)
    pcd = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(points))
    pcd.estimate_normals(o3d.geometry.KDTreeSearchParamHybrid(3.0 * s, 30))
    if flip_first:
        pcd.normals = o3d.utility.Vector3dVector(-np.asarray(pcd.normals))
    pcd.orient_normals_towards_camera_location(np.zeros(3))
    feat = o3d.pipelines.registration.compute_fpfh_feature(pcd, o3d.geometry.KDTreeSearchParamHybrid(6.0 * s, 100))
    return np.asarray(feat.data).T.copy()


@pytest.fixture(scope="module")
def curved() -> np.ndarray:
    return grid_cloud(40, noise=2e-5, wave=0.004)


def test_point_spacing_of_grid_ignores_duplicates() -> None:
    pts = grid_cloud(10)
    assert point_spacing(pts) == pytest.approx(SPACING, rel=1e-6)
    assert point_spacing(np.concatenate([pts, pts[:60]])) == pytest.approx(SPACING, rel=1e-6)
    assert point_spacing(torch.tensor(pts)) == pytest.approx(SPACING, rel=1e-6)
    assert point_spacing(np.ones((4, 3))) == 0.0
    assert point_spacing(np.zeros((1, 3))) == 0.0


def test_matches_open3d_compute_fpfh_feature(curved: np.ndarray) -> None:
    raw = open3d_reference(curved)
    assert np.allclose(raw.reshape(-1, 3, 11).sum(-1), 200.0)  # the documented open3d convention
    out = FPFHExtractor()([torch.tensor(curved)])[0].numpy()
    np.testing.assert_allclose(out, raw / 200.0, rtol=1e-9, atol=1e-12)
    pts32 = curved.astype(np.float32)
    out_raw = FPFHExtractor(normalize=False)([torch.from_numpy(pts32)])[0].numpy()
    raw32 = open3d_reference(pts32.astype(np.float64))  # same (float32-rounded) coordinates
    np.testing.assert_allclose(out_raw, raw32, rtol=1e-6, atol=1e-4)  # float32 output
    np.testing.assert_allclose(normalize_fpfh(raw), raw / 200.0, rtol=1e-12)


def test_normalized_values_in_unit_interval(curved: np.ndarray) -> None:
    out = FPFHExtractor()([torch.tensor(curved, dtype=torch.float32)])[0]
    assert out.min() >= 0 and out.max() <= 1
    torch.testing.assert_close(out.reshape(-1, 3, 11).sum(-1), torch.ones(len(out), 3))


def test_shape_dtype_and_device(curved: np.ndarray) -> None:
    ex = FPFHExtractor()
    assert ex.out_dim == FPFH_DIM == 33
    pts32 = torch.tensor(curved, dtype=torch.float32, requires_grad=True)
    (out,) = ex([pts32])
    assert out.shape == (len(curved), 33) and out.dtype == torch.float32 and out.device == pts32.device
    assert not out.requires_grad
    (out64,) = ex([pts32.detach().double()])
    assert out64.dtype == torch.float64
    torch.testing.assert_close(out64.float(), out, atol=1e-6, rtol=0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_input_gives_cuda_output(curved: np.ndarray) -> None:
    pts = torch.tensor(curved, dtype=torch.float32)
    ex = FPFHExtractor().to("cuda")
    (out,) = ex([pts.cuda()])
    assert out.device.type == "cuda" and out.dtype == torch.float32
    assert torch.equal(out.cpu(), ex([pts])[0])


@pytest.mark.parametrize("voxel_size", [None, 2.0])
def test_deterministic(curved: np.ndarray, voxel_size: float | None) -> None:
    pts = torch.tensor(curved, dtype=torch.float32)
    a = FPFHExtractor(voxel_size=voxel_size)([pts])[0]
    b = FPFHExtractor(voxel_size=voxel_size)([pts])[0]
    assert torch.equal(a, b)


def test_normals_point_towards_camera(curved: np.ndarray) -> None:
    pcd = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(curved))
    pcd.normals = o3d.utility.Vector3dVector(np.tile([0.0, 0.0, 1.0], (len(curved), 1)))  # wrong sign on purpose
    FPFHExtractor().estimate_normals(pcd, point_spacing(curved))
    normals = np.asarray(pcd.normals)
    assert np.all(np.einsum("ij,ij->i", normals, -curved) > 0)


def test_independent_of_open3d_normal_sign(curved: np.ndarray) -> None:
    raw, raw_flipped = open3d_reference(curved), open3d_reference(curved, flip_first=True)
    np.testing.assert_array_equal(raw, raw_flipped)  # orientation makes the sign canonical
    # Without orientation the FPFH does depend on the sign, so the orientation step matters.
    s = point_spacing(curved)
    pcd = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(curved))
    pcd.estimate_normals(o3d.geometry.KDTreeSearchParamHybrid(3.0 * s, 30))
    pcd.orient_normals_towards_camera_location(np.array([0.0, 0.0, 1.0]))  # away from the real camera
    away = np.asarray(
        o3d.pipelines.registration.compute_fpfh_feature(pcd, o3d.geometry.KDTreeSearchParamHybrid(6.0 * s, 100)).data
    ).T
    assert not np.allclose(away, raw)
    out = FPFHExtractor(normalize=False)([torch.tensor(curved)])[0].numpy()
    np.testing.assert_allclose(out, raw, rtol=1e-12)


@pytest.fixture(scope="module")
def bump_features() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    pts = grid_cloud(60, noise=1e-4, bump=3 * SPACING)  # noise: 10% of the spacing
    radius = np.linalg.norm(pts[:, :2], axis=1)
    full = FPFHExtractor()([torch.tensor(pts)])[0].numpy()
    voxel = FPFHExtractor(voxel_size=2.0)([torch.tensor(pts)])[0].numpy()
    on_bump, flat = radius < 5 * SPACING, radius > 18 * SPACING
    return full, voxel, on_bump, flat


def test_features_distinguish_a_bump_from_the_plane(bump_features) -> None:
    full, _, on_bump, flat = bump_features
    flat_mean = full[flat].mean(0)
    d_flat = np.linalg.norm(full[flat] - flat_mean, axis=1).mean()
    d_bump = np.linalg.norm(full[on_bump] - flat_mean, axis=1).mean()
    assert d_bump > 5 * d_flat, (d_bump, d_flat)


def test_voxel_path_covers_every_point_and_is_close(bump_features, curved: np.ndarray) -> None:
    full, voxel, on_bump, flat = bump_features
    assert voxel.shape == full.shape
    assert np.isfinite(voxel).all() and (voxel.reshape(-1, 3, 11).sum(-1) > 0.99).all()  # every point filled
    flat_mean = full[flat].mean(0)
    separation = np.linalg.norm(full[on_bump] - flat_mean, axis=1).mean()
    err = np.linalg.norm(voxel - full, axis=1)
    assert err.mean() < 0.2 * separation, (err.mean(), separation)
    # On a smooth wavy surface the downsampled descriptors stay close to the exact ones: the error is a
    # small fraction of how much the exact descriptors vary over the surface.
    exact = FPFHExtractor()([torch.tensor(curved)])[0]
    approx = FPFHExtractor(voxel_size=1.5)([torch.tensor(curved)])[0]
    spread = (exact - exact.mean(0)).norm(dim=1).mean()
    assert (approx - exact).norm(dim=1).mean() < 0.3 * spread
    assert np.corrcoef(approx.numpy().ravel(), exact.numpy().ravel())[0, 1] > 0.99


def test_empty_and_tiny_clouds() -> None:
    ex = FPFHExtractor(voxel_size=1.5)
    empty, tiny, same = ex([torch.zeros(0, 3), torch.rand(MIN_POINTS - 1, 3), torch.ones(10, 3)])
    assert empty.shape == (0, 33) and empty.dtype == torch.float32
    assert tiny.shape == (MIN_POINTS - 1, 33) and not tiny.any()
    assert same.shape == (10, 33) and not same.any()  # all points coincide: spacing undefined


def test_collinear_cloud_does_not_crash() -> None:
    line = torch.tensor(np.c_[np.arange(8) * SPACING, np.zeros(8), np.full(8, 0.5)])
    (out,) = FPFHExtractor()([line])
    assert out.shape == (8, 33) and torch.isfinite(out).all()


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_coordinates_raise(bad: float) -> None:
    clouds = [torch.rand(20, 3), torch.rand(20, 3)]
    clouds[1][3, 2] = bad
    with pytest.raises(ValueError, match=r"points\[1\]"):
        FPFHExtractor()(clouds)
    with pytest.raises(ValueError, match="points"):
        point_spacing(clouds[1].numpy())


@pytest.mark.parametrize("shape", [(20, 2), (20, 4), (20,), (2, 20, 3)])
def test_wrong_shape_raises(shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match=r"points\[0\].*\(N, 3\)"):
        FPFHExtractor()([torch.rand(shape)])


def test_single_unbatched_tensor_raises() -> None:
    with pytest.raises(ValueError, match="list"):
        FPFHExtractor()(torch.rand(20, 3))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"normal_radius": 0.0},
        {"feature_radius": -1.0},
        {"max_nn_normal": 2},
        {"max_nn_feature": 10.5},
        {"voxel_size": 0.0},
        {"voxel_size": 2.5},  # coarser than normal_radius / 1.5
    ],
)
def test_invalid_hyper_parameters_raise(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        FPFHExtractor(**kwargs)


def test_weight_free_module_batches_and_survives_copies(curved: np.ndarray) -> None:
    ex = FPFHExtractor()
    assert list(ex.parameters()) == [] and list(ex.buffers()) == [] and ex.state_dict() == {}
    ex = ex.to("cpu").to(torch.float64).eval()
    a = torch.tensor(curved, dtype=torch.float32)
    b = torch.tensor(grid_cloud(25, noise=1e-5, seed=1), dtype=torch.float32)
    out_a, out_b = ex([a, b])
    assert out_a.shape == (len(a), 33) and out_b.shape == (len(b), 33)
    assert torch.equal(out_a, ex([a])[0])  # samples are independent
    for clone in (copy.deepcopy(ex), pickle.loads(pickle.dumps(ex))):
        assert torch.equal(clone([b])[0], out_b)
        assert repr(clone) == repr(ex)
    clone.load_state_dict(ex.state_dict())
