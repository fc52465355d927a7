# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0

"""Datamodule for a user's own RGB + organized point cloud tree in the MVTec 3D-AD layout.

The tree is ``<root>/<category>/...`` (or, with ``category=None``, ``<root>`` is itself the category
folder)::

    <category>/
        train/good/{rgb/000.png, xyz/000.tiff}
        validation/good/{rgb/000.png, xyz/000.tiff}          (optional; see ``val_split_mode``)
        test/<good | defect type>/{rgb/000.png, xyz/000.tiff, gt/000.png}

:class:`RGBXYZFolder` is also the base of :class:`~anomalib_cmdr.data.MVTec3DAD` (which adds the download)
and :class:`~anomalib_cmdr.data.Synthetic3D` (which adds the generator).

Validation split (``val_split_mode``): the default ``"same_as_test"`` validates on the test set, like
anomalib's ``MVTec3D``; anomalib's ``PostProcessor`` learns its thresholds on validation batches, and the
test set is the only split with anomalies. ``"from_dir"`` validates on the tree's own ``validation/good``
folder instead, which holds normal samples only: fine for monitoring a loss or early stopping on unseen
normals, but thresholds and AUROC learned from it are degenerate (no anomalous example). The other
anomalib modes (``"from_test"``, ``"from_train"``, ``"synthetic"``, ``"none"``) work as in anomalib.

Example:
    >>> from anomalib_cmdr.data import RGBXYZFolder
    >>> datamodule = RGBXYZFolder(root="./datasets/parts", category="housing")  # doctest: +SKIP
    >>> datamodule.setup()  # doctest: +SKIP
    >>> batch = next(iter(datamodule.test_dataloader()))  # doctest: +SKIP
    >>> batch.depth_map.shape  # the files' size; the model's pre-processor resizes  # doctest: +SKIP
    torch.Size([32, 3, 800, 800])
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from anomalib.data.datamodules.base.image import AnomalibDataModule
from anomalib.data.utils import Split, TestSplitMode, ValSplitMode
from torch.utils.data import DataLoader
from torchvision.transforms.v2 import Transform

from anomalib_cmdr.data.background import remove_background_tree
from anomalib_cmdr.data.dataset import RGBXYZDataset
from anomalib_cmdr.data.samples import TREE_MODALITIES, make_rgbxyz_samples
from anomalib_cmdr.data.sampling import EpochShuffleSampler

__all__ = ["DEFAULT_NUM_WORKERS", "RGBXYZFolder"]

DEFAULT_NUM_WORKERS = min(8, os.cpu_count() or 1)
"""Data-loader workers by default: one per CPU core, at most 8 (anomalib's 8 oversubscribe small machines)."""


class RGBXYZFolder(AnomalibDataModule):
    """Datamodule over an MVTec 3D-AD-like RGB + xyz folder tree (no download).

    Args:
        root (str | Path): Folder holding the category folders, or the category folder itself when
            ``category`` is ``None``.
        category (str | None): Category folder name below ``root``. Defaults to ``None``.
        train_batch_size (int): Training batch size. Defaults to ``32``.
        eval_batch_size (int): Validation / test batch size. Defaults to ``32``.
        num_workers (int): Data-loader workers. Defaults to the machine's CPU count, at most 8.
        train_augmentations (Transform | None): Training augmentations. Defaults to ``None``.
        val_augmentations (Transform | None): Validation augmentations. Defaults to ``None``.
        test_augmentations (Transform | None): Test augmentations. Defaults to ``None``.
        augmentations (Transform | None): Augmentations for the stages without their own. Defaults to
            ``None``. Geometric transforms also move the point cloud (nearest neighbour).
        test_split_mode (TestSplitMode | str): How to obtain the test set. Defaults to ``"from_dir"``.
        test_split_ratio (float): Fraction of training images moved to the test set when the test folder has
            no normal images. Defaults to ``0.2``.
        val_split_mode (ValSplitMode | str): How to obtain the validation set; ``"from_dir"`` uses the
            tree's ``validation`` folder (see the module docstring). Defaults to ``"same_as_test"``.
        val_split_ratio (float): Fraction used by the ``from_*`` split modes. Defaults to ``0.5``.
        seed (int | None): Seed of the random splits. Defaults to ``None``.

        remove_background (bool): Use the paper's background removal (plane + largest cluster), computed once
            into the plug-in's cache by :meth:`prepare_data` (or lazily on first read). Defaults to
            ``False``.
        cache_dir (str | Path | None): Cache directory for ``remove_background``. Defaults to
            ``<root>/../.anomalib_cmdr_cache/<root name>``; never inside ``root``.
        normal_dirs (Sequence[str]): Names of the label folders holding normal samples (``train/`` may hold
            only these; a normal-looking name such as ``Good`` or ``OK`` that is not listed is refused, never
            counted as a defect). Defaults to ``("good",)``.
        remove_background_kwargs (dict[str, Any] | None): Parameters of the background removal
            (:func:`~anomalib_cmdr.data.background.remove_background`): its distance thresholds are in the point
            cloud's unit and tuned for MVTec 3D-AD (metres, its point density); set them for other scanners, e.g.
            ``{plane_distance_threshold: 4.0, plane_removal_distance: 5.0, dbscan_eps: 6.0}`` for millimetres.
            The cache is recomputed when they change. Defaults to ``None`` (the paper's).
        modality (str): Which files make a sample: ``"auto"`` (the modality folders the tree has: only ``xyz/``
            for a 3D scanner without camera, only ``rgb/``, or both), ``"rgb+xyz"``, ``"rgb"`` or ``"xyz"``.
            A missing RGB image is served all NaN and a missing point cloud all zero, the conventions of CMDR's
            missing-modality branches. Defaults to ``"auto"``.
        allow_incomplete (bool): Keep samples of an RGB + xyz tree that have only one of their two files (sensor
            dropouts) instead of refusing them: CMDR scores them with the other branch, and in training they
            train that modality's reconstruction head only. Defaults to ``False``.

    Example:
        >>> datamodule = RGBXYZFolder("./datasets/parts/housing", remove_background=True)  # doctest: +SKIP
        >>> datamodule.prepare_data()  # doctest: +SKIP
        >>> datamodule.setup()  # doctest: +SKIP
        >>> datamodule.test_data.samples.groupby("defect_type").size()  # doctest: +SKIP
    """

    def __init__(
        self,
        root: str | Path,
        category: str | None = None,
        train_batch_size: int = 32,
        eval_batch_size: int = 32,
        num_workers: int = DEFAULT_NUM_WORKERS,
        train_augmentations: Transform | None = None,
        val_augmentations: Transform | None = None,
        test_augmentations: Transform | None = None,
        augmentations: Transform | None = None,
        test_split_mode: TestSplitMode | str = TestSplitMode.FROM_DIR,
        test_split_ratio: float = 0.2,
        val_split_mode: ValSplitMode | str = ValSplitMode.SAME_AS_TEST,
        val_split_ratio: float = 0.5,
        seed: int | None = None,
        remove_background: bool = False,
        cache_dir: str | Path | None = None,
        normal_dirs: Sequence[str] = ("good",),
        remove_background_kwargs: dict[str, Any] | None = None,
        modality: str = "auto",
        allow_incomplete: bool = False,
    ) -> None:
        super().__init__(
            train_batch_size=train_batch_size,
            eval_batch_size=eval_batch_size,
            num_workers=num_workers,
            train_augmentations=train_augmentations,
            val_augmentations=val_augmentations,
            test_augmentations=test_augmentations,
            augmentations=augmentations,
            test_split_mode=test_split_mode,
            test_split_ratio=test_split_ratio,
            val_split_mode=val_split_mode,
            val_split_ratio=val_split_ratio,
            seed=seed,
        )
        self.root = Path(root)
        self._category_folder = category
        self.category = category if category is not None else self.root.resolve().name
        self.remove_background = remove_background
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.normal_dirs = (normal_dirs,) if isinstance(normal_dirs, str) else tuple(normal_dirs)
        self.remove_background_kwargs = dict(remove_background_kwargs or {})
        if modality not in TREE_MODALITIES:
            msg = f"modality={modality!r}: choose one of {TREE_MODALITIES}."
            raise ValueError(msg)
        self.modality = modality
        self.allow_incomplete = allow_incomplete

    @property
    def name(self) -> str:
        """Name of the data set: the folder that holds the category folders.

        anomalib uses it for the results folder and, with ``category``, to keep the sub-folders of each
        input (``test/<defect type>/rgb/``) in the visualizations' paths, so that samples of different
        defect types with the same file name do not overwrite each other.
        """
        dataset_root = self.root if self._category_folder is not None else self.root.parent
        return dataset_root.resolve().name or self.__class__.__name__

    @property
    def category_root(self) -> Path:
        """Folder of the category: ``root / category``, or ``root`` when no category was given."""
        return self.root / self._category_folder if self._category_folder is not None else self.root

    def prepare_data(self) -> None:
        """Fill the background-removal cache when ``remove_background`` is set (nothing to download)."""
        if self.remove_background:
            categories = [self._category_folder] if self._category_folder is not None else None
            remove_background_tree(
                self.root, categories=categories, cache_dir=self.cache_dir, **self.remove_background_kwargs
            )

    def _dataset(self, split: Split) -> RGBXYZDataset:
        """Dataset of one split of the category folder.

        Args:
            split (Split): Split to load.

        Returns:
            RGBXYZDataset: The split's dataset, configured with this datamodule's size and cache options.
        """
        return RGBXYZDataset(
            make_rgbxyz_samples(self.category_root, split, self.normal_dirs, self.modality, self.allow_incomplete),
            remove_background=self.remove_background,
            cache_dir=self.cache_dir,
            data_root=self.root,
            remove_background_kwargs=self.remove_background_kwargs,
        )

    def train_dataloader(self) -> DataLoader:
        """Training batches in an order that depends only on the seed and the epoch (resumable runs).

        The seed is the datamodule's ``seed``, else the global seed (``seed_everything``); see
        :class:`~anomalib_cmdr.data.sampling.EpochShuffleSampler`.

        Returns:
            DataLoader: The training data loader.
        """
        seed = self.seed if self.seed is not None else torch.initial_seed() % 2**31
        return DataLoader(
            dataset=self.train_data,
            sampler=EpochShuffleSampler(self.train_data, seed),
            batch_size=self.train_batch_size,
            num_workers=self.num_workers,
            collate_fn=self.external_collate_fn or self.train_data.collate_fn,
        )

    def _setup(self, _stage: str | None = None) -> None:
        """Create the train and test datasets, and the validation dataset for ``val_split_mode="from_dir"``.

        Args:
            _stage (str | None): Lightning stage, unused: all subsets are created at once.
        """
        self.train_data = self._dataset(Split.TRAIN)
        self.test_data = self._dataset(Split.TEST)
        if self.val_split_mode == ValSplitMode.FROM_DIR:
            self.val_data = self._dataset(Split.VAL)
