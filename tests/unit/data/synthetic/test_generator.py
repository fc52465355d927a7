# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0

"""The embedded synthetic RGB + 3D dataset: layout, file formats, determinism, modality claims, safety."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image
from scipy import ndimage

from anomalib_cmdr.data.synthetic import (
    CATEGORIES,
    DEFECT_TYPES,
    render_part_mask,
    render_preview,
    render_sample,
    sample_seed,
    synthesize,
)

SIZE = 64
COUNTS = {"num_train": 2, "num_val": 1, "num_test_good": 1, "num_test_defect": 1}


def _synth(root: Path, **kwargs) -> Path:
    return synthesize(root, **{"image_size": SIZE, "progress": False, **COUNTS, **kwargs})


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """All categories and defect types, a few samples each, 64 px."""
    return _synth(tmp_path_factory.mktemp("synthetic"))


def _expected_files(categories=CATEGORIES, defects=tuple(DEFECT_TYPES), train=2, val=1, good=1, bad=1) -> set[str]:
    files = set()
    for cat in categories:
        files.add(f"{cat}/.synthetic3d.json")  # the generator's settings, checked when the folder is reused
        folders = [("train/good", train, False), ("validation/good", val, False), ("test/good", good, True)]
        folders += [(f"test/{d}", bad, True) for d in defects]
        for folder, count, has_gt in folders:
            for i in range(count):
                files |= {f"{cat}/{folder}/rgb/{i:03d}.png", f"{cat}/{folder}/xyz/{i:03d}.tiff"}
                if has_gt:
                    files.add(f"{cat}/{folder}/gt/{i:03d}.png")
    return files


def _tree(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def _valid(xyz: np.ndarray) -> np.ndarray:
    return np.any(xyz != 0, axis=-1)


# ---------------------------------------------------------------------------------------------- layout & formats
def test_layout_is_mvtec_3d_ad(dataset: Path) -> None:
    assert _tree(dataset) == _expected_files()


def test_layout_with_subsets_and_counts(tmp_path: Path) -> None:
    root = _synth(tmp_path, categories=["bracket"], defect_types=["crack", "dent"], num_train=3, num_test_defect=2)
    assert root == tmp_path
    assert _tree(root) == _expected_files(["bracket"], ["crack", "dent"], train=3, bad=2)


def test_file_formats(dataset: Path) -> None:
    for path in dataset.rglob("rgb/*.png"):
        with Image.open(path) as image:
            assert image.mode == "RGB"
            assert image.size == (SIZE, SIZE)
            assert not image.info  # no metadata chunks (timestamps, software, ...)
    for path in dataset.rglob("xyz/*.tiff"):
        xyz = tifffile.imread(path)
        assert xyz.dtype == np.float32
        assert xyz.shape == (SIZE, SIZE, 3)
    for path in dataset.rglob("gt/*.png"):
        with Image.open(path) as image:
            assert image.mode == "L"
            gt = np.asarray(image)
        assert gt.shape == (SIZE, SIZE)
        assert set(np.unique(gt)) <= {0, 255}
        assert (gt.max() == 0) == (path.parts[-3] == "good")  # black for good, non-empty for defects


def test_holes_are_exact_zeros_and_depth_in_range(dataset: Path) -> None:
    total_holes = 0
    for path in dataset.rglob("xyz/*.tiff"):
        xyz = tifffile.imread(path)
        valid = _valid(xyz)
        assert np.all(xyz[~valid] == 0)
        assert np.all(xyz[valid][:, 2] > 0)  # a valid point never has a zero coordinate z
        assert xyz[valid][:, 2].min() > 0.3
        assert xyz[valid][:, 2].max() < 0.6
        assert valid.mean() > 0.9
        total_holes += int((~valid).sum())
    assert total_holes > 0


def test_points_follow_the_pinhole_model(dataset: Path) -> None:
    xyz = tifffile.imread(dataset / "disc" / "train" / "good" / "xyz" / "000.tiff").astype(np.float64)
    valid = _valid(xyz)
    v, u = np.mgrid[0:SIZE, 0:SIZE] + 0.5
    f, c = 1.2 * SIZE, SIZE / 2
    points = xyz[valid]
    np.testing.assert_allclose(points[:, 0] / points[:, 2], ((u - c) / f)[valid], atol=1e-5)
    np.testing.assert_allclose(points[:, 1] / points[:, 2], ((v - c) / f)[valid], atol=1e-5)


@pytest.mark.parametrize("category", CATEGORIES)
def test_background_plane_at_the_border(dataset: Path, category: str) -> None:
    xyz = tifffile.imread(dataset / category / "train" / "good" / "xyz" / "000.tiff").astype(np.float64)
    border = np.zeros(xyz.shape[:2], dtype=bool)
    border[:4], border[-4:], border[:, :4], border[:, -4:] = True, True, True, True
    points = xyz[border & _valid(xyz)]
    assert len(points) > 0.8 * border.sum()
    centroid = points.mean(axis=0)
    normal = np.linalg.svd(points - centroid)[2][-1]
    distance = np.abs((points - centroid) @ normal)
    assert np.mean(distance < 2e-3) > 0.98  # depth noise is ~0.3-0.5 mm
    assert abs(normal[2]) > np.cos(np.deg2rad(12))  # facing the camera, slightly tilted
    # The part rises above that plane.
    part = render_part_mask(category, sample_seed(0, category, "train", 0), SIZE)
    assert 0.1 < part.mean() < 0.6
    assert not part[border].any()
    assert np.median(np.abs((xyz[part & _valid(xyz)] - centroid) @ normal)) > 5e-3


# ---------------------------------------------------------------------------------------------- determinism
def test_same_seed_gives_identical_bytes(dataset: Path, tmp_path: Path) -> None:
    again = _synth(tmp_path)
    for rel in _expected_files():
        assert (again / rel).read_bytes() == (dataset / rel).read_bytes(), rel


def test_samples_do_not_depend_on_what_else_is_requested(dataset: Path, tmp_path: Path) -> None:
    root = synthesize(
        tmp_path, categories=["cylinder"], defect_types=["stain"], image_size=SIZE, num_train=1, num_val=0,
        num_test_good=0, num_test_defect=1, progress=True,
    )  # fmt: skip
    for rel in (
        "cylinder/train/good/rgb/000.png",
        "cylinder/train/good/xyz/000.tiff",
        "cylinder/test/stain/gt/000.png",
    ):
        assert (root / rel).read_bytes() == (dataset / rel).read_bytes(), rel


def test_different_seed_gives_different_samples(dataset: Path, tmp_path: Path) -> None:
    other = _synth(tmp_path, categories=["disc"], seed=1)
    for rel in ("disc/train/good/rgb/000.png", "disc/train/good/xyz/000.tiff", "disc/test/crack/gt/000.png"):
        assert (other / rel).read_bytes() != (dataset / rel).read_bytes(), rel


def test_samples_within_a_split_differ(dataset: Path) -> None:
    first = np.asarray(Image.open(dataset / "disc" / "train" / "good" / "rgb" / "000.png"))
    second = np.asarray(Image.open(dataset / "disc" / "train" / "good" / "rgb" / "001.png"))
    assert np.abs(first.astype(int) - second.astype(int)).mean() > 1.0


# ---------------------------------------------------------------------------------------------- modality claims
def test_defect_table_is_complete() -> None:
    assert len(CATEGORIES) >= 3
    assert set(DEFECT_TYPES) == {"dent", "bump", "stain", "discoloration", "crack", "missing_chunk"}
    assert set(DEFECT_TYPES.values()) == {"geometry", "appearance", "both"}


@pytest.mark.parametrize("category", CATEGORIES)
@pytest.mark.parametrize("defect", list(DEFECT_TYPES))
def test_defect_is_visible_only_in_its_modality(category: str, defect: str) -> None:
    seed = sample_seed(0, category, "test", 0, defect)
    rgb, xyz, mask = render_sample(category, seed, SIZE, defect)
    rgb0, xyz0, mask0 = render_sample(category, seed, SIZE, None)
    part = render_part_mask(category, seed, SIZE)
    assert not mask0.any()
    assert mask.any()
    assert np.all(part[mask])  # the defect lies on the part
    assert 0.003 < mask.sum() / part.sum() < 0.08

    far = ~ndimage.binary_dilation(mask, iterations=4)  # nothing changes away from the defect
    assert np.array_equal(rgb[far], rgb0[far])
    assert np.array_equal(xyz[far], xyz0[far])

    modality = DEFECT_TYPES[defect]
    both_valid = mask & _valid(xyz) & _valid(xyz0)
    depth_change = np.abs(xyz[..., 2] - xyz0[..., 2])[both_valid]
    rgb_change = np.abs(rgb.astype(int) - rgb0.astype(int)).sum(axis=-1)[mask]
    if modality == "geometry":
        assert np.array_equal(rgb, rgb0)
    else:
        assert rgb_change.mean() > 15
    if modality == "appearance":
        assert np.array_equal(xyz, xyz0)
    else:
        assert depth_change.max() > 1e-3
        assert np.mean(depth_change > 5e-4) > 0.3


def test_render_sample_is_deterministic() -> None:
    seed = sample_seed(3, "bracket", "test", 2, "crack")
    first, second = render_sample("bracket", seed, SIZE, "crack"), render_sample("bracket", seed, SIZE, "crack")
    for a, b in zip(first, second, strict=True):
        assert np.array_equal(a, b)


# ---------------------------------------------------------------------------------------------- safety & arguments
def test_existing_category_is_not_touched(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    sentinel = tmp_path / "disc" / "mine.txt"
    sentinel.parent.mkdir()
    sentinel.write_text("user data")
    with caplog.at_level(logging.WARNING):
        _synth(tmp_path, categories=["disc", "bracket"], num_test_defect=0)
    assert _tree(tmp_path / "disc") == {"mine.txt"}
    assert sentinel.read_text() == "user data"
    assert (tmp_path / "bracket" / "train" / "good" / "rgb" / "000.png").is_file()
    assert "already exists" in caplog.text

    _synth(tmp_path, categories=["disc"], num_test_defect=0, overwrite=True)
    assert sentinel.read_text() == "user data"
    assert (tmp_path / "disc" / "train" / "good" / "rgb" / "000.png").is_file()


def test_empty_category_folder_is_filled(tmp_path: Path) -> None:
    (tmp_path / "disc").mkdir()
    _synth(tmp_path, categories=["disc"], defect_types=["bump"])
    assert (tmp_path / "disc" / "test" / "bump" / "gt" / "000.png").is_file()


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"categories": ["disc", "gear"]}, "categories"),
        ({"categories": []}, "categories"),
        ({"defect_types": ["scratch"]}, "defect_types"),
        ({"image_size": 16}, "image_size"),
        ({"image_size": 64.0}, "image_size"),
        ({"seed": -1}, "seed"),
        ({"num_train": -1}, "num_train"),
        ({"num_val": -2}, "num_val"),
        ({"num_test_good": -1}, "num_test_good"),
        ({"num_test_defect": -1}, "num_test_defect"),
    ],
)
def test_bad_arguments_raise(tmp_path: Path, kwargs: dict, name: str) -> None:
    with pytest.raises(ValueError, match=name):
        synthesize(tmp_path, progress=False, **kwargs)
    assert not any(tmp_path.iterdir())  # validated before anything is written


def test_unknown_category_lists_the_valid_ones(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="disc") as info:
        synthesize(tmp_path, categories=["gear"], progress=False)
    assert all(cat in str(info.value) for cat in CATEGORIES)


def test_single_category_string_is_accepted(tmp_path: Path) -> None:
    _synth(tmp_path, categories="cylinder", num_test_defect=0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cylinder"]


# ---------------------------------------------------------------------------------------------- preview
def test_render_preview_writes_a_png(dataset: Path, tmp_path: Path) -> None:
    out = render_preview(dataset, tmp_path / "sub" / "preview.png", num_samples=3)
    with Image.open(out) as image:
        assert image.format == "PNG"
        assert image.size[0] > 300 and image.size[1] > 300
    out = render_preview(dataset, tmp_path / "disc.png", category="disc")
    assert out.is_file()
    with pytest.raises(ValueError, match="category"):
        render_preview(dataset, tmp_path / "x.png", category="gear")
    with pytest.raises(ValueError, match="num_samples"):
        render_preview(dataset, tmp_path / "x.png", num_samples=0)
