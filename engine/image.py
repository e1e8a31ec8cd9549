"""Images in: any file, byte string, PIL image or camera frame becomes an upright RGB picture.

What a checkpoint's processor then does to that picture (resize, crop, rescale, normalise) is in
`engine.image_processing`.
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from engine.errors import InputError

#: Larger pictures are decoded at a reduced scale (JPEG) or refused: 100 MP of RGB is 300 MB.
MAX_PIXELS = 100_000_000

ImageSource = Union[str, Path, bytes, bytearray, memoryview, Image.Image, np.ndarray]


def load_image(
    source: ImageSource,
    *,
    max_pixels: int = MAX_PIXELS,
    notes: list[str] | None = None,
) -> Image.Image:
    """An upright RGB copy of `source`: a file path, the bytes of a file, a PIL image, or an
    HxWx3 / HxW / HxWx4 uint8 array (a camera frame).

    Like transformers' `load_image`, the EXIF orientation is applied and the picture is
    converted with PIL's `convert("RGB")`, whatever its mode: alpha is dropped (not blended),
    palettes are expanded, CMYK is inverted to RGB, and 16-bit grey is clipped at 255 as PIL
    does. A file larger than `max_pixels` is decoded at 1/2, 1/4 or 1/8 scale when it is a
    JPEG (a line saying so is appended to `notes`) and refused otherwise, before any pixel is
    decoded. Unreadable input raises `InputError`.
    """
    if isinstance(source, Image.Image):
        image = ImageOps.exif_transpose(source)  # a copy: the caller's image is left alone
    elif isinstance(source, np.ndarray):
        image = _from_array(source)
    else:
        image = _open(source, max_pixels, notes)
        ImageOps.exif_transpose(image, in_place=True)
    if image.mode != "RGB":
        try:
            image = image.convert("RGB")
        except ValueError:  # a few exotic modes (e.g. "La") have no conversion
            raise InputError(f"images of mode {image.mode} are not supported") from None
    return image


def _from_array(array: np.ndarray) -> Image.Image:
    if array.dtype != np.uint8:
        raise InputError(f"an image array must hold uint8 values, not {array.dtype}")
    if array.ndim == 2 or (array.ndim == 3 and array.shape[2] in (3, 4)):
        return Image.fromarray(np.ascontiguousarray(array))  # uint8 HxW, x3, x4: L, RGB, RGBA
    raise InputError(f"an image array must be HxW, HxWx3 or HxWx4, not {tuple(array.shape)}")


def _open(source: str | Path | bytes | bytearray | memoryview, max_pixels: int, notes: list[str] | None) -> Image.Image:
    """Decode a file or its bytes, refusing what is not a complete image or is too large."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        data, name = bytes(source), "the image"
    elif isinstance(source, (str, Path)):
        path = Path(source).expanduser()
        if not path.is_file():
            raise InputError(f"no such file: {path}")
        # Read it whole: the image then owns no open file, whatever the format or frame count.
        data, name = path.read_bytes(), path.name
    else:
        raise InputError(
            f"cannot read an image from a {type(source).__name__}: give a path, bytes, "
            "a PIL image or an HxWx3 uint8 array"
        )
    if not data:
        raise InputError(f"{name} is empty (0 bytes)")
    try:
        image = Image.open(io.BytesIO(data))  # reads the header only
    except Image.DecompressionBombError:
        raise InputError(_too_large(name, None, max_pixels)) from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        raise InputError(f"{name} is not an image file this app can read") from None
    _shrink_or_refuse(image, name, max_pixels, notes)
    try:
        image.load()
    except Image.DecompressionBombError:
        raise InputError(_too_large(name, image.size, max_pixels)) from None
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise InputError(f"{name} is corrupt or truncated ({exc})") from None
    return image


def _shrink_or_refuse(image: Image.Image, name: str, max_pixels: int, notes: list[str] | None) -> None:
    """Keep a huge picture from being decoded at full size: JPEG decoders can skip detail
    (1/2, 1/4, 1/8 scale) while decoding; other formats are refused."""
    width, height = image.size
    if width * height <= max_pixels:
        return
    if image.format == "JPEG":
        for factor in (2, 4, 8):
            if math.ceil(width / factor) * math.ceil(height / factor) <= max_pixels:
                # draft() picks the largest reduction whose result is at least the size asked
                # for; asking for floor(size / factor) makes that reduction `factor`.
                image.draft(image.mode, (max(1, width // factor), max(1, height // factor)))
                if notes is not None:
                    notes.append(
                        f"{name} is {width}×{height} ({width * height / 1e6:.0f} megapixels); "
                        f"it was decoded at 1/{factor} scale, {image.size[0]}×{image.size[1]}"
                    )
                return
    raise InputError(_too_large(name, (width, height), max_pixels))


def _too_large(name: str, size: tuple[int, int] | None, max_pixels: int) -> str:
    what = f"{size[0]}×{size[1]} pixels" if size else "too large to open safely"
    return (
        f"{name} is {what}; images above {max_pixels / 1e6:g} megapixels are refused to "
        "protect memory. Scale it down first."
    )
