# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0

import numpy as np
import pytest

from anomalib_cmdr.data.scans.io import read_point_cloud, read_point_labels
from anomalib_cmdr.data.scans.synthetic import DEFECT_TYPES, synthesize_scan, synthesize_scans
from tests.unit.data.scans.conftest import TINY_SCANS


@pytest.mark.parametrize("defect", [None, *DEFECT_TYPES])
def test_scans_look_like_a_profilometer_and_label_their_defect(defect):
    points, labels = synthesize_scan(np.random.default_rng(3), defect, points_per_profile=96, profiles=160)
    assert 0.98 * 96 * 160 < len(points) < 96 * 160, "dropouts remove a few points"
    assert np.isfinite(points).all() and len(labels) == len(points)
    lines = np.flatnonzero(np.diff(points[:, 1]) > 0.1)  # acquisition order: y steps once per profile
    assert len(lines) == 159
    assert np.ptp(points[:, 2]) > 8, "the block's top face and the table beyond its cut edge"
    if defect is None:
        assert not labels.any()
    else:
        assert 20 < labels.sum() < 0.05 * len(points)
        # the defect is local: its labelled points span a few millimetres of the scan
        assert np.ptp(points[labels, 1]) < 20


def test_generation_is_deterministic_and_kept(tmp_path):
    a = synthesize_scans(tmp_path / "a", seed=5, **TINY_SCANS)
    b = synthesize_scans(tmp_path / "b", seed=5, **TINY_SCANS)
    files = sorted(p.relative_to(a) for p in a.rglob("*.*"))
    assert files == sorted(p.relative_to(b) for p in b.rglob("*.*"))
    assert all((a / f).read_bytes() == (b / f).read_bytes() for f in files)
    labels = read_point_labels(a / "test" / "burr" / "000.labels.txt")
    assert len(labels) == len(read_point_cloud(a / "test" / "burr" / "000.ply")) and labels.any()
    stamp = (a / "train" / "good" / "000.ply").stat().st_mtime_ns
    synthesize_scans(tmp_path / "a", seed=6, **TINY_SCANS)  # an existing folder is kept
    assert (a / "train" / "good" / "000.ply").stat().st_mtime_ns == stamp


def test_bad_arguments():
    with pytest.raises(ValueError, match="defect"):
        synthesize_scan(np.random.default_rng(0), "dent")
    with pytest.raises(ValueError, match="unknown defect type"):
        synthesize_scans("/tmp/never", defect_types=["dent"])
