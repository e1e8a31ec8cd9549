"""One calm palette for light and dark desktops, and the few colours results are drawn in.

The app uses Qt's Fusion style everywhere so it looks the same on every platform, with our own
light or dark palette picked from the system's colour scheme. Widgets that draw results ask this
module for colours at paint time, so they follow whichever palette is active.
"""

from __future__ import annotations

import zlib

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication, QWidget

ACCENT = "#3a7bd5"
ACCENT_DARK = "#5b9bf0"

_LIGHT = {
    QPalette.ColorRole.Window: "#f3f4f6",
    QPalette.ColorRole.WindowText: "#1f2328",
    QPalette.ColorRole.Base: "#ffffff",
    QPalette.ColorRole.AlternateBase: "#f6f8fa",
    QPalette.ColorRole.Text: "#1f2328",
    QPalette.ColorRole.PlaceholderText: "#8c959f",
    QPalette.ColorRole.Button: "#fbfbfc",
    QPalette.ColorRole.ButtonText: "#1f2328",
    QPalette.ColorRole.ToolTipBase: "#ffffff",
    QPalette.ColorRole.ToolTipText: "#1f2328",
    QPalette.ColorRole.Highlight: ACCENT,
    QPalette.ColorRole.HighlightedText: "#ffffff",
    QPalette.ColorRole.Link: "#2f6fc2",
    QPalette.ColorRole.Mid: "#c9ced6",
    QPalette.ColorRole.Midlight: "#e4e7eb",
}
_DARK = {
    QPalette.ColorRole.Window: "#1e2126",
    QPalette.ColorRole.WindowText: "#e6e8eb",
    QPalette.ColorRole.Base: "#16181c",
    QPalette.ColorRole.AlternateBase: "#22262b",
    QPalette.ColorRole.Text: "#e6e8eb",
    QPalette.ColorRole.PlaceholderText: "#7d858f",
    QPalette.ColorRole.Button: "#2a2e34",
    QPalette.ColorRole.ButtonText: "#e6e8eb",
    QPalette.ColorRole.ToolTipBase: "#2a2e34",
    QPalette.ColorRole.ToolTipText: "#e6e8eb",
    QPalette.ColorRole.Highlight: ACCENT_DARK,
    QPalette.ColorRole.HighlightedText: "#0d1117",
    QPalette.ColorRole.Link: "#7eb3ff",
    QPalette.ColorRole.Mid: "#3b4048",
    QPalette.ColorRole.Midlight: "#30353c",
}

# Entity types get fixed hues so "PER" has the same colour in every run; others are hashed.
_KNOWN_HUES = {"PER": 210, "ORG": 30, "LOC": 140, "MISC": 280, "DATE": 50, "TIME": 50}


def apply(app: QApplication, scheme: str = "system") -> None:
    """Fusion with our palette; `scheme` is "system" (follow the desktop, also when it switches
    while the app runs), "light" or "dark"."""
    app.setStyle("Fusion")
    app.setStyleSheet(_STYLE)
    if scheme != "system":
        _set_palette(app, scheme)
        return
    hints = QGuiApplication.styleHints()

    def follow() -> None:
        _set_palette(app, "dark" if hints.colorScheme() == Qt.ColorScheme.Dark else "light")

    follow()
    hints.colorSchemeChanged.connect(follow)


def _set_palette(app: QApplication, scheme: str) -> None:
    palette = QPalette()
    for role, colour in (_DARK if scheme == "dark" else _LIGHT).items():
        palette.setColor(role, QColor(colour))
    disabled = QColor(palette.color(QPalette.ColorRole.PlaceholderText))
    for role in (QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText, QPalette.ColorRole.WindowText):
        palette.setColor(QPalette.ColorGroup.Disabled, role, disabled)
    app.setPalette(palette)


def is_dark(widget: QWidget | None = None) -> bool:
    palette = widget.palette() if widget is not None else QApplication.palette()
    return palette.color(QPalette.ColorRole.Window).lightness() < 128


def entity_colour(label: str, widget: QWidget | None = None) -> QColor:
    """A background for text of entity type `label`, readable with the palette's text colour."""
    hue = _KNOWN_HUES.get(label.upper())
    if hue is None:
        hue = zlib.crc32(label.encode()) % 360
    return QColor.fromHsl(hue, 120, 72) if is_dark(widget) else QColor.fromHsl(hue, 200, 212)


def answer_colour(widget: QWidget | None = None) -> QColor:
    return QColor("#6b5a14") if is_dark(widget) else QColor("#ffe58a")


def accent(widget: QWidget | None = None) -> QColor:
    return QColor(ACCENT_DARK if is_dark(widget) else ACCENT)


# Object names select these rules; everything else is the palette's business.
_STYLE = """
QLabel#tabTitle { font-size: 15pt; font-weight: 600; }
QLabel#tabBlurb { color: palette(placeholder-text); }
QLabel#sectionLabel { font-weight: 600; }
QLabel#hint { color: palette(placeholder-text); }
QListWidget#nav { border: none; background: palette(window); font-size: 10.5pt; }
QListWidget#nav::item { padding: 6px 10px; border-radius: 6px; }
QListWidget#nav::item:selected { background: palette(highlight); color: palette(highlighted-text); }
QFrame#card { background: palette(alternate-base); border: 1px solid palette(midlight); border-radius: 8px; }
QFrame#banner[kind="error"] { background: rgba(214, 69, 65, 0.14); border: 1px solid rgba(214, 69, 65, 0.55); border-radius: 6px; }
QFrame#banner[kind="warning"] { background: rgba(230, 162, 60, 0.16); border: 1px solid rgba(230, 162, 60, 0.6); border-radius: 6px; }
QFrame#banner[kind="info"] { background: rgba(58, 123, 213, 0.12); border: 1px solid rgba(58, 123, 213, 0.45); border-radius: 6px; }
QPushButton#primary { background: palette(highlight); color: palette(highlighted-text); border: none; border-radius: 5px; padding: 5px 18px; font-weight: 600; }
QPushButton#primary:disabled { background: palette(mid); color: palette(window); }
QToolButton#disclosure { border: none; font-weight: 600; }
"""
