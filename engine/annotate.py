"""Boxes drawn onto a picture with Pillow, for the files the CLI writes (`--output-dir`): each
box in its class's colour with a caption of label and score, as the app's view draws them.

The palette lives here so that the app (app/widgets/overlays.py) and the files agree on a
class's colour. No torch and no Qt: the app imports this module for the palette alone.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PIL import Image

# Distinct, saturated colours that stay readable on photos; a class keeps its colour by id.
PALETTE = (
    "#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6", "#bfef45",
    "#469990", "#dcbeff", "#9a6324", "#ffe119", "#800000", "#aaffc3", "#808000", "#000075",
)


def palette_index(key: int | str) -> int:
    """A class's place in `PALETTE`: by its id when known, else by a hash of its name."""
    return (key if isinstance(key, int) else zlib.crc32(str(key).encode())) % len(PALETTE)


def rgb(colour: str) -> tuple[int, int, int]:
    """"#rrggbb" as (r, g, b)."""
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


def readable_on(background: tuple[int, int, int]) -> tuple[int, int, int]:
    """Near-black or white, whichever reads better on `background` (perceived luminance)."""
    r, g, b = (c / 255 for c in background)
    return (17, 17, 17) if 0.299 * r + 0.587 * g + 0.114 * b > 0.6 else (255, 255, 255)


Box = tuple[tuple[float, float, float, float], str, int]  # (x0, y0, x1, y1), caption, class id


def draw_boxes(picture: Image.Image, boxes: Sequence[Box]) -> Image.Image:
    """A copy of `picture` (RGB) with each (x0, y0, x1, y1) box outlined in its class's colour
    and captioned above its top edge (inside it where the edge is the picture's). Lines and
    text scale with the picture, so a 4000-pixel photo's captions read as a 640-pixel one's do."""
    from PIL import ImageDraw, ImageFont

    drawn = picture.convert("RGB")  # a copy, even of an RGB picture
    draw = ImageDraw.Draw(drawn)
    scale = max(drawn.size) / 640
    line = max(2, round(2 * scale))
    font = ImageFont.load_default(size=max(11, round(13 * scale)))
    for (x0, y0, x1, y1), caption, label_id in boxes:
        colour = rgb(PALETTE[palette_index(label_id)])
        draw.rectangle((x0, y0, x1, y1), outline=colour, width=line)
        left, top, right, bottom = draw.textbbox((0, 0), caption, font=font)
        pad = max(2, round(2 * scale))
        width, height = right - left + 2 * pad, bottom - top + 2 * pad
        tag_top = y0 - height if y0 - height >= 0 else y0
        tag_left = min(max(x0, 0), max(drawn.width - width, 0))
        draw.rectangle((tag_left, tag_top, tag_left + width, tag_top + height), fill=colour)
        draw.text((tag_left + pad - left, tag_top + pad - top), caption, fill=readable_on(colour), font=font)
    return drawn
