# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0

"""Datamodules over folders of raw scans: :class:`ScanFolder` (yours) and :class:`SyntheticScans` (generated).

Both serve the scans' chunks (:mod:`~anomalib_cmdr.data.scans.dataset`) to CMDR's 3D branch; run CMDR with
``modality: xyz`` and ``image_size`` equal to the chunk side (96 for the default 9,216-point chunks), e.g.
``configs/model/cmdr_scan.yaml``. Metrics are those of any anomalib run: ``image_*`` are chunk-level (each
chunk is a sample), ``pixel_*`` point-level on the chunk grids. The scan-level results (scores re-assembled on
the scans, coloured PLY, PNG, ``scan_scores.csv``, ``scan_AUROC`` and ``point_AUROC`` over the scans' own
points) come from the :class:`~anomalib_cmdr.data.scans.report.ScanReport` callback, which the config adds.

Example:
    >>> from anomalib_cmdr.data import ScanFolder
    >>> datamodule = ScanFolder("./datasets/foam_scans", chunk_size=9216, chunking="tiles")  # doctest: +SKIP

From the stock CLI::

    anomalib train -c configs/model/cmdr_scan.yaml --data anomalib_cmdr.data.ScanFolder --data.root ./scans
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import torch
from anomalib.data.datamodules.base.image import AnomalibDataModule
from anomalib.data.utils import Split, TestSplitMode, ValSplitMode
from torch.utils.data import DataLoader
from torchvision.transforms.v2 import Transform

from anomalib_cmdr.data.folder import DEFAULT_NUM_WORKERS
from anomalib_cmdr.data.sampling import EpochShuffleSampler
from anomalib_cmdr.data.scans.chunking import ChunkingMethod, Remainder, ScanChunker
from anomalib_cmdr.data.scans.dataset import ScanChunkDataset, make_chunk_samples, make_scan_samples
from anomalib_cmdr.data.scans.synthetic import DEFECT_TYPES, SETTINGS_FILE, synthesize_scans

__all__ = ["ScanFolder", "SyntheticScans"]

logger = logging.getLogger(__name__)


class ScanFolder(AnomalibDataModule):
    """Datamodule over a folder of raw point-cloud scans, cut into chunks for CMDR's 3D branch.

    Layout (see :mod:`~anomalib_cmdr.data.scans.dataset`): ``train/good/*.ply``, ``test/good/*.ply`` and
    ``test/<defect type>/*.ply`` with ``<stem>.labels.txt`` per-point labels; ``.pcd``, ``.xyz``, ``.txt`` and
    ``.npy`` scans work the same way.

    Args:
        root (str | Path): The scan folder, or the folder holding it when ``category`` is given.
        category (str | None): Sub-folder of ``root`` holding the scans. Defaults to ``None``.
        chunk_size (int): Points per chunk, a square number. Defaults to ``9216`` (96x96, the paper's).
        chunking (ChunkingMethod): ``"sequential"`` (the file's point order: the paper's) or ``"tiles"`` (spatial
            tiles, for files whose point order is arbitrary). Defaults to ``"sequential"``.
        remainder (Remainder): The last, partial chunk of a scan: ``"pad"`` or ``"drop"``. Defaults to
            ``"pad"``.
        anomalous_fraction (float): A chunk is anomalous when at least this fraction of its points are.
            Defaults to ``0.0025`` (the paper's 0.25 %).
        z_is_height (bool): The scans' z grows towards the sensor (a profilometer's height); ``False`` for depth.
            Defaults to ``True``.
        normal_dirs (Sequence[str]): Names of the label folders of normal scans. Defaults to ``("good",)``.
        cache_dir (str | Path | None): The plug-in's cache directory for this data (the chunk cache goes to its
            ``scans/`` sub-folder); ``None``: ``<root>/../.anomalib_cmdr_cache/<root name>``. Defaults to ``None``.
        train_batch_size (int): Training batch size (chunks). Defaults to ``16``.
        eval_batch_size (int): Validation / test batch size (chunks). Defaults to ``16``.
        num_workers (int): Data-loader workers. Defaults to the machine's CPU count, at most 8.
        train_augmentations (Transform | None): Training augmentations. Defaults to ``None``.
        val_augmentations (Transform | None): Validation augmentations. Defaults to ``None``.
        test_augmentations (Transform | None): Test augmentations. Defaults to ``None``.
        augmentations (Transform | None): Augmentations of the stages without their own. Defaults to ``None``.
        test_split_mode (TestSplitMode | str): How to obtain the test set. Defaults to ``"from_dir"``.
        test_split_ratio (float): Fraction of training chunks moved to the test set when it has no normal
            chunk. Defaults to ``0.2``.
        val_split_mode (ValSplitMode | str): How to obtain the validation set (where anomalib learns its
            thresholds). Defaults to ``"same_as_test"``, as for :class:`~anomalib_cmdr.data.RGBXYZFolder`.
        val_split_ratio (float): Fraction used by the ``from_*`` split modes. Defaults to ``0.5``.
        seed (int | None): Seed of the random splits and the training order. Defaults to ``None``.

    Raises:
        ValueError: If a chunking argument is out of range.

    Example:
        >>> datamodule = ScanFolder("./datasets/foam_scans", num_workers=0)  # doctest: +SKIP
        >>> datamodule.setup()  # doctest: +SKIP
        >>> next(iter(datamodule.test_dataloader())).depth_map.shape  # doctest: +SKIP
        torch.Size([16, 3, 96, 96])
    """

    def __init__(
        self,
        root: str | Path,
        category: str | None = None,
        chunk_size: int = 9216,
        chunking: ChunkingMethod = "sequential",
        remainder: Remainder = "pad",
        anomalous_fraction: float = 0.0025,
        z_is_height: bool = True,
        normal_dirs: Sequence[str] = ("good",),
        cache_dir: str | Path | None = None,
        train_batch_size: int = 16,
        eval_batch_size: int = 16,
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
        self.chunker = ScanChunker(chunk_size, chunking, remainder, anomalous_fraction, z_is_height)
        self.normal_dirs = (normal_dirs,) if isinstance(normal_dirs, str) else tuple(normal_dirs)
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None

    @property
    def name(self) -> str:
        """Name of the data set: the folder holding the scan folder (anomalib's results and picture paths use it)."""
        dataset_root = self.root if self._category_folder is not None else self.root.parent
        return dataset_root.resolve().name or self.__class__.__name__

    @property
    def scan_root(self) -> Path:
        """The folder holding ``train/`` and ``test/``: ``root / category``, or ``root``."""
        return self.root / self._category_folder if self._category_folder is not None else self.root

    def _dataset(self, split: Split) -> ScanChunkDataset:
        """The chunks of one split (cut now, or read from the chunk cache)."""
        scans = make_scan_samples(self.scan_root, split, self.normal_dirs)
        chunks = make_chunk_samples(scans, self.chunker, self.scan_root, self.cache_dir)
        return ScanChunkDataset(chunks)

    def prepare_data(self) -> None:
        """Fill the chunk cache of every split (once, in the main process)."""
        for split in (Split.TRAIN, Split.TEST):
            self._dataset(split)

    def _setup(self, _stage: str | None = None) -> None:
        """Create the train and test datasets, and the validation dataset for ``val_split_mode="from_dir"``."""
        self.train_data = self._dataset(Split.TRAIN)
        self.test_data = self._dataset(Split.TEST)
        if self.val_split_mode == ValSplitMode.FROM_DIR:
            self.val_data = self._dataset(Split.VAL)

    def train_dataloader(self) -> DataLoader:
        """Training chunks in an order that depends only on the seed and the epoch (resumable runs).

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


class SyntheticScans(ScanFolder):
    """Synthetic profilometer scans of cut foam blocks (:mod:`~anomalib_cmdr.data.scans.synthetic`), generated on use.

    :meth:`prepare_data` writes the scans into ``root`` when it holds none (an existing folder is kept, with a
    warning if it was generated with other settings).

    Args:
        root (str | Path): Folder of the scans. Defaults to ``"./datasets/SyntheticScans"``.
        num_train (int): Normal training scans. Defaults to ``10``.
        num_test_good (int): Normal test scans. Defaults to ``4``.
        num_test_defect (int): Test scans per defect type. Defaults to ``3``.
        defect_types (Sequence[str] | None): Defect types (``burr``, ``tear``, ``missing``); ``None`` for all.
            Defaults to ``None``.
        points_per_profile (int): Points per profile. Defaults to ``192``.
        profiles (int): Profiles per scan. Defaults to ``288``.
        seed (int): Seed of the generator, the splits and the training order. Defaults to ``0``.
        **kwargs: The other arguments of :class:`ScanFolder` (chunking, batch sizes, workers, splits).

    Example:
        >>> datamodule = SyntheticScans("/tmp/scans", num_train=2, profiles=64, chunk_size=1024)  # doctest: +SKIP
        >>> datamodule.prepare_data()  # writes /tmp/scans  # doctest: +SKIP
    """

    def __init__(
        self,
        root: str | Path = "./datasets/SyntheticScans",
        num_train: int = 10,
        num_test_good: int = 4,
        num_test_defect: int = 3,
        defect_types: Sequence[str] | None = None,
        points_per_profile: int = 192,
        profiles: int = 288,
        seed: int = 0,
        chunk_size: int = 9216,
        chunking: ChunkingMethod = "sequential",
        remainder: Remainder = "pad",
        anomalous_fraction: float = 0.0025,
        cache_dir: str | Path | None = None,
        train_batch_size: int = 16,
        eval_batch_size: int = 16,
        num_workers: int = DEFAULT_NUM_WORKERS,
        val_split_mode: ValSplitMode | str = ValSplitMode.SAME_AS_TEST,
    ) -> None:
        super().__init__(
            root=root,
            chunk_size=chunk_size,
            chunking=chunking,
            remainder=remainder,
            anomalous_fraction=anomalous_fraction,
            cache_dir=cache_dir,
            train_batch_size=train_batch_size,
            eval_batch_size=eval_batch_size,
            num_workers=num_workers,
            val_split_mode=val_split_mode,
            seed=seed,
        )
        unknown = sorted(set(defect_types or ()) - set(DEFECT_TYPES))
        if unknown:
            msg = f"unknown defect type(s) {unknown}; choose from {list(DEFECT_TYPES)}"
            raise ValueError(msg)
        self.generator_settings = {
            "seed": seed,
            "num_train": num_train,
            "num_test_good": num_test_good,
            "num_test_defect": num_test_defect,
            "defect_types": list(defect_types) if defect_types is not None else None,
            "points_per_profile": points_per_profile,
            "profiles": profiles,
        }

    def _generate(self) -> None:
        """Write the scans unless the folder already holds generated ones."""
        if not (self.scan_root / SETTINGS_FILE).is_file():
            logger.info("Generating synthetic scans into %s.", self.scan_root)
        synthesize_scans(self.scan_root, **self.generator_settings)

    def prepare_data(self) -> None:
        """Generate the scans if needed, then fill the chunk cache."""
        self._generate()
        super().prepare_data()

    def _setup(self, _stage: str | None = None) -> None:
        """Generate the scans if :meth:`prepare_data` was skipped, then create the datasets."""
        self._generate()
        super()._setup(_stage)
