# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0

"""The dense part of a trained CMDR as one traceable module: what ONNX and OpenVINO export.

It runs the RGB normalisation and 2D backbone, the 3D encoder on pre-computed groups (Point-MAE) or the
pre-computed per-pixel descriptors (FPFH), the per-pixel interpolation as a dense gather, the paper's
pooling, the four heads, the calibration (if any), the fusion and the map normalisation, then anomalib's
post-processor (score/map normalisation and thresholds), with the torch model's own modules and functions.
Its inputs come from :class:`~anomalib_cmdr.deploy.inputs.GraphInputBuilder`.

Example:
    >>> import torch
    >>> from anomalib_cmdr import CMDRModel
    >>> model = CMDRModel(rgb_backbone="resnet18", rgb_layers=[1], modality="rgb", grid_size=16,
    ...                   pretrained=False).eval()
    >>> graph = CMDRDeployGraph(model, post_processor=None, image_size=(32, 32))
    >>> [out.shape for out in graph(torch.rand(2, 3, 32, 32))]
    [torch.Size([2]), torch.Size([2, 1, 32, 32])]
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from anomalib.data import InferenceBatch
from torch import nn

from anomalib_cmdr.models.cmdr.features import rgb_tokens, token_features, xyz_tokens
from anomalib_cmdr.models.cmdr.pre_processor import IMAGENET_MEAN, IMAGENET_STD
from anomalib_cmdr.models.cmdr.torch_model import CMDRModel

from .inputs import graph_input_names

OUTPUTS = ("pred_score", "pred_label", "anomaly_map", "pred_mask")
"""Output names of the exported graph (anomalib's), those the post-processor gives."""


def xyz_input_kind(model: CMDRModel) -> str | None:
    """How the model's 3D branch enters the graph: ``"groups"`` (Point-MAE), ``"features"`` (FPFH) or ``None``.

    Example:
        >>> model = CMDRModel(rgb_backbone="resnet18", rgb_layers=[1], modality="rgb", grid_size=16, pretrained=False)
        >>> print(xyz_input_kind(model))
        None
        >>> model = CMDRModel(rgb_backbone="resnet18", rgb_layers=[1], xyz_backbone="pointmae_tiny",
        ...                   xyz_model_kwargs={"num_group": 16, "group_size": 16}, grid_size=16, pretrained=False)
        >>> xyz_input_kind(model)
        'groups'
    """
    if model.xyz_backbone is None:
        return None
    return "groups" if hasattr(model.xyz_backbone, "group_tokens_dense") else "features"


class CMDRDeployGraph(nn.Module):
    """A trained :class:`CMDRModel` (and its post-processor) as a module of dense tensor inputs.

    Args:
        model (CMDRModel): The trained model (eval mode).
        post_processor (nn.Module | None): anomalib's post-processor, or ``None`` for raw scores and maps.
        image_size (Sequence[int]): ``(H, W)`` of the inputs.
        mean (Sequence[float]): RGB normalisation mean. Defaults to ImageNet's.
        std (Sequence[float]): RGB normalisation standard deviation. Defaults to ImageNet's.

    Example:
        >>> model = CMDRModel(rgb_backbone="resnet18", rgb_layers=[1], modality="rgb", grid_size=16,
        ...                   pretrained=False).eval()
        >>> graph = CMDRDeployGraph(model, post_processor=None, image_size=(32, 32))
        >>> graph.input_names, [tensor.shape for tensor in graph.example_inputs(batch=2)]
        (['image'], [torch.Size([2, 3, 32, 32])])
        >>> score, anomaly_map = graph(*graph.example_inputs(batch=2))
        >>> score.shape, anomaly_map.shape
        (torch.Size([2]), torch.Size([2, 1, 32, 32]))
    """

    def __init__(
        self,
        model: CMDRModel,
        post_processor: nn.Module | None,
        image_size: Sequence[int],
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
    ) -> None:
        super().__init__()
        self.model = model
        self.post_processor = post_processor
        self.image_size = (int(image_size[0]), int(image_size[1]))
        self.xyz_input = xyz_input_kind(model)
        self.input_names = graph_input_names(model.modality, self.xyz_input)
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        self.output_names = [name for name, value in self._outputs(self.example_inputs(1)).items() if value is not None]

    def example_inputs(self, batch: int = 1) -> tuple[torch.Tensor, ...]:
        """Zero inputs of the right shapes and dtypes (a valid trace input; the geometry gives real ones).

        Args:
            batch (int): Batch size. Defaults to ``1``.

        Returns:
            tuple[torch.Tensor, ...]: One tensor per :attr:`input_names` entry.
        """
        height, width = self.image_size
        backbone = self.model.xyz_backbone
        shapes = {
            "image": ((batch, 3, height, width), torch.float32),
            "xyz_features": ((batch, getattr(backbone, "out_dim", 0), height, width), torch.float32),
            "neighbourhoods": ((batch, getattr(backbone, "num_group", 0), getattr(backbone, "group_size", 0), 3), None),
            "centres": ((batch, getattr(backbone, "num_group", 0), 3), None),
            "interp_index": ((batch, height * width, 3), torch.long),
            "interp_weight": ((batch, height * width, 3), None),
        }
        inputs = []
        for name in self.input_names:
            shape, dtype = shapes[name]
            inputs.append(torch.zeros(shape, dtype=dtype or torch.float32))
        return tuple(inputs)

    def _point_feature_map(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """Per-pixel 3D features ``(B, C, H, W)`` from the graph inputs."""
        height, width = self.image_size
        if self.xyz_input == "features":
            return inputs["xyz_features"]
        backbone = self.model.xyz_backbone
        tokens = backbone.group_tokens_dense(inputs["neighbourhoods"])  # type: ignore[union-attr]
        centre_features = backbone.centre_features(tokens, inputs["centres"])  # type: ignore[union-attr]
        channels = centre_features.shape[-1]
        rows = centre_features.reshape(-1, channels)[inputs["interp_index"].reshape(-1)]
        rows = rows.reshape(-1, height * width, 3, channels)
        per_pixel = (rows * inputs["interp_weight"].unsqueeze(-1)).sum(2)  # the torch model's PointFeatures.expand
        return per_pixel.transpose(1, 2).reshape(-1, channels, height, width)

    def _outputs(self, args: tuple[torch.Tensor, ...]) -> dict[str, torch.Tensor | None]:
        inputs = dict(zip(self.input_names, args, strict=True))
        model = self.model
        f2d = f3d = rgb_present = None
        if model.rgb_backbone is not None:
            image = inputs["image"]
            if model.xyz_backbone is not None:  # an image that is all NaN marks a missing one (3D branch)
                rgb_present = torch.isfinite(image).flatten(1).all(dim=1)
                image = torch.where(rgb_present.view(-1, 1, 1, 1), image, torch.zeros_like(image))
            f2d = rgb_tokens(model.rgb_backbone((image - self.mean) / self.std), model.grid_size)
        if model.xyz_backbone is not None:
            f3d = xyz_tokens(self._point_feature_map(inputs), model.grid_size, channel_chunk=None)  # no slice writes
        features = token_features(f2d, f3d, rgb_present)
        anomaly_map, score = model.anomaly_maps(features, self.image_size, all_branches=True)  # no data-dependent flow
        predictions = InferenceBatch(pred_score=score, anomaly_map=anomaly_map)
        if self.post_processor is not None:
            predictions = self.post_processor(predictions)
        return {name: getattr(predictions, name) for name in OUTPUTS}

    @torch.no_grad()
    def forward(self, *args: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Run the dense part.

        Args:
            *args (torch.Tensor): The inputs, in :attr:`input_names` order.

        Returns:
            tuple[torch.Tensor, ...]: The outputs, in :attr:`output_names` order (boolean label and mask).
        """
        outputs = self._outputs(args)
        return tuple(outputs[name] for name in self.output_names)  # type: ignore[misc]
