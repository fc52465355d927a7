# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0

"""New, unlabelled parts to score: RGB images and organized point clouds paired by file stem.

``anomalib predict --data <folder>`` feeds RGB images only; :class:`RGBXYZPredictDataset` gives CMDR both
modalities of every sample in a folder, with no ``train/`` split and no labels::

    anomalib predict -c cmdr.yaml --ckpt_path model.ckpt --data anomalib_cmdr.data.RGBXYZPredictDataset --data.root in/

A folder may be laid out as MVTec 3D-AD's sample folders (``rgb/NAME.png`` beside ``xyz/NAME.tiff``, at any
depth) or flat (``NAME.png`` beside ``NAME.tiff``); RGB and point cloud of a sample share the stem ``NAME``.

Example:
    >>> import numpy as np, tifffile
    >>> from pathlib import Path
    >>> from PIL import Image
    >>> root = Path("/tmp/predict_doctest"); (root / "rgb").mkdir(parents=True, exist_ok=True)
    >>> (root / "xyz").mkdir(exist_ok=True)
    >>> Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(root / "rgb" / "part1.png")
    >>> tifffile.imwrite(root / "xyz" / "part1.tiff", np.ones((8, 8, 3), np.float32))
    >>> [(rgb.name, xyz.name) for rgb, xyz in find_sample_pairs(root)]
    [('part1.png', 'part1.tiff')]
    >>> RGBXYZPredictDataset(root)[0].depth_map.shape
    torch.Size([3, 8, 8])
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import torch
from anomalib.data import DepthBatch, DepthItem
from torch.utils.data import Dataset
from torchvision.transforms.v2.functional import to_dtype_image
from torchvision.tv_tensors import Image

from .io import DataFileError, read_rgb, read_xyz

logger = logging.getLogger(__name__)

RGB_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif.png")
XYZ_SUFFIXES = (".tiff", ".tif")


def _files(folder: Path, suffixes: tuple[str, ...]) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in suffixes)


def _xyz_for(rgb: Path) -> Path | None:
    """The point cloud of an RGB file: ``../xyz/NAME.tiff`` for ``rgb/NAME.png``, else ``NAME.tiff`` beside it."""
    folder = rgb.parent.parent / "xyz" if rgb.parent.name == "rgb" else rgb.parent
    for suffix in XYZ_SUFFIXES:
        if (folder / f"{rgb.stem}{suffix}").is_file():
            return folder / f"{rgb.stem}{suffix}"
    return None


def find_sample_pairs(root: str | Path) -> list[tuple[Path, Path]]:
    """RGB image and point cloud of every sample under ``root``, paired by stem.

    Args:
        root (str | Path): A folder of samples (MVTec 3D-AD sample folders at any depth, or flat).

    Returns:
        list[tuple[Path, Path]]: ``(rgb, xyz)`` per sample, sorted by path.

    Raises:
        DataFileError: If ``root`` is not a folder, holds no sample, or an RGB image has no point cloud (the
            message names the first such files).

    Example:
        >>> import tempfile
        >>> import numpy as np, tifffile
        >>> from PIL import Image as PILImage
        >>> root = Path(tempfile.mkdtemp())
        >>> for name in ("b", "a"):
        ...     PILImage.fromarray(np.zeros((8, 8, 3), np.uint8)).save(root / f"{name}.png")
        ...     tifffile.imwrite(root / f"{name}.tiff", np.ones((8, 8, 3), np.float32))
        >>> [(rgb.name, xyz.name) for rgb, xyz in find_sample_pairs(root)]
        [('a.png', 'a.tiff'), ('b.png', 'b.tiff')]
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        msg = f"{root}: not a folder of samples."
        raise DataFileError(msg)
    images = sorted(
        p
        for p in root.rglob("*")
        if p.is_file() and p.suffix.lower() in RGB_SUFFIXES and p.parent.name not in {"gt", "xyz"}
    )
    pairs, unmatched = [], []
    for image in images:
        xyz = _xyz_for(image)
        if xyz is None:
            unmatched.append(image)
        else:
            pairs.append((image, xyz))
    if unmatched:
        shown = ", ".join(str(p) for p in unmatched[:3])
        msg = (
            f"{len(unmatched)} RGB image(s) without a point cloud of the same name (NAME.tiff beside NAME.png, or "
            f"xyz/NAME.tiff beside rgb/NAME.png), e.g. {shown}"
        )
        raise DataFileError(msg)
    if not pairs:
        msg = f"{root}: no RGB image + point cloud pair found (NAME.png with NAME.tiff)."
        raise DataFileError(msg)
    return pairs


def pair_files(rgb: str | Path, xyz: str | Path) -> list[tuple[Path, Path]]:
    """Pair an RGB file with a point cloud file, or the files of an RGB folder with those of an xyz folder.

    Args:
        rgb (str | Path): An image file or a folder of images.
        xyz (str | Path): A TIFF file or a folder of TIFFs.

    Returns:
        list[tuple[Path, Path]]: ``(rgb, xyz)`` per sample.

    Raises:
        DataFileError: If the paths are missing, of different kinds, or a stem has no partner.

    Example:
        >>> import tempfile
        >>> import numpy as np, tifffile
        >>> from PIL import Image as PILImage
        >>> root = Path(tempfile.mkdtemp()); (root / "rgb").mkdir(); (root / "xyz").mkdir()
        >>> PILImage.fromarray(np.zeros((8, 8, 3), np.uint8)).save(root / "rgb" / "part1.png")
        >>> tifffile.imwrite(root / "xyz" / "part1.tiff", np.ones((8, 8, 3), np.float32))
        >>> [(rgb.name, xyz.name) for rgb, xyz in pair_files(root / "rgb", root / "xyz")]
        [('part1.png', 'part1.tiff')]
        >>> len(pair_files(root / "rgb" / "part1.png", root / "xyz" / "part1.tiff"))
        1
    """
    rgb, xyz = Path(rgb).expanduser(), Path(xyz).expanduser()
    if rgb.is_file() and xyz.is_file():
        return [(rgb, xyz)]
    if not (rgb.is_dir() and xyz.is_dir()):
        msg = f"rgb={rgb} and xyz={xyz}: give two files, or two folders of files paired by name."
        raise DataFileError(msg)
    clouds = {p.stem: p for p in _files(xyz, XYZ_SUFFIXES)}
    images = _files(rgb, RGB_SUFFIXES)
    missing = [p.name for p in images if p.stem not in clouds]
    if missing:
        msg = f"{xyz}: no point cloud for {len(missing)} image(s) of {rgb}, e.g. {missing[:3]}"
        raise DataFileError(msg)
    if not images:
        msg = f"{rgb}: no image files."
        raise DataFileError(msg)
    return [(p, clouds[p.stem]) for p in images]


class RGBXYZPredictDataset(Dataset):
    """Unlabelled RGB + organized point cloud samples of a folder, as anomalib ``DepthItem``s.

    Items hold ``image`` (``(3, H, W)`` float in [0, 1]), ``depth_map`` (``(3, H, W)``), ``image_path`` and
    ``depth_path``, at the files' native size; CMDR's pre-processor resizes them.

    Args:
        root (str | Path): A folder of samples (see :func:`find_sample_pairs`).

    Raises:
        DataFileError: See :func:`find_sample_pairs`.

    Example:
        >>> import tempfile
        >>> import numpy as np, tifffile
        >>> from PIL import Image as PILImage
        >>> root = Path(tempfile.mkdtemp())
        >>> PILImage.fromarray(np.zeros((6, 8, 3), np.uint8)).save(root / "part1.png")
        >>> tifffile.imwrite(root / "part1.tiff", np.ones((6, 8, 3), np.float32))
        >>> dataset = RGBXYZPredictDataset(root)
        >>> item = dataset[0]
        >>> len(dataset), item.image.shape, item.depth_map.shape, Path(item.depth_path).name
        (1, torch.Size([3, 6, 8]), torch.Size([3, 6, 8]), 'part1.tiff')
        >>> dataset.collate_fn([item]).image.shape
        torch.Size([1, 3, 6, 8])
    """

    def __init__(self, root: str | Path) -> None:
        super().__init__()
        self.root = Path(root)
        self.pairs = find_sample_pairs(root)

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> DepthItem:
        """Read one sample.

        Args:
            index (int): Sample index.

        Returns:
            DepthItem: The sample.

        Raises:
            DataFileError: If a file is unreadable or RGB and point cloud sizes differ.
        """
        rgb_path, xyz_path = self.pairs[index]
        rgb, xyz = read_rgb(rgb_path), read_xyz(xyz_path)
        if rgb.shape[:2] != xyz.shape[:2]:
            msg = (
                f"{xyz_path}: point cloud is {xyz.shape[1]}x{xyz.shape[0]} (WxH) but {rgb_path} is "
                f"{rgb.shape[1]}x{rgb.shape[0]}; the organized cloud must have one point per pixel"
            )
            raise DataFileError(msg)
        image = Image(to_dtype_image(torch.from_numpy(rgb).permute(2, 0, 1), torch.float32, scale=True))
        return DepthItem(
            image=image,
            depth_map=torch.from_numpy(xyz).permute(2, 0, 1).contiguous(),
            image_path=str(rgb_path),
            depth_path=str(xyz_path),
        )

    @property
    def collate_fn(self) -> Callable[[list[DepthItem]], DepthBatch]:
        """Anomalib's ``DepthBatch.collate`` (samples of one batch must share a size; batch size 1 always works)."""
        return DepthBatch.collate
