"""The How-it-works panel: a few sentences on the architecture, then the loaded model's numbers."""

from __future__ import annotations

import html
from typing import Any

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QTextDocument
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QScrollArea, QSizePolicy, QWidget

from app.widgets.collapsible import Collapsible

_MAX_LIST = 12  # label lists beyond this are summarised; a 1000-class list helps nobody here

# How the engine's info() keys read to people; unknown keys are prettified from their name.
_NAMES = {
    "model_type": "Model type",
    "architecture": "Architecture",
    "layers": "Layers",
    "attention_heads": "Attention heads",
    "feed_forward_size": "Feed-forward size",
    "vocabulary_size": "Vocabulary",
    "max_tokens": "Tokens read at once",
    "num_layers": "Layers",
    "num_hidden_layers": "Layers",
    "hidden_size": "Hidden size",
    "num_heads": "Attention heads",
    "num_attention_heads": "Attention heads",
    "intermediate_size": "Feed-forward size",
    "vocab_size": "Vocabulary",
    "max_positions": "Max positions",
    "max_position_embeddings": "Max positions",
    "num_labels": "Labels",
    "labels": "Labels",
    "parameters": "Parameters",
}


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}".replace(",", "\u202f")  # thin spaces group digits in any locale
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (list, tuple)):
        shown = ", ".join(map(str, value[:_MAX_LIST]))
        more = len(value) - _MAX_LIST
        return shown + (f", … ({more} more)" if more > 0 else "")
    return str(value)


def facts_html(info: dict[str, Any]) -> str:
    rows = []
    for key, value in info.items():
        if value is None or value == "" or value == [] or value == {}:
            continue
        name = _NAMES.get(key, key.replace("_", " ").capitalize())
        rows.append(
            f"<tr><td style='padding:1px 14px 1px 0'><b>{html.escape(name)}</b></td>"
            f"<td>{html.escape(_value(value))}</td></tr>"
        )
    return "<table cellspacing='0'>" + "".join(rows) + "</table>" if rows else ""


class HowItWorks(Collapsible):
    """`set_content(explanation_html, info)`: `info` is the loaded task's `info()`, or None
    before a model is loaded. The explanation reads on the left, the numbers sit on the right."""

    MAX_HEIGHT = 260  # the panel must never squeeze the input and result out of the window

    def __init__(self, parent: QWidget | None = None) -> None:
        self._text = _rich_label()
        self._facts = _rich_label()
        frame = QFrame()
        frame.setObjectName("card")
        layout = QHBoxLayout(frame)
        layout.setContentsMargins(14, 10, 14, 10)
        layout.setSpacing(24)
        layout.addWidget(self._text, 3)
        layout.addWidget(self._facts, 2)
        self._scroll = _FittingScroll(frame, self.MAX_HEIGHT)
        super().__init__("How it works", self._scroll, parent)

    def set_content(self, explanation: str, info: dict[str, Any] | None) -> None:
        self._text.setText(explanation)
        if info:
            self._facts.setText("<p style='margin:0 0 4px 0'><b>The loaded model</b></p>" + facts_html(info))
        else:
            self._facts.setText("<i>The loaded model's own numbers appear here.</i>")
        self._scroll.updateGeometry()

    def plain_text(self) -> str:
        """Both parts as text, for tests and screen readers."""
        doc = QTextDocument()
        doc.setHtml(self._text.text() + "<br>" + self._facts.text())
        return doc.toPlainText()


def _rich_label() -> QLabel:
    label = QLabel()
    label.setWordWrap(True)
    label.setTextFormat(Qt.TextFormat.RichText)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    label.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
    return label


class _FittingScroll(QScrollArea):
    """As tall as its content at the current width, up to `max_height`; scrolls beyond that."""

    def __init__(self, content: QWidget, max_height: int) -> None:
        super().__init__()
        self._max_height = max_height
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setWidget(content)
        # as tall as the text when there is room, shrinking (and scrolling) when there is not
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Maximum)

    def minimumSizeHint(self) -> QSize:
        return QSize(super().minimumSizeHint().width(), min(90, self.sizeHint().height()))

    def sizeHint(self) -> QSize:
        content = self.widget()
        width = max(self.viewport().width(), 200)
        needed = content.heightForWidth(width) if content.hasHeightForWidth() else -1
        if needed < 0:
            needed = content.sizeHint().height()
        return QSize(super().sizeHint().width(), min(self._max_height, needed))

    def resizeEvent(self, event: Any) -> None:
        super().resizeEvent(event)
        if self.height() != self.sizeHint().height():
            self.updateGeometry()  # the wrapped text got taller or shorter with the width
