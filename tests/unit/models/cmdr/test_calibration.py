# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0

"""calibration='zscore': per-position statistics of the discrepancy maps on normal samples."""

import numpy as np
import pytest
import torch
from anomalib.engine import Engine

from anomalib_cmdr import CMDR, CMDRModel
from anomalib_cmdr.data import Synthetic3D
from anomalib_cmdr.models.cmdr.anomaly_map import CMDRAnomalyMap
from anomalib_cmdr.models.cmdr.calibration import CalibrationMissingError, DiscrepancyCalibration
from tests.helpers import REPO_ROOT, TINY, make_clouds


def _random_maps(seed: int, batch: int = 6, size: int = 8) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    maps = {name: torch.rand(batch, size, size, generator=generator) for name in ("d2r", "d3r")}
    valid = torch.rand(batch, size, size, generator=generator) > 0.3
    return maps, valid


def test_statistics_equal_numpy_over_valid_positions_only():
    maps, valid = _random_maps(0)
    calibration = DiscrepancyCalibration(("d2r", "d3r"), (8, 8))
    batches = [({k: v[:4] for k, v in maps.items()}, valid[:4]), ({k: v[4:] for k, v in maps.items()}, valid[4:])]
    assert calibration.fit(batches) == 6
    assert calibration.num_samples == 6
    for index, name in enumerate(("d2r", "d3r")):
        values = np.ma.masked_array(maps[name].numpy(), mask=~valid.numpy())
        mean, std = values.mean(0).filled(0), values.std(0, ddof=1).filled(0)
        np.testing.assert_allclose(calibration.mean[index].numpy(), mean, rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(calibration.std[index].numpy(), std, rtol=1e-4, atol=1e-6)


def test_forward_is_the_positive_deviation_in_standard_deviations():
    maps, valid = _random_maps(1)
    calibration = DiscrepancyCalibration(("d2r", "d3r"), (8, 8), eps=1e-3)
    calibration.fit([(maps, valid)])
    test, _ = _random_maps(2, batch=2)
    test["d2m"] = torch.ones(2, 8, 8)  # a key the calibration does not know passes through
    out = calibration(test)
    expected = (test["d3r"] - calibration.mean[1]).clamp_min(0) / (calibration.std[1] + 1e-3)
    assert torch.equal(out["d3r"], expected) and torch.equal(out["d2m"], test["d2m"])
    assert (out["d2r"] >= 0).all()


def test_sums_reduced_across_processes_give_the_single_process_statistics():
    maps, valid = _random_maps(3)
    whole = DiscrepancyCalibration(("d2r", "d3r"), (8, 8))
    whole.fit([(maps, valid)])
    shards = [DiscrepancyCalibration(("d2r", "d3r"), (8, 8)) for _ in range(2)]
    other_sums = shards[1].new_sums()
    shards[1].accumulate(other_sums, {k: v[2:] for k, v in maps.items()}, valid[2:])

    def reduce(tensor: torch.Tensor) -> torch.Tensor:  # what a sum all-reduce over the two processes returns
        return tensor + (other_sums if tensor.ndim else torch.tensor(4))

    assert shards[0].fit([({k: v[:2] for k, v in maps.items()}, valid[:2])], reduce=reduce) == 6
    assert shards[0].num_samples == 6
    torch.testing.assert_close(shards[0].mean, whole.mean)
    torch.testing.assert_close(shards[0].std, whole.std)


def test_uncalibrated_use_and_empty_statistics_raise_clear_errors():
    calibration = DiscrepancyCalibration(("d2r",), (4, 4))
    with pytest.raises(CalibrationMissingError, match=r"calibrate\(dataloader\)"):
        calibration({"d2r": torch.rand(1, 4, 4)})
    with pytest.raises(CalibrationMissingError, match="valid pixels"):
        calibration.fit([({"d2r": torch.rand(2, 4, 4)}, torch.zeros(2, 4, 4, dtype=torch.bool))])


def test_a_failed_pass_keeps_the_previous_statistics():
    maps, valid = _random_maps(4)
    calibration = DiscrepancyCalibration(("d2r", "d3r"), (8, 8))
    calibration.fit([(maps, valid)])
    before = {name: buffer.clone() for name, buffer in calibration.state_dict().items()}

    def interrupted():
        yield _random_maps(5)
        raise OSError("disk read failed")

    with pytest.raises(OSError, match="disk read failed"):
        calibration.fit(interrupted())
    with pytest.raises(CalibrationMissingError):
        calibration.fit([({"d2r": maps["d2r"], "d3r": maps["d3r"]}, torch.zeros_like(valid))])
    for name, buffer in calibration.state_dict().items():
        assert torch.equal(buffer, before[name]), name


def test_a_structure_that_is_always_hard_no_longer_hides_a_small_defect():
    """The reason for the option: a bore that every normal part reconstructs badly sets the max everywhere."""
    generator = torch.Generator().manual_seed(0)

    def maps(batch: int, defect: bool) -> torch.Tensor:
        d = 0.1 + 0.01 * torch.rand(batch, 32, 32, generator=generator)
        d[:, 14:18, 14:18] = 0.8 + 0.1 * torch.rand(batch, 4, 4, generator=generator)  # the "bore"
        if defect:
            d[:, 4:7, 4:7] += 0.15  # a faint stain: far below the bore's level
        return d

    valid = torch.ones(8, 32, 32, dtype=torch.bool)
    fusion = CMDRAnomalyMap("rgb")
    calibration = DiscrepancyCalibration(("d2r",), (32, 32))
    calibration.fit([({"d2r": maps(16, defect=False)}, torch.ones(16, 32, 32, dtype=torch.bool))])
    normal, defective = maps(8, defect=False), maps(8, defect=True)

    def separation(transform) -> float:
        good = fusion(transform({"d2r": normal}), valid)[1]
        bad = fusion(transform({"d2r": defective}), valid)[1]
        return float((bad[:, None] > good[None, :]).float().mean())  # image AUROC

    assert separation(lambda d: d) < 0.8  # the paper's score: the bore decides
    assert separation(calibration) == 1.0
    calibrated_map = fusion(calibration({"d2r": defective}), valid)[0][0, 0]
    assert int(calibrated_map.argmax()) // 32 < 10  # the peak is on the stain, not on the bore


@pytest.mark.parametrize("modality", ["rgb+xyz", "rgb", "xyz"])
def test_model_calibrates_the_maps_of_its_modality(modality):
    torch.manual_seed(0)
    model = CMDRModel(**TINY, grid_size=16, modality=modality, calibration="zscore").eval()
    expected = {"rgb+xyz": ("d2m", "d3m", "d2r", "d3r"), "rgb": ("d2r",), "xyz": ("d3r",)}[modality]
    assert model.calibration.names == expected
    rgb, xyz = make_clouds(batch=1, size=32)
    rgb, xyz = rgb.expand(2, -1, -1, -1), xyz.expand(2, -1, -1, -1)  # two identical normal samples
    rgb, xyz = (rgb if model.use_rgb else None), (xyz if model.use_xyz else None)
    with pytest.raises(CalibrationMissingError):
        model(rgb, xyz)
    assert model.calibrate([(rgb, xyz), (rgb, xyz)]) == 4
    assert not model.training  # left in the mode it was in
    out = model(rgb, xyz)
    assert torch.isfinite(out.anomaly_map).all() and out.anomaly_map.shape == (2, 1, 32, 32)
    # normal samples identical to the calibration data sit at their mean: no deviation anywhere
    assert torch.equal(out.pred_score, torch.zeros(2))


def test_model_rejects_an_unknown_calibration_and_calibrating_without_it():
    with pytest.raises(ValueError, match="calibration='robust'"):
        CMDRModel(**TINY, grid_size=16, calibration="robust")
    model = CMDRModel(**TINY, grid_size=16)
    assert model.calibration is None
    with pytest.raises(ValueError, match="calibration='none'"):
        model.calibrate([])


DATA = {
    "synth_image_size": 64,
    "num_train": 5,
    "num_val": 2,
    "num_test_good": 2,
    "num_test_defect": 1,
    "defect_types": ["stain", "dent"],
    "train_batch_size": 2,
    "eval_batch_size": 4,
    "num_workers": 0,
}


@pytest.mark.slow
def test_engine_calibrates_before_validation_and_the_checkpoint_keeps_it(tmp_path):
    torch.manual_seed(0)
    model = CMDR(**TINY, image_size=32, grid_size=16, modality="rgb", calibration="zscore")
    datamodule = Synthetic3D(root=tmp_path / "data", **DATA)
    engine = Engine(max_epochs=1, default_root_dir=tmp_path, num_sanity_val_steps=0, logger=False, accelerator="cpu")
    engine.fit(model, datamodule=datamodule)
    assert model.model.calibration.num_samples == 5  # every training part, computed after the last step
    assert not model._calibration_stale
    mean = model.model.calibration.mean.clone()
    metrics = engine.test(model, datamodule=datamodule)[0]
    assert 0.0 <= metrics["image_AUROC"] <= 1.0
    assert torch.equal(model.model.calibration.mean, mean)  # test reuses the statistics

    path = tmp_path / "cmdr.ckpt"
    engine.trainer.save_checkpoint(path)
    loaded = CMDR.load_from_checkpoint(path, weights_only=True, map_location="cpu")
    assert loaded.model.calibration.num_samples == 5
    assert torch.equal(loaded.model.calibration.std, model.model.calibration.std)
    # predicting from the checkpoint needs no training data
    batches = Engine(logger=False, accelerator="cpu", default_root_dir=tmp_path / "p").predict(
        loaded, dataloaders=datamodule.test_dataloader()
    )
    assert batches and torch.isfinite(batches[0].pred_score).all()


@pytest.mark.slow
def test_predict_without_statistics_or_training_data_explains_what_to_do(tmp_path):
    datamodule = Synthetic3D(root=tmp_path / "data", **DATA)
    datamodule.prepare_data()
    datamodule.setup()
    model = CMDR(**TINY, image_size=32, grid_size=16, modality="rgb", calibration="zscore")
    engine = Engine(logger=False, accelerator="cpu", default_root_dir=tmp_path)
    with pytest.raises(CalibrationMissingError, match="no normal statistics"):
        engine.predict(model, dataloaders=datamodule.test_dataloader())
    assert model.calibrate(datamodule.train_dataloader()) == 5  # the documented way out
    assert engine.predict(model, dataloaders=datamodule.test_dataloader())


def test_offline_configuration_keeps_the_papers_fusion():
    """zscore lost on average over every Synthetic3D category and two seeds (docs/benchmarks.md)."""
    text = (REPO_ROOT / "configs" / "model" / "cmdr_offline.yaml").read_text()
    assert "    calibration: none" in text


def test_positions_seen_in_fewer_than_two_normal_samples_use_pooled_statistics():
    from anomalib_cmdr.models.cmdr.calibration import DiscrepancyCalibration

    torch.manual_seed(0)
    distances = 0.3 + 0.05 * torch.rand(8, 4, 4)
    valid = torch.ones(8, 4, 4, dtype=torch.bool)
    valid[:, 0, 0] = False
    valid[0, 0, 0] = True  # one stray valid pixel in one training sample
    valid[:, 3, 3] = False  # never valid
    calibration = DiscrepancyCalibration(("d2r",), (4, 4))
    calibration.fit([({"d2r": distances}, valid)])
    reliable = valid.clone()
    reliable[:, 0, 0] = reliable[:, 3, 3] = False
    pooled_std = distances[reliable].std()
    for row, col in ((0, 0), (3, 3)):
        torch.testing.assert_close(calibration.mean[0, row, col], distances[reliable].mean(), rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(calibration.std[0, row, col], pooled_std, rtol=1e-4, atol=1e-6)
    # a normal part scores like a normal part there, not a thousandfold
    test = {"d2r": torch.full((1, 4, 4), 0.36)}
    assert calibration(test)["d2r"].max() < 5
