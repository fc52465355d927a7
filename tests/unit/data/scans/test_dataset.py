# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0

import os
import shutil

import numpy as np
import pytest
import torch

from anomalib_cmdr.data import DataFileError, ScanFolder
from anomalib_cmdr.data.scans import ScanChunkDataset, ScanChunker, make_chunk_samples, make_scan_samples
from anomalib_cmdr.data.scans.chunking import EMPTY
from anomalib_cmdr.data.scans.dataset import chunk_cache_dir, read_chunk
from anomalib_cmdr.data.scans.io import read_point_cloud, read_point_labels, write_point_cloud

CHUNKER = ScanChunker(chunk_size=256)


def test_scan_table_lists_scans_with_their_labels(scan_root):
    scans = make_scan_samples(scan_root)
    assert sorted(scans.label.unique()) == ["burr", "good", "missing", "tear"]
    assert len(scans) == 2 + 1 + 3
    defects = scans[scans.label != "good"]
    assert (defects.label_index == 1).all() and defects.label_path.str.endswith(".labels.txt").all()
    assert (make_scan_samples(scan_root, "train").split == "train").all()


def test_scan_table_errors_name_the_problem(scan_root):
    (scan_root / "test" / "tear" / "000.labels.txt").unlink()
    with pytest.raises(DataFileError, match=r"000.ply: scan of defect type 'tear' has no per-point labels"):
        make_scan_samples(scan_root)
    shutil.copytree(scan_root / "test" / "good", scan_root / "test" / "OK")
    with pytest.raises(DataFileError, match="looks like normal scans"):
        make_scan_samples(scan_root, "test")
    shutil.copytree(scan_root / "test" / "burr", scan_root / "train" / "burr")
    with pytest.raises(DataFileError, match="may hold only normal scans"):
        make_scan_samples(scan_root, "train")
    with pytest.raises(DataFileError, match="does not exist"):
        make_scan_samples(scan_root / "nope")
    with pytest.raises(DataFileError, match="no scans found"):
        make_scan_samples(scan_root, "val")


def test_chunks_match_the_chunker_and_the_labels(scan_root):
    scans = make_scan_samples(scan_root, "test")
    samples = make_chunk_samples(scans, CHUNKER, scan_root)
    cache = chunk_cache_dir(scan_root, CHUNKER)
    assert cache.is_relative_to(scan_root.parent / ".anomalib_cmdr_cache"), "the cache is never inside the data"
    tear = scans[scans.label == "tear"].iloc[0]
    points = read_point_cloud(tear.scan_path)
    labels = read_point_labels(tear.label_path, len(points))
    expected = CHUNKER(points, labels)
    rows = samples[samples.depth_path == tear.scan_path]
    assert len(rows) == len(expected) == -(-len(points) // 256)
    assert rows.label_index.tolist() == expected.labels.tolist() and expected.labels.any()
    dataset = ScanChunkDataset(samples)
    for k, position in enumerate(rows.index):
        item = dataset[position]
        assert item.depth_map.shape == (3, 16, 16) and item.depth_map.dtype == torch.float32
        np.testing.assert_array_equal(item.depth_map.numpy(), expected.xyz[k])
        np.testing.assert_array_equal(item.gt_mask.numpy(), expected.point_labels[k])
        assert int(item.gt_label) == expected.labels[k] and item.depth_path == tear.scan_path
        assert item.image.shape == (3, 16, 16) and item.image_path.endswith(f"chunk_{k:04d}.png")
        np.testing.assert_array_equal(read_chunk(rows.chunk_path[position])["index"], expected.index[k])
    assert (expected.index == EMPTY).any(), "the last chunk is padded"


def test_chunk_cache_is_reused_and_rebuilt_when_the_scan_changes(scan_root):
    scans = make_scan_samples(scan_root, "train")
    first = make_chunk_samples(scans, CHUNKER, scan_root)
    manifest = first.image_path.map(lambda p: os.path.join(os.path.dirname(p), "manifest.json"))
    stamps = [os.stat(p).st_mtime_ns for p in manifest]
    again = make_chunk_samples(scans, CHUNKER, scan_root)
    assert [os.stat(p).st_mtime_ns for p in manifest] == stamps and again.equals(first)
    scan = scans.scan_path.iloc[0]
    points = read_point_cloud(scan)
    write_point_cloud(scan, points[: 256 + 10])  # a changed scan: 2 chunks instead of 6
    rebuilt = make_chunk_samples(scans, CHUNKER, scan_root)
    assert (rebuilt.depth_path == scan).sum() == 2
    other = make_chunk_samples(scans, ScanChunker(chunk_size=1024), scan_root)  # other settings, other folder
    assert set(other.image_path).isdisjoint(first.image_path)


def test_bad_scan_stops_the_setup_with_the_file_named(scan_root):
    bad = scan_root / "test" / "good" / "001.ply"
    bad.write_text("ply\nformat ascii 1.0\nelement vertex 0\nproperty float x\nend_header\n")
    datamodule = ScanFolder(scan_root, chunk_size=256, num_workers=0)
    with pytest.raises(DataFileError, match=r"001\.ply: empty point cloud"):
        datamodule.setup()


def test_scan_smaller_than_a_chunk_with_drop_is_refused(scan_root):
    datamodule = ScanFolder(scan_root, chunk_size=4096, remainder="drop", num_workers=0)
    with pytest.raises(DataFileError, match="fewer than one chunk of 4096"):
        datamodule.setup()


def test_datamodule_serves_chunk_batches(scan_root):
    datamodule = ScanFolder(scan_root, chunk_size=256, train_batch_size=4, eval_batch_size=8, num_workers=0, seed=0)
    datamodule.setup()
    assert datamodule.category == "scans" and datamodule.name == "foam"
    batch = next(iter(datamodule.train_dataloader()))
    assert batch.depth_map.shape == (4, 3, 16, 16) and not batch.gt_label.any()
    test_labels = datamodule.test_data.samples.label_index
    assert test_labels.sum() >= 3 and (test_labels == 0).any(), "each defect scan has an anomalous chunk"
    batch = next(iter(datamodule.test_dataloader()))
    assert batch.gt_mask.shape == (8, 16, 16)
