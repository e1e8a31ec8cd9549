"""Render the sample photos offered by the vision tabs. Everything is drawn here with numpy and
PIL, so the pictures are ours to give away (CC0, see LICENSES.md). Run from the repository
root to rebuild them: `python resources/samples/render.py`."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

HERE = Path(__file__).parent


def vertical_gradient(height: int, width: int, top: tuple, bottom: tuple) -> np.ndarray:
    t = np.linspace(0, 1, height, dtype=np.float32)[:, None, None]
    return (1 - t) * np.array(top, np.float32) + t * np.array(bottom, np.float32) + np.zeros((1, width, 3), np.float32)


def ridge(width: int, rng: np.random.Generator, base: float, roughness: float) -> np.ndarray:
    """A mountain skyline: a sum of sines with random phases, heights in pixels from the top."""
    x = np.arange(width, dtype=np.float32)
    line = np.full(width, base, np.float32)
    for octave in range(1, 7):
        wavelength = width / (octave * 1.7)
        line += roughness / octave * np.sin(2 * math.pi * x / wavelength + rng.uniform(0, 2 * math.pi))
    return line


def landscape(width: int = 1200, height: int = 800) -> Image.Image:
    """Mountains at sunset above a lake, pines on the near shore."""
    rng = np.random.default_rng(7)
    sky = vertical_gradient(height, width, (40, 60, 130), (250, 170, 110))
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    sun_x, sun_y = 0.68 * width, 0.42 * height
    glow = np.exp(-(((x - sun_x) ** 2 + (y - sun_y) ** 2) / (2 * (0.12 * width) ** 2)))
    sky += glow[..., None] * np.array([90, 60, 10], np.float32)
    sky[(x - sun_x) ** 2 + (y - sun_y) ** 2 < (0.035 * width) ** 2] = (255, 236, 180)
    image = sky
    horizon = int(0.62 * height)
    for depth, (colour, base, rough) in enumerate(
        [((120, 100, 150), 0.38, 60), ((80, 70, 110), 0.47, 45), ((45, 50, 70), 0.55, 30)]
    ):
        line = ridge(width, rng, base * height, rough)
        mask = (y > line[None, :]) & (y < horizon)
        haze = 0.25 * (2 - depth) / 2
        image[mask] = (1 - haze) * np.array(colour, np.float32) + haze * np.array((250, 170, 110), np.float32)
    # The lake mirrors the sky and mountains, darker and rippled.
    rows = np.arange(horizon, height)
    mirror = np.clip(2 * horizon - rows, 0, horizon - 1)
    ripple = (3 * np.sin(rows[:, None] * 0.9 + x[horizon:] * 0.05)).astype(int)
    columns = np.clip(np.arange(width)[None, :] + ripple, 0, width - 1)
    image[horizon:] = 0.6 * image[mirror[:, None], columns] + 0.4 * np.array((20, 40, 70), np.float32)
    picture = Image.fromarray(np.clip(image + rng.normal(0, 2.5, image.shape), 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(picture)
    shore = height - 70
    draw.rectangle([0, shore, width, height], fill=(25, 35, 25))
    for _ in range(26):
        cx, tree_height = rng.uniform(0, width), rng.uniform(90, 210)
        half = tree_height * 0.22
        for tier in range(4):
            top = shore - tree_height + tier * tree_height * 0.2
            draw.polygon(
                [(cx, top), (cx - half * (0.6 + 0.15 * tier), top + tree_height * 0.35),
                 (cx + half * (0.6 + 0.15 * tier), top + tree_height * 0.35)],
                fill=(15 + tier * 4, 40 + tier * 6, 25),
            )
        draw.rectangle([cx - 3, shore - 12, cx + 3, shore + 4], fill=(40, 28, 20))
    return picture.filter(ImageFilter.GaussianBlur(0.6))


def sphere(draw_target: np.ndarray, cx: float, cy: float, radius: float, colour: tuple, light=(-0.5, -0.6)) -> None:
    """Shade a lit sphere into the (H, W, 3) float image in place."""
    height, width, _ = draw_target.shape
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    dx, dy = (x - cx) / radius, (y - cy) / radius
    inside = dx**2 + dy**2 < 1
    dz = np.sqrt(np.clip(1 - dx**2 - dy**2, 0, 1))
    lx, ly = light
    lz = math.sqrt(max(1 - lx**2 - ly**2, 0))
    diffuse = np.clip(dx * lx + dy * ly + dz * lz, 0, 1)
    specular = np.clip(dx * lx + dy * ly + dz * lz, 0, 1) ** 40
    shade = (0.25 + 0.75 * diffuse)[..., None] * np.array(colour, np.float32) + 255 * 0.6 * specular[..., None]
    draw_target[inside] = np.clip(shade[inside], 0, 255)


def still_life(width: int = 1000, height: int = 750) -> Image.Image:
    """An apple, an orange and a tennis ball on a wooden table against a plain wall."""
    rng = np.random.default_rng(11)
    image = vertical_gradient(height, width, (215, 210, 200), (175, 170, 160))
    table = int(0.55 * height)
    y, x = np.mgrid[table:height, 0:width].astype(np.float32)
    grain = 18 * np.sin(x * 0.02 + 6 * np.sin(y * 0.013) + rng.uniform(0, 6)) + rng.normal(0, 3, x.shape)
    image[table:] = np.stack([150 + grain, 95 + grain * 0.7, 55 + grain * 0.4], axis=-1)
    # Soft shadows first, then the objects over them.
    shadow = np.zeros((height, width), np.float32)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    objects = [(300, 505, 110, (200, 30, 35)), (540, 520, 95, (245, 140, 20)), (760, 500, 120, (200, 215, 60))]
    for cx, cy, r, _ in objects:
        shadow += np.exp(-(((xx - cx - 0.5 * r) / (1.3 * r)) ** 2 + ((yy - cy - 0.9 * r) / (0.28 * r)) ** 2))
    image *= (1 - 0.45 * np.clip(shadow, 0, 1))[..., None]
    for cx, cy, r, colour in objects:
        sphere(image, cx, cy, r, colour)
    # Two white seams curving over the tennis ball, drawn in the ball's own coordinates.
    ball_x, ball_y, ball_r = objects[2][:3]
    dx, dy = (xx - ball_x) / ball_r, (yy - ball_y) / ball_r
    on_ball = dx**2 + dy**2 < 0.97
    for side in (-1, 1):
        seam = np.abs(dx - side * (0.72 - 0.85 * dy**2)) < 0.05
        image[on_ball & seam] = 0.35 * image[on_ball & seam] + 0.65 * 245
    picture = Image.fromarray(np.clip(image, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(picture)
    # Apple stalk and leaf.
    apple_x, apple_y, apple_r = objects[0][:3]
    draw.line([apple_x, apple_y - apple_r + 8, apple_x + 8, apple_y - apple_r - 25], fill=(70, 45, 20), width=6)
    draw.ellipse([apple_x + 8, apple_y - apple_r - 35, apple_x + 55, apple_y - apple_r - 12], fill=(60, 140, 40))
    return picture.filter(ImageFilter.GaussianBlur(0.5))


def street(width: int = 1200, height: int = 800) -> Image.Image:
    """A stop sign and a traffic light by a road under a clear sky."""
    rng = np.random.default_rng(3)
    image = vertical_gradient(height, width, (120, 170, 230), (200, 220, 240))
    road_top = int(0.68 * height)
    image[road_top:] = vertical_gradient(height - road_top, width, (95, 95, 100), (60, 60, 65))
    image[road_top - 30 : road_top] = (150, 150, 145)  # pavement
    picture = Image.fromarray(np.clip(image + rng.normal(0, 2, image.shape), 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(picture)
    for i in range(0, width, 160):  # lane markings
        draw.rectangle([i + 20, int(0.84 * height), i + 110, int(0.84 * height) + 10], fill=(235, 235, 225))
    # Building blocks in the distance.
    for left, top, right, colour in ((0, 300, 260, (170, 150, 140)), (250, 220, 520, (150, 160, 175)),
                                     (900, 260, 1200, (180, 170, 150))):
        draw.rectangle([left, top, right, road_top - 30], fill=colour)
        for wy in range(top + 20, road_top - 60, 50):
            for wx in range(left + 20, right - 30, 55):
                draw.rectangle([wx, wy, wx + 30, wy + 30], fill=(90, 110, 140))
    # Stop sign: pole, white-rimmed red octagon, lettering.
    cx, cy, r = 720, 300, 110
    draw.rectangle([cx - 8, cy, cx + 8, road_top - 10], fill=(130, 130, 135))
    octagon = [(cx + r * math.cos(math.pi / 8 + k * math.pi / 4), cy + r * math.sin(math.pi / 8 + k * math.pi / 4))
               for k in range(8)]
    draw.polygon(octagon, fill=(245, 245, 245))
    inner = [(cx + 0.88 * (px - cx), cy + 0.88 * (py - cy)) for px, py in octagon]
    draw.polygon(inner, fill=(200, 20, 30))
    font = _font(54)
    draw.text((cx, cy), "STOP", fill=(250, 250, 250), font=font, anchor="mm")
    # Traffic light.
    lx, ly = 400, 190
    draw.rectangle([lx + 28, ly + 230, lx + 42, road_top - 10], fill=(60, 60, 60))
    draw.rounded_rectangle([lx, ly, lx + 70, ly + 230], radius=14, fill=(30, 30, 30))
    for k, colour in enumerate(((255, 40, 30), (70, 60, 20), (20, 60, 30))):
        draw.ellipse([lx + 12, ly + 14 + 72 * k, lx + 58, ly + 60 + 72 * k], fill=colour)
    return picture.filter(ImageFilter.GaussianBlur(0.7))


def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.truetype("DejaVuSans-Bold.ttf", size)
    except OSError:
        return ImageFont.load_default(size)


def main() -> None:
    for name, make in (("landscape", landscape), ("still_life", still_life), ("street", street)):
        make().save(HERE / f"{name}.jpg", quality=90, optimize=True)


if __name__ == "__main__":
    main()
