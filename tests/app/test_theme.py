"""Both palettes: result colours stay readable against the palette's own text colour."""

from __future__ import annotations

from PySide6.QtGui import QPalette

from app import theme


def contrast(a, b) -> float:
    """WCAG contrast ratio of two colours."""

    def luminance(c) -> float:
        def channel(v: float) -> float:
            return v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4

        return 0.2126 * channel(c.redF()) + 0.7152 * channel(c.greenF()) + 0.0722 * channel(c.blueF())

    hi, lo = sorted((luminance(a), luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def test_light_and_dark_palettes_keep_highlighted_text_readable(qapp):
    style, palette, sheet = qapp.style().name(), qapp.palette(), qapp.styleSheet()
    try:
        for scheme, dark in (("light", False), ("dark", True)):
            theme.apply(qapp, scheme)
            assert theme.is_dark() is dark
            text = qapp.palette().color(QPalette.ColorRole.Text)
            for label in ("PER", "ORG", "LOC", "MISC", "SOMETHING_ELSE"):
                assert contrast(theme.entity_colour(label), text) >= 4.5, (scheme, label)
            assert contrast(theme.answer_colour(), text) >= 4.5, scheme
            assert contrast(qapp.palette().color(QPalette.ColorRole.Base), text) >= 7, scheme
    finally:  # later tests run in the look they were written in
        qapp.setStyle(style)
        qapp.setPalette(palette)
        qapp.setStyleSheet(sheet)
