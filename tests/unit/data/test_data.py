"""Tests of anomalib_cmdr.data: readers, sample tables, dataset, preprocessing cache and datamodules.

Every test writes its own tiny MVTec 3D-AD-like tree into ``tmp_path``; nothing is downloaded.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tifffile
import torch
from anomalib.data.dataclasses import DepthBatch, DepthItem
from PIL import Image
from torch.utils.data import DataLoader
from torchvision.transforms.v2 import Resize
from torchvision.tv_tensors import Mask

from anomalib_cmdr.data import (
    DataFileError,
    DataFileWarning,
    MVTec3DAD,
    RGBXYZDataset,
    RGBXYZFolder,
    Synthetic3D,
    make_rgbxyz_samples,
    read_mask,
    read_rgb,
    read_xyz,
    remove_background,
    remove_background_tree,
)
from anomalib_cmdr.data.background import XYZCache, default_cache_dir, remove_background_file
from anomalib_cmdr.data.dataset import resize_mask, resize_rgb, resize_xyz
from anomalib_cmdr.data.synthetic import CATEGORIES

# ------------------------------------------------------------------------------------------------------ helpers


def scene_xyz(height: int = 60, width: int = 60, seed: int = 0, holes: bool = True) -> np.ndarray:
    """A tilted table (1 mm pixel pitch) with a 20x20 px box on it and a smaller 8x8 px block to its side."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[0:height, 0:width].astype(np.float32) * 0.001
    xyz = np.stack([cols + 0.05, rows + 0.05, 0.5 + 0.05 * cols], axis=-1).astype(np.float32)
    top, left = height // 2 - 10, width // 2 - 10
    xyz[top : top + 20, left : left + 20, 2] -= 0.02  # the object, 2 cm above the table
    xyz[4:12, 2:10, 2] -= 0.01  # a smaller second cluster: clutter
    if holes:
        xyz[rng.random((height, width)) < 0.02] = 0.0
    return xyz


def write_png(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path


def write_tiff(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tifffile.imwrite(path, array)
    return path


def write_sample(folder: Path, stem: str, size: tuple[int, int], seed: int, mask: bool | None = None) -> None:
    """Write rgb/<stem>.png, xyz/<stem>.tiff and, if ``mask`` is not None, gt/<stem>.png into ``folder``."""
    rng = np.random.default_rng(seed)
    write_png(folder / "rgb" / f"{stem}.png", rng.integers(0, 256, (*size, 3), dtype=np.uint8))
    write_tiff(folder / "xyz" / f"{stem}.tiff", scene_xyz(*size, seed=seed))
    if mask is not None:
        gt = np.zeros(size, np.uint8)
        if mask:
            gt[size[0] // 4 : size[0] // 2, size[1] // 4 : size[1] // 2] = 255
        write_png(folder / "gt" / f"{stem}.png", gt)


def write_category(root: Path, name: str = "widget", size: tuple[int, int] = (24, 32)) -> Path:
    """A tiny category: 3 train, 2 validation, 2 test/good, 2 test/crack, 1 test/dent samples."""
    category = root / name
    for i in range(3):
        write_sample(category / "train" / "good", f"{i:03d}", size, seed=i)
    for i in range(2):
        write_sample(category / "validation" / "good", f"{i:03d}", size, seed=10 + i)
        write_sample(category / "test" / "good", f"{i:03d}", size, seed=20 + i, mask=False)
        write_sample(category / "test" / "crack", f"{i:03d}", size, seed=30 + i, mask=True)
    write_sample(category / "test" / "dent", "000", size, seed=40, mask=True)
    return category


@pytest.fixture
def category_root(tmp_path: Path) -> Path:
    return write_category(tmp_path / "data")


def tree_snapshot(root: Path) -> dict[str, tuple[bytes, int]]:
    return {str(p.relative_to(root)): (p.read_bytes(), p.stat().st_mtime_ns) for p in root.rglob("*") if p.is_file()}


# ------------------------------------------------------------------------------------------------------ readers


def test_read_good_files(tmp_path: Path) -> None:
    rgb = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3)
    assert np.array_equal(read_rgb(write_png(tmp_path / "rgb.png", rgb)), rgb)
    gray = read_rgb(write_png(tmp_path / "gray.png", rgb[..., 0]))
    assert gray.shape == (4, 5, 3) and gray.dtype == np.uint8 and np.array_equal(gray[..., 2], rgb[..., 0])
    rgba = read_rgb(write_png(tmp_path / "rgba.png", np.dstack([rgb, np.full((4, 5), 7, np.uint8)])))
    assert np.array_equal(rgba, rgb)
    gray16 = read_rgb(write_png(tmp_path / "gray16.png", np.full((4, 5), 65535, np.uint16)))
    assert gray16.dtype == np.uint8 and (gray16 == 255).all()

    xyz = scene_xyz(8, 9)
    read = read_xyz(write_tiff(tmp_path / "xyz.tiff", xyz))
    assert read.dtype == np.float32 and read.shape == (8, 9, 3) and np.array_equal(read, xyz)
    as_double = read_xyz(write_tiff(tmp_path / "xyz64.tiff", xyz.astype(np.float64)))
    assert as_double.dtype == np.float32

    mask = read_mask(write_png(tmp_path / "gt.png", np.array([[0, 1], [255, 0]], np.uint8)))
    assert mask.dtype == bool and mask.tolist() == [[False, True], [True, False]]


@pytest.mark.parametrize("reader", [read_rgb, read_xyz, read_mask])
def test_missing_file(tmp_path: Path, reader) -> None:
    with pytest.raises(DataFileError, match=r"nope\..*does not exist"):
        reader(tmp_path / "nope.png")


def test_corrupted_png(tmp_path: Path) -> None:
    good = write_png(tmp_path / "good.png", np.zeros((16, 16, 3), np.uint8)).read_bytes()
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(good[: len(good) // 2])
    garbage = tmp_path / "garbage.png"
    garbage.write_bytes(b"this is not an image at all")
    for path in (truncated, garbage):
        with pytest.raises(DataFileError, match=path.name) as info:
            read_rgb(path)
        assert "cannot read RGB image" in str(info.value)
        with pytest.raises(DataFileError, match=path.name):
            read_mask(path)


def test_corrupted_tiff(tmp_path: Path) -> None:
    good = write_tiff(tmp_path / "good.tiff", scene_xyz(16, 16)).read_bytes()
    for name, content in [("truncated.tiff", good[:200]), ("garbage.tiff", b"II*\x00garbage" * 3)]:
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(DataFileError, match=f"{name}.*cannot read point cloud TIFF"):
            read_xyz(path)


@pytest.mark.parametrize("shape", [(8, 9), (8, 9, 4), (8, 9, 1), (2, 8, 9, 3)])
def test_xyz_with_wrong_shape(tmp_path: Path, shape: tuple[int, ...]) -> None:
    path = write_tiff(tmp_path / "bad.tiff", np.ones(shape, np.float32))
    with pytest.raises(DataFileError, match=r"bad\.tiff: point cloud must have shape \(H, W, 3\)"):
        read_xyz(path)


def test_nan_and_inf_become_holes_with_warning(tmp_path: Path) -> None:
    xyz = scene_xyz(8, 9, holes=False)
    xyz[0, 0, 0] = np.nan
    xyz[1, 2, 2] = np.inf
    xyz[3, 3] = -np.inf
    path = write_tiff(tmp_path / "nan.tiff", xyz)
    with pytest.warns(DataFileWarning, match=r"nan\.tiff: 3 point\(s\) with NaN or inf"):
        read = read_xyz(path)
    assert np.isfinite(read).all()
    for row, col in [(0, 0), (1, 2), (3, 3)]:
        assert read[row, col].tolist() == [0.0, 0.0, 0.0]  # all three coordinates, not only the broken one
    untouched = np.ones(xyz.shape[:2], bool)
    untouched[[0, 1, 3], [0, 2, 3]] = False
    assert np.array_equal(read[untouched], xyz[untouched])


# ------------------------------------------------------------------------------------------------- sample table


def test_sample_table(category_root: Path) -> None:
    samples = make_rgbxyz_samples(category_root)
    assert samples.attrs["task"] == "segmentation"
    assert sorted(samples.split.unique()) == ["test", "train", "val"]
    test = make_rgbxyz_samples(category_root, "test")
    assert test.groupby("defect_type").size().to_dict() == {"crack": 2, "dent": 1, "good": 2}
    assert set(test.label_index[test.defect_type == "good"]) == {0}
    assert set(test.label_index[test.defect_type != "good"]) == {1}
    assert test.sample_id.is_unique and "widget/test/crack/000" in set(test.sample_id)
    assert all(Path(p).is_absolute() for p in test.image_path)
    assert len(make_rgbxyz_samples(category_root, "validation")) == 2
    assert test.attrs["task"] == "segmentation"


def test_train_samples_have_no_nan_mask_path(category_root: Path) -> None:
    """anomalib's MVTec3D crashes with pandas >= 3 on train samples (NaN mask_path); this table must not."""
    train = make_rgbxyz_samples(category_root, "train")
    assert not train.mask_path.isna().any() and (train.mask_path == "").all()
    item = RGBXYZDataset(train)[0]
    assert item.mask_path is None and not item.gt_mask.any()  # DepthItem turns "" into None
    # a hand-made table whose mask_path holds NaN / None (what pandas 3 produces) is accepted too
    table = train.copy()
    table["mask_path"] = pd.Series([np.nan, None, np.nan], dtype=object)
    dataset = RGBXYZDataset(table)
    assert (dataset.samples.mask_path == "").all()
    assert [dataset[i].mask_path for i in range(3)] == [None, None, None]
    assert RGBXYZDataset(train.drop(columns="mask_path"))[0].mask_path is None


def test_missing_category_lists_available(tmp_path: Path, category_root: Path) -> None:
    with pytest.raises(DataFileError, match=r"nothere: category folder does not exist.*\['widget'\]"):
        make_rgbxyz_samples(category_root.parent / "nothere")
    with pytest.raises(DataFileError, match="does not exist either"):
        make_rgbxyz_samples(tmp_path / "no_root" / "widget")
    datamodule = RGBXYZFolder(category_root.parent, category="nothere", num_workers=0)
    with pytest.raises(DataFileError, match="nothere"):
        datamodule.setup()


def test_sample_missing_xyz_or_rgb(category_root: Path) -> None:
    (category_root / "test" / "crack" / "xyz" / "001.tiff").unlink()
    with pytest.raises(DataFileError, match=r"crack/rgb/001\.png: no matching point cloud"):
        make_rgbxyz_samples(category_root, "test")
    write_tiff(category_root / "test" / "crack" / "xyz" / "001.tiff", scene_xyz(24, 32))
    (category_root / "train" / "good" / "rgb" / "002.png").unlink()
    with pytest.raises(DataFileError, match=r"good/xyz/002\.tiff: no matching RGB image"):
        make_rgbxyz_samples(category_root, "train")


def test_anomalous_sample_without_mask(category_root: Path) -> None:
    (category_root / "test" / "dent" / "gt" / "000.png").unlink()
    with pytest.raises(DataFileError, match=r"dent/rgb/000\.png: anomalous sample has no ground-truth mask"):
        make_rgbxyz_samples(category_root, "test")


def test_missing_file_in_hand_made_table(category_root: Path) -> None:
    table = make_rgbxyz_samples(category_root, "train")
    table.loc[1, "depth_path"] = str(category_root / "gone.tiff")
    with pytest.raises(DataFileError, match=r"gone\.tiff: file does not exist"):
        RGBXYZDataset(table)


# ------------------------------------------------------------------------------------------------------ dataset


def test_depth_item_fields(category_root: Path) -> None:
    dataset = RGBXYZDataset(make_rgbxyz_samples(category_root, "test"))
    assert len(dataset) == 5 and dataset.category == "widget"
    row = dataset.samples.iloc[0]
    item = dataset[0]
    assert isinstance(item, DepthItem)
    assert item.image.shape == (3, 24, 32) and item.image.dtype == torch.float32
    assert float(item.image.min()) >= 0.0 and float(item.image.max()) <= 1.0
    expected_rgb = np.asarray(Image.open(row.image_path), dtype=np.float32) / 255
    assert torch.allclose(item.image, torch.from_numpy(expected_rgb).permute(2, 0, 1))
    assert item.depth_map.shape == (3, 24, 32) and item.depth_map.dtype == torch.float32
    xyz = tifffile.imread(row.depth_path)
    assert torch.equal(item.depth_map, torch.from_numpy(xyz).permute(2, 0, 1))  # raw metres, holes exactly 0
    assert isinstance(item.gt_mask, Mask) and item.gt_mask.dtype == torch.bool and item.gt_mask.shape == (24, 32)
    assert item.gt_mask.any() == bool(item.gt_label) == (row.label_index == 1)
    assert item.image_path == row.image_path and item.depth_path == row.depth_path
    assert item.mask_path == (row.mask_path or None)


def test_rgb_xyz_size_mismatch(category_root: Path) -> None:
    write_tiff(category_root / "train" / "good" / "xyz" / "001.tiff", scene_xyz(20, 32))
    dataset = RGBXYZDataset(make_rgbxyz_samples(category_root, "train"))
    with pytest.raises(DataFileError, match=r"xyz/001\.tiff: point cloud is 32x20 .*/rgb/001\.png is 32x24"):
        dataset[1]
    resized = RGBXYZDataset(make_rgbxyz_samples(category_root, "train"), image_size=16)[1]
    assert resized.image.shape == (3, 16, 16) and resized.depth_map.shape == (3, 16, 16)


def test_mask_size_mismatch(category_root: Path) -> None:
    write_png(category_root / "test" / "crack" / "gt" / "000.png", np.zeros((10, 10), np.uint8))
    dataset = RGBXYZDataset(make_rgbxyz_samples(category_root, "test"), image_size=16)
    with pytest.raises(DataFileError, match=r"crack/gt/000\.png: mask is 10x10 .*/crack/rgb/000\.png is 32x24"):
        dataset[0]


def test_category_without_masks_is_classification(tmp_path: Path) -> None:
    category = write_category(tmp_path, "plain")
    for gt in category.glob("test/*/gt"):
        for file in gt.iterdir():
            file.unlink()
        gt.rmdir()
    datamodule = RGBXYZFolder(tmp_path, "plain", eval_batch_size=3, num_workers=0)
    datamodule.setup()
    assert datamodule.task == "classification"
    batch = next(iter(datamodule.test_dataloader()))
    assert batch.gt_mask is None and batch.depth_map.shape == (3, 3, 24, 32)


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


def test_image_size_resizes_every_field(category_root: Path) -> None:
    dataset = RGBXYZDataset(make_rgbxyz_samples(category_root, "test"), image_size=(20, 12))
    for item in (dataset[i] for i in range(len(dataset))):
        assert item.image.shape == (3, 20, 12) and item.depth_map.shape == (3, 20, 12)
        assert item.gt_mask.shape == (20, 12) and item.gt_mask.dtype == torch.bool


def test_nearest_resize_keeps_holes_and_invents_no_point() -> None:
    xyz = scene_xyz(30, 41, seed=3)
    points = {tuple(p) for p in xyz.reshape(-1, 3).tolist()}
    assert (0.0, 0.0, 0.0) in points
    for size, square_pad in [(17, True), (64, True), ((25, 50), False), (13, False)]:
        out = resize_xyz(xyz, size, square_pad)
        assert out.dtype == np.float32
        assert {tuple(p) for p in out.reshape(-1, 3).tolist()} <= points  # every output point is an input point
        invalid = (out == 0).any(axis=-1)
        assert (out[invalid] == 0).all()  # holes are whole holes, exactly 0
    # upsampling 2x without padding keeps every hole as a 2x2 block of holes
    up = resize_xyz(xyz, (60, 82), square_pad=False)
    assert np.array_equal(up[::2, ::2], xyz) and np.array_equal((up == 0).all(-1)[1::2, 1::2], (xyz == 0).all(-1))


def test_square_pad_keeps_rgb_xyz_mask_aligned() -> None:
    height, width = 20, 40
    rgb = np.zeros((height, width, 3), np.uint8)
    rgb[:, 10:20] = 255
    xyz = np.ones((height, width, 3), np.float32)
    mask = np.zeros((height, width), bool)
    mask[:, 10:20] = True
    out_rgb, out_xyz, out_mask = resize_rgb(rgb, 40), resize_xyz(xyz, 40), resize_mask(mask, 40)
    assert out_rgb.shape == (40, 40, 3) and out_xyz.shape == (40, 40, 3) and out_mask.shape == (40, 40)
    assert (out_xyz[:10] == 0).all() and (out_xyz[30:] == 0).all() and (out_xyz[10:30] == 1).all()  # centred
    assert not out_mask[:10].any() and out_mask[10:30, 10:20].all()
    assert (out_rgb[:10, 10:20] == 255).all()  # edge replication, not black padding
    assert (out_rgb[10:30][out_mask[10:30]] == 255).all()


def test_geometric_augmentations_move_the_point_cloud(category_root: Path) -> None:
    dataset = RGBXYZDataset(make_rgbxyz_samples(category_root, "test"), augmentations=Resize((12, 16)))
    item = dataset[0]
    assert item.image.shape == (3, 12, 16) and item.depth_map.shape == (3, 12, 16) and item.gt_mask.shape == (12, 16)
    assert type(item.depth_map) is torch.Tensor
    source = {tuple(p) for p in tifffile.imread(item.depth_path).reshape(-1, 3).tolist()}
    assert {tuple(p) for p in item.depth_map.permute(1, 2, 0).reshape(-1, 3).tolist()} <= source


# ------------------------------------------------------------------------------------------------- datamodules


def test_folder_datamodule_collates(category_root: Path) -> None:
    datamodule = RGBXYZFolder(category_root, eval_batch_size=2, train_batch_size=2, num_workers=0, image_size=16)
    assert datamodule.category == "widget"
    datamodule.setup()
    assert len(datamodule.test_data) == 5 and len(datamodule.train_data) == 3 and len(datamodule.val_data) == 5
    loader = datamodule.test_dataloader()
    assert loader.batch_size == 2
    batches = list(loader)
    batch = batches[0]
    assert isinstance(batch, DepthBatch)
    assert batch.depth_map.shape == (2, 3, 16, 16) and batch.image.shape == (2, 3, 16, 16)
    assert batch.gt_mask.shape == (2, 16, 16) and batch.gt_label.shape == (2,)
    assert sum(len(b.image_path) for b in batches) == 5
    train_batch = next(iter(datamodule.train_dataloader()))
    assert train_batch.depth_map.shape == (2, 3, 16, 16) and not train_batch.gt_mask.any()


def test_mvtec3dad_datamodule(category_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import anomalib_cmdr.data.mvtec3d_ad as module

    calls = []
    monkeypatch.setattr(module, "download_and_extract", lambda root, info: calls.append((root, info.name)))
    root = category_root.parent
    datamodule = MVTec3DAD(root=root, category="widget", eval_batch_size=2, num_workers=0)
    datamodule.prepare_data()
    assert calls == []  # present: no download
    MVTec3DAD(root=root, category="bagel").prepare_data()
    assert calls == [(root, "mvtec_3d")]  # missing: anomalib's MVTec3D download

    datamodule.setup()
    batch = next(iter(DataLoader(datamodule.test_data, batch_size=2, collate_fn=datamodule.test_data.collate_fn)))
    assert isinstance(batch, DepthBatch) and batch.depth_map.shape == (2, 3, 24, 32)
    assert len(datamodule.val_data) == len(datamodule.test_data)  # same_as_test, like anomalib

    from_dir = MVTec3DAD(root=root, category="widget", val_split_mode="from_dir", num_workers=0)
    from_dir.setup()
    assert len(from_dir.val_data) == 2 and set(from_dir.val_data.samples.split) == {"val"}
    assert set(from_dir.val_data.samples.label_index) == {0}


# ---------------------------------------------------------------------------------------------- preprocessing


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


# -------------------------------------------------------------------------------------------------- synthetic


def test_synthetic_datamodule(tmp_path: Path) -> None:

    root = tmp_path / "synthetic"
    kwargs = {"synth_image_size": 32, "num_train": 2, "num_val": 1, "num_test_good": 1, "num_test_defect": 1}
    datamodule = Synthetic3D(root=root, image_size=24, eval_batch_size=2, num_workers=0, **kwargs)
    assert datamodule.category == CATEGORIES[0]
    datamodule.prepare_data()
    assert (root / CATEGORIES[0] / "train" / "good" / "rgb" / "000.png").is_file()
    stamps = tree_snapshot(root)
    datamodule.prepare_data()  # present: not regenerated
    assert tree_snapshot(root) == stamps
    datamodule.setup()
    assert len(datamodule.train_data) == 2
    batch = next(iter(datamodule.test_dataloader()))
    assert isinstance(batch, DepthBatch) and batch.depth_map.shape == (2, 3, 24, 24)
    with pytest.raises(ValueError, match="unknown synthetic category"):
        Synthetic3D(root=root, category="bagel")
