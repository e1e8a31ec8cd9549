"""The strip of small inner maps (depth decoder levels, a Mask2Former query through its layers):
refilled with more pictures than before, every cell is laid out at its picture's width."""

from __future__ import annotations

from PySide6.QtGui import QImage
from PySide6.QtWidgets import QApplication, QVBoxLayout, QWidget

from app.widgets.depth_view import LevelStrip


def test_refilled_with_more_pictures_every_cell_gets_its_pictures_width(qtbot):
    holder = QWidget()
    qtbot.addWidget(holder)
    strip = LevelStrip()
    QVBoxLayout(holder).addWidget(strip)
    holder.resize(1000, 200)
    holder.show()
    picture = QImage(32, 24, QImage.Format.Format_RGB32)
    picture.fill(0xFF0000)
    strip.set_pictures([(picture, "before")])
    QApplication.processEvents()
    strip.set_pictures([(picture, "before"), (picture, "layer 1"), (picture, "layer 2")])
    QApplication.processEvents()
    wide = round(32 * LevelStrip.HEIGHT / 24)
    assert [label.width() for cell, label, _ in strip._cells] == [wide] * 3
    assert strip.captions() == ["before", "layer 1", "layer 2"]
