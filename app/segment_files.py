"""Saving a segmentation: the photo with its segments at the original's full size (colours,
outlines and labels as the tab shows them), and, all together in one folder, that picture, a
PNG mask per segment, the label map as an indexed PNG whose palette holds the segments' colours,
its legend, and the pipeline's JSON.

Both run in the exporter's thread (app/annotate.py): they touch numpy, PIL, QImage and
QPainter only, and the result's own methods; they report as `app.annotate.Exported`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QRectF, QSize, QSizeF
from PySide6.QtGui import QFont, QImage, QPainter

from app.annotate import Exported, read_original, save_png
from app.segment_maps import hex_colour, index_map, layer
from app.widgets.overlays import EXPORT_REFERENCE_SIDE
from app.widgets.segment_view import SegmentLabel, paint_labels

BAND_ROWS = 256  # rows blended at once
MAX_INDEXED = 255  # an indexed PNG has 256 palette entries, and entry 0 stands for "no segment"


@dataclass(frozen=True)
class SegmentExport:
    """One export: `source` and `fallback` as in `app.annotate.ExportRequest`; `result` the
    engine's Segmentation; `colours` (N, 3) and `labels` one per segment, as on screen."""

    source: Any
    fallback: QImage | None
    result: Any
    colours: np.ndarray
    labels: list[SegmentLabel]
    font: QFont
    opacity: float
    alone: bool = False


def overlay_picture(request: SegmentExport) -> tuple[QImage, str]:
    """The full-size picture with its segments, and a note when only the preview could be
    drawn on. Raises ValueError when neither could be read."""
    note = ""
    try:
        photo = read_original(request.source)
    except ValueError as exc:
        if request.fallback is None or request.fallback.isNull():
            raise
        photo, note = request.fallback, f"{exc}, so it was saved at the preview's resolution"
    photo = photo.convertToFormat(QImage.Format.Format_RGB888)
    width, height = photo.width(), photo.height()
    rows = np.frombuffer(photo.constBits(), np.uint8, count=photo.bytesPerLine() * height)
    pixels = rows.reshape(height, photo.bytesPerLine())[:, : 3 * width].reshape(height, width, 3)

    result = request.result
    indices = _fit(index_map(result.segmentation, result.segments, longest=None).indices, width, height)
    scale = max(1.0, max(width, height) / EXPORT_REFERENCE_SIDE)
    rgba = layer(indices, request.colours, opacity=request.opacity, alone=request.alone,
                 outline=max(2, round(2 * scale)))
    blended = np.empty_like(pixels)
    for top in range(0, height, BAND_ROWS):  # a band at a time: a 12-megapixel photo needs no gigabyte
        band = slice(top, top + BAND_ROWS)
        alpha = rgba[band, :, 3:].astype(np.float32) / 255
        blended[band] = np.rint(pixels[band] * (1 - alpha) + rgba[band, :, :3] * alpha)
    out = QImage(np.ascontiguousarray(blended).data, width, height, 3 * width, QImage.Format.Format_RGB888).copy()
    painter = QPainter(out)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    space = QSizeF(*result.image_size)
    paint_labels(painter, request.labels, space, QRectF(out.rect()), request.font, scale)
    painter.end()
    return out, note


def _fit(indices: np.ndarray, width: int, height: int) -> np.ndarray:
    """`indices` at (height, width) by nearest neighbour (a preview smaller than the original)."""
    if indices.shape == (height, width):
        return indices
    rows = np.arange(height) * indices.shape[0] // height
    columns = np.arange(width) * indices.shape[1] // width
    return indices[rows][:, columns]


def save_overlay(request: SegmentExport, path: Path) -> Exported:
    """The picture with its segments as PNG at `path`. Never raises."""
    try:
        picture, note = overlay_picture(request)
    except ValueError as exc:
        return Exported(path, QSize(), error=f"Could not save {path.name}: {exc}")
    error = save_png(picture, path)
    if error:
        return Exported(path, QSize(), error=f"Could not save {path}: {error}")
    return Exported(path, picture.size(), note=note)


def label_map(result: Any, colours: np.ndarray) -> tuple[Any, list[dict[str, Any]]]:
    """The label map as a PIL image of mode "P" at the original's size, pixel value i + 1 for
    segment i and 0 where there is none, with the segments' colours as its palette; and the
    legend, one entry per palette index."""
    from PIL import Image

    segments = result.segments[:MAX_INDEXED]
    indices = index_map(result.segmentation, result.segments, longest=None).indices
    values = np.where(indices < MAX_INDEXED, indices + 1, 0).astype(np.uint8)
    picture = Image.frombytes("P", (values.shape[1], values.shape[0]), values.tobytes())
    palette = np.zeros((256, 3), dtype=np.uint8)
    palette[1 : len(segments) + 1] = colours[: len(segments)]
    picture.putpalette(palette.flatten().tolist())
    legend = [{"index": 0, "label": None, "colour": "#000000", "note": "no segment"}]
    for position, segment in enumerate(segments):
        legend.append({"index": position + 1, "label": segment.label, "label_id": segment.label_id,
                       "score": segment.score, "area": segment.area, "colour": hex_colour(colours[position])})
    return picture, legend


def save_everything(request: SegmentExport, folder: Path, stem: str) -> Exported:
    """Into `folder`: STEM-overlay.png, STEM-NN-LABEL.png (each mask, as the pipeline's),
    STEM-labels.png (indexed) with STEM-labels.json (its legend), and STEM.json (the segments,
    each with its mask's path). Never raises; `path` of the outcome is the JSON."""
    folder = Path(folder)
    json_path = folder / f"{stem}.json"
    overlay = save_overlay(request, folder / f"{stem}-overlay.png")
    if overlay.error:
        return Exported(json_path, QSize(), error=overlay.error)
    result = request.result
    try:
        entries = result.write_files(folder, stem)
        picture, legend = label_map(result, request.colours)
        picture.save(folder / f"{stem}-labels.png")
        described = {"image": f"{stem}-labels.png", "width": picture.width, "height": picture.height,
                     "subtask": result.subtask, "legend": legend}
        (folder / f"{stem}-labels.json").write_text(json.dumps(described, ensure_ascii=False, indent=2) + "\n",
                                                    encoding="utf-8")
        json_path.write_text(json.dumps(entries, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    except OSError as exc:
        return Exported(json_path, QSize(), error=f"Could not save into {folder}: {exc.strerror or exc}")
    notes = [overlay.note] if overlay.note else []
    if len(result.segments) > MAX_INDEXED:
        notes.append(f"the label map holds the first {MAX_INDEXED} of {len(result.segments)} segments")
    return Exported(json_path, overlay.size, note="; ".join(notes))
