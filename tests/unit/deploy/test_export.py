# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0

"""Export of every modality and 3D extractor, and OpenVINO parity with the torch model."""

import json

import numpy as np
import pytest
import torch
from anomalib.deploy import CompressionType

from anomalib_cmdr import CMDR
from anomalib_cmdr.deploy import CMDROpenVINOInferencer, DeploySpec
from anomalib_cmdr.deploy.inferencer import torch_reference
from tests.helpers import TINY, make_clouds

FPFH = {**{k: v for k, v in TINY.items() if k != "xyz_model_kwargs"}, "xyz_backbone": "fpfh"}
CASES = {
    "pointmae rgb+xyz": (TINY, "rgb+xyz"),
    "fpfh rgb+xyz": (FPFH, "rgb+xyz"),
    "rgb": (TINY, "rgb"),
    "pointmae xyz": (TINY, "xyz"),
    "fpfh xyz": (FPFH, "xyz"),
}


def _arrays(batch=2):
    rgb, xyz = make_clouds(batch)
    xyz[1, :, 20:, 20:] = 0  # samples with different valid sets
    rgb8 = [(r.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8) for r in rgb]
    return rgb8, [x.permute(1, 2, 0).numpy() for x in xyz]


def _model(kwargs, modality):
    torch.manual_seed(0)
    return CMDR(**kwargs, modality=modality, image_size=32).eval()


@pytest.mark.parametrize("case", CASES)
def test_openvino_matches_torch(case, tmp_path):
    kwargs, modality = CASES[case]
    model = _model(kwargs, modality)
    path = model.to_openvino(tmp_path)
    assert path == tmp_path / "weights" / "openvino" / "model.xml"
    inferencer = CMDROpenVINOInferencer(path.parent)
    rgb, xyz = _arrays()
    rgb = rgb if inferencer.spec.uses_rgb else None
    xyz = xyz if inferencer.spec.uses_xyz else None
    result = inferencer.predict(rgb, xyz)
    reference = torch_reference(model, *inferencer.builder.resize_arrays(rgb, xyz))
    assert result.anomaly_map.shape == (2, 32, 32) and result.pred_score.shape == (2,)
    np.testing.assert_allclose(result.anomaly_map, reference["anomaly_map"], atol=1e-4, rtol=1e-4)
    np.testing.assert_allclose(result.pred_score, reference["pred_score"], atol=1e-4, rtol=1e-4)
    np.testing.assert_array_equal(result.pred_label, reference["pred_label"])
    # a batch of one gives the sample's result of the batch of two
    single = inferencer.predict(rgb[1:] if rgb else None, xyz[1:] if xyz else None)
    np.testing.assert_allclose(single.anomaly_map[0], result.anomaly_map[1], atol=1e-5, rtol=1e-5)


def test_metadata_describes_the_inputs(tmp_path):
    model = _model(TINY, "rgb+xyz")
    folder = model.to_openvino(tmp_path).parent
    data = json.loads((folder / "metadata.json").read_text())
    assert data["format"] == "anomalib-cmdr-deploy" and data["modality"] == "rgb+xyz"
    spec = DeploySpec.load(folder)
    assert spec.inputs == ["image", "neighbourhoods", "centres", "interp_index", "interp_weight"]
    assert spec.outputs[:2] == ["pred_score", "pred_label"] and spec.image_size == (32, 32)
    assert (spec.num_group, spec.group_size) == (16, 16)


def test_onnx_export_runs_in_the_inferencer(tmp_path):
    model = _model(FPFH, "rgb+xyz")
    path = model.to_onnx(tmp_path)
    assert path == tmp_path / "weights" / "onnx" / "model.onnx" and (path.parent / "metadata.json").is_file()
    rgb, xyz = _arrays()
    inferencer = CMDROpenVINOInferencer(path.parent)
    reference = torch_reference(model, *inferencer.builder.resize_arrays(rgb, xyz))
    np.testing.assert_allclose(inferencer.predict(rgb, xyz).anomaly_map, reference["anomaly_map"], atol=1e-4)


def test_fp16_and_int8_weights_stay_close(tmp_path):
    model = _model(FPFH, "rgb+xyz")
    rgb, xyz = _arrays()
    maps = {}
    for compression in (None, CompressionType.FP16, CompressionType.INT8):
        folder = model.to_openvino(tmp_path / str(compression), compression_type=compression).parent
        inferencer = CMDROpenVINOInferencer(folder)
        assert inferencer.spec.precision == {None: "FP32", CompressionType.FP16: "FP16"}.get(compression, "INT8")
        maps[compression] = inferencer.predict(rgb, xyz).anomaly_map
    scale = np.abs(maps[None]).max()
    assert np.abs(maps[CompressionType.FP16] - maps[None]).max() < 0.02 * scale
    assert np.abs(maps[CompressionType.INT8] - maps[None]).max() < 0.1 * scale


def test_export_arguments_are_checked(tmp_path):
    model = _model(FPFH, "rgb")
    with pytest.raises(ValueError, match="trained at image_size"):
        model.to_openvino(tmp_path, input_size=(64, 64))
    with pytest.raises(ValueError, match="INT8_ACQ"):
        model.to_openvino(tmp_path, compression_type=CompressionType.INT8_ACQ)
    with pytest.raises(ValueError, match="needs a datamodule"):
        model.to_openvino(tmp_path, compression_type=CompressionType.INT8_PTQ)
    assert not (tmp_path / "weights" / "openvino" / "model.xml").exists()


def test_a_failed_export_keeps_the_previous_one(tmp_path, monkeypatch):
    model = _model(FPFH, "rgb")
    path = model.to_openvino(tmp_path)
    before = path.read_bytes()
    import openvino

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(openvino, "save_model", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        model.to_openvino(tmp_path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == ["metadata.json", "model.bin", "model.xml"]
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".staging")]
