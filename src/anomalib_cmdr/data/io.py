# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0

"""Validated readers for the files of an RGB + organized point cloud sample.

A sample of an MVTec 3D-AD-like tree is an RGB image (PNG), an organized point cloud (a TIFF holding an
``(H, W, 3)`` array of x, y, z coordinates in metres, missing points stored as ``(0, 0, 0)``) and, for test
samples, a ground-truth mask (PNG). Every reader here fails with :class:`DataFileError`, whose message names
the file and what is wrong with it, instead of the assorted exceptions of PIL and tifffile.

Example:
    >>> from anomalib_cmdr.data.io import read_rgb, read_xyz, read_mask
    >>> rgb = read_rgb("datasets/MVTec3D/bagel/test/crack/rgb/000.png")  # doctest: +SKIP
    >>> xyz = read_xyz("datasets/MVTec3D/bagel/test/crack/xyz/000.tiff")  # doctest: +SKIP
    >>> rgb.shape, rgb.dtype, xyz.shape, xyz.dtype  # doctest: +SKIP
    ((800, 800, 3), dtype('uint8'), (800, 800, 3), dtype('float32'))
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import tifffile
from PIL import Image

__all__ = [
    "DataFileError",
    "DataFileWarning",
    "probe_image",
    "probe_xyz",
    "read_mask",
    "read_rgb",
    "read_xyz",
    "valid_pixel_mask",
]

_RGB_CHANNELS = 3
_REPAIRED_WARNED: set[str] = set()  # files whose NaN/inf points were already reported in this process
_EIGHT_BIT_MAX = 255


class DataFileError(ValueError):
    """A data file (or a data folder) is missing, unreadable or malformed.

    The message always names the offending path and says what is wrong with it.

    Example:
        >>> from anomalib_cmdr.data import DataFileError, read_rgb
        >>> try:
        ...     read_rgb("does/not/exist.png")
        ... except DataFileError as err:
        ...     print(err)
        does/not/exist.png: file does not exist
    """


class DataFileWarning(UserWarning):
    """A data file was readable but had to be repaired (e.g. NaN coordinates treated as missing points).

    Example:
        >>> import warnings
        >>> with warnings.catch_warnings(record=True) as caught:
        ...     warnings.simplefilter("always")
        ...     warnings.warn("000.tiff: 3 NaN points treated as missing", DataFileWarning, stacklevel=1)
        >>> caught[0].category.__name__, issubclass(DataFileWarning, UserWarning)
        ('DataFileWarning', True)
    """


def existing_file(path: str | Path) -> Path:
    """Return ``path`` as a ``Path`` or raise :class:`DataFileError` if it is not an existing file.

    Args:
        path (str | Path): Path to check.

    Returns:
        Path: The same path.

    Raises:
        DataFileError: If nothing exists at ``path`` or it is not a regular file.

    Example:
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> (folder / "part.png").touch()
        >>> existing_file(folder / "part.png").name
        'part.png'
        >>> existing_file(folder / "missing.png")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
            ...
        anomalib_cmdr.data.io.DataFileError: .../missing.png: file does not exist
    """
    path = Path(path)
    if not path.exists():
        msg = f"{path}: file does not exist"
        raise DataFileError(msg)
    if not path.is_file():
        msg = f"{path}: not a regular file"
        raise DataFileError(msg)
    return path


def _open_image(path: str | Path, what: str) -> Image.Image:
    """Open and fully decode an image with PIL, turning every decoder failure into :class:`DataFileError`.

    Args:
        path (str | Path): Image file.
        what (str): What the file should be (``"RGB image"``, ``"mask"``), used in error messages.

    Returns:
        Image.Image: The decoded image (already loaded, the file is closed).

    Raises:
        DataFileError: If the file is missing or cannot be decoded.
    """
    path = existing_file(path)
    try:
        with Image.open(path) as image:
            image.load()
            return image.copy()
    except Exception as exc:  # PIL raises OSError, SyntaxError, ValueError, struct.error... for broken files
        msg = f"{path}: cannot read {what} ({type(exc).__name__}: {exc})"
        raise DataFileError(msg) from exc


def read_rgb(path: str | Path) -> np.ndarray:
    """Read an image file as an 8-bit RGB array.

    Grayscale, palette, RGBA and other PIL modes are converted to RGB (alpha is dropped); 16-bit (and 32-bit
    integer) grayscale is scaled to 8 bits by 1/257 whatever its values, float grayscale is taken to be in [0, 1].

    Args:
        path (str | Path): Image file (PNG, JPEG, ... anything PIL reads).

    Returns:
        np.ndarray: ``uint8`` array of shape ``(H, W, 3)``.

    Raises:
        DataFileError: If the file is missing, cannot be decoded or has an unsupported mode.

    Example:
        >>> import numpy as np
        >>> from PIL import Image
        >>> Image.fromarray(np.zeros((4, 6), np.uint8)).save("/tmp/gray.png")
        >>> read_rgb("/tmp/gray.png").shape
        (4, 6, 3)
    """
    image = _open_image(path, "RGB image")
    if image.mode.startswith(("I", "F")):
        # 16/32-bit integer or float grayscale: PIL's convert("RGB") would clip, so scale explicitly.
        array = np.asarray(image, dtype=np.float64)
        if not np.isfinite(array).all():
            msg = f"{path}: RGB image ({image.mode}) contains NaN or inf values"
            raise DataFileError(msg)
        if image.mode.startswith("I"):
            array = array / 257.0  # 16-bit -> 8-bit, by the mode (not the values: the same raw value reads the same)
        elif image.mode.startswith("F"):
            array = array * _EIGHT_BIT_MAX  # float images are taken to be in [0, 1]
        gray = np.clip(np.rint(array), 0, _EIGHT_BIT_MAX).astype(np.uint8)
        return np.repeat(gray[..., None], _RGB_CHANNELS, axis=2)
    try:
        return np.array(image.convert("RGB"), dtype=np.uint8)  # a writable copy
    except (ValueError, OSError) as exc:
        msg = f"{path}: cannot convert image mode {image.mode!r} to RGB ({exc})"
        raise DataFileError(msg) from exc


def read_mask(path: str | Path) -> np.ndarray:
    """Read a ground-truth mask: every non-zero pixel is anomalous.

    Multi-channel masks are anomalous where any colour channel is non-zero (an alpha channel is ignored, also
    in greyscale + alpha PNGs).

    Args:
        path (str | Path): Mask image file (usually PNG).

    Returns:
        np.ndarray: ``bool`` array of shape ``(H, W)``.

    Raises:
        DataFileError: If the file is missing or cannot be decoded.

    Example:
        >>> import numpy as np
        >>> from PIL import Image
        >>> Image.fromarray(np.array([[0, 255]], np.uint8)).save("/tmp/mask.png")
        >>> read_mask("/tmp/mask.png").tolist()
        [[False, True]]
    """
    image = _open_image(path, "mask")
    if image.mode in {"P", "PA"}:  # palette index 0 is not necessarily black
        image = image.convert("RGBA" if image.mode == "PA" else "RGB")
    mask = np.asarray(image)
    if mask.ndim == _RGB_CHANNELS:
        colours = 1 if image.mode in {"LA", "La"} else _RGB_CHANNELS  # greyscale + alpha: the grey channel only
        mask = mask[..., :colours].any(axis=2)
    return np.ascontiguousarray(mask > 0)


def probe_image(path: str | Path, what: str = "RGB image") -> tuple[int, int]:
    """``(H, W)`` of an image file from its header, without decoding the pixels.

    Args:
        path (str | Path): Image file.
        what (str): What the file should be, for the message. Defaults to ``"RGB image"``.

    Returns:
        tuple[int, int]: Height and width.

    Raises:
        DataFileError: If the file is missing or its header is unreadable.

    Example:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "000.png"
        >>> Image.fromarray(np.zeros((6, 8, 3), np.uint8)).save(path)
        >>> probe_image(path)
        (6, 8)
    """
    path = existing_file(path)
    try:
        with Image.open(path) as image:
            width, height = image.size
    except Exception as exc:  # PIL raises many types for broken headers
        msg = f"{path}: cannot read {what} ({type(exc).__name__}: {exc})"
        raise DataFileError(msg) from exc
    return height, width


def probe_xyz(path: str | Path) -> tuple[int, int]:
    """``(H, W)`` of an organized point cloud TIFF from its header, checking its shape and dtype.

    Args:
        path (str | Path): TIFF file.

    Returns:
        tuple[int, int]: Height and width.

    Raises:
        DataFileError: If the file is missing, not a TIFF, or does not hold a real-valued ``(H, W, 3)`` array
            (e.g. a channel-first ``(3, H, W)`` one).

    Example:
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> tifffile.imwrite(folder / "000.tiff", np.zeros((6, 8, 3), np.float32))
        >>> probe_xyz(folder / "000.tiff")
        (6, 8)
        >>> tifffile.imwrite(folder / "001.tiff", np.zeros((3, 6, 8), np.float32))
        >>> probe_xyz(folder / "001.tiff")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
            ...
        anomalib_cmdr.data.io.DataFileError: .../001.tiff: point cloud must have shape (H, W, 3), found (3, 6, 8) ...
    """
    path = existing_file(path)
    try:
        with tifffile.TiffFile(path) as tiff:
            if not tiff.series:
                msg = "no image in the file, it may be truncated or damaged"
                raise ValueError(msg)
            shape, dtype = tuple(tiff.series[0].shape), np.dtype(tiff.series[0].dtype)
    except Exception as exc:
        msg = f"{path}: cannot read point cloud TIFF ({type(exc).__name__}: {exc})"
        raise DataFileError(msg) from exc
    if len(shape) != _RGB_CHANNELS or shape[2] != _RGB_CHANNELS:
        hint = " (channel-first? store it as (H, W, 3))" if len(shape) == _RGB_CHANNELS and shape[0] == 3 else ""
        msg = f"{path}: point cloud must have shape (H, W, 3), found {shape}{hint}"
        raise DataFileError(msg)
    if not (np.issubdtype(dtype, np.floating) or np.issubdtype(dtype, np.integer)):
        msg = f"{path}: point cloud must be real-valued, found dtype {dtype}"
        raise DataFileError(msg)
    return shape[0], shape[1]


def valid_pixel_mask(xyz: np.ndarray) -> np.ndarray:
    """Per-pixel mask of the valid points of an organized point cloud: those whose x, y and z are all non-zero.

    This is the validity rule of the method (and of MVTec 3D-AD, which stores missing points as
    ``(0, 0, 0)``). It returns a mask aligned with the pixels; the point sets themselves, for batches of
    tensors, come from :func:`anomalib_cmdr.models.cmdr.geometry.gather_valid_points`.

    Args:
        xyz (np.ndarray): Organized point cloud of shape ``(..., 3)``.

    Returns:
        np.ndarray: ``bool`` array of shape ``xyz.shape[:-1]``.

    Example:
        >>> import numpy as np
        >>> valid_pixel_mask(np.array([[[0.0, 0.0, 0.0], [0.1, 0.2, 0.3]]])).tolist()
        [[False, True]]
    """
    return np.all(xyz != 0, axis=-1)


def read_xyz(path: str | Path) -> np.ndarray:
    """Read an organized point cloud (x, y, z per pixel) from a TIFF file.

    NaN or infinite coordinates are the documented graceful path for damaged scans: such a point is treated
    as missing, i.e. all three of its coordinates are set to 0 (the MVTec 3D-AD convention for holes), and a
    :class:`DataFileWarning` names the file and the number of points repaired (once per file and process: many
    scanners write NaN for every missing point, and each epoch reads each file again).

    Args:
        path (str | Path): TIFF file holding a real-valued array of shape ``(H, W, 3)``.

    Returns:
        np.ndarray: ``float32`` array of shape ``(H, W, 3)``, coordinates in the file's unit (metres for
        MVTec 3D-AD), missing points ``(0, 0, 0)``.

    Raises:
        DataFileError: If the file is missing, is not a readable TIFF, or does not hold a real-valued
            ``(H, W, 3)`` array.

    Example:
        >>> import numpy as np, tifffile
        >>> tifffile.imwrite("/tmp/xyz.tiff", np.ones((4, 6, 3), np.float32))
        >>> read_xyz("/tmp/xyz.tiff").shape
        (4, 6, 3)
    """
    path = existing_file(path)
    try:
        with tifffile.TiffFile(path) as tiff:
            if not tiff.pages:
                msg = "no image in the file, it may be truncated or damaged"
                raise ValueError(msg)
            xyz = np.asarray(tiff.asarray())
    except Exception as exc:  # tifffile raises TiffFileError, ValueError, struct.error... for broken files
        msg = f"{path}: cannot read point cloud TIFF ({type(exc).__name__}: {exc})"
        raise DataFileError(msg) from exc
    if xyz.ndim != _RGB_CHANNELS or xyz.shape[2] != _RGB_CHANNELS:
        msg = f"{path}: point cloud must have shape (H, W, 3), found {xyz.shape}"
        raise DataFileError(msg)
    if not (np.issubdtype(xyz.dtype, np.floating) or np.issubdtype(xyz.dtype, np.integer)):
        msg = f"{path}: point cloud must be real-valued, found dtype {xyz.dtype}"
        raise DataFileError(msg)
    xyz = np.array(xyz, dtype=np.float32)  # always a writable copy
    broken = ~np.isfinite(xyz).all(axis=2)
    count = int(broken.sum())
    if count:
        xyz[broken] = 0.0
        if str(path) in _REPAIRED_WARNED:  # NaN for missing points is a common sensor convention: say it once
            return xyz
        _REPAIRED_WARNED.add(str(path))
        warnings.warn(
            f"{path}: {count} point(s) with NaN or inf coordinates treated as missing and set to (0, 0, 0)",
            DataFileWarning,
            stacklevel=2,
        )
    return xyz
