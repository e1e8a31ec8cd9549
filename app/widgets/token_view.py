"""Generated text as it streams in, then token by token: each token's background says how sure
the model was of it, and hovering a token shows the other tokens it weighed at that step."""

from __future__ import annotations

import html
from dataclasses import dataclass

from PySide6.QtCore import QEvent, QObject, QPoint, Signal
from PySide6.QtGui import QColor, QHelpEvent, QMouseEvent, QTextCharFormat, QTextCursor
from PySide6.QtWidgets import QTextEdit, QToolTip, QWidget


_TOKEN = QTextCharFormat.Property.UserProperty + 1  # the token's index, on its characters


@dataclass(frozen=True)
class Token:
    """One generated token as the view draws it: its text, the probability the model gave it,
    and the likeliest tokens at its step as (text, probability), best first."""

    text: str
    probability: float
    alternatives: tuple[tuple[str, float], ...] = ()
    special: bool = False  # not part of the text (an end-of-text or start token)


def token_tooltip(token: Token) -> str:
    """Rich text for a token: itself, then what else the model weighed at that step."""
    rows = "".join(
        f"<tr><td><code>{_visible(text)}</code></td><td align='right'>{100 * p:.1f} %</td></tr>"
        for text, p in token.alternatives
    )
    head = f"<b><code>{_visible(token.text)}</code></b> &nbsp;{100 * token.probability:.1f} %"
    return head + (f"<br>The model weighed:<table>{rows}</table>" if rows else "")


def _visible(text: str) -> str:
    """A token's text with its spaces and line breaks made visible."""
    return html.escape(text).replace(" ", "␣").replace("\n", "⏎") or "∅"


class TokenView(QTextEdit):
    """Read-only text: the prompt (grey) and what the model adds, streamed as plain text, then
    redrawn token by token with `show_tokens`. `hovered(index)` follows the mouse over tokens
    (-1 off them)."""

    hovered = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setReadOnly(True)
        self.setMouseTracking(True)
        self.viewport().setMouseTracking(True)
        self.viewport().installEventFilter(self)
        self.tokens: list[Token] = []
        self._hovered = -1

    def show_stream(self, prompt: str, text: str, provisional: bool = False) -> None:
        """The prompt and the text so far; a provisional text (beam search's current best) is
        drawn lighter, since the next step may replace it."""
        self.tokens = []
        self.clear()
        cursor = self.textCursor()
        cursor.insertText(prompt, self._prompt_format())
        body = QTextCharFormat()
        if provisional:
            body.setFontItalic(True)
            body.setForeground(self.palette().placeholderText())
        cursor.insertText(text, body)
        self.moveCursor(QTextCursor.MoveOperation.End)
        self.ensureCursorVisible()

    def show_tokens(self, prompt: str, tokens: list[Token]) -> None:
        """The prompt, then every token tinted by its probability (stronger = less sure)."""
        self.tokens = list(tokens)
        self.clear()
        cursor = self.textCursor()
        cursor.insertText(prompt, self._prompt_format())
        for index, token in enumerate(self.tokens):
            form = QTextCharFormat()
            form.setProperty(_TOKEN, index)
            if token.special:
                form.setForeground(self.palette().placeholderText())
                form.setFontItalic(True)
                text = f"⟨{token.text}⟩"
            else:
                form.setBackground(uncertainty_colour(token.probability, self))
                text = token.text
            cursor.insertText(text, form)

    def token_at(self, x: int, y: int) -> int:
        """The index of the token under a viewport point, or -1."""
        cursor = self.cursorForPosition(QPoint(x, y))
        if not cursor.atEnd():  # the format of the character after the cursor
            cursor.movePosition(QTextCursor.MoveOperation.Right)
        value = cursor.charFormat().property(_TOKEN)
        return value if isinstance(value, int) and 0 <= value < len(self.tokens) else -1

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self.viewport() and self.tokens:
            if isinstance(event, QMouseEvent) and event.type() == QEvent.Type.MouseMove:
                position = event.position().toPoint()
                self._hover(self.token_at(position.x(), position.y()))
            elif event.type() == QEvent.Type.Leave:
                self._hover(-1)
            elif isinstance(event, QHelpEvent):
                index = self.token_at(event.pos().x(), event.pos().y())
                if index >= 0:
                    QToolTip.showText(event.globalPos(), token_tooltip(self.tokens[index]), self)
                else:
                    QToolTip.hideText()
                return True
        return super().eventFilter(watched, event)

    def _hover(self, index: int) -> None:
        if index != self._hovered:
            self._hovered = index
            self.hovered.emit(index)

    def _prompt_format(self) -> QTextCharFormat:
        form = QTextCharFormat()
        form.setForeground(self.palette().placeholderText())
        return form


def uncertainty_colour(probability: float, widget: QWidget) -> QColor:
    """Clear for a token the model was sure of, a warmer tint the less sure it was."""
    colour = QColor(255, 140, 40)  # amber on either theme
    colour.setAlphaF(max(0.0, min(1.0, 1.0 - probability)) * 0.75)
    return colour
