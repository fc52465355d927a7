# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0

"""Where pretrained weights come from, and the error when they cannot be had.

Example:
    >>> from anomalib_cmdr.models.cmdr.backbones.weights import check_weight_file
    >>> check_weight_file(None, "rgb_weights") is None
    True
"""

from __future__ import annotations

from pathlib import Path


class WeightsUnavailableError(RuntimeError):
    """Pretrained weights were requested but could not be obtained (no network, no local file).

    Example:
        >>> error = unavailable("Point-MAE encoder", "xyz_weights", OSError("network unreachable"))
        >>> isinstance(error, WeightsUnavailableError), isinstance(error, RuntimeError)
        (True, True)
    """


def check_weight_file(path: str | Path | None, argument: str) -> Path | None:
    """Validate a user-given local weight file.

    Args:
        path (str | Path | None): The file, or ``None``.
        argument (str): The argument's name, for the error message.

    Returns:
        Path | None: The path, or ``None`` when none was given.

    Raises:
        FileNotFoundError: If ``path`` is given but is not a file.

    Example:
        >>> print(check_weight_file(None, "rgb_weights"))
        None
        >>> check_weight_file("/tmp/no-such-weights.pth", "rgb_weights")
        Traceback (most recent call last):
            ...
        FileNotFoundError: rgb_weights='/tmp/no-such-weights.pth': no such file.
    """
    if path is None:
        return None
    path = Path(path).expanduser()
    if not path.is_file():
        msg = f"{argument}={str(path)!r}: no such file."
        raise FileNotFoundError(msg)
    return path


def unavailable(what: str, argument: str, error: BaseException) -> WeightsUnavailableError:
    """Build the error raised when pretrained weights cannot be downloaded.

    Args:
        what (str): The component, e.g. ``"timm model 'vit_base_patch8_224.dino'"``.
        argument (str): The model argument that takes a local file instead.
        error (BaseException): The underlying download error.

    Returns:
        WeightsUnavailableError: A :class:`WeightsUnavailableError` that says how to proceed.

    Example:
        >>> error = unavailable("timm model 'resnet18'", "rgb_weights", OSError("network unreachable"))
        >>> print(error)  # doctest: +ELLIPSIS
        Pretrained weights for the timm model 'resnet18' could not be obtained (OSError: network unreachable)...
    """
    msg = (
        f"Pretrained weights for the {what} could not be obtained ({type(error).__name__}: {error}). "
        f"Offline, pass a local file with `{argument}=/path/to/file` (e.g. `--model.{argument} /path/to/file`), "
        f"or use random weights explicitly with `pretrained=False`. CMDR never falls back to random weights silently."
    )
    return WeightsUnavailableError(msg)
