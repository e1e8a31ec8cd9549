"""Real-size test pictures in every mode a user may drop on the app, drawn here from numpy so
nothing is downloaded. Smooth gradients with shapes and a little noise, so resampling filters
have edges and texture to disagree about."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image


#: The files `write_samples` writes, one per mode or case.
SAMPLE_FILES = (
    "rgb_640x480.jpg",
    "rgb_640x480.png",
    "rgba_480x640.png",
    "grey_500x300.png",
    "grey_alpha_500x300.png",
    "bilevel_500x300.png",
    "palette_transparent_520x360.png",
    "palette_520x360.gif",
    "cmyk_640x480.jpg",
    "grey16_600x400.png",
    "grey32_600x400.tif",
    "exif_rotated_480x640.jpg",
    "one_pixel.png",
)


def photo(height: int, width: int, seed: int = 0) -> np.ndarray:
    """(H, W, 3) uint8: a sky-to-ground gradient, two discs and a bar, with sensor noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    yn, xn = y / max(height - 1, 1), x / max(width - 1, 1)
    image = np.stack([60 + 150 * yn, 110 + 100 * (1 - yn) * xn, 200 - 120 * yn], axis=-1)
    for cy, cx, r, colour in ((0.35, 0.3, 0.18, (230, 60, 40)), (0.6, 0.7, 0.22, (40, 170, 80))):
        inside = (yn - cy) ** 2 + ((xn - cx) * width / max(height, 1)) ** 2 < r**2
        image[inside] = colour
    image[(yn > 0.8) & (yn < 0.86)] = (250, 240, 30)
    image += rng.normal(0, 6, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)


def write_samples(folder: Path) -> dict[str, Path]:
    """Write one file per case and return file name -> path."""
    folder.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}

    def save(name: str, image: Image.Image, **kwargs) -> None:
        paths[name] = folder / name
        image.save(folder / name, **kwargs)

    rgb = photo(480, 640)
    save("rgb_640x480.jpg", Image.fromarray(rgb), quality=92)
    save("rgb_640x480.png", Image.fromarray(rgb))

    tall = photo(640, 480, seed=1)
    alpha = np.tile(np.linspace(0, 255, 480, dtype=np.float32), (640, 1)).astype(np.uint8)
    save("rgba_480x640.png", Image.fromarray(np.dstack([tall, alpha])))

    grey = photo(300, 500, seed=2).mean(axis=-1).astype(np.uint8)
    save("grey_500x300.png", Image.fromarray(grey))
    save("grey_alpha_500x300.png", Image.fromarray(np.dstack([grey, 255 - grey])))
    save("bilevel_500x300.png", Image.fromarray(grey).convert("1"))

    palette = Image.fromarray(photo(360, 520, seed=3)).quantize(colors=64)
    save("palette_transparent_520x360.png", palette, transparency=0)
    save("palette_520x360.gif", palette)

    save("cmyk_640x480.jpg", Image.fromarray(photo(480, 640, seed=4)).convert("CMYK"), quality=92)

    deep = (photo(400, 600, seed=5).mean(axis=-1) * 257).astype(np.uint16)  # full 16-bit range
    save("grey16_600x400.png", Image.fromarray(deep))
    save("grey32_600x400.tif", Image.fromarray(deep.astype(np.int32)))

    # Stored sideways (640 wide, 480 high) with EXIF orientation 6: upright it is 480x640.
    exif = Image.Exif()
    exif[0x0112] = 6
    save("exif_rotated_480x640.jpg", Image.fromarray(rgb), quality=92, exif=exif)

    save("one_pixel.png", Image.fromarray(np.array([[[200, 30, 90]]], dtype=np.uint8)))
    return paths


def write_huge_png(path: Path, width: int = 20_000, height: int = 20_000) -> Path:
    """A valid 1-bit PNG of `width` x `height` black pixels in a few hundred kilobytes: cheap
    to write, but 400 MB as a decoded bilevel image and 1.2 GB in RGB."""
    row = b"\x00" + bytes((width + 7) // 8)  # filter type 0, then the packed bits
    compressor = zlib.compressobj(9)
    body = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1 bit, greyscale
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b""))
    return path


def transformers_input(path: Path) -> Image.Image | str:
    """What transformers' loader is given in the parity tests for the picture at `path`: the
    file itself, or for grey of more than 8 bits (16-bit, 32-bit integer) the 8-bit picture a
    viewer shows, made here without engine.image: round(v / 257). engine.image scales such
    files to 8 bits where transformers' loader clips them."""
    image = Image.open(path)
    if image.mode not in ("I", "I;16", "I;16B"):
        return str(path)
    return Image.fromarray(np.round(np.asarray(image) / 257).astype(np.uint8))
