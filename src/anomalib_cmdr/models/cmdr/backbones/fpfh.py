# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0

"""Weight-free FPFH 3D feature extractor.

Hand-crafted Fast Point Feature Histograms (FPFH, Rusu et al., 2009) as a frozen 3D backbone, following
"Back to the Feature: Classical 3D Features are (Almost) All You Need for 3D Anomaly Detection"
(Horwitz & Hoshen, 2023). All geometry is computed with open3d, one batched call per sample.

Scale handling:
    Every length parameter is expressed *relative to the point spacing* of the cloud, i.e. the median
    non-zero nearest-neighbour distance (:func:`point_spacing`). This makes the extractor independent of
    units (metres, millimetres) and of the image resolution the organized cloud was resized to. For an
    organized cloud the spacing is essentially the pixel footprint, so ``normal_radius=3`` means "a disc
    of about 3 pixels" and ``feature_radius=6`` "a disc of about 6 pixels".

Defaults:
    * ``normal_radius=3.0`` with ``max_nn_normal=30``: about 28 grid neighbours, enough for a stable PCA
      normal while staying local (BTF used 2x its voxel size).
    * ``feature_radius=6.0`` with ``max_nn_feature=100``: about 110 grid neighbours inside the disc,
      capped at the 100 nearest (BTF used 5x its voxel size, i.e. 2.5x the normal radius; we use 2x, which
      keeps the descriptor local enough to localise small defects on 224x224 clouds).
    * ``voxel_size=None``: compute on every valid point (exact); ``2.0`` gives a ~3.5x speed-up with
      descriptors close to the exact ones on smooth surfaces. It may not exceed ``normal_radius / 1.5``:
      the downsampled cloud's spacing is about one voxel, and a coarser grid leaves too few neighbours
      inside the normal radius (normals, hence descriptors, degrade sharply).
    * ``normalize=True``: see :class:`FPFHExtractor`.

Determinism:
    open3d 0.20 parallelises normal estimation and FPFH over points (TBB; ``OMP_NUM_THREADS`` has no
    effect), but every point is computed independently from a fixed neighbourhood with no reduction across
    threads, and the voxel grid / nearest-neighbour look-ups are deterministic, so the output is
    bit-identical across calls, processes and core counts (checked by hashing 50k-point outputs with the
    process pinned to 1 and to 2 cores). No extra synchronisation is needed. Normal signs are made canonical
    by orienting all normals towards the camera at the origin.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import open3d as o3d
import torch

__all__ = ["FPFH_DIM", "MIN_POINTS", "FPFHExtractor", "normalize_fpfh", "point_spacing"]

FPFH_DIM = 33
"""Length of an FPFH descriptor: three 11-bin angular sub-histograms."""

MIN_POINTS = 5
"""Clouds (or voxel-downsampled clouds) with fewer points get all-zero descriptors."""

_N_SUB = 3
_MAX_VOXEL_TO_NORMAL_RADIUS = 1.5
_N_BINS = FPFH_DIM // _N_SUB


def _as_point_array(points: np.ndarray | torch.Tensor, name: str = "points") -> np.ndarray:
    """Validate an ``(N, 3)`` array of finite coordinates and return it as contiguous float64 numpy.

    Args:
        points (np.ndarray | torch.Tensor): Array-like of shape ``(N, 3)``.
        name (str): Argument name used in error messages. Defaults to ``"points"``.

    Returns:
        np.ndarray: A C-contiguous ``float64`` array of shape ``(N, 3)``.

    Raises:
        ValueError: If the shape is not ``(N, 3)`` or a coordinate is NaN or infinite.
    """
    if isinstance(points, torch.Tensor):
        points = points.detach().to("cpu", torch.float64).numpy()
    arr = np.ascontiguousarray(points, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != 3:
        msg = f"`{name}` must have shape (N, 3), got {tuple(arr.shape)}."
        raise ValueError(msg)
    if not np.isfinite(arr).all():
        msg = f"`{name}` contains NaN or infinite coordinates; pass only the valid points of the cloud."
        raise ValueError(msg)
    return arr


def _spacing_of(pcd: o3d.geometry.PointCloud) -> float:
    """Median non-zero nearest-neighbour distance of an open3d cloud (0.0 if undefined)."""
    if len(pcd.points) < 2:
        return 0.0
    dist = np.asarray(pcd.compute_nearest_neighbor_distance())
    dist = dist[np.isfinite(dist) & (dist > 0)]
    return float(np.median(dist)) if dist.size else 0.0


def point_spacing(points: np.ndarray | torch.Tensor) -> float:
    """Typical point spacing of a cloud: the median non-zero nearest-neighbour distance.

    Duplicated points (zero distance) are ignored so they cannot collapse the estimate. Uses open3d's
    ``compute_nearest_neighbor_distance``.

    Args:
        points (np.ndarray | torch.Tensor): ``(N, 3)`` coordinates (numpy array or tensor, any float dtype).

    Returns:
        float: The spacing in the units of ``points``; ``0.0`` if it is undefined (fewer than two distinct points).

    Raises:
        ValueError: If ``points`` is not ``(N, 3)`` or has non-finite coordinates.

    Example:
        >>> import numpy as np
        >>> grid = np.stack(np.meshgrid(np.arange(4.0), np.arange(4.0)), -1).reshape(-1, 2)
        >>> point_spacing(np.c_[grid * 0.5, np.ones(16)])
        0.5
    """
    arr = _as_point_array(points)
    return _spacing_of(o3d.geometry.PointCloud(o3d.utility.Vector3dVector(arr)))


def normalize_fpfh(features: np.ndarray) -> np.ndarray:
    """Rescale each 11-bin FPFH sub-histogram to sum to one.

    open3d's FPFH of a point is its own SPFH (each sub-histogram sums to 100) plus the distance-weighted
    mean of its neighbours' SPFHs (rescaled to sum to 100), so every sub-histogram sums to 200 for a point
    with neighbours and to 0 for an isolated point. Dividing by the actual sum (instead of the constant 200)
    gives values in ``[0, 1]`` in every case; all-zero sub-histograms stay zero.

    Args:
        features (np.ndarray): Raw open3d descriptors, shape ``(N, 33)``.

    Returns:
        np.ndarray: The normalised descriptors, same shape, float64.

    Example:
        >>> raw = np.zeros((1, 33))
        >>> raw[0, [5, 16, 27]] = 200.0
        >>> normalize_fpfh(raw)[0, [5, 16, 27]].tolist()
        [1.0, 1.0, 1.0]
    """
    hist = np.asarray(features, dtype=np.float64).reshape(-1, _N_SUB, _N_BINS)
    sums = hist.sum(axis=2, keepdims=True)
    out = np.divide(hist, sums, out=np.zeros_like(hist), where=sums > 0)
    return out.reshape(-1, FPFH_DIM)


class FPFHExtractor(torch.nn.Module):
    """Per-point FPFH descriptors of the valid points of each sample.

    For each cloud: the spacing ``s`` is measured (:func:`point_spacing`), optionally the cloud is
    voxel-downsampled with voxel edge ``voxel_size * s``, normals are estimated with a hybrid
    radius/k-NN search (radius ``normal_radius * s``, at most ``max_nn_normal`` neighbours) and oriented
    towards the camera at the origin, then open3d's FPFH is computed with radius ``feature_radius * s``
    (at most ``max_nn_feature`` neighbours). With downsampling, every input point takes the descriptor of
    its nearest downsampled point. The radii always refer to the spacing of the *input* cloud, so
    ``voxel_size`` only trades accuracy for speed and does not change the physical scale of the descriptor.

    The module is weight-free (no parameters, no buffers, empty ``state_dict``), stateless and picklable.

    Args:
        normal_radius (float): Normal-estimation radius, in units of the point spacing. Defaults to ``3.0``.
        feature_radius (float): FPFH radius, in units of the point spacing. Defaults to ``6.0``.
        max_nn_normal (int): Maximum neighbours used for a normal. Defaults to ``30``.
        max_nn_feature (int): Maximum neighbours used for an FPFH descriptor. Defaults to ``100``.
        voxel_size (float | None): Voxel edge for downsampling, in units of the point spacing; ``None``
            disables it. At most ``normal_radius / 1.5``. Defaults to ``None``.
        normalize (bool): If ``True``, each of the three 11-bin sub-histograms is divided by its sum (200 in
            open3d for any point that has neighbours), so it sums to 1 and values lie in ``[0, 1]``
            (:func:`normalize_fpfh`). If ``False``, open3d's raw values (sub-histograms summing to 200).
            Defaults to ``True``.

    Raises:
        ValueError: If a hyper-parameter is out of range (non-positive radius, ``max_nn_*`` < 3, or a voxel
            coarser than ``normal_radius / 1.5``).

    Graceful cases:
        * An empty cloud gives an empty ``(0, 33)`` tensor.
        * A cloud with fewer than :data:`MIN_POINTS` points, or whose points all coincide, or whose
          downsampled version has fewer than :data:`MIN_POINTS` points, gives all-zero descriptors.
        * Points with no neighbour within the FPFH radius get all-zero descriptors (open3d's behaviour).

    Example:
        >>> import torch
        >>> xy = torch.stack(torch.meshgrid(torch.arange(20.0), torch.arange(20.0), indexing="ij"), -1)
        >>> cloud = torch.cat([xy.reshape(-1, 2) * 1e-3, torch.full((400, 1), 0.5)], dim=1)
        >>> extractor = FPFHExtractor()
        >>> feats = extractor([cloud, cloud[:100]])
        >>> [tuple(f.shape) for f in feats], feats[0].dtype
        ([(400, 33), (100, 33)], torch.float32)
    """

    def __init__(
        self,
        normal_radius: float = 3.0,
        feature_radius: float = 6.0,
        max_nn_normal: int = 30,
        max_nn_feature: int = 100,
        voxel_size: float | None = None,
        normalize: bool = True,
    ) -> None:
        super().__init__()
        for name, value in (("normal_radius", normal_radius), ("feature_radius", feature_radius)):
            if not np.isfinite(value) or value <= 0:
                msg = f"`{name}` must be a positive finite number, got {value!r}."
                raise ValueError(msg)
        for name, value in (("max_nn_normal", max_nn_normal), ("max_nn_feature", max_nn_feature)):
            if int(value) != value or value < 3:
                msg = f"`{name}` must be an integer >= 3, got {value!r}."
                raise ValueError(msg)
        if voxel_size is not None and (not np.isfinite(voxel_size) or voxel_size <= 0):
            msg = f"`voxel_size` must be None or a positive finite number, got {voxel_size!r}."
            raise ValueError(msg)
        if voxel_size is not None and voxel_size * _MAX_VOXEL_TO_NORMAL_RADIUS > normal_radius:
            msg = (
                f"`voxel_size` ({voxel_size}) must be <= normal_radius / {_MAX_VOXEL_TO_NORMAL_RADIUS} "
                f"({normal_radius / _MAX_VOXEL_TO_NORMAL_RADIUS:g}); raise `normal_radius` for coarser voxels."
            )
            raise ValueError(msg)
        self.normal_radius = float(normal_radius)
        self.feature_radius = float(feature_radius)
        self.max_nn_normal = int(max_nn_normal)
        self.max_nn_feature = int(max_nn_feature)
        self.voxel_size = None if voxel_size is None else float(voxel_size)
        self.normalize = bool(normalize)

    @property
    def out_dim(self) -> int:
        """Descriptor length (33)."""
        return FPFH_DIM

    def extra_repr(self) -> str:
        """Hyper-parameters shown by ``repr``."""
        return (
            f"normal_radius={self.normal_radius}, feature_radius={self.feature_radius}, "
            f"max_nn_normal={self.max_nn_normal}, max_nn_feature={self.max_nn_feature}, "
            f"voxel_size={self.voxel_size}, normalize={self.normalize}"
        )

    def estimate_normals(self, pcd: o3d.geometry.PointCloud, spacing: float) -> None:
        """Estimate normals in place and orient them towards the camera at the origin.

        Args:
            pcd (o3d.geometry.PointCloud): The open3d cloud (modified in place; existing normals are discarded).
            spacing (float): The point spacing the radius is relative to.
        """
        pcd.normals = o3d.utility.Vector3dVector(np.empty((0, 3)))  # so the sign is not inherited
        pcd.estimate_normals(o3d.geometry.KDTreeSearchParamHybrid(self.normal_radius * spacing, self.max_nn_normal))
        pcd.orient_normals_towards_camera_location(np.zeros(3))

    def compute_numpy(self, points: np.ndarray) -> np.ndarray:
        """Descriptors of one cloud, numpy in and out.

        Args:
            points (np.ndarray): ``(N, 3)`` coordinates of the valid points.

        Returns:
            np.ndarray: ``(N, 33)`` float64 descriptors (normalised if ``self.normalize``).

        Raises:
            ValueError: If ``points`` is not ``(N, 3)`` or has non-finite coordinates.
        """
        arr = _as_point_array(points)
        n = arr.shape[0]
        out = np.zeros((n, FPFH_DIM), dtype=np.float64)
        if n < MIN_POINTS:
            return out
        pcd = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(arr))
        spacing = _spacing_of(pcd)
        if spacing <= 0:
            return out
        work = pcd if self.voxel_size is None else pcd.voxel_down_sample(self.voxel_size * spacing)
        if len(work.points) < MIN_POINTS:
            return out
        self.estimate_normals(work, spacing)
        feature = o3d.pipelines.registration.compute_fpfh_feature(
            work, o3d.geometry.KDTreeSearchParamHybrid(self.feature_radius * spacing, self.max_nn_feature)
        )
        feats = np.array(feature.data, dtype=np.float64).T  # (M, 33), copied out of open3d's memory
        if self.normalize:
            feats = normalize_fpfh(feats)
        if work is pcd:
            return np.ascontiguousarray(feats, dtype=np.float64)
        nns = o3d.core.nns.NearestNeighborSearch(o3d.core.Tensor(np.asarray(work.points)))
        nns.knn_index()
        idx, _ = nns.knn_search(o3d.core.Tensor(arr), 1)
        return np.ascontiguousarray(feats[idx.numpy().reshape(-1)], dtype=np.float64)

    @torch.no_grad()
    def forward(self, points: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """Compute per-point FPFH descriptors, one open3d call chain per sample.

        Args:
            points (Sequence[torch.Tensor]): One ``(N_i, 3)`` float tensor per sample (valid points of an
                organized cloud, camera frame, camera at the origin, any device). A ``(B, N, 3)`` tensor is
                treated as ``B`` clouds.

        Returns:
            list[torch.Tensor]: One ``(N_i, 33)`` tensor per sample, on the device of the input and with its
            dtype if that is a floating dtype (float32 otherwise). No gradient flows through the descriptors.

        Raises:
            ValueError: If a cloud is not ``(N, 3)`` or contains NaN/inf coordinates, or if a single 2-D
                tensor is passed instead of a list.
        """
        if isinstance(points, torch.Tensor) and points.dim() != 3:
            msg = f"`points` must be a list of (N, 3) tensors (or a (B, N, 3) tensor), got shape {tuple(points.shape)}."
            raise ValueError(msg)
        outputs = []
        for i, cloud in enumerate(points):
            if not isinstance(cloud, torch.Tensor):
                cloud = torch.as_tensor(np.asarray(cloud))
            feats = self.compute_numpy(_as_point_array(cloud, name=f"points[{i}]"))
            dtype = cloud.dtype if cloud.is_floating_point() else torch.float32
            outputs.append(torch.from_numpy(feats).to(device=cloud.device, dtype=dtype))
        return outputs
