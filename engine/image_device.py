"""Image pre-processing on the model's device (CUDA, MPS): the decoded picture travels as
uint8 and is resized, cropped, rescaled and normalised there with torch.

The PIL path in `engine.image_processing` stays the reference and the default on the CPU: it matches
transformers' PIL processors bit for bit. This path keeps its geometry exactly (the same size
rules, the same crop windows, the same padding) and its pixel values to within one grey level
on photographs (two, rarely, where noise is enlarged with bicubic):

- bilinear and bicubic use torch's antialiased kernels, which follow PIL's filters (support
  widened by the scale factor, cubic a = -0.5, weights renormalised at the borders, so the
  borders agree as well as the interior). Like PIL, the width is resized first and the result
  clipped and rounded to whole levels before the height is; what is left is PIL's fixed-point
  weights against float32 ones, which tip a value sitting near x.5 the other way;
- nearest picks the very source pixels PIL picks (see `_nearest_indices`), so it is exact;
- lanczos, box and hamming have no torch kernel: PIL resizes those on the CPU (exact) and the
  resized picture is uploaded.
"""

from __future__ import annotations

import os

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from engine import image_processing as processing
from engine.errors import InputError

#: "device" forces this path (on any device, the CPU included: tests use it), "pil" forces the
#: PIL path, "auto" (or unset) picks this path on CUDA and MPS only.
ENVIRONMENT_VARIABLE = "TASK_STUDIO_IMAGE_PREPROCESS"

_ACCELERATORS = ("cuda", "mps")
_TORCH_FILTERS = {processing.BILINEAR: "bilinear", processing.BICUBIC: "bicubic"}


def use_device_path(device: torch.device) -> bool:
    """Whether a task on `device` pre-processes images there: on CUDA and MPS unless
    `TASK_STUDIO_IMAGE_PREPROCESS` says otherwise. Tasks ask once, at load, and keep the
    answer in their `preprocess_on_device` attribute."""
    choice = os.environ.get(ENVIRONMENT_VARIABLE, "auto").strip().lower() or "auto"
    if choice == "device":
        return True
    if choice == "pil":
        return False
    if choice == "auto":
        return device.type in _ACCELERATORS
    raise InputError(f"{ENVIRONMENT_VARIABLE} must be auto, device or pil, not {choice!r}")


# ---------------------------------------------------------------------------------------------
# Steps


def upload(image: Image.Image, device: torch.device) -> torch.Tensor:
    """(H, W, 3) uint8 on `device`: a quarter of the bytes of float32 pixels of the same size.
    On CUDA the copy goes through pinned memory and does not wait for the device."""
    pinned = device.type == "cuda"
    host = torch.empty((image.height, image.width, 3), dtype=torch.uint8, pin_memory=pinned)
    np.copyto(host.numpy(), np.asarray(image))
    return host.to(device, non_blocking=pinned)


def resize(pixels: torch.Tensor, height: int, width: int, resample: int) -> torch.Tensor:
    """(1, 3, h, w) float32 grey levels -> (1, 3, height, width), as PIL's `resize` with
    `resample` (nearest, bilinear or bicubic) would give them, to within one level."""
    if pixels.shape[-2:] == (height, width):
        return pixels  # PIL leaves such a picture as it is
    if resample == processing.NEAREST:
        rows = _nearest_indices(pixels.shape[-2], height, pixels.device)
        columns = _nearest_indices(pixels.shape[-1], width, pixels.device)
        return pixels.index_select(-2, rows).index_select(-1, columns)
    if resample not in _TORCH_FILTERS:
        raise InputError(f"no torch resize for PIL filter {resample}: resize such pictures with PIL")
    mode = _TORCH_FILTERS[resample]
    # One axis at a time, rounding to whole levels in between as PIL does (width first): a
    # bicubic pass overshoots at hard edges, and clipping that before the second pass moves
    # the result by up to ~25 levels where upscaled noise or text has such edges.
    if pixels.shape[-1] != width:
        pixels = _interpolate(pixels, pixels.shape[-2], width, mode)
    if pixels.shape[-2] != height:
        pixels = _interpolate(pixels, height, width, mode)
    return pixels


def _interpolate(pixels: torch.Tensor, height: int, width: int, mode: str) -> torch.Tensor:
    """torch's antialiased resize, rounded half up to whole levels and clipped to 0..255, as
    PIL stores each pass."""
    try:
        resized = F.interpolate(pixels, size=(height, width), mode=mode, antialias=True, align_corners=False)
    except NotImplementedError:  # a torch without this kernel on the device (MPS before 2.8)
        resized = F.interpolate(
            pixels.cpu(), size=(height, width), mode=mode, antialias=True, align_corners=False
        ).to(pixels.device)
    return resized.add_(0.5).floor_().clamp_(0, 255)


def _nearest_indices(size: int, new_size: int, device: torch.device) -> torch.Tensor:
    """The source row (or column) PIL's nearest filter reads for each output one. PIL walks
    the output adding the step size to a running float64 position that starts half a step in
    and truncates it; the running sum's rounding sometimes lands just below a whole number,
    where floor((i + 0.5) * step) would land on it, so the sum is reproduced as PIL forms it."""
    step = size / new_size
    positions = np.cumsum(np.concatenate(([step * 0.5], np.full(new_size - 1, step))))  # sequential
    indices = np.minimum(positions.astype(np.int64), size - 1)
    return torch.from_numpy(indices).to(device)


def center_crop(pixels: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """The centre `height` x `width` window of (1, 3, h, w) grey levels, the same window as
    `engine.image_processing.center_crop`: parts outside the picture are black (level 0)."""
    h, w = pixels.shape[-2:]
    top, left = (h - height) // 2, (w - width) // 2
    if 0 <= top and 0 <= left:
        return pixels[..., top : top + height, left : left + width]
    window = pixels.new_zeros((*pixels.shape[:-2], height, width))
    # the overlap of the window and the picture, in the picture's and in the window's pixels
    y0, x0 = max(top, 0), max(left, 0)
    y1, x1 = min(top + height, h), min(left + width, w)
    window[..., y0 - top : y1 - top, x0 - left : x1 - left] = pixels[..., y0:y1, x0:x1]
    return window


def normalize(pixels: torch.Tensor, config: processing.ImageProcessorConfig) -> torch.Tensor:
    """Rescale and normalise (1, 3, H, W) grey levels in one multiply-add per channel:
    (x * factor - mean) / std = x * (factor / std) - mean / std."""
    factor = config.rescale_factor if config.do_rescale else 1.0
    mean = np.array(config.image_mean if config.do_normalize else (0.0, 0.0, 0.0), dtype=np.float64)
    std = np.array(config.image_std if config.do_normalize else (1.0, 1.0, 1.0), dtype=np.float64)
    # (3,) -> (1, 3, 1, 1), made in float64 and stored in float32 (MPS has no float64)
    scale = torch.from_numpy((factor / std).astype(np.float32)).view(1, 3, 1, 1).to(pixels.device)
    shift = torch.from_numpy((-mean / std).astype(np.float32)).view(1, 3, 1, 1).to(pixels.device)
    return torch.addcmul(shift, pixels, scale)


# ---------------------------------------------------------------------------------------------
# The whole path


def preprocess(
    image: Image.Image,
    config: processing.ImageProcessorConfig,
    device: torch.device,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """(1, 3, H, W) pixel values in `dtype` on `device` for one RGB image: the tensor
    `engine.image_processing.preprocess` makes, of the same shape, made on the device."""
    if image.mode != "RGB":
        raise InputError(f"preprocess expects an RGB image, not mode {image.mode}: use load_image")
    plan = None
    if config.do_resize:
        if config.resample in _TORCH_FILTERS or config.resample == processing.NEAREST:
            plan = processing.resize_plan(image.height, image.width, config)
        else:
            image = processing.resize_for(image, config)  # exact, on the CPU, before the upload
    pixels = upload(image, device).permute(2, 0, 1).unsqueeze(0).float()  # (H, W, 3) -> (1, 3, H, W)
    if plan is not None:
        (height, width), crop = plan
        pixels = resize(pixels, height, width, config.resample)
        if crop is not None:
            pixels = center_crop(pixels, *crop)
    crop_size = config.center_crop_size()
    if crop_size is not None:
        pixels = center_crop(pixels, *crop_size)
    return normalize(pixels, config).to(dtype).contiguous()
