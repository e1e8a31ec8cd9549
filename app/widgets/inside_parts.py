"""Pieces the "Inside the model" views share: their layout (pickers above a picture on the
left, explanations and lists on the right), titled pickers that keep their choice across
results, and the two kinds of label they use."""

from __future__ import annotations

from PySide6.QtWidgets import QComboBox, QGridLayout, QHBoxLayout, QLabel, QLayout, QVBoxLayout, QWidget


def section(text: str = "") -> QLabel:
    label = QLabel(text)
    label.setObjectName("sectionLabel")
    return label


def hint(text: str = "") -> QLabel:
    label = QLabel(text)
    label.setObjectName("hint")
    label.setWordWrap(True)
    return label


def picker(tooltip: str) -> QComboBox:
    combo = QComboBox()
    combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
    combo.setToolTip(tooltip)
    return combo


def refill(combo: QComboBox, items: list[str], default: int) -> None:
    """Replace `combo`'s items without signalling, keeping the chosen index when the list is
    as long as before (the next picture keeps the layer or head the user was looking at)."""
    keep = combo.currentIndex() if combo.count() == len(items) else default
    combo.blockSignals(True)
    combo.clear()
    combo.addItems(items)
    combo.setCurrentIndex(keep)
    combo.blockSignals(False)


def lay_out(owner: QWidget, pickers: list[tuple[str, QComboBox]], view: QWidget,
            side: list[QWidget | QLayout]) -> None:
    """`owner`'s layout: each picker after its title above `view`, and `side` stacked to the
    right, the picture taking three fifths of the width."""
    row = QHBoxLayout()
    for title, combo in pickers:
        row.addWidget(section(title))
        row.addWidget(combo)
    row.addStretch(1)
    column = QVBoxLayout()
    for item in side:
        if isinstance(item, QLayout):
            column.addLayout(item)
        else:
            column.addWidget(item)
    column.addStretch(1)
    grid = QGridLayout(owner)
    grid.setContentsMargins(0, 0, 0, 0)
    grid.addLayout(row, 0, 0)
    grid.addWidget(view, 1, 0)
    grid.addLayout(column, 0, 1, 2, 1)
    grid.setColumnStretch(0, 3)
    grid.setColumnStretch(1, 2)
