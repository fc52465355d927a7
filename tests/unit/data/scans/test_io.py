# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0

from pathlib import Path

import numpy as np
import pytest

from anomalib_cmdr.data.io import DataFileError
from anomalib_cmdr.data.scans.io import (
    is_scan_file,
    label_file,
    read_point_cloud,
    read_point_labels,
    write_point_cloud,
    write_point_labels,
)

POINTS = np.array([[0.5, 1.0, 2.0], [1.5, -1.0, 0.25], [3.0, 4.0, 5.0]])


@pytest.mark.parametrize("suffix", [".ply", ".npy", ".xyz", ".txt"])
def test_written_clouds_read_back_in_order(tmp_path, suffix):
    path = write_point_cloud(tmp_path / f"scan{suffix}", POINTS)
    np.testing.assert_allclose(read_point_cloud(path), POINTS, rtol=1e-6)


def test_pcd_reads_through_open3d(tmp_path):
    import open3d as o3d

    path = tmp_path / "scan.pcd"
    o3d.io.write_point_cloud(str(path), o3d.geometry.PointCloud(o3d.utility.Vector3dVector(POINTS)))
    np.testing.assert_allclose(read_point_cloud(path), POINTS, rtol=1e-6)


def test_text_with_commas_comments_and_extra_columns(tmp_path):
    path = tmp_path / "scan.txt"
    path.write_text("# x,y,z,intensity\n0.5,1,2,7\n1.5,-1,0.25,8\n3,4,5,9\n")
    np.testing.assert_allclose(read_point_cloud(path), POINTS)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("scan.ply", b"garbage", "not a PLY file"),
        ("scan.ply", b"ply\nformat ascii 1.0\nelement vertex 0\nproperty float x\nend_header\n", "empty point cloud"),
        ("scan.ply", b"ply\nformat ascii 1.0\nelement vertex 5\nproperty float x\nproperty float y\n"
         b"property float z\nend_header\n1 2 3\n", "truncated"),
        ("scan.pcd", b"hello", "not a PCD file"),
        ("scan.txt", b"1 2 3\n4 five 6\n", "line 2 is not numeric"),
        ("scan.txt", b"1 2\n", r"line 1 has 2 value\(s\)"),
        ("scan.txt", b"# only a comment\n", "empty point cloud"),
        ("scan.npy", b"not numpy", "cannot read NumPy array"),
        ("scan.obj", b"v 1 2 3", "unknown point-cloud format '.obj'"),
    ],
)  # fmt: skip
def test_bad_files_get_errors_naming_the_file(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(DataFileError, match=message) as error:
        read_point_cloud(path)
    assert str(path) in str(error.value)


def test_missing_file_and_bad_arrays(tmp_path):
    with pytest.raises(DataFileError, match="does not exist"):
        read_point_cloud(tmp_path / "nope.ply")
    np.save(tmp_path / "flat.npy", np.zeros((4, 2)))
    with pytest.raises(DataFileError, match=r"shape \(N, 3\)"):
        read_point_cloud(tmp_path / "flat.npy")
    np.save(tmp_path / "empty.npy", np.zeros((0, 3)))
    with pytest.raises(DataFileError, match="empty point cloud"):
        read_point_cloud(tmp_path / "empty.npy")


@pytest.mark.parametrize("bad", [np.nan, np.inf])
@pytest.mark.parametrize("suffix", [".npy", ".xyz", ".ply"])
def test_nan_and_inf_points_are_refused(tmp_path, bad, suffix):
    points = POINTS.copy()
    points[1, 2] = bad
    path = tmp_path / f"scan{suffix}"
    if suffix == ".ply":  # ASCII by hand: open3d refuses to write non-finite binary values
        header = "ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\nproperty float y\nproperty float z\n"
        path.write_text(header + "end_header\n" + "".join(" ".join(map(str, row)) + "\n" for row in points))
    else:
        write_point_cloud(path, points)
    with pytest.raises(DataFileError, match=r"1 point\(s\) with NaN or infinite coordinates \(first at index 1\)"):
        read_point_cloud(path)


@pytest.mark.parametrize("suffix", [".labels.txt", ".labels.npy"])
def test_label_sidecars_round_trip(tmp_path, suffix):
    scan = write_point_cloud(tmp_path / "007.ply", POINTS)
    write_point_labels(tmp_path / f"007{suffix}", [0, 3, 0])
    assert label_file(scan) == tmp_path / f"007{suffix}"
    assert read_point_labels(label_file(scan), num_points=3).tolist() == [False, True, False]


def test_label_errors(tmp_path):
    scan = write_point_cloud(tmp_path / "a.ply", POINTS)
    assert label_file(scan) is None
    write_point_labels(tmp_path / "a.labels.txt", [0, 1])
    with pytest.raises(DataFileError, match="2 label"):
        read_point_labels(tmp_path / "a.labels.txt", num_points=3)
    (tmp_path / "a.labels.txt").write_text("0\n-1\n0\n")
    with pytest.raises(DataFileError, match="non-negative integers"):
        read_point_labels(tmp_path / "a.labels.txt")
    (tmp_path / "a.labels.txt").write_text("0\nyes\n0\n")
    with pytest.raises(DataFileError, match="cannot read point labels"):
        read_point_labels(tmp_path / "a.labels.txt")
    write_point_labels(tmp_path / "a.labels.npy", [0, 0, 0])
    with pytest.raises(DataFileError, match="two label sidecars"):
        label_file(scan)


def test_label_sidecars_and_hidden_files_are_not_scans():
    assert is_scan_file(Path("x/001.PLY")) and is_scan_file("x/001.xyz")
    assert not is_scan_file("x/001.labels.txt") and not is_scan_file("x/.001.ply") and not is_scan_file("x/a.csv")
