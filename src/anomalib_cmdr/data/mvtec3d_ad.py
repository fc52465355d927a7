# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0

"""MVTec 3D-AD datamodule for RGB + organized point cloud models.

Differences from anomalib's own ``MVTec3D`` datamodule (whose download it reuses):

* the point cloud is served as ``(3, H, W)`` x, y, z in metres, validated (bad files raise
  :class:`~anomalib_cmdr.data.DataFileError` naming the file; NaN / inf points become holes with a warning);
* items at their native size: the model's pre-processor resizes RGB, point cloud and mask together
  (RGB square-padded by edge replication then bicubic, point cloud and mask nearest neighbour), as the
  paper does;
* optional ``remove_background``: the paper's background removal, cached outside the data tree;
* ``val_split_mode="from_dir"`` uses the dataset's own ``validation/good`` folder (anomalib ignores it);
  the default stays ``"same_as_test"`` like anomalib, because ``validation/good`` has no anomalies and
  thresholds learned on it would be degenerate;
* train samples do not crash with pandas >= 3 (anomalib's NaN ``mask_path`` bug);
* the sample table keeps ``defect_type`` and ``sample_id`` columns for per-defect-type benchmarks.

License:
    MVTec 3D-AD is released under CC BY-NC-SA 4.0 (https://creativecommons.org/licenses/by-nc-sa/4.0/).

Reference:
    Paul Bergmann, Xin Jin, David Sattlegger, Carsten Steger: The MVTec 3D-AD Dataset for Unsupervised 3D
    Anomaly Detection and Localization. VISAPP 2022, 202-213. DOI: 10.5220/0010865000003124

Example:
    >>> from anomalib_cmdr.data import MVTec3DAD
    >>> datamodule = MVTec3DAD(root="./datasets/MVTec3D", category="bagel")  # doctest: +SKIP
    >>> datamodule.prepare_data()  # downloads the archive if the category folder is missing  # doctest: +SKIP
    >>> datamodule.setup()  # doctest: +SKIP
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from anomalib.data.datamodules.depth.mvtec_3d import DOWNLOAD_INFO
from anomalib.data.datasets.depth.mvtec_3d import CATEGORIES
from anomalib.data.utils import TestSplitMode, ValSplitMode, download_and_extract
from anomalib.utils.path import resolve_dataset_root
from torchvision.transforms.v2 import Transform

from anomalib_cmdr.data.folder import DEFAULT_NUM_WORKERS, RGBXYZFolder

__all__ = ["CATEGORIES", "MVTec3DAD"]

logger = logging.getLogger(__name__)


class MVTec3DAD(RGBXYZFolder):
    """MVTec 3D-AD datamodule (RGB + xyz), downloading the dataset when the category is missing.

    Args:
        root (str | Path | None): Folder holding the MVTec 3D-AD categories; ``None`` for anomalib's
            dataset cache. Defaults to ``"./datasets/MVTec3D"``.
        category (str): Category, one of :data:`CATEGORIES`. Defaults to ``"bagel"``.
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
        val_split_mode (ValSplitMode | str): ``"same_as_test"`` (default, like anomalib) or ``"from_dir"``
            for the dataset's ``validation/good`` folder (normal samples only), or any other anomalib mode.
        val_split_ratio (float): Fraction used by the ``from_*`` split modes. Defaults to ``0.5``.
        seed (int | None): Seed of the random splits. Defaults to ``None``.

        remove_background (bool): Use the paper's background removal, cached by :meth:`prepare_data`. Defaults to
            ``False``.
        remove_background_kwargs (dict[str, Any] | None): Parameters of the background removal (see
            :class:`~anomalib_cmdr.data.RGBXYZFolder`). Defaults to ``None`` (the paper's).
        cache_dir (str | Path | None): Cache directory for ``remove_background``. Defaults to
            ``<root>/../.anomalib_cmdr_cache/<root name>``.

    Example:
        >>> datamodule = MVTec3DAD(category="cookie", remove_background=True)  # doctest: +SKIP
        >>> datamodule.prepare_data()  # doctest: +SKIP
    """

    def __init__(
        self,
        root: str | Path | None = "./datasets/MVTec3D",
        category: str = "bagel",
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
        remove_background_kwargs: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(
            root=resolve_dataset_root(root, "MVTec3D"),
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
            remove_background_kwargs=remove_background_kwargs,
        )
        if category not in CATEGORIES:
            logger.warning(
                "%r is not an MVTec 3D-AD category %s; expecting it under %s", category, CATEGORIES, self.root
            )

    def prepare_data(self) -> None:
        """Download and extract MVTec 3D-AD if the category folder is missing, then fill the cache if asked."""
        if self.category_root.is_dir():
            logger.info("Found the dataset.")
        else:
            download_and_extract(self.root, DOWNLOAD_INFO)
        super().prepare_data()
