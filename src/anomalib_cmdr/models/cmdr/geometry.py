# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0

"""Data-dependent point-cloud geometry of CMDR's 3D branch.

Everything here depends on the *values* of the point cloud (which pixels hold points, which points
become group centres, who neighbours whom) and so does not trace into a static graph. It is kept
apart from the dense networks on purpose: the dense part takes the index tensors computed here as
inputs, so that it can be exported (OpenVINO) and the geometry cached.

Conventions: an *organized* cloud is a ``(B, 3, H, W)`` tensor of x, y, z in metres; a pixel holds
a point when its three coordinates are all non-zero (MVTec 3D-AD marks missing points (0, 0, 0)).

Example:
    >>> import torch
    >>> xyz = torch.rand(1, 3, 8, 8) + 0.1
    >>> clouds = gather_valid_points(xyz)
    >>> clouds[0].points.shape
    torch.Size([64, 3])
    >>> groups = group_points(clouds[0].points, num_group=4, group_size=8)
    >>> groups.group_index.shape
    torch.Size([4, 8])
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import torch
from torch.nn import functional

# Element budget of one block of distances (kNN and interpolation): 4 MB of float32 on the CPU, where blocks that
# stay in cache are faster (kNN of a 224x224 cloud: 0.26 s against 0.50 s with 64 MB blocks), and 64 MB on
# accelerators, where fewer, larger kernels are.
_MAX_ELEMENTS = 1 << 20
_MAX_ELEMENTS_ACCELERATOR = 1 << 24


def _block_rows(device: torch.device, row_elements: int) -> int:
    """Rows of a block of distances whose rows hold ``row_elements`` values each (at least one)."""
    budget = _MAX_ELEMENTS if device.type == "cpu" else _MAX_ELEMENTS_ACCELERATOR
    return max(1, budget // max(1, row_elements))


@dataclass
class ValidPoints:
    """The valid points of one organized cloud.

    Attributes:
        index (torch.Tensor): ``(N,)`` flat (row-major) pixel indices of the valid points.
        points (torch.Tensor): ``(N, 3)`` their coordinates.

    Example:
        >>> xyz = torch.zeros(1, 3, 2, 2)
        >>> xyz[0, :, 1, 0] = torch.tensor([0.1, 0.2, 0.5])
        >>> cloud = gather_valid_points(xyz)[0]
        >>> cloud.index, cloud.points
        (tensor([2]), tensor([[0.1000, 0.2000, 0.5000]]))
    """

    index: torch.Tensor
    points: torch.Tensor


@dataclass
class PointGroups:
    """FPS + kNN grouping of one cloud and the interpolation back to its points (Point-MAE style).

    Attributes:
        centre_index (torch.Tensor): ``(G,)`` indices (into the points) of the farthest-point-sampled centres.
        group_index (torch.Tensor): ``(G, K)`` indices of each centre's K nearest points, nearest first.
        interp_index (torch.Tensor): ``(N, 3)`` indices (into the centres) of each point's 3 nearest centres.
        interp_weight (torch.Tensor): ``(N, 3)`` normalised inverse squared distance weights of those centres.

    Example:
        >>> groups = group_points(torch.rand(50, 3), num_group=4, group_size=8)
        >>> groups.centre_index.shape, groups.group_index.shape, groups.interp_index.shape, groups.interp_weight.shape
        (torch.Size([4]), torch.Size([4, 8]), torch.Size([50, 3]), torch.Size([50, 3]))
    """

    centre_index: torch.Tensor
    group_index: torch.Tensor
    interp_index: torch.Tensor
    interp_weight: torch.Tensor


@dataclass
class PointFeatures:
    """Per-point features of one cloud, stored compactly.

    Point ``n``'s feature is ``sum_j weight[n, j] * values[index[n, j]]`` (Point-MAE: the features of its 3
    nearest centres, inverse-distance weighted), or ``values[n]`` when ``index`` is ``None`` (features
    computed at every point, e.g. FPFH). Storing the centre features with the indices and weights takes a
    fraction of the memory of the expanded ``(N, C)`` features.

    Attributes:
        values (torch.Tensor): ``(M, C)`` features (centres, or points when ``index`` is ``None``).
        index (torch.Tensor | None): ``(N, k)`` rows of ``values`` that make each point's feature.
        weight (torch.Tensor | None): ``(N, k)`` their weights.

    Example:
        >>> import torch
        >>> features = PointFeatures(torch.eye(2), torch.tensor([[0, 1]]), torch.tensor([[0.25, 0.75]]))
        >>> features.expand()
        tensor([[0.2500, 0.7500]])
    """

    values: torch.Tensor
    index: torch.Tensor | None = None
    weight: torch.Tensor | None = None

    def expand(self) -> torch.Tensor:
        """The ``(N, C)`` per-point features."""
        if self.index is None or self.weight is None:
            return self.values
        # sum_j weight[:, j] * values[index[:, j]], accumulated term by term: the same float32 sum as
        # ``(values[index] * weight[..., None]).sum(1)`` without its (N, k, C) temporary
        features = self.values[self.index[:, 0]] * self.weight[:, :1]
        for j in range(1, self.index.shape[1]):
            features += self.values[self.index[:, j]] * self.weight[:, j : j + 1]
        return features

    @property
    def nbytes(self) -> int:
        """Memory held by the tensors."""
        tensors = [t for t in (self.values, self.index, self.weight) if t is not None]
        return sum(t.numel() * t.element_size() for t in tensors)

    def to(self, device: torch.device | str) -> PointFeatures:
        """The same features on ``device``."""
        move = lambda t: t.to(device) if t is not None else None  # noqa: E731
        return PointFeatures(move(self.values), move(self.index), move(self.weight))

    def state(self) -> dict[str, torch.Tensor]:
        """The tensors by name (indices as int32)."""
        state = {"values": self.values}
        if self.index is not None and self.weight is not None:
            state.update(index=self.index.int(), weight=self.weight)
        return state

    @classmethod
    def from_state(cls, state: dict[str, torch.Tensor]) -> PointFeatures:
        """Rebuild from :meth:`state`."""
        index = state.get("index")
        return cls(state["values"], index.long() if index is not None else None, state.get("weight"))


def valid_point_mask(xyz: torch.Tensor) -> torch.Tensor:
    """Pixels of an organized cloud that hold a point (x, y and z all non-zero).

    Args:
        xyz (torch.Tensor): Organized clouds, ``(B, 3, H, W)``.

    Returns:
        torch.Tensor: Boolean mask ``(B, H, W)``.

    Example:
        >>> xyz = torch.ones(1, 3, 2, 2)
        >>> xyz[0, :, 0, 1] = 0  # a hole
        >>> valid_point_mask(xyz)
        tensor([[[ True, False],
                 [ True,  True]]])
    """
    return (xyz != 0).all(dim=1)


def gather_valid_points(xyz: torch.Tensor) -> list[ValidPoints]:
    """Gather the valid points of each organized cloud of a batch.

    Args:
        xyz (torch.Tensor): Organized clouds, ``(B, 3, H, W)``.

    Returns:
        list[ValidPoints]: One :class:`ValidPoints` per sample (``N`` differs between samples).

    Example:
        >>> xyz = torch.rand(2, 3, 4, 4) + 0.1
        >>> xyz[1, :, :2] = 0  # the second cloud's top half is missing
        >>> [(cloud.index.shape[0], cloud.points.shape) for cloud in gather_valid_points(xyz)]
        [(16, torch.Size([16, 3])), (8, torch.Size([8, 3]))]
    """
    mask = valid_point_mask(xyz).flatten(1)
    flat = xyz.flatten(2).transpose(1, 2)  # (B, H*W, 3)
    counts = mask.sum(dim=1).tolist()  # the batch's one host-device synchronisation
    found = torch.nonzero_static(mask, size=sum(counts))  # (sample, pixel) pairs in order, no further sync
    clouds = []
    for i, found_i in enumerate(found[:, 1].split(counts)):
        clouds.append(ValidPoints(index=found_i, points=flat[i, found_i]))
    return clouds


def square_distance(source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Squared Euclidean distances by the expansion ``|a|^2 + |b|^2 - 2 a.b``.

    This is the formula (and float32 rounding) that Point-MAE, CFM and CMDR-IAD use for the
    feature interpolation; it is kept so that maps match theirs.

    Args:
        source (torch.Tensor): ``(N, 3)`` points.
        target (torch.Tensor): ``(M, 3)`` points.

    Returns:
        torch.Tensor: ``(N, M)`` squared distances.

    Example:
        >>> square_distance(torch.tensor([[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]]), torch.tensor([[1.0, 0.0, 0.0]]))
        tensor([[1.],
                [2.]])
    """
    dist = -2 * source @ target.T
    dist += (source**2).sum(-1)[:, None]
    dist += (target**2).sum(-1)[None, :]
    return dist


def pad_clouds(clouds: list[torch.Tensor]) -> tuple[torch.Tensor, list[int]]:
    """Stack clouds of different sizes into one zero-padded tensor (the batched geometry's input).

    Args:
        clouds (list[torch.Tensor]): One ``(N_i, 3)`` cloud per sample.

    Returns:
        tuple[torch.Tensor, list[int]]: ``(B, max N_i, 3)`` points and the ``N_i``.

    Example:
        >>> points, lengths = pad_clouds([torch.ones(3, 3), torch.ones(1, 3)])
        >>> points.shape, lengths, points[1, 1:].abs().sum().item()
        (torch.Size([2, 3, 3]), [3, 1], 0.0)
    """
    lengths = [int(cloud.shape[0]) for cloud in clouds]
    return torch.nn.utils.rnn.pad_sequence(clouds, batch_first=True), lengths


def _padding_mask(lengths: list[int], size: int, device: torch.device) -> torch.Tensor:
    """``(B, size)`` boolean mask of the padded (not real) points."""
    return torch.arange(size, device=device)[None, :] >= torch.tensor(lengths, device=device)[:, None]


def _coordinate_distances(queries: torch.Tensor, points_t: torch.Tensor) -> torch.Tensor:
    """``(B, Q, N)`` squared distances, summed coordinate by coordinate (``dx^2 + dy^2 + dz^2``).

    Bit-identical to ``((q[:, :, None] - p[:, None]) ** 2).sum(-1)`` without its ``(B, Q, N, 3)`` temporary; the
    squares are taken in place, so one block-sized temporary is allocated besides the result.
    """
    dist = (queries[:, :, 0, None] - points_t[:, None, 0]).square_()
    for axis in (1, 2):
        dist += (queries[:, :, axis, None] - points_t[:, None, axis]).square_()
    return dist


def farthest_point_sample_batch(points: torch.Tensor, lengths: list[int], num_samples: int) -> torch.Tensor:
    """Deterministic farthest point sampling of every cloud of a padded batch at once.

    Each cloud starts from its first point. Unlike the original Point-MAE/CMDR-IAD code, which starts from a
    random point, the same cloud therefore always gives the same map. The loop over the ``G`` centres runs
    once for the whole batch, with no host-device synchronisation. A cloud with fewer points than
    ``num_samples`` repeats its first point for the remaining samples (every distance is then zero), which
    leaves max-pooled group features unchanged. Each cloud gets exactly the centres it gets alone.

    Args:
        points (torch.Tensor): ``(B, N, 3)`` clouds, zero-padded (:func:`pad_clouds`).
        lengths (list[int]): Points of each cloud, each ``>= 1``.
        num_samples (int): Number of centres ``G``.

    Returns:
        torch.Tensor: ``(B, G)`` long indices into each cloud.

    Example:
        >>> cloud = torch.tensor([[0.0, 0.0, 0.0], [0.1, 0.0, 0.0], [1.0, 0.0, 0.0], [0.5, 0.0, 0.0]])
        >>> points, lengths = pad_clouds([cloud, cloud[:1]])
        >>> farthest_point_sample_batch(points, lengths, 3)  # the 1-point cloud repeats its point
        tensor([[0, 2, 3],
                [0, 0, 0]])
    """
    batch, size, _ = points.shape
    points_t = points.transpose(1, 2).contiguous()  # (B, 3, N): one contiguous row per coordinate
    rows = torch.arange(batch, device=points.device)
    index = torch.zeros(batch, num_samples, dtype=torch.long, device=points.device)
    distance = torch.full((batch, size), 1e10, dtype=points.dtype, device=points.device)
    distance.masked_fill_(_padding_mask(lengths, size, points.device), -1.0)  # padding is never the farthest
    farthest = torch.zeros(batch, dtype=torch.long, device=points.device)
    for i in range(num_samples):
        index[:, i] = farthest
        centroid = points[rows, farthest]  # (B, 3)
        distance = torch.minimum(distance, _coordinate_distances(centroid[:, None], points_t)[:, 0])
        farthest = torch.argmax(distance, dim=1)
    return index


def farthest_point_sample(points: torch.Tensor, num_samples: int) -> torch.Tensor:
    """Deterministic farthest point sampling of one cloud (see :func:`farthest_point_sample_batch`).

    Args:
        points (torch.Tensor): ``(N, 3)`` points, ``N >= 1``.
        num_samples (int): Number of centres ``G``.

    Returns:
        torch.Tensor: ``(G,)`` long indices into ``points``.

    Example:
        >>> points = torch.tensor([[0.0, 0.0, 0.0], [0.1, 0.0, 0.0], [1.0, 0.0, 0.0], [0.5, 0.0, 0.0]])
        >>> farthest_point_sample(points, 3)
        tensor([0, 2, 3])
        >>> farthest_point_sample(points[:1], 3)  # fewer points than centres: the first point repeats
        tensor([0, 0, 0])
    """
    return farthest_point_sample_batch(points[None], [points.shape[0]], num_samples)[0]


def _sync_free(tensor: torch.Tensor, sync_free: bool | None) -> bool:
    """Whether to take the path without host-device synchronisation: by default on every device but the CPU."""
    return tensor.device.type != "cpu" if sync_free is None else sync_free


def _nearest_by_index(dist: torch.Tensor, k: int, sync_free: bool | None = None) -> torch.Tensor:
    """Columns of the ``k`` smallest values of each row, ascending, equal values in the order of their column.

    ``topk`` alone orders equal values as its algorithm happens to, which depends on the row's length (so on
    the padding of a batch). On the CPU, rows whose ``k + 1`` smallest values are all distinct have one answer,
    which ``topk`` finds, and only the rows with a tie among them are ranked by the key ``(value, column)``; on
    an accelerator every row is ranked by the key, which needs no host-device synchronisation. Both give the
    same columns.

    Args:
        dist (torch.Tensor): ``(R, N)`` non-negative float32 distances (``inf`` allowed), ``k <= N``.
        k (int): Columns per row.
        sync_free (bool | None): Rank every row by the key; ``None``: on every device but the CPU.
            Defaults to ``None``.

    Returns:
        torch.Tensor: ``(R, k)`` long column indices.
    """
    if dist.shape[1] <= k:
        return dist.sort(dim=1, stable=True).indices
    column = torch.arange(dist.shape[1], device=dist.device)
    if _sync_free(dist, sync_free):
        key = (dist.view(torch.int32).long() << 32) | column  # non-negative floats order like their bits
        return key.topk(k, dim=1, largest=False, sorted=True).values & 0xFFFFFFFF
    values, index = dist.topk(k + 1, dim=1, largest=False, sorted=True)
    tied = (values[:, 1:] == values[:, :-1]).any(dim=1)
    index = index[:, :k]
    if bool(tied.any()):
        rows = tied.nonzero().squeeze(1)
        key = (dist[rows].view(torch.int32).long() << 32) | column
        index[rows] = key.topk(k, dim=1, largest=False, sorted=True).values & 0xFFFFFFFF
    return index


def knn_index_batch(points: torch.Tensor, lengths: list[int], queries: torch.Tensor, k: int) -> torch.Tensor:
    """Indices of the ``k`` nearest points of each query, nearest first, for a padded batch of clouds.

    Equally distant points (frequent on the regular grids of depth sensors) are taken in the order of their
    index, so a cloud gets the same groups alone, in any batch and on any device. The distances are computed
    in blocks of queries, so that memory stays bounded (4 MB of distances at once on the CPU, 64 MB on an
    accelerator) whatever the cloud and batch size. With fewer than ``k`` points, the missing neighbours repeat
    the nearest one, so that groups keep a fixed size (max-pooling encoders are insensitive to such repeats).

    Args:
        points (torch.Tensor): ``(B, N, 3)`` zero-padded clouds (:func:`pad_clouds`).
        lengths (list[int]): Points of each cloud, each ``>= 1``.
        queries (torch.Tensor): ``(B, Q, 3)``.
        k (int): Neighbours per query.

    Returns:
        torch.Tensor: ``(B, Q, k)`` long indices into each cloud.

    Example:
        >>> cloud = torch.tensor([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [3.0, 0.0, 0.0]])
        >>> points, lengths = pad_clouds([cloud, cloud[:1]])
        >>> knn_index_batch(points, lengths, torch.tensor([[[0.9, 0.0, 0.0]], [[0.9, 0.0, 0.0]]]), k=2)
        tensor([[[1, 0]],
        <BLANKLINE>
                [[0, 0]]])
    """
    batch, size, _ = points.shape
    k_avail = min(k, size)
    points_t = points.transpose(1, 2).contiguous()
    padding = _padding_mask(lengths, size, points.device)[:, None, :]
    chunks = []
    rows = _block_rows(points.device, batch * size)
    for start in range(0, queries.shape[1], rows):
        dist = _coordinate_distances(queries[:, start : start + rows], points_t).masked_fill_(padding, torch.inf)
        chunks.append(_nearest_by_index(dist.flatten(0, 1), k_avail).view(batch, -1, k_avail))
    index = torch.cat(chunks, dim=1)
    if k_avail < k:
        index = torch.cat([index, index[..., :1].expand(-1, -1, k - k_avail)], dim=2)
    if min(lengths) < k:  # padding taken as a neighbour: the nearest point instead
        short = torch.tensor(lengths, device=points.device)[:, None, None]
        index = torch.where(index < short, index, index[..., :1])
    return index


def knn_index(points: torch.Tensor, queries: torch.Tensor, k: int) -> torch.Tensor:
    """Indices of the ``k`` nearest points of each query in one cloud (see :func:`knn_index_batch`).

    Args:
        points (torch.Tensor): ``(N, 3)``.
        queries (torch.Tensor): ``(Q, 3)``.
        k (int): Neighbours per query.

    Returns:
        torch.Tensor: ``(Q, k)`` long indices into ``points``.

    Example:
        >>> points = torch.tensor([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [3.0, 0.0, 0.0]])
        >>> knn_index(points, torch.tensor([[0.9, 0.0, 0.0]]), k=2)
        tensor([[1, 0]])
        >>> knn_index(points[:1], torch.tensor([[0.9, 0.0, 0.0]]), k=3)  # too few points: the nearest repeats
        tensor([[0, 0, 0]])
    """
    return knn_index_batch(points[None], [points.shape[0]], queries[None], k)[0]


def _nearest_sorted(dist: torch.Tensor, k: int, sync_free: bool | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``k`` smallest distances of each row and their columns, exactly as a full ``sort`` orders them.

    float32 ties are frequent at metre scale, and the reference code (Point-MAE, CFM, CMDR-IAD) takes the
    first ``k`` columns of ``torch.sort``, whose order among equal values is its own. On the CPU, rows whose
    ``k + 1`` smallest values are all distinct have one answer, which ``topk`` finds at a fraction of the
    cost, and only the rows with a tie among them are sorted in full, like the reference does, so the result
    is the same bit for bit. On an accelerator every row is sorted (cheap there, and free of host-device
    synchronisation).

    Args:
        dist (torch.Tensor): ``(N, G)`` squared distances.
        k (int): Neighbours per row, ``k <= G``.
        sync_free (bool | None): Sort every row; ``None``: on every device but the CPU. Defaults to ``None``.

    Returns:
        tuple[torch.Tensor, torch.Tensor]: ``(N, k)`` distances (ascending) and their column indices.
    """
    if dist.shape[1] <= k or _sync_free(dist, sync_free):
        values, index = dist.sort(dim=1)
        return values[:, :k], index[:, :k]
    values, index = dist.topk(k + 1, dim=1, largest=False, sorted=True)
    tied = (values[:, 1:] == values[:, :-1]).any(dim=1)
    if bool(tied.any()):
        rows = tied.nonzero().squeeze(1)
        sorted_values, sorted_index = dist[rows].sort(dim=1)
        values[rows], index[rows] = sorted_values[:, : k + 1], sorted_index[:, : k + 1]
    return values[:, :k], index[:, :k]


def interpolation_weights_batch(
    points: torch.Tensor,
    centres: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Three nearest centres of every point of a batch and their inverse squared distance weights.

    Weights are ``1 / (d^2 + 1e-8)``, normalised to sum to one (Point-MAE's feature propagation), with the
    distances of :func:`square_distance`. Points are taken in blocks so that memory stays bounded (4 MB of
    distances at once on the CPU, 64 MB on an accelerator); padded points get weights too, which the caller drops.

    Args:
        points (torch.Tensor): ``(B, N, 3)``.
        centres (torch.Tensor): ``(B, G, 3)``.

    Returns:
        tuple[torch.Tensor, torch.Tensor]: ``(index, weight)``, both ``(B, N, 3)`` (with fewer than 3 centres,
        the nearest repeats with weight zero).

    Example:
        >>> centres = torch.tensor([[[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 2.0, 0.0]]])
        >>> index, weight = interpolation_weights_batch(torch.tensor([[[0.25, 0.0, 0.0]]]), centres)
        >>> index, weight.argmax().item(), round(weight.sum().item(), 4)  # the nearest centre weighs most
        (tensor([[[0, 1, 2]]]), 0, 1.0)
    """
    batch, size, _ = points.shape
    num_centres = centres.shape[1]
    k = min(3, num_centres)
    centre_norms = (centres**2).sum(-1)[:, None, :]
    rows = _block_rows(points.device, batch * num_centres)
    indices, weights = [], []
    for start in range(0, size, rows):
        block = points[:, start : start + rows]
        dist = -2 * block @ centres.transpose(1, 2)  # square_distance, batched: the same float32 rounding
        dist += (block**2).sum(-1)[:, :, None]
        dist += centre_norms
        values, index = _nearest_sorted(dist.flatten(0, 1), k)
        recip = 1.0 / (values + 1e-8)
        indices.append(index.view(batch, -1, k))
        weights.append((recip / recip.sum(dim=1, keepdim=True)).view(batch, -1, k))
    index, weight = torch.cat(indices, dim=1), torch.cat(weights, dim=1)
    if k < 3:
        index = torch.cat([index, index[..., :1].expand(-1, -1, 3 - k)], dim=2)
        weight = torch.cat([weight, torch.zeros_like(weight[..., :1]).expand(-1, -1, 3 - k)], dim=2)
    return index, weight


def interpolation_weights(points: torch.Tensor, centres: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Three nearest centres of every point of one cloud (see :func:`interpolation_weights_batch`).

    Args:
        points (torch.Tensor): ``(N, 3)``.
        centres (torch.Tensor): ``(G, 3)``.

    Returns:
        tuple[torch.Tensor, torch.Tensor]: ``(index, weight)``, both ``(N, 3)``.

    Example:
        >>> centres = torch.tensor([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 2.0, 0.0]])
        >>> index, weight = interpolation_weights(torch.tensor([[0.25, 0.0, 0.0]]), centres)
        >>> index, int(weight.argmax()), round(float(weight.sum()), 4)  # the nearest centre weighs most
        (tensor([[0, 1, 2]]), 0, 1.0)
    """
    index, weight = interpolation_weights_batch(points[None], centres[None])
    return index[0], weight[0]


def group_point_batch(clouds: list[torch.Tensor], num_group: int, group_size: int) -> list[PointGroups]:
    """FPS centres, kNN groups and interpolation indices of a batch of clouds, computed together.

    Every step runs once over the zero-padded batch (no per-sample loop), in bounded memory; each cloud's
    groups are exactly those :func:`group_points` gives it alone.

    Args:
        clouds (list[torch.Tensor]): One ``(N_i, 3)`` cloud per sample, each ``N_i >= 1``.
        num_group (int): Number of centres ``G`` (1024 in the paper).
        group_size (int): Points per group ``K`` (128 in the paper).

    Returns:
        list[PointGroups]: One :class:`PointGroups` per cloud.

    Raises:
        ValueError: If a cloud is empty.

    Example:
        >>> clouds = [torch.rand(200, 3), torch.rand(50, 3)]
        >>> [g.group_index.shape for g in group_point_batch(clouds, num_group=16, group_size=32)]
        [torch.Size([16, 32]), torch.Size([16, 32])]
    """
    if not clouds or any(cloud.shape[0] == 0 for cloud in clouds):
        msg = "Cannot group an empty point cloud (no valid points: every pixel is (0, 0, 0))."
        raise ValueError(msg)
    points, lengths = pad_clouds(clouds)
    centre_index = farthest_point_sample_batch(points, lengths, num_group)
    centres = torch.gather(points, 1, centre_index[..., None].expand(-1, -1, 3))
    group_index = knn_index_batch(points, lengths, centres, group_size)
    interp_index, interp_weight = interpolation_weights_batch(points, centres)
    return [
        PointGroups(centre_index[i], group_index[i], interp_index[i, :n], interp_weight[i, :n])
        for i, n in enumerate(lengths)
    ]


def group_points(points: torch.Tensor, num_group: int, group_size: int) -> PointGroups:
    """FPS centres, kNN groups and interpolation indices of one cloud (see :func:`group_point_batch`).

    Args:
        points (torch.Tensor): ``(N, 3)`` valid points, ``N >= 1``.
        num_group (int): Number of centres ``G`` (1024 in the paper).
        group_size (int): Points per group ``K`` (128 in the paper).

    Returns:
        PointGroups: The :class:`PointGroups` of the cloud.

    Raises:
        ValueError: If the cloud is empty.

    Example:
        >>> points = torch.rand(200, 3)
        >>> groups = group_points(points, num_group=16, group_size=32)
        >>> groups.group_index.shape, bool((groups.group_index[:, 0] == groups.centre_index).all())  # nearest: itself
        (torch.Size([16, 32]), True)
    """
    return group_point_batch([points], num_group, group_size)[0]


def stack_groups(clouds: list[torch.Tensor], groups: list[PointGroups]) -> tuple[torch.Tensor, torch.Tensor]:
    """The centred kNN groups and the centres of each cloud, stacked (the 3D encoder's dense input).

    Args:
        clouds (list[torch.Tensor]): One ``(N_i, 3)`` cloud per sample.
        groups (list[PointGroups]): Their :func:`group_points` output.

    Returns:
        tuple[torch.Tensor, torch.Tensor]: ``(B, G, K, 3)`` groups (relative to their centre) and ``(B, G, 3)``
        centres.

    Example:
        >>> clouds = [torch.rand(100, 3), torch.rand(80, 3)]
        >>> groups = [group_points(cloud, num_group=8, group_size=16) for cloud in clouds]
        >>> neighbourhoods, centres = stack_groups(clouds, groups)
        >>> neighbourhoods.shape, centres.shape
        (torch.Size([2, 8, 16, 3]), torch.Size([2, 8, 3]))
    """
    centres = torch.stack([p[g.centre_index] for p, g in zip(clouds, groups, strict=True)])
    neighbourhoods = torch.stack([p[g.group_index] for p, g in zip(clouds, groups, strict=True)])
    return neighbourhoods - centres.unsqueeze(2), centres


def pixel_interpolation(
    groups: list[PointGroups | None],
    pixels: list[torch.Tensor],
    num_pixels: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Each pixel's 3 nearest centres and weights, zero weights where the pixel holds no point.

    With these, the per-pixel 3D features of a batch are a dense gather,
    ``sum_j weight[b, p, j] * centre_features[b, index[b, p, j]]``, which traces into a static graph.

    Args:
        groups (list[PointGroups | None]): Per sample, :func:`group_points` output (``None`` for an empty cloud).
        pixels (list[torch.Tensor]): Per sample, the flat pixel index of each valid point.
        num_pixels (int): ``H * W``.

    Returns:
        tuple[torch.Tensor, torch.Tensor]: ``(B, H * W, 3)`` long indices and float weights.

    Example:
        >>> xyz = torch.rand(2, 3, 4, 4) + 0.1
        >>> xyz[1] = 0  # an empty cloud
        >>> clouds = gather_valid_points(xyz)
        >>> groups = [group_points(clouds[0].points, num_group=4, group_size=4), None]
        >>> index, weight = pixel_interpolation(groups, [c.index for c in clouds], num_pixels=16)
        >>> index.shape, (weight.sum(dim=2) > 0).sum(dim=1)  # pixels with a point, per sample
        (torch.Size([2, 16, 3]), tensor([16,  0]))
    """
    device = pixels[0].device
    index = torch.zeros(len(groups), num_pixels, 3, dtype=torch.long, device=device)
    weight = torch.zeros(len(groups), num_pixels, 3, dtype=torch.float32, device=device)
    for i, (group, pixel) in enumerate(zip(groups, pixels, strict=True)):
        if group is not None:
            index[i, pixel], weight[i, pixel] = group.interp_index, group.interp_weight.float()
    return index, weight


def scatter_to_grid(features: list[torch.Tensor], pixels: list[torch.Tensor], height: int, width: int) -> torch.Tensor:
    """Place per-point features at their pixels of a zero feature map.

    Args:
        features (list[torch.Tensor]): One ``(N_i, C)`` tensor per sample.
        pixels (list[torch.Tensor]): One ``(N_i,)`` flat pixel index per sample (:attr:`ValidPoints.index`).
        height (int): Height of the organized cloud.
        width (int): Width of the organized cloud.

    Returns:
        torch.Tensor: ``(B, C, height, width)`` feature map, zero where there is no point, in channels-last
        memory (each pixel's features contiguous: the rows are written whole, and the pooling and the heads
        read the map as tokens without a copy).

    Example:
        >>> features = [torch.tensor([[1.0, 2.0], [3.0, 4.0]])]
        >>> scatter_to_grid(features, [torch.tensor([0, 3])], height=2, width=2)[0, 0]
        tensor([[1., 0.],
                [0., 3.]])
    """
    channels = features[0].shape[1]
    out = features[0].new_zeros(len(features), height * width, channels)
    for i, (feature, index) in enumerate(zip(features, pixels, strict=True)):
        out[i].index_copy_(0, index, feature.to(out.dtype))
    return out.view(len(features), height, width, channels).permute(0, 3, 1, 2)


@cache
def _short_windows(size: int, out: int) -> bool:
    """Whether every window of the adaptive mean after the 3x3 mean (``size - 2`` values to ``out``) spans <= 2."""
    length = size - 2
    return all(-(-(i + 1) * length // out) - i * length // out <= 2 for i in range(out))


def pool_point_features(
    feature_map: torch.Tensor,
    grid_size: tuple[int, int],
    channel_chunk: int | None = 128,
) -> torch.Tensor:
    """The paper's smoothing of scattered 3D features: 3x3 mean (no padding), then adaptive mean.

    Args:
        feature_map (torch.Tensor): ``(B, C, H, W)`` scattered features (any memory layout).
        grid_size (tuple[int, int]): Output ``(h, w)``; the paper uses the input size (224, 224).
        channel_chunk (int | None): Channels pooled at a time, so that only one full-size map is held besides the
            input (231 MB each at the paper's size); ``None``: all at once (the exported graph, which must not
            write into slices). The result is the same bit for bit. Defaults to ``128``.

    Returns:
        torch.Tensor: ``(B, C, h, w)`` contiguous (channel-major) features; pixels far from every point stay
        exactly zero.

    Example:
        >>> feature_map = torch.zeros(1, 2, 8, 8)
        >>> feature_map[0, :, 4, 4] = 9.0
        >>> pooled = pool_point_features(feature_map, grid_size=(4, 4))
        >>> pooled.shape, float(pooled[0, 0, 0, 0]), float(pooled[0, 0, 2, 2]) > 0  # far from the point: zero
        (torch.Size([1, 2, 4, 4]), 0.0, True)
    """
    # Both means run in the map's own memory layout (channels-last from scatter_to_grid: vectorised over the
    # channels, 10-20x faster) where that is bit-identical to the authors' channel-major layout: always for the 3x3
    # mean; for the adaptive mean when its windows span at most 2x2 pixels (grids about the input size, as the
    # paper's), whose divisions by 1, 2 or 4 are exact in both layouts' order. Coarser grids take the adaptive mean
    # channel-major. The output is channel-major, the layout of the tokens the heads were checked on.
    any_layout = _short_windows(feature_map.shape[-2], grid_size[0]) and _short_windows(
        feature_map.shape[-1], grid_size[1]
    )

    def smooth(block: torch.Tensor) -> torch.Tensor:
        smoothed = functional.avg_pool2d(block, 3, stride=1)
        return functional.adaptive_avg_pool2d(smoothed if any_layout else smoothed.contiguous(), grid_size)

    if channel_chunk is None:
        return smooth(feature_map).contiguous()
    batch, channels = feature_map.shape[:2]
    out = feature_map.new_empty(batch, channels, *grid_size)
    for start in range(0, channels, channel_chunk):
        out[:, start : start + channel_chunk] = smooth(feature_map[:, start : start + channel_chunk])
    return out
