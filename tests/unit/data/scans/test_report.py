# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0

import csv
from types import SimpleNamespace

import numpy as np
import open3d as o3d
import torch

from anomalib_cmdr.data.scans import ScanChunkDataset, ScanChunker, ScanReport, make_chunk_samples, make_scan_samples
from anomalib_cmdr.data.scans.io import read_point_cloud


def collect_fake_predictions(scan_root):
    """Run ScanReport over the test chunks with maps that equal the per-point labels (a perfect model)."""
    samples = make_chunk_samples(make_scan_samples(scan_root, "test"), ScanChunker(chunk_size=256), scan_root)
    dataset = ScanChunkDataset(samples)
    report = ScanReport()
    report.on_test_start(None, None)
    items = [dataset[i] for i in range(len(dataset))]
    for start in range(0, len(items), 5):
        chunk = items[start : start + 5]
        maps = torch.stack([item.gt_mask.float() for item in chunk])
        outputs = SimpleNamespace(
            anomaly_map=maps.clone().unsqueeze(1),
            pred_score=maps.flatten(1).max(1).values,
            pred_label=maps.flatten(1).max(1).values > 0.5,
            image_path=[item.image_path for item in chunk],
            depth_path=[item.depth_path for item in chunk],
        )
        report.on_test_batch_end(None, None, outputs, None, 0)
        outputs.anomaly_map = outputs.anomaly_map * 0.5  # what the post-processor does after the callback
        outputs.pred_score = outputs.pred_score * 0.5
    return report


def test_scores_come_back_on_every_point_of_every_scan(scan_root, tmp_path):
    report = collect_fake_predictions(scan_root)
    results = report.assemble()
    assert len(results) == 4
    for result in results:
        assert not np.isnan(result.scores).any(), "padded last chunks keep their points scored"
        expected = result.labels.astype(np.float32)
        np.testing.assert_array_equal(result.raw_scores, expected)  # raw: the maps as the model gave them
        np.testing.assert_array_equal(result.scores, expected * 0.5)  # post-processed: read at the end
        assert result.raw_score == float(expected.max()) and result.pred_label == bool(expected.any())
    assert ScanReport.metrics(results) == {"scan_AUROC": 1.0, "point_AUROC": 1.0}


def test_report_files(scan_root, tmp_path):
    report = collect_fake_predictions(scan_root)
    trainer = SimpleNamespace(datamodule=SimpleNamespace(scan_root=scan_root))
    path = report.write(report.assemble(), tmp_path / "out", trainer)
    rows = list(csv.DictReader(path.open()))
    assert [row["label"] for row in rows] == ["burr", "good", "missing", "tear"]
    assert all(row["num_chunks"] == "6" for row in rows) and rows[1]["pred_label"] == "0"
    ply = tmp_path / "out" / "test" / "tear" / "000.ply"
    cloud = o3d.t.io.read_point_cloud(str(ply))
    points = read_point_cloud(scan_root / "test" / "tear" / "000.ply")
    np.testing.assert_allclose(cloud.point.positions.numpy(), points, rtol=1e-6)
    score = cloud.point.score.numpy().ravel()
    assert set(np.unique(score)) == {0.0, 0.5}
    colours = cloud.point.colors.numpy()
    assert colours.dtype == np.uint8 and len(np.unique(colours[score == 0.5], axis=0)) == 1
    assert (tmp_path / "out" / "test" / "tear" / "000.png").stat().st_size > 10_000


def test_batches_that_are_not_scan_chunks_are_ignored():
    report = ScanReport()
    outputs = SimpleNamespace(anomaly_map=torch.zeros(1, 8, 8), pred_score=torch.zeros(1), image_path=["a/000.png"])
    report.on_predict_batch_end(None, None, outputs, None, 0)
    assert report.assemble() == []
