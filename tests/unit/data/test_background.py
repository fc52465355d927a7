# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0

"""Tests of anomalib_cmdr.data.background: background removal and the preprocessed-xyz cache."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch

from anomalib_cmdr.data import (
    DataFileError,
    DataFileWarning,
    RGBXYZFolder,
    remove_background,
    remove_background_tree,
)
from anomalib_cmdr.data.background import XYZCache, default_cache_dir, remove_background_file
from tests.unit.data.helpers import scene_xyz, tree_snapshot, write_category, write_tiff


def test_cache_paths_follow_the_tree(tmp_path: Path) -> None:
    real = write_category(tmp_path / "real", "widget").parent
    link = tmp_path / "link"
    link.symlink_to(real, target_is_directory=True)
    cache = XYZCache(link)
    assert cache.cache_dir == tmp_path / ".anomalib_cmdr_cache" / "link"
    relative = Path("widget/test/crack/xyz/000.tiff")
    assert cache.path_for(link / relative) == cache.path_for(real / relative) == cache.mirror / relative
    with pytest.raises(ValueError, match="not inside the data tree"):
        cache.path_for(tmp_path / "elsewhere.tiff")


def test_remove_background_keeps_the_object() -> None:
    xyz = scene_xyz(60, 60, seed=1)
    cleaned = remove_background(xyz)
    kept = (cleaned != 0).all(-1)
    expected = np.zeros((60, 60), bool)
    expected[20:40, 20:40] = True
    expected &= (xyz != 0).all(-1)
    assert np.array_equal(kept, expected)  # table and the smaller clutter cluster gone
    assert np.array_equal(cleaned[kept], xyz[kept]) and (cleaned[~kept] == 0).all()
    assert cleaned.shape == xyz.shape and cleaned.dtype == np.float32
    assert np.array_equal(remove_background(xyz), cleaned)  # deterministic
    assert np.array_equal(xyz, scene_xyz(60, 60, seed=1))  # input untouched


def test_remove_background_degenerate_clouds() -> None:
    empty_border = scene_xyz(40, 40)
    empty_border[:10], empty_border[-10:], empty_border[:, :10], empty_border[:, -10:] = 0, 0, 0, 0
    with pytest.warns(DataFileWarning, match=r"part\.tiff: only 0 valid point\(s\) in the 10-pixel border"):
        out = remove_background(empty_border, source="part.tiff")
    assert np.array_equal(out, empty_border)

    flat = scene_xyz(40, 40, holes=False)
    flat[..., 2] = 0.5 + 0.05 * flat[..., 0]  # only the table: nothing left off the plane
    with pytest.warns(DataFileWarning, match="fewer than DBSCAN's min_points"):
        assert np.array_equal(remove_background(flat), flat)

    sparse = scene_xyz(40, 40, holes=False)
    sparse[15:25, 15:25, 2] -= 0.02
    sparse[15:25, 15:25][::2, ::2] = 0.0  # 75 object points, but spaced too far for DBSCAN's eps
    with pytest.warns(DataFileWarning, match="DBSCAN found no cluster"):
        remove_background(sparse, dbscan_eps=0.0005)

    with pytest.raises(ValueError, match="border"):
        remove_background(sparse, border=0)


def test_remove_background_tree_writes_only_to_cache(tmp_path: Path) -> None:
    root = tmp_path / "data"
    write_category(root, "widget", size=(40, 40))
    write_category(root, "other", size=(40, 40))
    before = tree_snapshot(root)

    mirror = remove_background_tree(root, categories=["widget"], progress=False)
    assert mirror == default_cache_dir(root) / "preprocessed_xyz"
    assert mirror.is_relative_to(tmp_path / ".anomalib_cmdr_cache" / "data")
    assert tree_snapshot(root) == before  # user's files byte-identical, nothing added to the tree
    cached = sorted(p.relative_to(mirror) for p in mirror.rglob("*.tiff"))
    assert cached == sorted(p.relative_to(root) for p in (root / "widget").rglob("*.tiff"))
    sample = Path("widget/test/crack/xyz/000.tiff")
    assert np.array_equal(tifffile.imread(mirror / sample), remove_background(tifffile.imread(root / sample)))

    stamps = {p: p.stat().st_mtime_ns for p in mirror.rglob("*.tiff")}
    remove_background_tree(root, categories=["widget"], progress=False)
    assert {p: p.stat().st_mtime_ns for p in mirror.rglob("*.tiff")} == stamps  # up to date: skipped
    assert remove_background_file(root / sample, mirror / sample) is False

    source = root / sample
    os.utime(source, ns=(source.stat().st_atime_ns, stamps[mirror / sample] + 10**9))  # source edited later
    assert remove_background_file(source, mirror / sample) is True

    with pytest.raises(DataFileError, match=r"nothere: category folder does not exist.*\['other', 'widget'\]"):
        remove_background_tree(root, categories=["nothere"], progress=False)
    with pytest.raises(ValueError, match="inside the data tree"):
        remove_background_tree(root, cache_dir=root / "cache", progress=False)


def test_dataset_reads_preprocessed_xyz(tmp_path: Path) -> None:
    root = tmp_path / "data"
    write_category(root, "widget", size=(40, 40))
    before = tree_snapshot(root)
    cache_dir = tmp_path / "my_cache"
    datamodule = RGBXYZFolder(root, "widget", num_workers=0, remove_background=True, cache_dir=cache_dir)
    datamodule.setup()  # without prepare_data: the dataset fills the cache lazily
    item = datamodule.test_data[0]
    raw = tifffile.imread(item.depth_path)
    assert torch.equal(item.depth_map, torch.from_numpy(remove_background(raw)).permute(2, 0, 1))
    assert (item.depth_map == 0).sum() > (torch.from_numpy(raw) == 0).sum()
    cached = XYZCache(root, cache_dir).path_for(item.depth_path)
    assert cached.is_file() and cached.is_relative_to(cache_dir)
    datamodule.prepare_data()
    assert len(list(cache_dir.rglob("*.tiff"))) == len(list((root / "widget").rglob("*.tiff")))
    assert tree_snapshot(root) == before


def test_cache_follows_the_source_and_parameters_not_only_mtimes(tmp_path: Path) -> None:
    root = tmp_path / "data"
    write_category(root, "widget", size=(40, 40))
    mirror = remove_background_tree(root, categories=["widget"], progress=False)
    sample = Path("widget/test/crack/xyz/000.tiff")
    source, cached = root / sample, mirror / sample
    assert oct(cached.stat().st_mode & 0o777) == oct(0o666 & ~_umask())  # not mkstemp's 0600

    # replaced by another cloud with an OLDER modification time (cp -p, rsync -a, tar x)
    other = scene_xyz(40, 40, seed=99)
    write_tiff(source, other)
    os.utime(source, ns=(source.stat().st_atime_ns, cached.stat().st_mtime_ns - 10**9))
    assert remove_background_file(source, cached) is True
    assert np.array_equal(tifffile.imread(cached), remove_background(other))
    assert remove_background_file(source, cached) is False  # now up to date

    # other parameters recompute; unknown ones are refused
    assert remove_background_file(source, cached, border=5) is True
    with pytest.raises(ValueError, match="unknown argument"):
        XYZCache(root, border_px=3)

    # a second tree with the same relative paths sharing the cache folder
    twin = tmp_path / "twin" / "data"
    write_category(twin, "widget", size=(40, 40))
    assert remove_background_file(twin / sample, cached) is True


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
