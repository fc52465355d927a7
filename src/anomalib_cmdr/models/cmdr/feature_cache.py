# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0

"""Feature cache: each training sample's frozen backbone outputs, computed once and reused every epoch.

CMDR's backbones are frozen and, without training augmentation, a training sample's input is the same in
every epoch, so its backbone outputs (and the point-cloud geometry behind them) are too. The cache keeps
them in the compact form of :class:`~anomalib_cmdr.models.cmdr.features.SampleFeatures` (about 9 MB a
sample at the paper's settings instead of the 231 MB of the 224x224x1152 3D feature map):

* in memory up to ``memory_limit`` bytes, then (``"auto"``) on disk, or only on disk (``"disk"``);
* keyed by the sample's files (path, size and modification time of the RGB and xyz files) under a
  fingerprint of everything that shapes the features (backbone names, arguments and weights, the
  pre-processing), so a changed file, backbone or weight file is never served stale;
* written atomically (temporary file + rename): an interrupted run or concurrent DDP processes never
  leave a half-written entry. Each DDP process caches the samples of its own shard.

Features assembled from the cache go through the same code as freshly computed ones
(:meth:`CMDRModel.assemble <anomalib_cmdr.models.cmdr.torch_model.CMDRModel.assemble>`), so training with
and without the cache gives the same results.

Example:
    >>> import torch
    >>> from anomalib_cmdr.models.cmdr.features import SampleFeatures
    >>> cache = FeatureCache("fingerprint", memory_limit=1 << 20)
    >>> cache.put("a.png|a.tiff", SampleFeatures(torch.zeros(4, 2, 2), None, None, (8, 8)))
    >>> cache.get("a.png|a.tiff").rgb.shape, cache.get("b.png|b.tiff")
    (torch.Size([4, 2, 2]), None)
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import torch

from .features import SampleFeatures

if TYPE_CHECKING:
    from torch import nn

logger = logging.getLogger(__name__)

FeatureCacheMode = Literal["auto", "memory", "disk", "off"]
FEATURE_CACHE_MODES = ("auto", "memory", "disk", "off")


def sample_key(paths: Iterable[str | None]) -> str | None:
    """The cache key of a sample: its files' paths, sizes and modification times.

    Args:
        paths (Iterable[str | None]): The sample's files (e.g. ``image_path`` and ``depth_path``).

    Returns:
        str | None: The key, or ``None`` when a file is unknown or missing (such a sample is not cached).

    Example:
        >>> folder = Path(tempfile.mkdtemp())
        >>> _ = (folder / "000.png").write_bytes(b"png!")
        >>> key = sample_key([str(folder / "000.png")])
        >>> key.startswith(f"{folder / '000.png'}:4:")
        True
        >>> print(sample_key([str(folder / "000.png"), None]), sample_key([str(folder / "missing.tiff")]))
        None None
    """
    parts = []
    for path in paths:
        if not path:
            return None
        try:
            stat = os.stat(path)
        except OSError:
            return None
        parts.append(f"{os.path.abspath(path)}:{stat.st_size}:{stat.st_mtime_ns}")
    return "|".join(parts) if parts else None


def fingerprint(config: dict[str, Any], modules: Iterable[nn.Module | None]) -> str:
    """A digest of what shapes the cached features: a configuration and the frozen modules' weights.

    Args:
        config (dict[str, Any]): Plain settings (backbone names, arguments, pre-processing, ...).
        modules (Iterable[nn.Module | None]): The frozen backbones (``None`` entries are skipped).

    Returns:
        str: A hex digest.

    Example:
        >>> from torch import nn
        >>> backbone = nn.Linear(4, 2)
        >>> digest = fingerprint({"rgb_backbone": "resnet18", "image_size": 128}, [backbone, None])
        >>> len(digest), digest == fingerprint({"image_size": 128, "rgb_backbone": "resnet18"}, [backbone])
        (64, True)
        >>> digest == fingerprint({"rgb_backbone": "resnet18", "image_size": 256}, [backbone])
        False
    """
    digest = hashlib.sha256(repr(sorted(config.items())).encode())
    for module in modules:
        if module is None:
            continue
        for name, tensor in module.state_dict().items():
            digest.update(name.encode())
            digest.update(tensor.detach().to("cpu").contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


class FeatureCache:
    """Compact per-sample features in memory (bounded) and/or on disk.

    Args:
        fingerprint (str): Digest of the model's feature settings (entries of other settings are separate).
        memory_limit (int): Bytes the in-memory entries may take; ``0``: none in memory.
        directory (str | Path | None): Folder for on-disk entries (created on first write); ``None``: no disk.

    Attributes:
        hits (int): Look-ups served from the cache.
        misses (int): Look-ups that were not.

    Example:
        >>> from anomalib_cmdr.models.cmdr.features import SampleFeatures
        >>> cache = FeatureCache("fingerprint", memory_limit=0, directory=tempfile.mkdtemp())  # on disk only
        >>> cache.put("a.png|a.tiff", SampleFeatures(torch.ones(4, 2, 2), None, None, (8, 8)))
        >>> len(cache), cache.get("a.png|a.tiff").rgb.shape, cache.get("b.png|b.tiff")
        (0, torch.Size([4, 2, 2]), None)
        >>> cache.hits, cache.misses
        (1, 1)
    """

    def __init__(self, fingerprint: str, memory_limit: int = 0, directory: str | Path | None = None) -> None:
        self.fingerprint = fingerprint
        self.memory_limit = int(memory_limit)
        self.directory = Path(directory) / fingerprint[:16] if directory is not None else None
        self.memory: dict[str, SampleFeatures] = {}
        self.memory_bytes = 0
        self.hits = self.misses = 0
        self._warned_full = False

    def _file(self, key: str) -> Path:
        return self.directory / f"{hashlib.sha256(key.encode()).hexdigest()[:40]}.pt"  # type: ignore[operator]

    def get(self, key: str) -> SampleFeatures | None:
        """The features stored under ``key``.

        Args:
            key (str): From :func:`sample_key`.

        Returns:
            SampleFeatures | None: The features (on the CPU), or ``None`` when absent.
        """
        features = self.memory.get(key)
        if features is None and self.directory is not None:
            path = self._file(key)
            if path.is_file():
                try:
                    features = SampleFeatures.from_state(torch.load(path, map_location="cpu", weights_only=True))
                except Exception as error:  # any unreadable entry (truncated, foreign): recompute it
                    logger.debug("Feature cache entry %s is unreadable (%s): recomputing.", path, error)
                    path.unlink(missing_ok=True)
        if features is None:
            self.misses += 1
        else:
            self.hits += 1
        return features

    def put(self, key: str, features: SampleFeatures) -> None:
        """Store ``features`` under ``key``: in memory while within the limit, else on disk (if any).

        Args:
            key (str): From :func:`sample_key`.
            features (SampleFeatures): The sample's features (moved to the CPU).
        """
        features = features.to("cpu")
        if self.memory_bytes + features.nbytes <= self.memory_limit:
            self.memory[key] = features
            self.memory_bytes += features.nbytes
            return
        if self.directory is not None:
            self._write(self._file(key), features)
        elif not self._warned_full:
            self._warned_full = True
            logger.warning(
                "CMDR feature cache: the memory limit (%.2f GiB) is reached after %d samples; later samples are "
                "recomputed every epoch. Raise feature_cache_memory_gb or use feature_cache='auto'/'disk'.",
                self.memory_limit / 2**30,
                len(self.memory),
            )

    def _write(self, path: Path, features: SampleFeatures) -> None:
        """Write one entry atomically (temporary file in the same folder, then rename)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".tmp")
        os.close(handle)
        try:
            torch.save(features.state(), temporary)
            os.replace(temporary, path)
        finally:
            Path(temporary).unlink(missing_ok=True)

    def __len__(self) -> int:
        """Entries held in memory."""
        return len(self.memory)


class FeatureCacheMixin:
    """Lightning side of the feature cache: set it up for ``fit``, serve training batches from it.

    For a Lightning module whose ``model`` is a :class:`~anomalib_cmdr.models.cmdr.torch_model.CMDRModel`,
    with the attributes ``feature_cache`` (a :data:`FeatureCacheMode`) and ``feature_cache_memory_gb``.
    ``"auto"`` caches when it is exact: the datamodule applies no training augmentation (the model's own
    resize is deterministic). Entries on disk go to ``<default_root_dir>/feature_cache``.

    Example:
        >>> from anomalib_cmdr import CMDR
        >>> model = CMDR(rgb_backbone="resnet18", rgb_layers=[1], modality="rgb", image_size=32, pretrained=False,
        ...              feature_cache="memory", feature_cache_memory_gb=1.0)
        >>> isinstance(model, FeatureCacheMixin), model.feature_cache
        (True, 'memory')
        >>> engine.fit(model, datamodule=datamodule)  # epochs after the first read the cache  # doctest: +SKIP
    """

    model: Any
    feature_cache: FeatureCacheMode
    feature_cache_memory_gb: float
    _feature_store: FeatureCache | None = None

    def setup_feature_cache(self) -> FeatureCache | None:
        """Create the cache for this fit according to ``feature_cache`` (``None`` when it is off).

        Returns:
            FeatureCache | None: The cache.
        """
        mode = self.feature_cache
        trainer = self._trainer  # type: ignore[attr-defined]
        datamodule = getattr(trainer, "datamodule", None) if trainer is not None else None
        augmented = datamodule is None or getattr(datamodule, "train_augmentations", None) is not None
        if mode == "off" or (mode == "auto" and augmented):
            if mode == "auto":
                logger.info("CMDR feature cache off: the training data are augmented or not from a datamodule.")
            self._feature_store = None
            return None
        if augmented:
            logger.warning(
                "feature_cache=%r with training augmentation: every epoch reuses the first epoch's augmented "
                "samples' features.",
                mode,
            )
        root = Path(trainer.default_root_dir) if trainer is not None else Path.cwd()
        directory = root / "feature_cache" if mode in {"auto", "disk"} else None
        memory = 0 if mode == "disk" else int(self.feature_cache_memory_gb * 2**30)
        self._feature_store = FeatureCache(self._feature_fingerprint(), memory, directory)
        return self._feature_store

    def _feature_fingerprint(self) -> str:
        """Digest of the feature settings: backbone arguments and weights, pre-processing."""
        keys = ("rgb_backbone", "rgb_layers", "rgb_model_kwargs", "xyz_backbone", "xyz_model_kwargs", "modality")
        hparams = getattr(self, "hparams", {})
        config: dict[str, Any] = {key: repr(hparams.get(key)) for key in keys}
        pre_processor = getattr(self, "pre_processor", None)
        if pre_processor is not None and hasattr(pre_processor, "checkpoint_config"):
            config["pre_processor"] = repr(pre_processor.checkpoint_config())
        return fingerprint(config, [self.model.rgb_backbone, self.model.xyz_backbone])

    def batch_features(self, batch: Any) -> Any:
        """The batch's features on the head grid, from the cache where it has them.

        Args:
            batch (Any): A pre-processed ``DepthBatch``.

        Returns:
            CMDRFeatures: The features (identical to ``model.extract_features`` of the batch's inputs).
        """
        rgb, xyz = self.model.inputs(batch)
        store = self._feature_store
        keys = _batch_keys(batch) if store is not None else None
        if store is None or keys is None:
            return self.model.extract_features(rgb, xyz)
        samples = [store.get(key) for key in keys]
        missing = [i for i, sample in enumerate(samples) if sample is None]
        if missing:
            index = torch.tensor(missing, device=(rgb if rgb is not None else xyz).device)
            fresh = self.model.sample_features(
                rgb.index_select(0, index) if rgb is not None else None,
                xyz.index_select(0, index) if xyz is not None else None,
            )
            for i, features in zip(missing, fresh, strict=True):
                store.put(keys[i], features)
                samples[i] = features
        device = (rgb if rgb is not None else xyz).device
        return self.model.assemble([sample.to(device) for sample in samples])  # type: ignore[union-attr]

    def on_fit_start(self) -> None:
        """Create the feature cache for this fit."""
        self.setup_feature_cache()
        super().on_fit_start()  # type: ignore[misc]

    def on_fit_end(self) -> None:
        """Report what the cache did and release its memory (disk entries stay for the next fit)."""
        store = self._feature_store
        if store is not None:
            logger.info(
                "CMDR feature cache: %d hits, %d misses; %d samples in memory (%.1f MB)%s.",
                store.hits,
                store.misses,
                len(store),
                store.memory_bytes / 2**20,
                f", others in {store.directory}" if store.directory is not None else "",
            )
        self._feature_store = None
        super().on_fit_end()  # type: ignore[misc]


def _batch_keys(batch: Any) -> list[str] | None:
    """One cache key per sample of ``batch`` from its file paths, or ``None`` if a sample has none."""
    images, depths = getattr(batch, "image_path", None), getattr(batch, "depth_path", None)
    if images is None and depths is None:
        return None
    size = len(images if images is not None else depths)
    keys = []
    for i in range(size):
        paths = [p[i] for p in (images, depths) if p is not None and p[i]]
        key = sample_key(paths) if paths else None
        if key is None:
            return None
        keys.append(key)
    return keys
