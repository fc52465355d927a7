# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0

"""Frozen 3D feature extractor: the Point-MAE encoder (Pang et al., ECCV 2022).

The paper's 3D features: farthest-point-sampled centres (1024) with their kNN groups (128 points,
centred), a mini-PointNet per group, a 12-block transformer (dim 384, 6 heads), and the outputs of
blocks 3, 7 and 11, each passed through the final LayerNorm, concatenated (1152-d per centre); each
valid point then takes the inverse squared distance weighted mean of its 3 nearest centres.

The dense network reuses anomalib's CFM components (the same Point-MAE modules, same parameter
names as the Point-MAE release, so its checkpoint loads unchanged). The grouping is the separate,
data-dependent stage of :mod:`anomalib_cmdr.models.cmdr.geometry`.

Example:
    >>> import torch
    >>> encoder = PointMAEExtractor(num_group=8, group_size=16, embed_dim=32, depth=4, num_heads=2,
    ...                             layers=(1, 3), pretrained=False)
    >>> [f.shape for f in encoder([torch.rand(100, 3), torch.rand(50, 3)])]
    [torch.Size([100, 64]), torch.Size([50, 64])]
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Literal
from urllib.error import URLError

import torch
from anomalib.data.utils.download import check_hash
from anomalib.models.image.cfm.components import POINTMAE_DOWNLOAD_INFO, Encoder, TransformerEncoder
from anomalib.utils.path import get_pretrained_weights_dir
from torch import nn
from torch.nn import functional

from ..geometry import PointFeatures, PointGroups, group_point_batch, stack_groups
from .weights import check_weight_file, unavailable

logger = logging.getLogger(__name__)

GroupEncoder = Literal["conv", "gemm"]

POINTMAE_RELEASE = f"Point-MAE release checkpoint ({POINTMAE_DOWNLOAD_INFO.url}), cached in anomalib's weight folder"
"""Where the ``pointmae`` variant's pretrained weights come from."""


def download_pointmae_weights() -> Path:
    """Path of the Point-MAE release checkpoint, downloaded into anomalib's weight cache if needed.

    Returns:
        Path: ``<anomalib pretrained dir>/pointmae/pointmae_pretrain.pth`` (the file anomalib's CFM uses).

    Raises:
        WeightsUnavailableError: If the file is not cached and cannot be downloaded.

    Example:
        >>> path = download_pointmae_weights()  # doctest: +SKIP
        >>> path.name, sorted(load_pointmae_state_dict(path))[:2]  # doctest: +SKIP
        ('pointmae_pretrain.pth', ['blocks.blocks.0.attn.proj.bias', 'blocks.blocks.0.attn.proj.weight'])
    """
    from urllib.request import urlretrieve

    from anomalib.data.utils.download import DownloadProgressBar

    weight_file = get_pretrained_weights_dir() / "pointmae" / "pointmae_pretrain.pth"
    if weight_file.is_file():
        return weight_file
    weight_file.parent.mkdir(parents=True, exist_ok=True)
    partial = weight_file.with_suffix(".part")
    try:
        with DownloadProgressBar(unit="B", unit_scale=True, miniters=1, desc="Point-MAE") as bar:
            urlretrieve(POINTMAE_DOWNLOAD_INFO.url, filename=partial, reporthook=bar.update_to)
        check_hash(partial, POINTMAE_DOWNLOAD_INFO.hashsum)
    except (URLError, OSError, RuntimeError) as error:
        partial.unlink(missing_ok=True)
        raise unavailable("Point-MAE encoder", "xyz_weights", error) from error
    partial.rename(weight_file)
    return weight_file


def load_pointmae_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a Point-MAE release checkpoint (``{"base_model": {"MAE_encoder.*": ...}}``).

    Args:
        path (str | Path): The checkpoint file.

    Returns:
        dict[str, torch.Tensor]: The encoder's state dict, prefixes (``module.``, ``MAE_encoder.``,
        ``base_model.``) stripped.

    Raises:
        ValueError: If the file is not in the release format.

    Example:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "pretrain.pth"
        >>> torch.save({"base_model": {"module.MAE_encoder.cls_pos": torch.zeros(1, 1, 384)}}, path)
        >>> list(load_pointmae_state_dict(path))
        ['cls_pos']
    """
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(checkpoint, dict) or "base_model" not in checkpoint:
        msg = f"xyz_weights={str(path)!r} is not a Point-MAE checkpoint (expected a dict with a 'base_model' key)."
        raise ValueError(msg)
    state = {}
    for key, value in checkpoint["base_model"].items():
        key = key.removeprefix("module.")
        for prefix in ("MAE_encoder.", "base_model."):
            key = key.removeprefix(prefix)
        state[key] = value
    return state


def encode_groups(encoder: Encoder, point_groups: torch.Tensor) -> torch.Tensor:
    """Point-MAE's mini-PointNet exactly as anomalib's ``Encoder.forward`` runs it (bit-identical), in less memory.

    The second block's layers run one at a time, so the 512-channel concatenation it reads (268 MB a cloud at the
    paper's 1024 groups of 128 points) is freed once its first convolution has run instead of being held to the end.

    Args:
        encoder (Encoder): The group encoder.
        point_groups (torch.Tensor): ``(B, G, K, 3)`` centred groups.

    Returns:
        torch.Tensor: ``(B, G, encoder_channel)`` tokens.

    Example:
        >>> encoder = Encoder(encoder_channel=32).eval()
        >>> groups = torch.rand(1, 4, 8, 3)
        >>> torch.equal(encode_groups(encoder, groups), encoder(groups))
        True
    """
    batch, num_group, size, _ = point_groups.shape
    feature = encoder.first_conv(point_groups.reshape(batch * num_group, size, 3).transpose(2, 1))
    pooled = torch.max(feature, dim=2, keepdim=True)[0]
    feature = torch.cat([pooled.expand(-1, -1, size), feature], dim=1)
    for layer in encoder.second_conv:
        feature = layer(feature)
    return torch.max(feature, dim=2, keepdim=False)[0].reshape(batch, num_group, encoder.encoder_channel)


@contextmanager
def batch_statistics(module: nn.Module) -> Iterator[None]:
    """Let the BatchNorm layers of ``module`` normalise with the statistics of the current batch.

    Running statistics (and every other buffer) are left exactly as they were.

    Args:
        module (nn.Module): The module whose BatchNorm layers to switch.

    Yields:
        None: Nothing; the layers are restored on exit.

    Example:
        >>> norm = nn.BatchNorm1d(2).eval()
        >>> with batch_statistics(norm):
        ...     out = norm(torch.tensor([[0.0, 10.0], [2.0, 30.0]]))
        >>> out
        tensor([[-1.0000, -1.0000],
                [ 1.0000,  1.0000]], grad_fn=<NativeBatchNormBackward0>)
        >>> norm.running_mean, norm.training
        (tensor([0., 0.]), False)
    """
    norms = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [(m.training, m.momentum, m.num_batches_tracked.clone()) for m in norms]
    for norm in norms:
        norm.training, norm.momentum = True, 0.0
    try:
        yield
    finally:
        for norm, (training, momentum, tracked) in zip(norms, saved, strict=True):
            norm.training, norm.momentum = training, momentum
            norm.num_batches_tracked.copy_(tracked)


def _sample_norm(feature: torch.Tensor, norm: nn.BatchNorm1d, batch: int) -> torch.Tensor:
    """BatchNorm with the statistics of each sample's own groups (``feature`` is ``(B * G, C, K)``)."""
    grouped = feature.reshape(batch, -1, feature.shape[1], feature.shape[2])
    mean = grouped.mean(dim=(1, 3), keepdim=True)
    var = ((grouped - mean) ** 2).mean(dim=(1, 3), keepdim=True)
    normed = (grouped - mean) / torch.sqrt(var + norm.eps)
    normed = normed * norm.weight[None, None, :, None] + norm.bias[None, None, :, None]
    return normed.reshape(feature.shape)


def _pointwise(conv: nn.Conv1d, feature: torch.Tensor) -> torch.Tensor:
    """A kernel-1 ``Conv1d`` applied to channels-last ``(..., C_in)`` features as one matrix product.

    The same arithmetic as the convolution on ``(N, C_in, K)``, up to float32 rounding, at about twice the
    speed on a CPU (oneDNN's kernel-1 convolution is slower than the GEMM).
    """
    return functional.linear(feature, conv.weight.squeeze(-1), conv.bias)


def _group_norm_statistics(
    feature: torch.Tensor,
    norm: nn.BatchNorm1d,
    batch: int,
    per_sample: bool,
) -> torch.Tensor:
    """BatchNorm of channels-last ``(B * G, K, C)`` features, as one multiply-add per element.

    ``per_sample``: with the statistics of each sample's own groups (biased variance, as BatchNorm in training
    mode computes them); else with the layer's running statistics.
    """
    grouped = feature.reshape(batch, -1, feature.shape[-1])  # (B, G * K, C)
    if per_sample:  # two passes (mean, then the centred squares): faster than var_mean over a non-last dim
        centred = grouped - grouped.mean(dim=1, keepdim=True)
        scale = norm.weight * torch.rsqrt(centred.square().mean(dim=1, keepdim=True) + norm.eps)
        return torch.addcmul(norm.bias, centred, scale).reshape(feature.shape)
    scale = norm.weight * torch.rsqrt(norm.running_var + norm.eps)  # type: ignore[operator]
    return torch.addcmul(norm.bias - norm.running_mean * scale, grouped, scale).reshape(feature.shape)


class PointMAEExtractor(nn.Module):
    """Point-MAE features for every valid point of each cloud.

    Args:
        num_group (int): FPS centres per cloud. Defaults to ``1024``.
        group_size (int): Points per kNN group. Defaults to ``128``.
        embed_dim (int): Transformer width (384 in the release). Defaults to ``384``.
        depth (int): Transformer blocks. Defaults to ``12``.
        num_heads (int): Attention heads. Defaults to ``6``.
        layers (Sequence[int]): Blocks whose (normed) outputs are concatenated. Defaults to ``(3, 7, 11)``.
        drop_path_rate (float): Stochastic depth of the last block (inactive since the encoder is frozen).
            Defaults to ``0.1``.
        pretrained (bool): Load the Point-MAE release weights (download once into anomalib's cache).
            Defaults to ``True``.
        weights (str | Path | None): A local Point-MAE checkpoint in the release format (offline use).
            Defaults to ``None``.
        batchnorm (Literal["sample", "running"]): How the group encoder's two BatchNorm layers normalise.
            ``"sample"``: with the statistics of each cloud's own groups, as the authors' code does (it
            never puts Point-MAE in eval mode; its batches hold one cloud); computed per cloud, so results
            do not depend on the batch. ``"running"``: with the checkpoint's running statistics (eval mode).
            Either way nothing is updated and stochastic depth stays off. Defaults to ``"sample"``.
        group_encoder (GroupEncoder): How the mini-PointNet runs. ``"conv"``: the authors' kernel-1
            convolutions, one cloud at a time (bit-identical to their code). ``"gemm"``: the same layers as
            channels-last matrix products over the whole batch, with the group-max half of the third layer
            computed once per group: about 1.5x faster on a CPU (1.1 s instead of 1.7 s per cloud at the paper's
            size), equal up to float32 rounding (features within 5e-5 relative at the paper's size, as far
            from a float64 evaluation as the convolutions are). Defaults to ``"conv"``.

    Raises:
        WeightsUnavailableError: If pretrained weights cannot be had.

    Example:
        >>> extractor = PointMAEExtractor(num_group=16, group_size=16, embed_dim=96, depth=4, num_heads=4,
        ...                               layers=(1, 2, 3), pretrained=False)
        >>> features = extractor([torch.rand(100, 3), torch.rand(60, 3)])
        >>> extractor.out_dim, [f.shape for f in features]
        (288, [torch.Size([100, 288]), torch.Size([60, 288])])
    """

    def __init__(
        self,
        num_group: int = 1024,
        group_size: int = 128,
        embed_dim: int = 384,
        depth: int = 12,
        num_heads: int = 6,
        layers: Sequence[int] = (3, 7, 11),
        drop_path_rate: float = 0.1,
        pretrained: bool = True,
        weights: str | Path | None = None,
        batchnorm: Literal["sample", "running"] = "sample",
        group_encoder: GroupEncoder = "conv",
    ) -> None:
        super().__init__()
        if batchnorm not in {"sample", "running"}:
            msg = f"batchnorm={batchnorm!r} (xyz_model_kwargs): choose 'sample' or 'running'."
            raise ValueError(msg)
        self.batchnorm = batchnorm
        if group_encoder not in {"conv", "gemm"}:
            msg = f"group_encoder={group_encoder!r} (xyz_model_kwargs): choose 'conv' or 'gemm'."
            raise ValueError(msg)
        self.group_encoder = group_encoder
        if any(not 0 <= i < depth for i in layers):
            msg = f"layers={list(layers)} (xyz_model_kwargs) must lie in [0, depth={depth})."
            raise ValueError(msg)
        self.num_group = num_group
        self.group_size = group_size
        self.layers = [int(i) for i in layers]
        self.encoder = Encoder(encoder_channel=embed_dim)
        self.pos_embed = nn.Sequential(nn.Linear(3, 128), nn.GELU(), nn.Linear(128, embed_dim))
        rates = [x.item() for x in torch.linspace(0, drop_path_rate, depth)]
        self.blocks = TransformerEncoder(embed_dim=embed_dim, depth=depth, num_heads=num_heads, drop_path_rate=rates)
        self.norm = nn.LayerNorm(embed_dim)
        self.out_dim = embed_dim * len(self.layers)

        weight_file = check_weight_file(weights, "xyz_weights")
        if weight_file is None and pretrained:
            weight_file = download_pointmae_weights()
        if weight_file is not None:
            try:
                missing, _ = self.load_state_dict(load_pointmae_state_dict(weight_file), strict=False)
            except RuntimeError as error:  # tensors of another shape: a checkpoint of another width or depth
                msg = f"xyz_weights={str(weight_file)!r} does not fit this encoder (xyz_model_kwargs): {error}"
                raise ValueError(msg) from error
            if missing:
                msg = f"xyz_weights={str(weight_file)!r} does not fit this encoder: missing {missing[:5]}..."
                raise ValueError(msg)
        self.eval().requires_grad_(False)

    def train(self, mode: bool = True) -> PointMAEExtractor:
        """Keep the encoder in eval mode (frozen)."""
        del mode
        return super().train(False)

    def group(self, clouds: list[torch.Tensor]) -> list[PointGroups]:
        """The data-dependent stage: FPS, kNN groups and interpolation indices of each cloud (batched)."""
        return group_point_batch(clouds, self.num_group, self.group_size)

    def group_tokens(self, neighbourhoods: torch.Tensor) -> torch.Tensor:
        """The mini-PointNet's token of every group, BatchNorm as ``batchnorm`` says.

        With ``batchnorm="sample"`` each cloud is encoded alone (its own statistics), as the authors do.

        Args:
            neighbourhoods (torch.Tensor): ``(B, G, K, 3)`` centred groups.

        Returns:
            torch.Tensor: ``(B, G, embed_dim)`` tokens.
        """
        if self.group_encoder == "gemm":
            return self._gemm_group_tokens(neighbourhoods)
        if self.batchnorm == "sample":
            with batch_statistics(self.encoder):
                return torch.cat([encode_groups(self.encoder, group[None]) for group in neighbourhoods])
        return encode_groups(self.encoder, neighbourhoods)

    def group_tokens_dense(self, neighbourhoods: torch.Tensor) -> torch.Tensor:
        """:meth:`group_tokens` as one dense computation over the batch (traceable, for export).

        The per-cloud BatchNorm statistics are computed with tensor reductions instead of a loop over the
        clouds; the result equals :meth:`group_tokens` up to float32 rounding.

        Args:
            neighbourhoods (torch.Tensor): ``(B, G, K, 3)`` centred groups.

        Returns:
            torch.Tensor: ``(B, G, embed_dim)`` tokens.
        """
        if self.group_encoder == "gemm":
            return self._gemm_group_tokens(neighbourhoods)
        if self.batchnorm != "sample":
            return self.encoder(neighbourhoods)
        batch, num_group, size, _ = neighbourhoods.shape
        conv1, norm1, _, conv2 = self.encoder.first_conv
        conv3, norm2, _, conv4 = self.encoder.second_conv
        feature = neighbourhoods.reshape(batch * num_group, size, 3).transpose(2, 1)
        feature = conv2(torch.relu(_sample_norm(conv1(feature), norm1, batch)))
        pooled = torch.max(feature, dim=2, keepdim=True)[0]
        feature = torch.cat([pooled.expand(-1, -1, size), feature], dim=1)
        feature = conv4(torch.relu(_sample_norm(conv3(feature), norm2, batch)))
        return torch.max(feature, dim=2)[0].reshape(batch, num_group, self.encoder.encoder_channel)

    def _gemm_group_tokens(self, neighbourhoods: torch.Tensor) -> torch.Tensor:
        """``group_encoder="gemm"``: the group encoder as matrix products on channels-last features.

        The whole batch at once, with no data-dependent control flow; equal to the authors' convolutions up to
        float32 rounding (both are about 1e-4 from a float64 evaluation at the paper's size).
        """
        batch, num_group, size, _ = neighbourhoods.shape
        per_sample = self.batchnorm == "sample"
        conv1, norm1, _, conv2 = self.encoder.first_conv
        conv3, norm2, _, conv4 = self.encoder.second_conv
        feature = _pointwise(conv1, neighbourhoods.reshape(batch * num_group, size, 3))  # (B * G, K, C)
        feature = _pointwise(conv2, torch.relu_(_group_norm_statistics(feature, norm1, batch, per_sample)))
        # conv3 on [group max, point feature]: the max is the same for the group's K points, so its half of the
        # product is computed once per group (the concatenation and half of conv3's arithmetic are saved)
        weight = conv3.weight.squeeze(-1)
        half = feature.shape[-1]
        pooled = functional.linear(feature.amax(dim=1, keepdim=True), weight[:, :half], conv3.bias)
        feature = functional.linear(feature, weight[:, half:]).add_(pooled)
        feature = _pointwise(conv4, torch.relu_(_group_norm_statistics(feature, norm2, batch, per_sample)))
        return feature.amax(dim=1).reshape(batch, num_group, self.encoder.encoder_channel)

    def centre_features(self, tokens: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
        """The transformer's features of every centre: the chosen blocks' outputs, normed and concatenated.

        Args:
            tokens (torch.Tensor): ``(B, G, embed_dim)`` from :meth:`group_tokens`.
            centres (torch.Tensor): ``(B, G, 3)``.

        Returns:
            torch.Tensor: ``(B, G, out_dim)``.
        """
        outputs = self.blocks(tokens, self.pos_embed(centres))
        return torch.cat([self.norm(outputs[i]) for i in self.layers], dim=-1)

    @torch.no_grad()
    def encode(self, clouds: list[torch.Tensor], groups: list[PointGroups]) -> list[PointFeatures]:
        """The dense stage: encode the groups of all clouds at once.

        Args:
            clouds (list[torch.Tensor]): One ``(N_i, 3)`` cloud per sample.
            groups (list[PointGroups]): Their :meth:`group` output.

        Returns:
            list[PointFeatures]: Per cloud, the ``(G, out_dim)`` centre features with each point's 3 nearest
            centres and their weights (expand them with :meth:`PointFeatures.expand`).
        """
        neighbourhoods, centres = stack_groups(clouds, groups)
        centre_features = self.centre_features(self.group_tokens(neighbourhoods), centres)  # (B, G, C)
        return [
            PointFeatures(feats, g.interp_index, g.interp_weight)
            for feats, g in zip(centre_features, groups, strict=True)
        ]

    def compact(self, clouds: list[torch.Tensor]) -> list[PointFeatures]:
        """Per-point features of each cloud, compact (centre features + interpolation); empty clouds allowed.

        Args:
            clouds (list[torch.Tensor]): One ``(N_i, 3)`` cloud per sample.

        Returns:
            list[PointFeatures]: One per cloud (an empty cloud gives ``(0, out_dim)`` values).
        """
        out: list[PointFeatures | None] = [None] * len(clouds)
        filled = [i for i, p in enumerate(clouds) if p.shape[0] > 0]
        if filled:
            subset = [clouds[i] for i in filled]
            for i, feats in zip(filled, self.encode(subset, self.group(subset)), strict=True):
                out[i] = feats
        for i, points in enumerate(clouds):
            if out[i] is None:
                out[i] = PointFeatures(points.new_zeros(0, self.out_dim))
        return out  # type: ignore[return-value]

    def forward(self, clouds: list[torch.Tensor]) -> list[torch.Tensor]:
        """Per-point features of each cloud (non-empty clouds; empty ones give empty tensors).

        Args:
            clouds (list[torch.Tensor]): One ``(N_i, 3)`` cloud per sample.

        Returns:
            list[torch.Tensor]: One ``(N_i, out_dim)`` tensor per cloud.
        """
        return [features.expand() for features in self.compact(clouds)]
