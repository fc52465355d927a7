# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0

"""The stage before an exported CMDR graph: resizing and the point-cloud geometry that does not trace.

Valid-point gathers, farthest point sampling, kNN grouping, the 3-nearest-centre interpolation and FPFH
depend on the values of the cloud and do not trace into a static graph. They run here, in torch/open3d,
through the very functions the torch model uses (:mod:`anomalib_cmdr.models.cmdr.geometry`, the registered
3D extractors, :class:`~anomalib_cmdr.data.transforms.SquarePadResize`), and the graph receives dense
tensors:

* ``image``: ``(B, 3, H, W)`` RGB in ``[0, 1]`` at the model size (the graph normalises it);
* Point-MAE (``xyz_input="groups"``): ``neighbourhoods`` ``(B, G, K, 3)`` centred kNN groups, ``centres``
  ``(B, G, 3)``, and per pixel ``interp_index`` ``(B, H*W, 3)`` (rows of the batch's ``(B*G)`` centre
  features) and ``interp_weight`` ``(B, H*W, 3)`` (zero where the pixel holds no point);
* FPFH (``xyz_input="features"``): ``xyz_features`` ``(B, C, H, W)`` descriptors at the pixels holding a
  point, zero elsewhere.

Example:
    >>> import numpy as np
    >>> from anomalib_cmdr.deploy.spec import DeploySpec
    >>> spec = DeploySpec(modality="rgb", image_size=(32, 32), square_pad=True, inputs=["image"], outputs=[])
    >>> inputs = GraphInputBuilder(spec).from_arrays([np.zeros((40, 60, 3), np.uint8)], None)
    >>> inputs["image"].shape
    torch.Size([1, 3, 32, 32])
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn
from torchvision import tv_tensors
from torchvision.transforms.v2.functional import to_dtype_image

from anomalib_cmdr.data.transforms import SquarePadResize
from anomalib_cmdr.models.cmdr.backbones.registry import create_xyz_backbone
from anomalib_cmdr.models.cmdr.geometry import (
    PointGroups,
    gather_valid_points,
    group_point_batch,
    pixel_interpolation,
    scatter_to_grid,
    stack_groups,
)

from .spec import DeploySpec

POINT_INPUTS = ("neighbourhoods", "centres", "interp_index", "interp_weight")
"""Graph inputs of a Point-MAE 3D branch."""
FEATURE_INPUT = "xyz_features"
"""Graph input of a weight-free 3D extractor's (FPFH's) per-pixel features."""


def graph_input_names(modality: str, xyz_input: str | None) -> list[str]:
    """The graph's input names for a modality and 3D input kind.

    Args:
        modality (str): ``"rgb+xyz"``, ``"rgb"`` or ``"xyz"``.
        xyz_input (str | None): ``"groups"``, ``"features"`` or ``None``.

    Returns:
        list[str]: The names, in the graph's order.

    Example:
        >>> graph_input_names("rgb", None)
        ['image']
        >>> graph_input_names("rgb+xyz", "groups")
        ['image', 'neighbourhoods', 'centres', 'interp_index', 'interp_weight']
        >>> graph_input_names("xyz", "features")
        ['xyz_features']
    """
    names = ["image"] if modality in {"rgb+xyz", "rgb"} else []
    if modality in {"rgb+xyz", "xyz"}:
        names += list(POINT_INPUTS) if xyz_input == "groups" else [FEATURE_INPUT]
    return names


class GraphInputBuilder:
    """Build the inputs of an exported CMDR graph from RGB images and organized point clouds.

    Args:
        spec (DeploySpec): The export's metadata.
        xyz_extractor (nn.Module | None): The 3D extractor for ``xyz_input="features"`` (e.g. the torch model's
            own); ``None``: built from the spec (weight-free extractors only). Defaults to ``None``.

    Example:
        >>> spec = DeploySpec(modality="rgb", image_size=(32, 32), square_pad=False, inputs=["image"], outputs=[])
        >>> builder = GraphInputBuilder(spec)
        >>> rgb, xyz = builder.resize_arrays([np.zeros((48, 64, 3), np.uint8)], None)
        >>> rgb.shape, xyz
        (torch.Size([1, 3, 32, 32]), None)
        >>> builder.from_tensors(torch.rand(2, 3, 32, 32), None)["image"].shape
        torch.Size([2, 3, 32, 32])
    """

    def __init__(self, spec: DeploySpec, xyz_extractor: nn.Module | None = None) -> None:
        self.spec = spec
        self.resize = SquarePadResize(spec.image_size, spec.square_pad)
        self.xyz_extractor = xyz_extractor
        if spec.xyz_input == "features" and xyz_extractor is None:
            self.xyz_extractor = create_xyz_backbone(spec.xyz_backbone, pretrained=False, **spec.xyz_model_kwargs)

    # ------------------------------------------------------------------ arrays -> model-size tensors
    def from_arrays(
        self,
        rgb: Sequence[np.ndarray] | None,
        xyz: Sequence[np.ndarray] | None,
    ) -> dict[str, torch.Tensor]:
        """Check, resize and prepare native-size samples.

        Args:
            rgb (Sequence[np.ndarray] | None): Per sample an ``(H, W, 3)`` uint8 RGB image (``None`` for an
                ``xyz`` model).
            xyz (Sequence[np.ndarray] | None): Per sample an ``(H, W, 3)`` organized cloud, missing points
                ``(0, 0, 0)`` (``None`` for an ``rgb`` model).

        Returns:
            dict[str, torch.Tensor]: The graph inputs by name.

        Raises:
            ValueError: If a modality the model needs is missing or one it does not use is given, or an array
                has the wrong shape, dtype or non-finite values (the message names the sample).
        """
        rgb_t, xyz_t = self.resize_arrays(rgb, xyz)
        return self.from_tensors(rgb_t, xyz_t)

    def resize_arrays(
        self,
        rgb: Sequence[np.ndarray] | None,
        xyz: Sequence[np.ndarray] | None,
    ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """Check native-size samples and bring them to the model size (the torch pre-processor's rule).

        Args:
            rgb (Sequence[np.ndarray] | None): See :meth:`from_arrays`.
            xyz (Sequence[np.ndarray] | None): See :meth:`from_arrays`.

        Returns:
            tuple[torch.Tensor | None, torch.Tensor | None]: ``(B, 3, H, W)`` RGB in ``[0, 1]`` and xyz.

        Raises:
            ValueError: See :meth:`from_arrays`.
        """
        spec = self.spec
        both = spec.uses_rgb and spec.uses_xyz  # an rgb+xyz model serves a sample that lacks one modality
        for name, given, used in (("rgb", rgb, spec.uses_rgb), ("xyz", xyz, spec.uses_xyz)):
            if used and not both and (given is None or any(item is None for item in given)):
                msg = f"{name}: this CMDR was exported with modality={spec.modality!r} and needs {name} input."
                raise ValueError(msg)
            if not used and given is not None:
                msg = f"{name}: this CMDR was exported with modality={spec.modality!r}; pass {name}=None."
                raise ValueError(msg)
        if rgb is None and xyz is None:
            msg = "rgb, xyz: no input given; an rgb+xyz CMDR needs RGB images, point clouds or both."
            raise ValueError(msg)
        count = len(rgb) if rgb is not None else len(xyz)  # type: ignore[arg-type]
        if rgb is not None and xyz is not None and len(rgb) != len(xyz):
            msg = f"{len(rgb)} RGB images but {len(xyz)} point clouds: give one of each per sample."
            raise ValueError(msg)
        if count == 0:
            msg = "No sample given."
            raise ValueError(msg)
        rgb_list = [check_rgb(a, i) if a is not None else None for i, a in enumerate(rgb or [None] * count)]
        xyz_list = [check_xyz(a, i) if a is not None else None for i, a in enumerate(xyz or [None] * count)]
        for i, (image, cloud) in enumerate(zip(rgb_list, xyz_list, strict=True)):
            if image is None and cloud is None:
                msg = f"sample {i}: neither an RGB image nor a point cloud given."
                raise ValueError(msg)
            if image is not None and cloud is not None and image.shape[:2] != cloud.shape[:2]:
                msg = (
                    f"sample {i}: RGB is {image.shape[1]}x{image.shape[0]} (WxH) but the point cloud is "
                    f"{cloud.shape[1]}x{cloud.shape[0]}; the organized cloud must have one point per pixel."
                )
                raise ValueError(msg)
        size = (3, *self.spec.image_size)
        images = clouds = None
        if spec.uses_rgb:  # a missing image is all NaN (the torch model's convention)
            images = torch.stack([self._rgb(a) if a is not None else torch.full(size, torch.nan) for a in rgb_list])
        if spec.uses_xyz:  # a missing cloud has no valid point
            clouds = torch.stack([self._xyz(a) if a is not None else torch.zeros(size) for a in xyz_list])
        return images, clouds

    def _rgb(self, array: np.ndarray) -> torch.Tensor:
        image = to_dtype_image(
            torch.from_numpy(np.ascontiguousarray(array)).permute(2, 0, 1), torch.float32, scale=True
        )
        return self.resize(tv_tensors.Image(image)).as_subclass(torch.Tensor)

    def _xyz(self, array: np.ndarray) -> torch.Tensor:
        cloud = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32)).permute(2, 0, 1)
        return self.resize(tv_tensors.Mask(cloud)).as_subclass(torch.Tensor)

    # ------------------------------------------------------------------ model-size tensors -> graph inputs
    @torch.no_grad()
    def from_tensors(self, rgb: torch.Tensor | None, xyz: torch.Tensor | None) -> dict[str, torch.Tensor]:
        """Graph inputs from model-size tensors (what the torch model receives after its pre-processor's resize).

        Args:
            rgb (torch.Tensor | None): ``(B, 3, H, W)`` RGB in ``[0, 1]``, not normalised.
            xyz (torch.Tensor | None): ``(B, 3, H, W)`` organized clouds.

        Returns:
            dict[str, torch.Tensor]: The graph inputs by name.
        """
        inputs: dict[str, torch.Tensor] = {}
        if self.spec.uses_rgb and rgb is not None:
            inputs["image"] = rgb.float().contiguous()
        if self.spec.uses_xyz and xyz is not None:
            inputs.update(self._xyz_inputs(xyz.float()))
        return inputs

    def _xyz_inputs(self, xyz: torch.Tensor) -> dict[str, torch.Tensor]:
        batch, _, height, width = xyz.shape
        clouds = gather_valid_points(xyz)
        pixels = [cloud.index for cloud in clouds]
        if self.spec.xyz_input == "features":
            features = self.xyz_extractor([cloud.points for cloud in clouds])  # type: ignore[misc]
            return {FEATURE_INPUT: scatter_to_grid(features, pixels, height, width).contiguous()}
        num_group, group_size = int(self.spec.num_group), int(self.spec.group_size)  # type: ignore[arg-type]
        filled = [i for i, cloud in enumerate(clouds) if cloud.points.shape[0]]
        groups: list[PointGroups | None] = [None] * batch
        if filled:
            grouped = group_point_batch([clouds[i].points for i in filled], num_group, group_size)
            for i, group in zip(filled, grouped, strict=True):
                groups[i] = group
        neighbourhoods = xyz.new_zeros(batch, num_group, group_size, 3)
        centres = xyz.new_zeros(batch, num_group, 3)
        if filled:
            stacked = stack_groups([clouds[i].points for i in filled], [groups[i] for i in filled])  # type: ignore[misc]
            neighbourhoods[filled], centres[filled] = stacked
        index, weight = pixel_interpolation(groups, pixels, height * width)
        index += (torch.arange(batch) * num_group).view(batch, 1, 1)  # rows of the batch's (B * G) centres
        return {"neighbourhoods": neighbourhoods, "centres": centres, "interp_index": index, "interp_weight": weight}


def check_rgb(array: np.ndarray, index: int = 0) -> np.ndarray:
    """Check an RGB image: ``(H, W, 3)`` uint8.

    Args:
        array (np.ndarray): The image.
        index (int): Its sample index, for the message. Defaults to ``0``.

    Returns:
        np.ndarray: The same array.

    Raises:
        ValueError: If it is not an ``(H, W, 3)`` uint8 array.

    Example:
        >>> check_rgb(np.zeros((4, 6, 3), np.uint8)).shape
        (4, 6, 3)
        >>> check_rgb(np.zeros((4, 6, 3), np.float32), index=2)
        Traceback (most recent call last):
            ...
        ValueError: rgb (sample 2): expected an (H, W, 3) uint8 image, got float32 (4, 6, 3).
    """
    if not isinstance(array, np.ndarray) or array.ndim != 3 or array.shape[2] != 3 or array.dtype != np.uint8:
        desc = f"{array.dtype} {array.shape}" if isinstance(array, np.ndarray) else type(array).__name__
        msg = f"rgb (sample {index}): expected an (H, W, 3) uint8 image, got {desc}."
        raise ValueError(msg)
    return array


def check_xyz(array: np.ndarray, index: int = 0) -> np.ndarray:
    """Check an organized point cloud: ``(H, W, 3)`` float with finite coordinates.

    Args:
        array (np.ndarray): The cloud.
        index (int): Its sample index, for the message. Defaults to ``0``.

    Returns:
        np.ndarray: The same array.

    Raises:
        ValueError: If it is not an ``(H, W, 3)`` floating-point array, or holds NaN or inf.

    Example:
        >>> check_xyz(np.zeros((4, 6, 3), np.float32)).shape
        (4, 6, 3)
        >>> check_xyz(np.full((4, 6, 3), np.nan, np.float32))
        Traceback (most recent call last):
            ...
        ValueError: xyz (sample 0): NaN or inf coordinates; mark missing points as (0, 0, 0).
    """
    if not isinstance(array, np.ndarray) or array.ndim != 3 or array.shape[2] != 3 or array.dtype.kind != "f":
        desc = f"{array.dtype} {array.shape}" if isinstance(array, np.ndarray) else type(array).__name__
        msg = f"xyz (sample {index}): expected an (H, W, 3) float organized point cloud, got {desc}."
        raise ValueError(msg)
    if not np.isfinite(array).all():
        msg = f"xyz (sample {index}): NaN or inf coordinates; mark missing points as (0, 0, 0)."
        raise ValueError(msg)
    return array
