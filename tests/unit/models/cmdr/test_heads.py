# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0

import pytest
import torch

from anomalib_cmdr.models.cmdr.heads import Decoder2D, Decoder3D, MappingMLP


def count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_paper_sizes_match_the_method():
    # Parameter counts of the paper's heads (cmdr-method.md): 3.69 M, 3.69 M, 5.03 M.
    assert count(MappingMLP(768, 1152)) / 1e6 == pytest.approx(3.69, abs=0.01)
    assert count(MappingMLP(1152, 768)) / 1e6 == pytest.approx(3.69, abs=0.01)
    assert count(Decoder2D(768, (224, 224))) / 1e6 == pytest.approx(5.03, abs=0.01)
    # D3D: 87.8 M of which the first token-axis Linear alone is 78.7 M.
    with torch.device("meta"):
        d3d = Decoder3D(1152, 224 * 224)
    assert d3d.variant == "paper"
    assert count(d3d) / 1e6 == pytest.approx(87.8, abs=0.1)
    assert count(d3d.projection[0]) / 1e6 == pytest.approx(78.7, abs=0.1)


def test_official_attribute_names():
    keys = set(Decoder2D(64, (8, 8)).state_dict())
    assert {"attn.norm1.weight", "attn.attn.qkv.weight", "attn.attn.proj.weight", "attn.mlp.0.weight"} <= keys
    assert {"projection.0.weight", "conv_decoder.0.weight", "reconstruct.4.weight"} <= keys
    assert {"input.weight", "projection.6.weight", "output.weight"} <= set(MappingMLP(4, 6).state_dict())
    assert {"projection.0.weight", "decoder.12.weight", "attention.1.weight"} <= set(Decoder3D(16, 64).state_dict())


@pytest.mark.parametrize(("tokens", "variant"), [(64, "paper"), (49, "pooled"), (100, "pooled")])
def test_decoders_reconstruct_shapes(tokens, variant):
    d3d = Decoder3D(16, tokens, variant="auto")
    assert d3d.variant == variant
    assert d3d(torch.rand(2, tokens, 16)).shape == (2, tokens, 16)
    side = int(tokens**0.5)
    if side * side == tokens:
        assert Decoder2D(32, (side, side))(torch.rand(2, tokens, 32)).shape == (2, tokens, 32)


def test_pooled_d3d_parameters_do_not_depend_on_grid():
    assert count(Decoder3D(16, 49, "pooled")) == count(Decoder3D(16, 50176, "pooled"))
    with pytest.raises(ValueError, match="divisible by 32"):
        Decoder3D(16, 49, "paper")


def test_window_attention_is_local():
    # Changing a token in window 0 must not change the outputs of window 1 (before the conv stage).
    block = Decoder2D(32, (16, 16)).attn.eval()
    x = torch.rand(1, 256, 16)
    y = x.clone()
    y[0, 0] += 1
    out_x, out_y = block(x), block(y)
    assert torch.equal(out_x[0, 128:], out_y[0, 128:])
    assert not torch.equal(out_x[0, :128], out_y[0, :128])


@pytest.mark.parametrize(
    "head",
    [
        MappingMLP(24, 40),
        Decoder2D(32, (8, 8), num_heads=4, window_size=16),
        Decoder3D(16, 64, "paper"),
        Decoder3D(16, 100, "pooled"),
    ],
    ids=["mapping", "d2d", "d3d-paper", "d3d-pooled"],
)
def test_in_place_inference_is_bit_identical_and_leaves_the_input_alone(head):
    """Without autograd the activations overwrite the heads' intermediates (less memory), never their input."""
    from anomalib_cmdr.models.cmdr.heads import _IN_PLACE, _in_place_allowed

    head.eval()
    width = head.input.in_features if isinstance(head, MappingMLP) else 32 if isinstance(head, Decoder2D) else 16
    tokens = 100 if isinstance(head, Decoder3D) and head.variant == "pooled" else 64
    x = torch.randn(2, width, tokens).transpose(1, 2)  # channel-major, as the 3D tokens
    saved = x.clone()
    reference = head(x)  # autograd enabled: the layers as they are
    calls = []
    original = dict(_IN_PLACE)
    try:
        for kind, function in original.items():
            _IN_PLACE[kind] = lambda layer, t, f=function: calls.append(1) or f(layer, t)
        with torch.no_grad():
            assert _in_place_allowed()
            out = head(x)
    finally:
        _IN_PLACE.update(original)
    assert calls  # the in-place path ran
    assert torch.equal(out, reference.detach())
    assert torch.equal(x, saved)
