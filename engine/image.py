"""Images in: any file, byte string, PIL image or camera frame becomes an upright RGB picture.

What a checkpoint's processor then does to that picture (resize, crop, rescale, normalise) is in
`engine.image_processing`.

One deliberate difference from transformers' `load_image`: pictures of more than 8 bits per
value are scaled to 8 bits as an image viewer shows them, where PIL's `convert("RGB")` (and so
transformers) clips them. 16-bit grey (PIL modes I;16, I;16B, ...) and 32-bit integer grey (mode
I) whose values fit 0..65535 are mapped from the 16-bit range with the PNG specification's
sample-depth rule, round(v * 255 / 65535), which undoes the usual 8-to-16-bit widening
(v * 257) exactly; other integer grey and floating-point grey (mode F) are mapped from the
data's own range, except that float data within 0..1 is simply multiplied by 255. Clipping
would make a 16-bit photo almost all white and a 0..1 float picture all black. A warning says
when this was done. The parity tests compare with transformers given the 8-bit picture.
"""

from __future__ import annotations

import io
import math
import warnings
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
    converted with PIL's `convert("RGB")`: alpha is dropped (not blended), palettes are
    expanded, CMYK is inverted to RGB. Unlike it, 16-bit and floating-point grey are scaled to
    8 bits (see the module docstring). A file larger than `max_pixels` is decoded at 1/2, 1/4
    or 1/8 scale when it is a JPEG and refused otherwise, before any pixel is decoded. What was
    changed on the way is said in lines appended to `notes`. Unreadable input and pictures
    without a pixel raise `InputError`.
    """
    if isinstance(source, Image.Image):
        name = "the image"
        image = ImageOps.exif_transpose(source)  # a copy: the caller's image is left alone
    elif isinstance(source, np.ndarray):
        name = "the image"
        image = _from_array(source)
    else:
        name = Path(source).name if isinstance(source, (str, Path)) else "the image"
        image = _open(source, max_pixels, notes)
        ImageOps.exif_transpose(image, in_place=True)
    if image.width == 0 or image.height == 0:
        raise InputError(f"{name} has no pixels ({image.width}×{image.height})")
    if image.mode in DEEP_MODES:
        image = to_8_bit(image, name, notes)
    if image.mode != "RGB":
        try:
            image = image.convert("RGB")
        except ValueError:  # a few exotic modes (e.g. "La") have no conversion
            raise InputError(f"images of mode {image.mode} are not supported") from None
    return image


#: PIL's grey modes of more than 8 bits per value.
DEEP_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I", "F")


def to_8_bit(image: Image.Image, name: str = "the image", notes: list[str] | None = None) -> Image.Image:
    """A 16-bit, 32-bit integer or floating-point grey picture as 8-bit grey (mode L), scaled as
    the module docstring says; a line saying how is appended to `notes`."""
    values = np.asarray(image)
    if values.dtype.kind in "ui" and values.min() >= 0 and values.max() <= 65535:
        grey = (values.astype(np.uint32) * 255 + 32767) // 65535  # floor(v * 255 / 65535 + 0.5)
        how = "16-bit values; they were scaled to 8 bits (0..65535 to 0..255)"
    else:
        values = values.astype(np.float64)
        finite = np.isfinite(values)
        if not finite.any():
            raise InputError(f"{name} holds no pixel values that are numbers")
        low, high = float(values[finite].min()), float(values[finite].max())
        if image.mode == "F" and low >= 0 and high <= 1:
            low, high = 0.0, 1.0
        scale = 255 / (high - low) if high > low else 0.0
        grey = np.clip(np.nan_to_num(values, nan=low) - low, 0, high - low) * scale
        kind = "floating-point" if image.mode == "F" else "32-bit"
        how = f"{kind} values from {low:g} to {high:g}; they were scaled to 8 bits (0..255)"
        if not finite.all():
            how += " (pixels that are not numbers became black, infinities black or white)"
    if notes is not None:
        notes.append(f"{name} has {how} as an image viewer shows it")
    return Image.fromarray(np.round(grey).astype(np.uint8))


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
    with warnings.catch_warnings():
        # PIL warns (on stderr) about pictures above its own limit; `max_pixels` is ours, and
        # a large picture within it gets a note instead
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
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
    width, height = image.size
    limit = Image.MAX_IMAGE_PIXELS
    if limit and width * height > limit and notes is not None:
        notes.append(
            f"{name} is {width}×{height} ({width * height / 1e6:.0f} megapixels), a very large "
            "picture: it takes a lot of memory and time"
        )
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
