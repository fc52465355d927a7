# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0

"""CMDR's four trained heads: two cross-modal mapping MLPs and two feature reconstructors.

Attribute names follow the authors' modules, so that their released head checkpoints load
unchanged (see :func:`anomalib_cmdr.models.cmdr.official.load_official_heads`). Every head takes
and returns token sequences ``(B, N, C)`` with ``N = h * w`` tokens in raster order.

Example:
    >>> import torch
    >>> head = MappingMLP(8, 12)
    >>> head(torch.rand(2, 5, 8)).shape
    torch.Size([2, 5, 12])
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn
from torch.nn import functional


@dataclass(frozen=True)
class Head:
    """One of CMDR's four heads, known everywhere by the name of its discrepancy map.

    Attributes:
        name (str): The paper's name of the head's discrepancy map (``d2m``, ``d3m``, ``d2r``, ``d3r``);
            also the key of its loss (``loss_<name>``) and of its calibration statistics.
        attribute (str): The authors' module name (``map3Dto2D``, ``map2Dto3D``, ``Dec2D``, ``Dec3D``):
            the attribute of :class:`~anomalib_cmdr.models.cmdr.torch_model.CMDRModel` and the prefix of
            their checkpoint files.
        source (str): Modality the head reads (``"rgb"`` or ``"xyz"``).
        target (str): Modality whose features it predicts.

    Example:
        >>> [(head.name, head.attribute, head.source, head.target) for head in HEADS][:2]
        [('d2m', 'map3Dto2D', 'xyz', 'rgb'), ('d3m', 'map2Dto3D', 'rgb', 'xyz')]
    """

    name: str
    attribute: str
    source: str
    target: str


HEADS = (
    Head("d2m", "map3Dto2D", source="xyz", target="rgb"),  # M3D->2D, cross-modal mapping
    Head("d3m", "map2Dto3D", source="rgb", target="xyz"),  # M2D->3D, cross-modal mapping
    Head("d2r", "Dec2D", source="rgb", target="rgb"),  # D2D, reconstruction
    Head("d3r", "Dec3D", source="xyz", target="xyz"),  # D3D, reconstruction
)
"""The single table of CMDR's heads, in the order of the fusion's inputs."""


def _in_place_allowed() -> bool:
    """Inference outside any graph capture: activations may overwrite the tensor they read (bit-identical, less memory).

    Not with autograd (the backward needs the inputs of some activations) nor while the model is traced or exported.
    """
    return not (torch.is_grad_enabled() or torch.jit.is_tracing() or torch.compiler.is_compiling())


_IN_PLACE = {
    nn.GELU: lambda layer, x: torch.ops.aten.gelu_(x, approximate=layer.approximate),
    nn.Tanh: lambda _, x: x.tanh_(),
}


def run_layers(layers: Iterable[nn.Module], x: torch.Tensor) -> torch.Tensor:
    """The layers in turn; at inference, GELU and Tanh overwrite their input when it is an intermediate.

    The values are the same bit for bit; each in-place activation saves one full-size temporary (at 224x224 a
    head's intermediates are 150-310 MB each), and each intermediate is freed as soon as the next layer has run.
    The caller's ``x`` is never modified.

    Args:
        layers (Iterable[nn.Module]): The layers (e.g. an ``nn.Sequential``).
        x (torch.Tensor): Their input.

    Returns:
        torch.Tensor: The output of ``layers``.

    Example:
        >>> layers = nn.Sequential(nn.Linear(4, 4), nn.GELU())
        >>> x = torch.rand(2, 4)
        >>> with torch.no_grad():
        ...     torch.equal(run_layers(layers, x), layers(x))
        True
    """
    in_place_allowed = _in_place_allowed()
    out = x
    for layer in layers:
        in_place = _IN_PLACE.get(type(layer)) if in_place_allowed and out is not x else None
        out = layer(out) if in_place is None else in_place(layer, out)
    return out


def _projection(in_features: int, out_features: int, dropout: float) -> nn.Sequential:
    """The authors' projection block, shared by every head (indices kept so that their state dicts load).

    ``Linear(in, out), GELU, LayerNorm, Dropout, Linear(out, out), GELU, LayerNorm``.
    """
    return nn.Sequential(
        nn.Linear(in_features, out_features),
        nn.GELU(),
        nn.LayerNorm(out_features),
        nn.Dropout(dropout),
        nn.Linear(out_features, out_features),
        nn.GELU(),
        nn.LayerNorm(out_features),
    )


class MappingMLP(nn.Module):
    """Per-token cross-modal mapping (M2D->3D or M3D->2D).

    ``Linear(in, r)``, GELU, ``[Linear(r, r), GELU, LayerNorm, Dropout, Linear(r, r), GELU, LayerNorm]``,
    ``Linear(r, out)`` with ``r = (in + out) // 2``.

    Args:
        in_features (int): Source modality's feature size.
        out_features (int): Target modality's feature size.
        dropout (float): Dropout inside the projection. Defaults to ``0.1``.

    Example:
        >>> mapping = MappingMLP(in_features=1152, out_features=768)
        >>> mapping(torch.rand(2, 16, 1152)).shape
        torch.Size([2, 16, 768])
    """

    def __init__(self, in_features: int, out_features: int, dropout: float = 0.1) -> None:
        super().__init__()
        hidden = (in_features + out_features) // 2
        self.input = nn.Linear(in_features, hidden)
        self.act = nn.GELU()
        self.projection = _projection(hidden, hidden, dropout)
        self.output = nn.Linear(hidden, out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map ``(B, N, in)`` tokens to ``(B, N, out)``."""
        return run_layers([self.input, self.act, *self.projection, self.output], x)


class WindowAttention(nn.Module):
    """Multi-head self-attention inside non-overlapping windows of consecutive tokens.

    Args:
        dim (int): Token width.
        num_heads (int): Heads. Defaults to ``8``.
        window_size (int): Tokens per window (the sequence is zero-padded to a multiple of it).
            Defaults to ``128``.
        dropout (float): Dropout on the attention weights and on the output projection. Defaults to ``0.1``.

    Example:
        >>> attention = WindowAttention(dim=32, num_heads=4, window_size=8)
        >>> attention(torch.rand(2, 20, 32)).shape  # 20 tokens: padded to 24 inside, cropped back
        torch.Size([2, 20, 32])
    """

    def __init__(self, dim: int, num_heads: int = 8, window_size: int = 128, dropout: float = 0.1) -> None:
        super().__init__()
        if dim % num_heads:
            msg = f"Attention width {dim} is not divisible by num_heads={num_heads}."
            raise ValueError(msg)
        self.num_heads = num_heads
        self.window_size = window_size
        self.dropout = dropout
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Attend within windows of ``(B, N, C)`` tokens."""
        batch, tokens, channels = x.shape
        heads, head_dim = self.num_heads, channels // self.num_heads
        qkv = self.qkv(x).reshape(batch, tokens, 3, heads, head_dim).permute(2, 0, 3, 1, 4)
        pad = (-tokens) % self.window_size
        qkv = functional.pad(qkv, (0, 0, 0, pad))
        windows = (tokens + pad) // self.window_size
        q, k, v = qkv.reshape(3, batch * heads, windows, self.window_size, head_dim).unbind(0)  # 4D: ONNX-exportable
        out = functional.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0)
        out = out.reshape(batch, heads, tokens + pad, head_dim)[:, :, :tokens]
        return self.proj_drop(self.proj(out.transpose(1, 2).reshape(batch, tokens, channels)))


class WindowTransformerBlock(nn.Module):
    """Pre-norm transformer block with :class:`WindowAttention` and an MLP.

    Args:
        dim (int): Token width.
        num_heads (int): Heads. Defaults to ``8``.
        window_size (int): Tokens per attention window. Defaults to ``128``.
        mlp_ratio (float): MLP hidden width over ``dim``. Defaults to ``2.0``.
        dropout (float): Dropout in attention and MLP. Defaults to ``0.1``.

    Example:
        >>> block = WindowTransformerBlock(dim=32, num_heads=4, window_size=8)
        >>> block(torch.rand(2, 20, 32)).shape
        torch.Size([2, 20, 32])
    """

    def __init__(
        self,
        dim: int,
        num_heads: int = 8,
        window_size: int = 128,
        mlp_ratio: float = 2.0,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, num_heads, window_size, dropout)
        self.norm2 = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(
            nn.Linear(dim, hidden),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, dim),
            nn.Dropout(dropout),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the block to ``(B, N, C)`` tokens."""
        x = x + self.attn(self.norm1(x))
        return x + run_layers(self.mlp, self.norm2(x))


def _conv_bn_gelu(conv: nn.Module, channels: int, norm: type[nn.Module]) -> list[nn.Module]:
    return [conv, norm(channels), nn.GELU()]


class Decoder2D(nn.Module):
    """D2D: reconstructs the 2D features from themselves.

    Projection to ``dim // 2`` (rounded down to a multiple of ``num_heads``), one windowed-attention
    block, three ``ConvTranspose2d(3, 1, 1) + BatchNorm + GELU`` on the ``(h, w)`` grid
    (channels r -> 256 -> 128 -> r), then an MLP back to ``dim`` with a final LayerNorm.

    Args:
        dim (int): Feature width (768 for DINO ViT-B/8).
        grid_size (tuple[int, int]): ``(h, w)`` of the token grid. Defaults to ``(224, 224)``.
        num_heads (int): Attention heads. Defaults to ``8``.
        window_size (int): Attention window in tokens. Defaults to ``128``.
        dropout (float): Dropout. Defaults to ``0.1``.

    Example:
        >>> decoder = Decoder2D(dim=64, grid_size=(8, 8), num_heads=4, window_size=16)
        >>> decoder(torch.rand(2, 64, 64)).shape
        torch.Size([2, 64, 64])
    """

    def __init__(
        self,
        dim: int,
        grid_size: tuple[int, int] = (224, 224),
        num_heads: int = 8,
        window_size: int = 128,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        reduced = max(num_heads, (dim // 2) // num_heads * num_heads)
        self.grid_size = tuple(grid_size)
        self.reduced_dim = reduced
        self.projection = _projection(dim, reduced, dropout)
        self.attn = WindowTransformerBlock(reduced, num_heads, window_size, 2.0, dropout)
        channels = [reduced, 256, 128, reduced]
        layers: list[nn.Module] = []
        for c_in, c_out in itertools.pairwise(channels):
            layers += _conv_bn_gelu(nn.ConvTranspose2d(c_in, c_out, 3, 1, 1), c_out, nn.BatchNorm2d)
        self.conv_decoder = nn.Sequential(*layers)
        self.reconstruct = nn.Sequential(
            nn.Linear(reduced, dim * 2),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(dim * 2, dim),
            nn.LayerNorm(dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstruct ``(B, h*w, dim)`` tokens."""
        batch, tokens, _ = x.shape
        height, width = self.grid_size
        if tokens != height * width:
            msg = f"Decoder2D expects {height}x{width}={height * width} tokens, got {tokens}."
            raise ValueError(msg)
        x = self.attn(run_layers(self.projection, x))
        x = x.transpose(1, 2).reshape(batch, self.reduced_dim, height, width)
        x = run_layers(self.conv_decoder, x).flatten(2).transpose(1, 2)
        return run_layers(self.reconstruct, x)


D3DVariant = Literal["auto", "paper", "pooled"]


class Decoder3D(nn.Module):
    """D3D: reconstructs the 3D features through a bottleneck along the token axis.

    ``"paper"``: ``Linear(N, N/32)``, GELU, LayerNorm, Dropout, ``Linear(N/32, N/32)``, GELU,
    LayerNorm along the token axis (ties the head to exactly ``N`` tokens: 78.7 M parameters in the
    first Linear at 224x224); five ``ConvTranspose1d(4, 2, 1)`` doubling the length back to ``N``
    (channels C -> 768 -> 512 -> 256 -> 128 -> C, BatchNorm1d + GELU after the first four, Tanh after
    the last); a squeeze-excitation gate multiplied onto the output.

    ``"pooled"``: the grid-size-agnostic variant. The token-axis Linears are replaced by an
    adaptive average pool to ``ceil(N/32)`` tokens followed by a ``Conv1d(C, C, 3)``, GELU and
    GroupNorm, so the parameters do not depend on ``N``; the decoder's output is cropped to ``N``.
    ``"auto"``: ``"paper"`` when ``N`` is a multiple of 32 (e.g. 224x224, 64x64), else ``"pooled"``.

    Args:
        dim (int): Feature width (1152 for Point-MAE).
        num_tokens (int): ``N = h * w``. Defaults to ``224 * 224``.
        variant (D3DVariant): ``"auto"``, ``"paper"`` or ``"pooled"``. Defaults to ``"auto"``.
        dropout (float): Dropout in the projection. Defaults to ``0.1``.

    Example:
        >>> Decoder3D(dim=48, num_tokens=64).variant, Decoder3D(dim=48, num_tokens=100).variant
        ('paper', 'pooled')
        >>> Decoder3D(dim=48, num_tokens=100)(torch.rand(2, 100, 48)).shape
        torch.Size([2, 100, 48])
    """

    def __init__(self, dim: int, num_tokens: int = 224 * 224, variant: D3DVariant = "auto", dropout: float = 0.1):
        super().__init__()
        if variant == "auto":
            variant = "paper" if num_tokens % 32 == 0 else "pooled"
        if variant == "paper" and num_tokens % 32:
            msg = f"d3d_variant='paper' needs a token count divisible by 32, got {num_tokens}; use 'pooled'."
            raise ValueError(msg)
        self.variant = variant
        self.num_tokens = num_tokens
        reduced = -(-num_tokens // 32)
        if variant == "paper":
            self.projection = _projection(num_tokens, reduced, dropout)
        else:
            self.projection = nn.Sequential(
                nn.AdaptiveAvgPool1d(reduced),
                nn.Conv1d(dim, dim, 3, padding=1),
                nn.GELU(),
                nn.GroupNorm(1, dim),
                nn.Dropout(dropout),
            )
        channels = [dim, 768, 512, 256, 128]
        layers: list[nn.Module] = []
        for c_in, c_out in itertools.pairwise(channels):
            layers += _conv_bn_gelu(nn.ConvTranspose1d(c_in, c_out, 4, 2, 1), c_out, nn.BatchNorm1d)
        layers += [nn.ConvTranspose1d(128, dim, 4, 2, 1), nn.Tanh()]
        self.decoder = nn.Sequential(*layers)
        self.attention = nn.Sequential(
            nn.AdaptiveAvgPool1d(1),
            nn.Conv1d(dim, dim // 8, 1),
            nn.ReLU(inplace=True),
            nn.Conv1d(dim // 8, dim, 1),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstruct ``(B, N, dim)`` tokens."""
        if x.shape[1] != self.num_tokens:
            msg = f"Decoder3D was built for {self.num_tokens} tokens, got {x.shape[1]}."
            raise ValueError(msg)
        x = run_layers(self.decoder, run_layers(self.projection, x.transpose(1, 2)))[..., : self.num_tokens]
        gate = self.attention(x)
        return (x.mul_(gate) if _in_place_allowed() else x * gate).transpose(1, 2)
