"""What a vision checkpoint's image processor does to an upright RGB picture: the settings of
preprocessor_config.json, the size rules, and the pixel tensor the model expects.

The CPU path reproduces transformers' PIL image processors step for step, so the tensors are
bit-for-bit the same: uint8 RGB -> PIL resize -> centre crop -> x * rescale_factor (float64,
then float32) -> (x - mean) / std in float32, channels first. Rescaling and normalising act on
each uint8 value alone, so they are done as a 256-entry lookup table per channel, built with
exactly those operations.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from engine.config import read_json
from engine.errors import CheckpointError, InputError

if TYPE_CHECKING:  # torch is imported where tensors are made, so the app can open images early
    import torch

#: PIL's resampling filter codes, as preprocessor_config.json stores them.
NEAREST, LANCZOS, BILINEAR, BICUBIC, BOX, HAMMING = 0, 1, 2, 3, 4, 5
_RESAMPLE_NAMES = {
    "nearest": NEAREST,
    "lanczos": LANCZOS,
    "bilinear": BILINEAR,
    "bicubic": BICUBIC,
    "box": BOX,
    "hamming": HAMMING,
}

# ---------------------------------------------------------------------------------------------
# Processor configuration


@dataclass(frozen=True)
class Size:
    """A target size in one of the forms preprocessor_config.json uses: exact `height` and
    `width`; `shortest_edge` (aspect kept), optionally with `longest_edge` as a cap; or a box
    `max_height` x `max_width` to fit inside."""

    height: int | None = None
    width: int | None = None
    shortest_edge: int | None = None
    longest_edge: int | None = None
    max_height: int | None = None
    max_width: int | None = None

    @classmethod
    def parse(cls, value: Any, *, default_to_square: bool, max_size: int | None = None, what: str = "size") -> Size:
        """Read `value` as the processors do: an int is a square when `default_to_square`,
        else a shortest edge (capped by `max_size`, DETR's legacy key); a pair is
        (height, width); a dict must hold one of the key sets above."""
        if isinstance(value, bool):
            raise CheckpointError(f"preprocessor_config.json has an invalid {what}: {value!r}")
        if isinstance(value, int):
            if default_to_square:
                return cls(height=value, width=value)
            return cls(shortest_edge=value, longest_edge=max_size)
        if isinstance(value, (list, tuple)) and len(value) == 2 and all(isinstance(v, int) for v in value):
            return cls(height=value[0], width=value[1])
        if isinstance(value, Mapping) and all(isinstance(v, (int, type(None))) for v in value.values()):
            given = {k: v for k, v in value.items() if v is not None}
            if set(given) in (
                {"height", "width"},
                {"shortest_edge"},
                {"shortest_edge", "longest_edge"},
                {"max_height", "max_width"},
            ):
                return cls(**given)
        raise CheckpointError(
            f"preprocessor_config.json has a {what} this app cannot use: {value!r} (expected "
            "height and width, shortest_edge [and longest_edge], or max_height and max_width)"
        )


@dataclass(frozen=True)
class ImageProcessorConfig:
    """What preprocessor_config.json asks for, in the order the steps run."""

    do_resize: bool = True
    size: Size = Size(height=224, width=224)
    resample: int = BILINEAR
    # ConvNeXT's rule: below 384, resize the short side to shortest_edge / crop_pct and crop
    # the centre square; at 384 and above, warp to a square. None elsewhere.
    crop_pct: float | None = None
    do_center_crop: bool = False
    crop_size: Size | None = None
    do_rescale: bool = True
    rescale_factor: float = 1 / 255
    do_normalize: bool = True
    image_mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    image_std: tuple[float, float, float] = (0.5, 0.5, 0.5)
    do_pad: bool = False
    # DPT's rule (Depth Anything): scale to `size`'s height and width, with `keep_aspect_ratio`
    # by the one factor nearer 1, and round each side to a multiple of `ensure_multiple_of`
    keep_aspect_ratio: bool = False
    ensure_multiple_of: int = 1
    size_divisor: int | None = None  # DPT's `do_pad`: centre-pad to multiples of this
    # Mask2Former's `size_divisor`: each resized side rounded up to a multiple of this
    round_up_to: int | None = None
    # GLPN's rule: each side resized down to the nearest multiple of this; `size` is not read
    round_down_to: int | None = None

    @classmethod
    def from_dict(
        cls,
        data: Mapping[str, Any],
        *,
        defaults: Mapping[str, Any] | None = None,
        default_to_square: bool = True,
    ) -> ImageProcessorConfig:
        """Merge `data` (a preprocessor_config.json) over the processor class's `defaults`,
        then read every variant real checkpoints use: sizes as ints, pairs or dicts, DETR's
        `max_size` and `pad_and_return_pixel_mask`, resample as a code or a name, mean and std
        as one number or three, DPT's multiples."""
        merged = {**(defaults or {}), **data}
        if "do_pad" not in data and "pad_and_return_pixel_mask" in data:
            merged["do_pad"] = data["pad_and_return_pixel_mask"]
        picked: dict[str, Any] = {}
        for key in ("do_resize", "do_center_crop", "do_rescale", "do_normalize", "do_pad", "keep_aspect_ratio"):
            if merged.get(key) is not None:
                picked[key] = bool(merged[key])
        if merged.get("size") is not None:
            picked["size"] = Size.parse(
                merged["size"], default_to_square=default_to_square, max_size=merged.get("max_size")
            )
        if merged.get("crop_size") is not None:
            picked["crop_size"] = Size.parse(merged["crop_size"], default_to_square=True, what="crop_size")
        if merged.get("resample") is not None:
            picked["resample"] = parse_resample(merged["resample"])
        for key in ("crop_pct", "rescale_factor"):
            if merged.get(key) is not None:
                picked[key] = _number(merged[key], key)
        for key in ("image_mean", "image_std"):
            if merged.get(key) is not None:
                picked[key] = _three(merged[key], key)
        for key in ("ensure_multiple_of", "size_divisor"):
            if merged.get(key) is not None:
                picked[key] = _whole(merged[key], key)
        config = cls(**picked)
        if config.do_center_crop and (config.crop_size is None or config.crop_size.height is None):
            raise CheckpointError("preprocessor_config.json asks for a centre crop without a crop_size")
        return config

    def center_crop_size(self) -> tuple[int, int] | None:
        """(height, width) of the centre crop, or None when the config asks for none."""
        if not self.do_center_crop or self.crop_size is None:
            return None
        height, width = self.crop_size.height, self.crop_size.width
        if height is None or width is None:  # from_dict refuses these; a config built by hand may not
            raise CheckpointError(f"a centre crop needs a crop_size with height and width, not {self.crop_size}")
        return height, width

    def replace(self, **changes: Any) -> ImageProcessorConfig:
        return dataclasses.replace(self, **changes)


def read_processor_config(
    folder: Path,
    *,
    defaults: Mapping[str, Any] | None = None,
    default_to_square: bool = True,
) -> ImageProcessorConfig:
    """The folder's preprocessor_config.json read over `defaults`; the defaults alone when
    the checkpoint has none (transformers would then use its processor class's defaults)."""
    path = Path(folder) / "preprocessor_config.json"
    data = read_json(path) if path.is_file() else {}
    return ImageProcessorConfig.from_dict(data, defaults=defaults, default_to_square=default_to_square)


def parse_resample(value: Any) -> int:
    """A PIL filter code from a code (0-5) or a name ("bilinear", "BICUBIC")."""
    if isinstance(value, str) and value.lower() in _RESAMPLE_NAMES:
        return _RESAMPLE_NAMES[value.lower()]
    if isinstance(value, int) and not isinstance(value, bool) and value in _RESAMPLE_NAMES.values():
        return value
    raise CheckpointError(f"preprocessor_config.json has an unknown resample filter: {value!r}")


def resample_name(code: int) -> str:
    """The filter's name for people ("bilinear") from its PIL code."""
    return next(name for name, value in _RESAMPLE_NAMES.items() if value == code)


def _number(value: Any, key: str) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
        return float(value)
    raise CheckpointError(f"preprocessor_config.json: {key} must be a positive number, not {value!r}")


def _whole(value: Any, key: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    raise CheckpointError(f"preprocessor_config.json: {key} must be a positive whole number, not {value!r}")


def _three(value: Any, key: str) -> tuple[float, float, float]:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (float(value),) * 3
    if isinstance(value, (list, tuple)) and len(value) == 3 and all(isinstance(v, (int, float)) for v in value):
        return tuple(float(v) for v in value)  # type: ignore[return-value]
    raise CheckpointError(f"preprocessor_config.json: {key} must be one number or three, not {value!r}")


# ---------------------------------------------------------------------------------------------
# Size rules (all return (height, width); all truncate with int() as the processors do, but
# never below one pixel: for a picture of 1×10000 the processors' arithmetic gives a side of 0,
# which no resize can make; DPT's rounds, and refuses such a picture)


def _at_least_one(height: int, width: int) -> tuple[int, int]:
    return max(1, height), max(1, width)


def size_with_aspect_ratio(height: int, width: int, shortest_edge: int, longest_edge: int | None) -> tuple[int, int]:
    """DETR's rule: the short side becomes `shortest_edge` unless the long side would then
    exceed `longest_edge`, in which case the long side is capped (480x640 -> 800x1066)."""
    size = shortest_edge
    capped: float | None = None
    if longest_edge is not None:
        short, long = float(min(height, width)), float(max(height, width))
        if long / short * size > longest_edge:
            capped = longest_edge * short / long
            size = int(round(capped))
    if (height <= width and height == size) or (width <= height and width == size):
        return height, width
    # With a cap, the long side is computed from the unrounded short side.
    exact = capped if capped is not None else size
    if width < height:
        return _at_least_one(int(exact * height / width), size)
    return _at_least_one(size, int(exact * width / height))


def short_side_size(height: int, width: int, shortest_edge: int, max_size: int | None = None) -> tuple[int, int]:
    """torchvision's `Resize(int)` rule: the short side becomes `shortest_edge`, the long side
    keeps the aspect ratio; with `max_size`, the long side is then capped."""
    short, long = (width, height) if width <= height else (height, width)
    new_short, new_long = shortest_edge, int(shortest_edge * long / short)
    if max_size is not None and new_long > max_size:
        new_short, new_long = int(max_size * new_short / new_long), max_size
    return _at_least_one(*((new_long, new_short) if width <= height else (new_short, new_long)))


def fit_within(height: int, width: int, max_height: int, max_width: int) -> tuple[int, int]:
    """Scale (up or down) until one side meets the box `max_height` x `max_width`."""
    scale = min(max_height / height, max_width / width)
    return _at_least_one(int(height * scale), int(width * scale))


def multiple_of_size(
    height: int, width: int, target_height: int, target_width: int, keep_aspect_ratio: bool, multiple: int
) -> tuple[int, int]:
    """DPT's rule: scale toward `target_height` x `target_width`; with `keep_aspect_ratio`, both
    sides by the one of the two factors nearer 1 (the smaller change); then round each side to
    a multiple of `multiple` (Python's round, halves to even). 480x640 to 518 in multiples of 14
    -> 518x686. A side that rounds to 0 is an `InputError`: transformers fails on it."""
    scale_height, scale_width = target_height / height, target_width / width
    if keep_aspect_ratio:
        if abs(1 - scale_width) < abs(1 - scale_height):
            scale_height = scale_width
        else:
            scale_width = scale_height
    new_height = round(scale_height * height / multiple) * multiple
    new_width = round(scale_width * width / multiple) * multiple
    if not new_height or not new_width:
        raise InputError(
            f"a {width}×{height} picture is too narrow for this model: resized toward "
            f"{target_width}×{target_height} with its shape kept, its short side would round to "
            "0 pixels. Crop it to a less elongated shape first."
        )
    return new_height, new_width


def rounded_down_size(height: int, width: int, multiple: int) -> tuple[int, int]:
    """GLPN's rule: each side down to the nearest multiple of `multiple` (480x640 stays,
    411x97 -> 384x96). A side below one multiple is an `InputError`: transformers fails on it."""
    new_height, new_width = height // multiple * multiple, width // multiple * multiple
    if not new_height or not new_width:
        raise InputError(
            f"a {width}×{height} picture is too small for this model: it needs at least {multiple} pixels "
            f"on each side (each side is cut down to a multiple of {multiple})"
        )
    return new_height, new_width


def output_size(height: int, width: int, size: Size) -> tuple[int, int]:
    """The resized (height, width) for an image of `height` x `width`, as the PIL backend of
    transformers' image processors chooses it for each form of `size`."""
    if size.shortest_edge and size.longest_edge:
        return size_with_aspect_ratio(height, width, size.shortest_edge, size.longest_edge)
    if size.shortest_edge:
        return short_side_size(height, width, size.shortest_edge)
    if size.max_height and size.max_width:
        return fit_within(height, width, size.max_height, size.max_width)
    if size.height and size.width:
        return size.height, size.width
    raise CheckpointError(f"cannot resize to {size}")


# ---------------------------------------------------------------------------------------------
# Pixel steps


def resize(image: Image.Image, height: int, width: int, resample: int = BILINEAR) -> Image.Image:
    """PIL's resize; PIL itself returns a copy when the size is unchanged."""
    return image.resize((width, height), resample=resample)


def center_crop(image: Image.Image, height: int, width: int) -> Image.Image:
    """The centre `height` x `width` window. A window larger than the image is filled with
    black around it, placed exactly where transformers' crop-with-padding places it."""
    top = (image.height - height) // 2
    left = (image.width - width) // 2
    if top == 0 and left == 0 and (image.height, image.width) == (height, width):
        return image
    return image.crop((left, top, left + width, top + height))


def value_table(config: ImageProcessorConfig) -> np.ndarray:
    """(3, 256) float32: what rescale and normalise turn each uint8 value of each channel into,
    computed with the processors' own dtypes so the result is identical."""
    values = np.arange(256, dtype=np.uint8)
    if config.do_rescale:
        scaled = (values.astype(np.float64) * config.rescale_factor).astype(np.float32)
    else:
        scaled = values.astype(np.float32)
    table = np.empty((3, 256), dtype=np.float32)
    for channel in range(3):
        if config.do_normalize:
            mean = np.float32(config.image_mean[channel])
            std = np.float32(config.image_std[channel])
            table[channel] = (scaled - mean) / std
        else:
            table[channel] = scaled
    return table


def to_pixel_values(image: Image.Image, table: np.ndarray) -> torch.Tensor:
    """(1, 3, H, W) float32 from an RGB image, each value looked up in `table` (see
    `value_table`)."""
    import torch

    pixels = np.asarray(image)  # (H, W, 3) uint8
    out = np.empty((3, *pixels.shape[:2]), dtype=np.float32)
    for channel in range(3):
        np.take(table[channel], pixels[..., channel], out=out[channel])
    return torch.from_numpy(out).unsqueeze(0)  # (1, 3, H, W)


def resized_size(height: int, width: int, config: ImageProcessorConfig) -> tuple[int, int]:
    """The (height, width) `config`'s resize gives a `height` x `width` image, ConvNeXT's
    crop_pct rule aside: GLPN's or DPT's rule when the config sets its keys, else `output_size`
    (rounded up to multiples of `round_up_to` where that is set)."""
    size = config.size
    if config.round_down_to is not None:
        return rounded_down_size(height, width, config.round_down_to)
    if config.keep_aspect_ratio or config.ensure_multiple_of != 1:
        if size.height is None or size.width is None:
            raise CheckpointError(f"preprocessor_config.json: keep_aspect_ratio and ensure_multiple_of need a "
                                  f"size with height and width, not {size}")
        return multiple_of_size(
            height, width, size.height, size.width, config.keep_aspect_ratio, config.ensure_multiple_of
        )
    height, width = output_size(height, width, size)
    if config.round_up_to:
        multiple = config.round_up_to
        height, width = -(-height // multiple) * multiple, -(-width // multiple) * multiple
    return height, width


def resize_plan(height: int, width: int, config: ImageProcessorConfig) -> tuple[tuple[int, int], tuple[int, int] | None]:
    """(the resized (height, width), the centre crop ConvNeXT's crop_pct rule adds or None):
    the sizes `resize_for` produces, without touching a pixel."""
    size = config.size
    if config.crop_pct is not None and size.shortest_edge:
        edge = size.shortest_edge
        if edge >= 384:
            return (edge, edge), None
        return short_side_size(height, width, int(edge / config.crop_pct)), (edge, edge)
    return resized_size(height, width, config), None


def input_region(height: int, width: int, config: ImageProcessorConfig) -> tuple[float, float, float, float]:
    """The window of a `height` x `width` picture that the model's input shows after the
    resize and crops `config` asks for, as (x0, y0, x1, y1) in the picture's pixels (beyond
    its edges where a crop pads), so the views can lay the model's grid over the photo."""
    resized, crop = resize_plan(height, width, config) if config.do_resize else ((height, width), None)
    top, left = 0, 0
    shown = resized
    for window in (crop, config.center_crop_size()):
        if window is not None:  # each crop keeps the centre of what the last one left
            top += (shown[0] - window[0]) // 2
            left += (shown[1] - window[1]) // 2
            shown = window
    sy, sx = height / resized[0], width / resized[1]
    return left * sx, top * sy, (left + shown[1]) * sx, (top + shown[0]) * sy


def resize_for(image: Image.Image, config: ImageProcessorConfig) -> Image.Image:
    """The resize (and, for ConvNeXT's crop_pct rule, the crop) that `config` asks for."""
    if not config.do_resize:
        return image
    (height, width), crop = resize_plan(image.height, image.width, config)
    image = resize(image, height, width, config.resample)
    return image if crop is None else center_crop(image, *crop)


def preprocess(image: Image.Image, config: ImageProcessorConfig, table: np.ndarray | None = None) -> torch.Tensor:
    """(1, 3, H, W) float32 pixel values for one RGB image (see `load_image`): resize, centre
    crop, rescale and normalise as `config` says. Padding (`do_pad`) is the caller's: for one
    image it changes nothing. Pass `table` (from `value_table`) to skip rebuilding it."""
    if image.mode != "RGB":
        raise InputError(f"preprocess expects an RGB image, not mode {image.mode}: use load_image")
    image = resize_for(image, config)
    crop = config.center_crop_size()
    if crop is not None:
        image = center_crop(image, *crop)
    return to_pixel_values(image, value_table(config) if table is None else table)
