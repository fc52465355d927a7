# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0

"""Datamodule over the plug-in's synthetic RGB + 3D dataset, generated on first use.

The data are written by :func:`anomalib_cmdr.data.synthetic.synthesize` in the MVTec 3D-AD layout, the way
anomalib's datamodules download theirs: :meth:`Synthetic3D.prepare_data` generates ``<root>/<category>``
when that folder is missing, and leaves an existing one alone. Generation is deterministic in ``seed`` and
the sizes, so two machines with the same arguments get bit-identical files.

``synth_image_size`` is the size the files are rendered at; the model's ``image_size`` (its
pre-processor) is the size it sees them at.

Example:
    >>> from anomalib_cmdr.data import Synthetic3D
    >>> datamodule = Synthetic3D(root="./datasets/Synthetic3D", synth_image_size=64)  # doctest: +SKIP
    >>> datamodule.prepare_data()  # doctest: +SKIP
    >>> datamodule.setup()  # doctest: +SKIP
    >>> next(iter(datamodule.train_dataloader())).depth_map.shape  # native size  # doctest: +SKIP
    torch.Size([32, 3, 64, 64])
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from anomalib.data.utils import TestSplitMode, ValSplitMode
from torchvision.transforms.v2 import Transform

from anomalib_cmdr.data.folder import DEFAULT_NUM_WORKERS, RGBXYZFolder
from anomalib_cmdr.data.synthetic import CATEGORIES, DEFECT_TYPES, synthesize
from anomalib_cmdr.data.synthetic.writer import check_generated_with

__all__ = ["Synthetic3D"]

logger = logging.getLogger(__name__)


class Synthetic3D(RGBXYZFolder):
    """Synthetic RGB + 3D anomaly-detection datamodule (generated, never downloaded).

    Args:
        root (str | Path): Folder of the generated categories. Defaults to ``"./datasets/Synthetic3D"``.
        category (str): Synthetic category, one of ``anomalib_cmdr.data.synthetic.CATEGORIES``. Defaults to
            the first one.
        synth_image_size (int): Size (pixels, square) the data are generated at. Defaults to ``128``.
        num_train (int): Normal training samples. Defaults to ``20``.
        num_val (int): Normal samples of the ``validation`` folder. Defaults to ``5``.
        num_test_good (int): Normal test samples. Defaults to ``8``.
        num_test_defect (int): Test samples per defect type. Defaults to ``4``.
        defect_types (Sequence[str] | None): Defect types to generate; ``None`` for all. Defaults to
            ``None``.
        seed (int): Seed of the generator and of the random splits. Defaults to ``0``.
        train_batch_size (int): Training batch size. Defaults to ``32``.
        eval_batch_size (int): Validation / test batch size. Defaults to ``32``.
        num_workers (int): Data-loader workers. Defaults to the machine's CPU count, at most 8.
        train_augmentations (Transform | None): Training augmentations. Defaults to ``None``.
        val_augmentations (Transform | None): Validation augmentations. Defaults to ``None``.
        test_augmentations (Transform | None): Test augmentations. Defaults to ``None``.
        augmentations (Transform | None): Augmentations for the stages without their own. Defaults to
            ``None``.
        test_split_mode (TestSplitMode | str): How to obtain the test set. Defaults to ``"from_dir"``.
        test_split_ratio (float): Fraction of training images moved to the test set when the test folder has
            no normal images. Defaults to ``0.2``.
        val_split_mode (ValSplitMode | str): ``"same_as_test"`` (default) or ``"from_dir"`` for the
            generated ``validation/good`` folder (normal samples only), or any other anomalib mode.
        val_split_ratio (float): Fraction used by the ``from_*`` split modes. Defaults to ``0.5``.

        remove_background (bool): Apply the MVTec 3D-AD background removal (cached). Defaults to ``False``.
        cache_dir (str | Path | None): Cache directory for ``remove_background``. Defaults to
            ``<root>/../.anomalib_cmdr_cache/<root name>``.

    Raises:
        ValueError: If ``category`` is not a synthetic category.

    Example:
        >>> datamodule = Synthetic3D(category="disc", synth_image_size=64, num_train=4)  # doctest: +SKIP
        >>> datamodule.prepare_data()  # writes ./datasets/Synthetic3D/disc  # doctest: +SKIP
    """

    def __init__(
        self,
        root: str | Path = "./datasets/Synthetic3D",
        category: str = CATEGORIES[0],
        synth_image_size: int = 128,
        num_train: int = 20,
        num_val: int = 5,
        num_test_good: int = 8,
        num_test_defect: int = 4,
        defect_types: Sequence[str] | None = None,
        seed: int = 0,
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
        remove_background: bool = False,
        cache_dir: str | Path | None = None,
    ) -> None:
        if category not in CATEGORIES:
            msg = f"unknown synthetic category {category!r}; choose one of {list(CATEGORIES)}"
            raise ValueError(msg)
        super().__init__(
            root=root,
            category=category,
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
            remove_background=remove_background,
            cache_dir=cache_dir,
        )
        self.synth_image_size = synth_image_size
        self.num_train = num_train
        self.num_val = num_val
        self.num_test_good = num_test_good
        self.num_test_defect = num_test_defect
        self.defect_types = list(defect_types) if defect_types is not None else None

    def _settings(self) -> dict:
        """The generator settings this datamodule asks for (compared with an existing folder's record)."""
        return {
            "image_size": self.synth_image_size,
            "seed": self.seed,
            "num_train": self.num_train,
            "num_val": self.num_val,
            "num_test_good": self.num_test_good,
            "num_test_defect": self.num_test_defect,
            "defect_types": sorted(self.defect_types or DEFECT_TYPES),
        }

    def prepare_data(self) -> None:
        """Generate the category if its folder is missing (an existing folder is kept), then fill the cache."""
        if self.category_root.is_dir():
            check_generated_with(self.category_root, self._settings())
            logger.info("Found the dataset.")
        else:
            synthesize(
                self.root,
                categories=[self.category],
                image_size=self.synth_image_size,
                seed=self.seed,
                num_train=self.num_train,
                num_val=self.num_val,
                num_test_good=self.num_test_good,
                num_test_defect=self.num_test_defect,
                defect_types=self.defect_types,
            )
        super().prepare_data()
