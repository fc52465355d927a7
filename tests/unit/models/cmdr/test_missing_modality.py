# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0

"""A sample without one modality is served by the other branch, its score on the fused scale."""

import pytest
import torch

from anomalib_cmdr import CMDRModel
from anomalib_cmdr.models.cmdr.missing_modality import (
    BRANCHES,
    BranchScoreAlignment,
    branch_index,
    branch_names,
)
from tests.helpers import make_clouds


@pytest.fixture
def model(tiny_kwargs):
    torch.manual_seed(0)
    return CMDRModel(**tiny_kwargs, grid_size=32).eval()


def _single_branch_model(tiny_kwargs, full: CMDRModel, modality: str) -> CMDRModel:
    """A single-modality model sharing ``full``'s backbones and reconstruction head."""
    single = CMDRModel(**tiny_kwargs, grid_size=32, modality=modality).eval()
    single.load_state_dict(full.state_dict(), strict=False)
    return single


def test_branch_of_each_sample():
    has_rgb = torch.tensor([True, True, False, False])
    has_xyz = torch.tensor([True, False, True, False])
    branch = branch_index(has_rgb, has_xyz)
    assert [BRANCHES[i] for i in branch] == ["rgb+xyz", "rgb", "xyz", "rgb+xyz"]
    assert branch_names(branch)[1] == "branch: rgb (no valid 3D point)"


def test_missing_xyz_uses_the_rgb_reconstruction_branch(model, tiny_kwargs):
    rgb, xyz = make_clouds(3)
    routed_none = model.route(model.extract_features(rgb, None), (32, 32))
    assert routed_none.branch.tolist() == [1, 1, 1]
    # the map is D2D's, on every pixel: the same as an rgb-only model with the same head
    reference = _single_branch_model(tiny_kwargs, model, "rgb")(rgb, None)
    torch.testing.assert_close(routed_none.anomaly_map, reference.anomaly_map)
    # an all-zero cloud is the same as no cloud; a batch may mix complete and incomplete samples
    xyz[1] = 0
    mixed = model.route(model.extract_features(rgb, xyz), (32, 32))
    assert mixed.branch.tolist() == [0, 1, 0]
    torch.testing.assert_close(mixed.anomaly_map[1], routed_none.anomaly_map[1])
    torch.testing.assert_close(mixed.pred_score[1], routed_none.pred_score[1])
    complete = model(rgb[[0, 2]], make_clouds(3)[1][[0, 2]])
    torch.testing.assert_close(mixed.pred_score[[0, 2]], complete.pred_score)


def test_missing_rgb_uses_the_3d_reconstruction_branch(model, tiny_kwargs):
    rgb, xyz = make_clouds(2)
    out = model(None, xyz)
    reference = _single_branch_model(tiny_kwargs, model, "xyz")(None, xyz)
    torch.testing.assert_close(out.anomaly_map, reference.anomaly_map)
    # an image that is entirely NaN marks a missing camera frame, per sample
    rgb[0] = torch.nan
    routed = model.route(model.extract_features(rgb, xyz), (32, 32))
    assert routed.branch.tolist() == [2, 0]
    torch.testing.assert_close(routed.anomaly_map[0], out.anomaly_map[0])


def test_branch_scores_are_aligned_to_the_fused_scale(model):
    rgb, xyz = make_clouds(6, seed=3)
    routed = model.route(model.extract_features(rgb, xyz), all_branches=True)
    sums = model.branch_alignment.new_sums()
    model.branch_alignment.accumulate(sums, routed.branch_scores)
    assert model.branch_alignment.finalize(sums)
    aligned = model.branch_alignment(routed.branch_scores)
    # on the normal samples every branch now has the fused branch's mean and spread
    torch.testing.assert_close(aligned.mean(dim=1), aligned[0].mean().expand(3), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(aligned.std(dim=1), aligned[0].std().expand(3), rtol=1e-4, atol=1e-5)
    # and a sample without xyz is scored with the aligned RGB-branch score
    no_xyz = model(rgb, None)
    torch.testing.assert_close(no_xyz.pred_score, aligned[1])
    # the statistics are part of the state dict (checkpoints, export)
    assert {"branch_alignment.mean", "branch_alignment.std"} <= set(model.state_dict())


def test_alignment_needs_two_normal_samples():
    alignment = BranchScoreAlignment()
    sums = alignment.new_sums()
    alignment.accumulate(sums, torch.tensor([[1.0], [2.0], [3.0]]))
    assert not alignment.finalize(sums) and not alignment.fitted
    scores = torch.tensor([[1.0], [2.0], [3.0]])
    assert torch.equal(alignment(scores), scores)  # unchanged until fitted


def test_training_samples_without_rgb_train_the_3d_head_only(model):
    rgb, xyz = make_clouds(2)
    rgb[:] = torch.nan
    features = model.assemble(model.sample_features(rgb, xyz))
    losses = model.train().losses(features)
    assert losses["loss_d3r"] > 0
    assert losses["loss_d2r"] == 0 and losses["loss_d2m"] == 0 and losses["loss_d3m"] == 0


def test_a_complete_batch_skips_the_single_modality_branches_with_the_same_result(model):
    rgb, xyz = make_clouds(2)
    features = model.extract_features(rgb, xyz)
    quick, every = model.route(features, (32, 32)), model.route(features, (32, 32), all_branches=True)
    assert quick.branch_scores is None and every.branch_scores is not None
    assert torch.equal(quick.anomaly_map, every.anomaly_map) and torch.equal(quick.pred_score, every.pred_score)
    assert quick.branch.tolist() == every.branch.tolist() == [0, 0]
