# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0

import json

import pytest

from anomalib_cmdr.deploy.spec import DeploySpec, ExportFolderError


def test_round_trip_and_atomic_save(tmp_path):
    spec = DeploySpec("xyz", (64, 48), False, ["xyz_features"], ["pred_score"], "fpfh", {"voxel_size": 2.0}, "features")
    path = spec.save(tmp_path)
    assert DeploySpec.load(tmp_path) == spec and spec.uses_xyz and not spec.uses_rgb
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left behind


def test_newer_or_malformed_metadata(tmp_path):
    spec = DeploySpec("rgb", (32, 32), True, ["image"], ["pred_score"])
    data = {**spec.to_dict(), "format_version": 99}
    (tmp_path / "metadata.json").write_text(json.dumps(data))
    with pytest.raises(ExportFolderError, match="newer"):
        DeploySpec.load(tmp_path)
    (tmp_path / "metadata.json").write_text("{not json")
    with pytest.raises(ExportFolderError, match="unreadable"):
        DeploySpec.load(tmp_path)
    data = spec.to_dict()
    del data["image_size"]
    (tmp_path / "metadata.json").write_text(json.dumps(data))
    with pytest.raises(ExportFolderError, match="malformed"):
        DeploySpec.load(tmp_path)
