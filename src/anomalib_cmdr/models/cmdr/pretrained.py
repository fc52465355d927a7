# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0

"""Pretrained backbone weights of the Lightning module, loaded only when a run starts from scratch.

A CMDR checkpoint holds every weight, the frozen backbones' included. The Lightning module therefore
builds its backbones with random weights and loads the pretrained ones (timm hub, the Point-MAE release,
or the local ``rgb_weights``/``xyz_weights`` files) at the first moment they are needed: the start of a
fit, test, validation or prediction, an export, or a forward call. A checkpoint restored before that moment
(``load_from_checkpoint``, ``--ckpt_path``) marks them as loaded, so that a trained model loads offline
without the weight files. Random weights are never used in place of requested pretrained ones.

Example:
    >>> from anomalib_cmdr import CMDR
    >>> model = CMDR(rgb_backbone="resnet18", rgb_layers=[1], xyz_backbone="fpfh", pretrained=False)
    >>> model.backbone_weights_loaded  # random weights were asked for: nothing to load
    True
"""

from __future__ import annotations

import logging
from typing import Any

from .backbones.registry import get_xyz_backbone_variant

logger = logging.getLogger(__name__)


class PretrainedBackbonesMixin:
    """Deferred loading of the pretrained backbone weights (mixed into :class:`~.lightning_model.CMDR`).

    The class using it calls :meth:`request_backbone_weights` in ``__init__`` and has a ``model`` attribute
    with :meth:`~.torch_model.CMDRModel.load_pretrained_backbones`.

    Example:
        >>> from anomalib_cmdr import CMDR
        >>> model = CMDR(rgb_backbone="resnet18", rgb_layers=[1], modality="rgb", image_size=32)
        >>> isinstance(model, PretrainedBackbonesMixin), model.backbone_weights_loaded  # nothing downloaded yet
        (True, False)
        >>> model.ensure_backbone_weights()  # timm's resnet18 weights, from the hub or its cache  # doctest: +SKIP
        >>> model.backbone_weights_loaded  # doctest: +SKIP
        True
    """

    _weights_request: dict[str, Any] | None = None

    def request_backbone_weights(
        self,
        pretrained: bool,
        rgb_weights: str | None,
        xyz_weights: str | None,
        xyz_backbone: str,
        modality: str,
    ) -> None:
        """Remember which weights to load later, and reject impossible requests now.

        Args:
            pretrained (bool): Pretrained weights from the hub/release.
            rgb_weights (str | None): Local file for the 2D extractor.
            xyz_weights (str | None): Local file for the 3D extractor.
            xyz_backbone (str): The 3D variant's name.
            modality (str): ``"rgb+xyz"``, ``"rgb"`` or ``"xyz"``.

        Raises:
            ValueError: If pretrained weights are asked of a 3D variant that has none, or a weight file is given
                to a weight-free extractor.
        """
        if "xyz" in modality:
            variant = get_xyz_backbone_variant(xyz_backbone)
            if variant.weight_free and xyz_weights is not None:
                msg = f"xyz_weights: xyz_backbone={xyz_backbone!r} has no weights (it is hand-crafted); remove it."
                raise ValueError(msg)
            if pretrained and xyz_weights is None and variant.weights is None and not variant.weight_free:
                msg = (
                    f"xyz_backbone={xyz_backbone!r} has no pretrained weights: pass pretrained=False for random "
                    "weights, or a compatible checkpoint with xyz_weights=/path/to/file."
                )
                raise ValueError(msg)
        # pretrained=False with one weight file loads that backbone only; the other keeps its random weights
        backbones = tuple(
            name for name, path in (("rgb", rgb_weights), ("xyz", xyz_weights)) if pretrained or path is not None
        )
        wanted = {"rgb_weights": rgb_weights, "xyz_weights": xyz_weights, "backbones": backbones}
        self._weights_request = wanted if backbones else None

    @property
    def backbone_weights_loaded(self) -> bool:
        """Whether the backbones hold their final weights (pretrained, from a checkpoint, or random by choice)."""
        return self._weights_request is None

    def ensure_backbone_weights(self) -> None:
        """Load the requested pretrained weights now, unless loaded already or restored from a checkpoint."""
        if self._weights_request is None:
            return
        loaded = self.model.load_pretrained_backbones(**self._weights_request)  # type: ignore[attr-defined]
        logger.info("Loaded pretrained weights of the %s backbone(s).", " and ".join(loaded) or "no")
        self._weights_request = None

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """A checkpoint holds every weight: nothing left to load."""
        self._weights_request = None
        super().on_load_checkpoint(checkpoint)  # type: ignore[misc]

    def on_fit_start(self) -> None:
        """Before the feature cache and calibration see the backbones."""
        self.ensure_backbone_weights()
        super().on_fit_start()  # type: ignore[misc]

    def on_validation_start(self) -> None:
        """Load the weights if nothing loaded them yet."""
        self.ensure_backbone_weights()
        super().on_validation_start()  # type: ignore[misc]

    def on_test_start(self) -> None:
        """Load the weights if nothing loaded them yet."""
        self.ensure_backbone_weights()
        super().on_test_start()  # type: ignore[misc]

    def on_predict_start(self) -> None:
        """Load the weights if nothing loaded them yet."""
        self.ensure_backbone_weights()
        super().on_predict_start()  # type: ignore[misc]
