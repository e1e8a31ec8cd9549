"""Widgets for a task's run options, built from the engine's `Option` descriptions, so a new
option in the engine shows up in its tab without app code."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QGridLayout,
    QLabel,
    QLineEdit,
    QSpinBox,
    QWidget,
)

_LABELS = {
    "top_k": "Top k",
    "aggregation_strategy": "Aggregation",
    "max_seq_len": "Window tokens",
    "chunk_length_s": "Chunk length (s)",
    "stride_length_s": "Stride length (s)",
    "return_timestamps": "Timestamps",
}


def option_label(name: str) -> str:
    return _LABELS.get(name, name.replace("_", " ").capitalize())


class OptionsForm(QWidget):
    """A grid of labelled inputs, `columns` pairs wide. `changed` fires on every edit."""

    changed = Signal()

    def __init__(self, columns: int = 2, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._columns = columns
        self._grid = QGridLayout(self)
        self._grid.setContentsMargins(0, 0, 0, 0)
        self._grid.setHorizontalSpacing(10)
        self._options: dict[str, Any] = {}
        self._widgets: dict[str, QWidget] = {}

    def set_options(self, options: tuple[Any, ...], exclude: tuple[str, ...] = ()) -> None:
        for widget in self._widgets.values():
            widget.deleteLater()
        while self._grid.count():
            item = self._grid.takeAt(0)
            if item.widget() is not None:
                item.widget().deleteLater()
        self._options = {o.name: o for o in options if o.name not in exclude}
        self._widgets = {}
        for i, option in enumerate(self._options.values()):
            row, col = divmod(i, self._columns)
            widget = self._make(option)
            widget.setToolTip(option.help)
            self._widgets[option.name] = widget
            if isinstance(widget, QCheckBox):
                self._grid.addWidget(widget, row, 2 * col, 1, 2)
            else:
                label = QLabel(option_label(option.name))
                label.setToolTip(option.help)
                label.setBuddy(widget)
                self._grid.addWidget(label, row, 2 * col)
                self._grid.addWidget(widget, row, 2 * col + 1)
        for col in range(self._columns):
            self._grid.setColumnStretch(2 * col + 1, 1)
        self.setVisible(bool(self._options))

    def names(self) -> list[str]:
        return list(self._options)

    def widget(self, name: str) -> QWidget:
        return self._widgets[name]

    def values(self) -> dict[str, Any]:
        return {name: self._read(name) for name in self._options}

    def set_values(self, values: dict[str, Any]) -> None:
        """Apply saved values; ones that no longer fit the option are skipped."""
        for name, value in values.items():
            if name in self._widgets:
                try:
                    self._write(name, value)
                except (TypeError, ValueError):
                    pass

    def _make(self, option: Any) -> QWidget:
        if option.choices or (option.type is bool and option.default is None):
            # an option whose default is None lets the task (or the checkpoint) decide: "auto"
            widget = QComboBox()
            if option.default is None:
                widget.addItem("auto", None)
            for choice in option.choices or (True, False):
                widget.addItem({True: "on", False: "off"}.get(choice, str(choice)), choice)
            widget.setCurrentIndex(max(0, widget.findData(option.default)))
            widget.currentIndexChanged.connect(self.changed)
        elif option.type is bool:
            widget = QCheckBox(option_label(option.name))
            widget.setChecked(bool(option.default))
            widget.toggled.connect(self.changed)
        elif option.type is int:
            widget = QSpinBox()
            # None means "no limit" for top_k and "let the task choose" for the rest: 0 stands
            # for it in the box
            widget.setRange(0 if option.default in (None, 0) else 1, 100_000)
            if option.default is None:
                widget.setSpecialValueText("all" if option.name == "top_k" else "auto")
            widget.setValue(option.default or 0)
            widget.valueChanged.connect(self.changed)
        elif option.type is float:
            widget = QDoubleSpinBox()
            widget.setRange(0.0, 1e6)
            # durations in seconds step by whole units, probabilities and ratios by 0.05
            coarse = option.name.endswith("_s") or (option.default or 0) > 1
            widget.setDecimals(1 if coarse else 2)
            widget.setSingleStep(1.0 if coarse else 0.05)
            if option.default is None:  # as for int options: 0 stands for "let the task choose"
                widget.setSpecialValueText("auto")
            widget.setValue(option.default or 0.0)
            widget.valueChanged.connect(self.changed)
        else:
            widget = QLineEdit("" if option.default is None else str(option.default))
            widget.textChanged.connect(self.changed)
        return widget

    def _read(self, name: str) -> Any:
        option, widget = self._options[name], self._widgets[name]
        if isinstance(widget, QComboBox):
            return widget.currentData()
        if isinstance(widget, QCheckBox):
            return widget.isChecked()
        if isinstance(widget, QSpinBox):
            return None if option.default is None and widget.value() == 0 else widget.value()
        if isinstance(widget, QDoubleSpinBox):
            return None if option.default is None and widget.value() == 0 else widget.value()
        text = widget.text().strip()
        return text or option.default

    def _write(self, name: str, value: Any) -> None:
        widget = self._widgets[name]
        if isinstance(widget, QComboBox):
            index = widget.findData(value)
            if index >= 0:
                widget.setCurrentIndex(index)
        elif isinstance(widget, QCheckBox):
            widget.setChecked(value in (True, "true", "True", 1, "1"))
        elif isinstance(widget, QSpinBox):
            widget.setValue(0 if value in (None, "") else int(value))
        elif isinstance(widget, QDoubleSpinBox):
            widget.setValue(0.0 if value in (None, "") else float(value))
        else:
            widget.setText("" if value is None else str(value))
