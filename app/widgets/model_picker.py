"""Choosing a checkpoint: the task's default, suggestions, recent ones, any Hub id, or a folder."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QComboBox, QFileDialog, QHBoxLayout, QLabel, QPushButton, QSizePolicy, QWidget

_REF = Qt.ItemDataRole.UserRole


class ModelPicker(QWidget):
    """An editable list of model references. `chosen(ref)` fires when the user picks one from
    the list, presses Enter on a typed Hub id, or opens a local folder."""

    chosen = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._combo = QComboBox()
        self._combo.setEditable(True)
        self._combo.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        self._combo.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self._combo.setMinimumContentsLength(28)
        self._combo.lineEdit().setPlaceholderText("Hub id such as dslim/bert-base-NER, or a folder")
        self._combo.lineEdit().setClearButtonEnabled(True)
        self._combo.activated.connect(self._on_activated)
        self._combo.lineEdit().returnPressed.connect(self._on_return)
        self._folder = QPushButton("Open local folder…")
        self._folder.clicked.connect(self.open_folder)
        label = QLabel("Model")
        label.setObjectName("sectionLabel")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(label)
        layout.addWidget(self._combo, 1)
        layout.addWidget(self._folder)
        self._default = ""

    def current(self) -> str:
        return self._combo.currentText().strip()

    def set_current(self, ref: str) -> None:
        self._combo.setEditText(ref)

    def set_choices(self, default: str, suggested: tuple[str, ...], recent: list[str]) -> None:
        """Fill the list: the default first, then suggestions, then recently used models."""
        text = self.current()
        self._default = default
        self._combo.blockSignals(True)
        self._combo.clear()
        seen: set[str] = set()
        groups = [([default], "the task's default model"), (list(suggested), "suggested"), (recent, "recently used")]
        for refs, note in groups:
            fresh = [r for r in refs if r and r not in seen]
            if fresh and self._combo.count():
                self._combo.insertSeparator(self._combo.count())
            for ref in fresh:
                seen.add(ref)
                self._combo.addItem(ref, ref)
                self._combo.setItemData(self._combo.count() - 1, f"{ref} ({note})", Qt.ItemDataRole.ToolTipRole)
        self._combo.setEditText(text or default)
        self._combo.blockSignals(False)

    def choices(self) -> list[str]:
        return [self._combo.itemData(i, _REF) for i in range(self._combo.count()) if self._combo.itemData(i, _REF)]

    def choose(self, ref: str) -> None:
        """Select `ref` as if the user had typed it and pressed Enter."""
        ref = ref.strip()
        if not ref:
            return
        self._combo.setEditText(ref)
        self.chosen.emit(ref)

    def open_folder(self) -> None:
        start = self.current() if Path(self.current()).expanduser().is_dir() else str(Path.home())
        folder = QFileDialog.getExistingDirectory(self, "Choose a checkpoint folder", start)
        if folder:
            self.choose(folder)

    def _on_activated(self, index: int) -> None:
        self.choose(self._combo.itemData(index, _REF) or self._combo.itemText(index))

    def _on_return(self) -> None:
        self.choose(self.current())
