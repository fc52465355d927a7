# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0

from pathlib import Path

import pytest
import torch

from anomalib_cmdr import CMDR, CMDRModel, load_official_heads
from anomalib_cmdr.models.cmdr.backbones.weights import WeightsUnavailableError
from anomalib_cmdr.models.cmdr.heads import HEADS
from anomalib_cmdr.models.cmdr.official import official_head_path
from tests.helpers import make_clouds


@pytest.fixture
def model(tiny_kwargs):
    torch.manual_seed(0)
    return CMDRModel(**tiny_kwargs, grid_size=32)


def test_feature_shapes_and_valid_mask(model, clouds):
    rgb, xyz = clouds
    features = model.extract_features(rgb, xyz)
    assert features.rgb.shape == (2, 32 * 32, 192)
    assert features.xyz.shape == (2, 32 * 32, 64)
    valid = features.valid.view(2, 32, 32)
    # the hole (top-left 4x4 pixels) is invalid after pooling, the rest valid
    assert not valid[:, :2, :2].any() and valid[:, 8:, 8:].all()


def test_inference_outputs_and_masking(model, clouds):
    rgb, xyz = clouds
    out = model.eval()(rgb, xyz)
    assert out.anomaly_map.shape == (2, 1, 32, 32) and out.pred_score.shape == (2,)
    assert torch.isfinite(out.anomaly_map).all() and (out.pred_score > 0).all()


def test_deterministic_bit_for_bit(tiny_kwargs, clouds):
    rgb, xyz = clouds
    torch.manual_seed(0)
    first = CMDRModel(**tiny_kwargs, grid_size=32).eval()
    torch.manual_seed(0)
    second = CMDRModel(**tiny_kwargs, grid_size=32).eval()
    a, b = first(rgb, xyz), second(rgb, xyz)
    assert torch.equal(a.anomaly_map, b.anomaly_map) and torch.equal(a.pred_score, b.pred_score)
    assert torch.equal(first(rgb, xyz).anomaly_map, a.anomaly_map)


def test_discrepancies_are_each_heads_distance_to_its_target(model, clouds):
    """One normalised target shared by its two heads gives each head's own distance, bit for bit, in fusion order."""
    from anomalib_cmdr.models.cmdr.anomaly_map import feature_distance

    model.eval()
    features = model.extract_features(*clouds)
    with torch.no_grad():
        distances, _ = model.discrepancies(features)
        expected = {
            name: feature_distance(prediction, target).view(2, 32, 32)
            for name, (prediction, target) in model.predict_features(features).items()
        }
    assert list(distances) == [head.name for head in HEADS]
    for name, distance in distances.items():
        assert torch.equal(distance, expected[name]), name


def test_batch_of_two_equals_two_batches_of_one(model):
    rgb, xyz = make_clouds(2)
    xyz[1, :, 20:, 20:] = 0  # different valid sets per sample
    model.eval()
    both = model(rgb, xyz)
    for i in range(2):
        single = model(rgb[i : i + 1], xyz[i : i + 1])
        torch.testing.assert_close(both.anomaly_map[i], single.anomaly_map[0], rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(both.pred_score[i], single.pred_score[0], rtol=1e-5, atol=1e-5)


def test_short_training_lowers_each_loss(model, clouds):
    rgb, xyz = clouds
    optimizer = torch.optim.Adam(model.head_parameters(), lr=1e-3)
    model.train()
    first = {k: float(v) for k, v in model(rgb, xyz).items()}
    for _ in range(15):
        losses = model(rgb, xyz)
        optimizer.zero_grad()
        sum(losses.values()).backward()
        optimizer.step()
    last = {k: float(v) for k, v in model(rgb, xyz).items()}
    assert set(first) == {"loss_d2m", "loss_d3m", "loss_d2r", "loss_d3r"}
    for name in first:
        assert last[name] < 0.9 * first[name], (name, first[name], last[name])


def test_each_loss_updates_only_its_head(model, clouds):
    losses = model.train()(*clouds)
    losses["loss_d2r"].backward()
    assert all(p.grad is not None for p in model.Dec2D.parameters())
    for name in ("map2Dto3D", "map3Dto2D", "Dec3D"):
        assert all(p.grad is None for p in getattr(model, name).parameters()), name


@pytest.mark.parametrize("modality", ["rgb", "xyz"])
def test_single_modality_needs_only_its_input(tiny_kwargs, clouds, modality):
    rgb, xyz = clouds
    model = CMDRModel(**tiny_kwargs, grid_size=32, modality=modality)
    inputs = (rgb, None) if modality == "rgb" else (None, xyz)
    assert set(model.train()(*inputs)) == {"loss_d2r" if modality == "rgb" else "loss_d3r"}
    out = model.eval()(*inputs)
    assert out.anomaly_map.shape == (2, 1, 32, 32)
    assert (model.rgb_backbone is None) == (modality == "xyz")


def test_fpfh_backbone_runs_unchanged(tiny_kwargs, clouds):
    model = CMDRModel(**{**tiny_kwargs, "xyz_backbone": "fpfh", "xyz_model_kwargs": None}, grid_size=32)
    assert model.xyz_backbone.out_dim == 33 and model.map2Dto3D.output.out_features == 33
    out = model.eval()(*clouds)
    assert torch.isfinite(out.anomaly_map).all()


def test_bad_inputs_have_clear_errors(model, clouds):
    rgb, xyz = clouds
    model.eval()
    with pytest.raises(ValueError, match="organized point clouds"):
        model(rgb, xyz[:, :2])
    with pytest.raises(ValueError, match="NaN or inf"):
        bad = xyz.clone()
        bad[0, 2, 5, 5] = torch.inf
        model(rgb, bad)
    with pytest.raises(ValueError, match="got neither"):
        model(None, None)
    with pytest.raises(ValueError, match=r"sample 1 contains NaN or inf.*entirely NaN marks a missing image"):
        bad = rgb.clone()
        bad[1, 0, 3, 3] = torch.nan  # partly NaN: corrupted, not missing
        model(bad, xyz)


def test_sample_without_any_modality_gives_zero_map(model, clouds):
    rgb, xyz = clouds
    xyz[1] = 0
    rgb[1] = torch.nan
    out = model.eval()(rgb, xyz)
    assert out.pred_score[1] == 0 and not out.anomaly_map[1].any()
    assert out.pred_score[0] > 0


def test_xyz_model_with_empty_cloud_gives_zero_map(tiny_kwargs, clouds):
    _, xyz = clouds
    xyz[1] = 0
    out = CMDRModel(**tiny_kwargs, grid_size=32, modality="xyz").eval()(None, xyz)
    assert out.pred_score[1] == 0 and not out.anomaly_map[1].any()
    assert out.pred_score[0] > 0


def test_pretrained_offline_fails_clearly(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(WeightsUnavailableError, match="rgb_weights"):
        CMDRModel(rgb_backbone="resnet18", modality="rgb", pretrained=True, grid_size=32)


def test_local_weight_files(tmp_path, tiny_kwargs):
    import timm
    from safetensors.torch import save_file

    reference = timm.create_model("resnet18", pretrained=False)
    torch.nn.init.constant_(reference.conv1.weight, 0.01)
    save_file(reference.state_dict(), tmp_path / "resnet18.safetensors")
    kwargs = {**tiny_kwargs, "pretrained": True, "rgb_weights": str(tmp_path / "resnet18.safetensors")}
    model = CMDRModel(**kwargs, grid_size=32, modality="rgb")
    assert torch.equal(model.rgb_backbone.model.conv1.weight, reference.conv1.weight)
    with pytest.raises(FileNotFoundError, match="rgb_weights"):
        CMDRModel(**{**kwargs, "rgb_weights": str(tmp_path / "missing.pth")}, modality="rgb", grid_size=32)

    # a Point-MAE checkpoint in the release format
    encoder = CMDRModel(**tiny_kwargs, grid_size=32, modality="xyz").xyz_backbone
    release = {"base_model": {f"MAE_encoder.{k}": v + 1 for k, v in encoder.state_dict().items()}}
    torch.save(release, tmp_path / "pretrain.pth")
    loaded = CMDRModel(
        **{**tiny_kwargs, "pretrained": True, "xyz_weights": str(tmp_path / "pretrain.pth")},
        grid_size=32,
        modality="xyz",
    ).xyz_backbone
    assert torch.equal(loaded.norm.weight, encoder.norm.weight + 1)
    torch.save({"state_dict": {}}, tmp_path / "other.pth")
    with pytest.raises(ValueError, match="not a Point-MAE checkpoint"):
        CMDRModel(**{**tiny_kwargs, "xyz_weights": str(tmp_path / "other.pth")}, grid_size=32, modality="xyz")


def test_load_official_heads(tmp_path, model, tiny_kwargs):
    for head in HEADS:
        path = official_head_path(tmp_path, "bagel", head.attribute)
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(getattr(model, head.attribute).state_dict(), path)
    torch.manual_seed(1)
    fresh = CMDR(**tiny_kwargs, image_size=32)
    assert not torch.equal(fresh.model.Dec3D.decoder[0].weight, model.Dec3D.decoder[0].weight)
    load_official_heads(fresh, tmp_path, "bagel")
    for name, head in model.heads().items():
        for key, value in head.state_dict().items():
            assert torch.equal(fresh.model.heads()[name].state_dict()[key], value), (name, key)

    with pytest.raises(FileNotFoundError, match=r"Dec3D_bagel_independent_10ep_1bs\.pth"):
        load_official_heads(fresh, tmp_path, "bagel", epochs=10)
    torch.save({"weight": torch.zeros(1)}, official_head_path(tmp_path, "bagel", "Dec2D"))
    with pytest.raises(ValueError, match="Dec2D"):
        load_official_heads(fresh, tmp_path, "bagel")


def test_pointmae_batchnorm_modes(tiny_kwargs, clouds):
    """'sample' (the authors' train-mode BatchNorm, per cloud) differs from 'running' and changes no buffer."""
    _, xyz = clouds
    torch.manual_seed(0)
    sample = CMDRModel(**tiny_kwargs, grid_size=32, modality="xyz").eval()
    torch.manual_seed(0)
    running_kwargs = {**tiny_kwargs, "xyz_model_kwargs": {**tiny_kwargs["xyz_model_kwargs"], "batchnorm": "running"}}
    running = CMDRModel(**running_kwargs, grid_size=32, modality="xyz").eval()
    before = {k: v.clone() for k, v in sample.xyz_backbone.state_dict().items()}
    a, b = sample.extract_features(None, xyz).xyz, running.extract_features(None, xyz).xyz
    assert not torch.allclose(a, b)
    assert all(torch.equal(v, sample.xyz_backbone.state_dict()[k]) for k, v in before.items())
    # per cloud: a sample's features do not depend on the other clouds of the batch
    torch.testing.assert_close(sample.extract_features(None, xyz[:1]).xyz, a[:1], rtol=1e-5, atol=1e-6)


def test_pointmae_download_failure_is_clear_and_leaves_no_partial_file(tmp_path, monkeypatch, tiny_kwargs):
    from urllib.error import URLError

    from anomalib_cmdr.models.cmdr.backbones import pointmae

    monkeypatch.setattr(pointmae, "get_pretrained_weights_dir", lambda: tmp_path)

    def offline(url, filename, reporthook=None):
        Path(filename).write_bytes(b"partial")
        raise URLError("no network")

    monkeypatch.setattr("urllib.request.urlretrieve", offline)
    with pytest.raises(WeightsUnavailableError, match="xyz_weights"):
        CMDRModel(**{**tiny_kwargs, "xyz_backbone": "pointmae", "pretrained": True}, grid_size=32, modality="xyz")
    assert not list(tmp_path.rglob("*.pth")) and not list(tmp_path.rglob("*.part"))


def test_float64_inputs_work_and_bad_dtypes_or_values_get_clear_errors(model, clouds):
    rgb, xyz = clouds
    model.eval()
    expected = model(rgb, xyz)
    doubled = model(rgb.double(), xyz.double())
    torch.testing.assert_close(doubled.anomaly_map, expected.anomaly_map)
    with pytest.raises(ValueError, match="floating-point RGB"):
        model((rgb * 255).to(torch.uint8), xyz)
    broken = rgb.clone()
    broken[0, 0, 3, 3] = float("nan")
    with pytest.raises(ValueError, match="RGB image of sample 0 contains NaN"):
        model(broken, xyz)


def test_random_backbones_come_from_a_fixed_seed_and_leave_the_global_rng_alone(tiny_kwargs):
    torch.manual_seed(1)
    first = CMDRModel(**tiny_kwargs, grid_size=32)
    after_first = torch.rand(1)
    torch.manual_seed(2)
    second = CMDRModel(**tiny_kwargs, grid_size=32)
    for key, value in first.rgb_backbone.state_dict().items():
        assert torch.equal(value, second.rgb_backbone.state_dict()[key]), key
    for key, value in first.xyz_backbone.state_dict().items():
        assert torch.equal(value, second.xyz_backbone.state_dict()[key]), key
    # the heads follow the global seed
    assert not torch.equal(
        first.Dec2D.state_dict()[next(iter(first.Dec2D.state_dict()))],
        second.Dec2D.state_dict()[next(iter(second.Dec2D.state_dict()))],
    )
    torch.manual_seed(1)
    CMDRModel(**tiny_kwargs, grid_size=32)
    assert torch.equal(torch.rand(1), after_first)


def test_a_training_sample_without_points_trains_only_the_rgb_reconstruction(model, clouds):
    rgb, xyz = clouds
    xyz[1] = 0  # the second sample's point cloud is missing
    model.eval()  # no dropout: the two loss computations differ only by the input
    features = model.extract_features(rgb, xyz)
    assert not features.valid[1].any()
    changed = model.extract_features(rgb, xyz)
    changed.rgb[1] = changed.rgb[1] + 1.0  # other RGB features for the sample without points
    before, after = model.losses(features), model.losses(changed)
    assert not torch.equal(before["loss_d2r"], after["loss_d2r"])  # D2D learns from it, on all its pixels
    for name in ("loss_d2m", "loss_d3m", "loss_d3r"):
        torch.testing.assert_close(before[name], after[name], rtol=0, atol=0)  # no other head sees it
    assert all(torch.isfinite(loss) for loss in before.values())


def test_training_warns_with_the_count_of_samples_without_points(tiny_kwargs, caplog):
    from anomalib_cmdr import CMDR

    model = CMDR(**tiny_kwargs, image_size=32)
    rgb, xyz = make_clouds(2)
    xyz[0] = 0
    batch = {"image": rgb, "depth_map": xyz}
    model.on_train_epoch_start()
    model.training_step(type("Batch", (), {**batch, "batch_size": 2})())
    with caplog.at_level("WARNING"):
        model.on_train_epoch_end()
    assert "1 training sample(s) of epoch 0 had no valid 3D point" in caplog.text
