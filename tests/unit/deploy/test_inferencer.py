# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0

"""The inferencer's inputs, bad inputs and bad export folders."""

import shutil

import numpy as np
import pytest
import tifffile
import torch
from PIL import Image

from anomalib_cmdr import CMDR
from anomalib_cmdr.data import DataFileError
from anomalib_cmdr.deploy import CMDROpenVINOInferencer, ExportFolderError
from anomalib_cmdr.deploy.inferencer import DeviceUnavailableError, torch_reference
from tests.helpers import TINY, make_clouds


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    torch.manual_seed(0)
    model = CMDR(**TINY, image_size=32).eval()
    return model, model.to_openvino(tmp_path_factory.mktemp("export")).parent


@pytest.fixture(scope="module")
def inferencer(export):
    return CMDROpenVINOInferencer(export[1])


def _sample(size=(40, 48)):
    rgb, xyz = make_clouds(1, size=max(size))
    rgb8 = (rgb[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)[: size[0], : size[1]]
    return np.ascontiguousarray(rgb8), np.ascontiguousarray(xyz[0].permute(1, 2, 0).numpy()[: size[0], : size[1]])


def test_files_and_arrays_give_the_same_result(inferencer, tmp_path):
    rgb, xyz = _sample()
    Image.fromarray(rgb).save(tmp_path / "part.png")
    tifffile.imwrite(tmp_path / "part.tiff", xyz)
    from_files = inferencer.predict(str(tmp_path / "part.png"), tmp_path / "part.tiff")
    from_arrays = inferencer.predict(rgb, xyz)
    np.testing.assert_array_equal(from_files.anomaly_map, from_arrays.anomaly_map)
    assert from_arrays.anomaly_map.shape == (1, 32, 32)  # the model's size (non-square input square-padded)
    assert inferencer.timings.prepare > 0 and inferencer.timings.graph > 0


def test_native_size_input_matches_torch_with_its_pre_processor(export, inferencer):
    model, _ = export
    rgb, xyz = _sample((40, 48))
    result = inferencer.predict(rgb, xyz)
    reference = torch_reference(model, *inferencer.builder.resize_arrays([rgb], [xyz]))
    np.testing.assert_allclose(result.anomaly_map, reference["anomaly_map"], atol=1e-4)


def test_missing_modalities_are_served_by_the_other_branch_like_torch(tmp_path):
    torch.manual_seed(0)
    model = CMDR(**TINY, image_size=32).eval()
    # score statistics as a validation would set them (else branch scores pass unaligned)
    routed = model.model.route(model.model.extract_features(*make_clouds(4, seed=5)), all_branches=True)
    sums = model.model.branch_alignment.new_sums()
    model.model.branch_alignment.accumulate(sums, routed.branch_scores)
    assert model.model.branch_alignment.finalize(sums)
    inferencer = CMDROpenVINOInferencer(model.to_openvino(tmp_path).parent)
    rgb, xyz = _sample()
    result = inferencer.predict([rgb, rgb, None], [xyz, None, xyz])
    assert result.explanation == ["branch: rgb+xyz", "branch: rgb (no valid 3D point)", "branch: xyz (no RGB image)"]
    assert np.isfinite(result.anomaly_map).all() and np.isfinite(result.image).all()
    reference = torch_reference(model, *inferencer.builder.resize_arrays([rgb, rgb, None], [xyz, None, xyz]))
    np.testing.assert_allclose(result.pred_score, reference["pred_score"], atol=1e-5)
    np.testing.assert_allclose(result.anomaly_map, reference["anomaly_map"], atol=1e-4)
    # an all-zero cloud is the same as no cloud
    zeros = inferencer.predict([rgb], [np.zeros_like(xyz)])
    np.testing.assert_allclose(zeros.pred_score, result.pred_score[1:2], atol=1e-6)
    with pytest.raises(ValueError, match="sample 0: neither"):
        inferencer.predict([None], [None])


@pytest.mark.parametrize(
    ("rgb", "xyz", "message"),
    [
        (None, None, "no input given"),
        (np.zeros((32, 32, 3), np.float32), "ok", "uint8"),
        (np.zeros((32, 32), np.uint8), "ok", r"\(H, W, 3\)"),
        ("ok", np.zeros((40, 48, 3), np.int32), "float"),
        ("ok", np.full((40, 48, 3), np.nan, np.float32), "NaN"),
        ("ok", np.ones((20, 20, 3), np.float32), "one point per pixel"),
    ],
)
def test_bad_inputs_get_clear_errors(inferencer, rgb, xyz, message):
    good_rgb, good_xyz = _sample()
    rgb = good_rgb if isinstance(rgb, str) else rgb
    xyz = good_xyz if isinstance(xyz, str) else xyz
    with pytest.raises(ValueError, match=message):
        inferencer.predict(rgb, xyz)


def test_unreadable_file_is_named(inferencer, tmp_path):
    rgb, _ = _sample()
    (tmp_path / "broken.tiff").write_bytes(b"II*\x00garbage")
    with pytest.raises(DataFileError, match=r"broken\.tiff"):
        inferencer.predict(rgb, tmp_path / "broken.tiff")


def test_modality_mismatch(tmp_path):
    torch.manual_seed(0)
    folder = CMDR(**TINY, modality="rgb", image_size=32).to_openvino(tmp_path).parent
    rgb, xyz = _sample()
    with pytest.raises(ValueError, match="pass xyz=None"):
        CMDROpenVINOInferencer(folder).predict(rgb, xyz)


def test_broken_export_folders(export, tmp_path):
    _, folder = export
    with pytest.raises(ExportFolderError, match="no OpenVINO"):
        CMDROpenVINOInferencer(tmp_path)
    partial = tmp_path / "partial"
    shutil.copytree(folder, partial)
    (partial / "model.bin").unlink()
    with pytest.raises(ExportFolderError, match=r"model\.bin"):
        CMDROpenVINOInferencer(partial)
    no_metadata = tmp_path / "no_metadata"
    shutil.copytree(folder, no_metadata)
    (no_metadata / "metadata.json").unlink()
    with pytest.raises(ExportFolderError, match=r"metadata\.json"):
        CMDROpenVINOInferencer(no_metadata)
    (no_metadata / "metadata.json").write_text('{"format": "something else"}')
    with pytest.raises(ExportFolderError, match="not the metadata of a CMDR export"):
        CMDROpenVINOInferencer(no_metadata)


def test_devices(export):
    import openvino as ov

    _, folder = export
    if not any(d.startswith("GPU") for d in ov.Core().available_devices):
        with pytest.raises(DeviceUnavailableError, match="no GPU"):
            CMDROpenVINOInferencer(folder, device="GPU")
    assert CMDROpenVINOInferencer(folder, device="AUTO").predict(*_sample()).pred_score.shape == (1,)
    with pytest.raises(ValueError, match="choose one of"):
        CMDROpenVINOInferencer(folder, device="TPU")
