"""Named entities: the text with each entity in its type's colour, a legend, and a table of
entities; selecting a row selects its span in the text."""

from __future__ import annotations

import html
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QLabel,
    QSplitter,
    QStackedWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app import theme
from app.tabs.text_common import TextTab, encoder_paragraph, entity_type, shown_pieces
from app.widgets.tab_parts import results_table
from app.widgets.text_inside import PieceProbabilities
from app.widgets.text_input import TextInput

COLUMNS = ("Word", "Type", "Score", "Span")


class TokenClassificationTab(TextTab):
    task = "token-classification"
    title = "Named entities"
    blurb = "Find the people, places, organisations and other names in a text."
    sample = (
        "Ada Lovelace worked with Charles Babbage in London on the Analytical Engine. "
        "Her notes were published in 1843 by Richard Taylor, and the Science Museum now shows "
        "a part of the machine."
    )

    def build_result(self) -> QWidget:
        self.view = TextInput("")
        self.view.setReadOnly(True)
        self.view.setAcceptDrops(False)
        self.legend = QLabel()
        self.legend.setTextFormat(Qt.TextFormat.RichText)
        self.legend.setWordWrap(True)
        self.table = results_table(COLUMNS)
        self.table.currentCellChanged.connect(lambda row, *_: self.reveal_entity(row))

        top = QWidget()
        top_layout = QVBoxLayout(top)
        top_layout.setContentsMargins(0, 0, 0, 0)
        top_layout.addWidget(self.view, 1)
        top_layout.addWidget(self.legend)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(top)
        split.addWidget(self.table)
        split.setChildrenCollapsible(False)
        split.setSizes([3, 2])
        self.placeholder = QLabel("Run the model to see the entities it finds.")
        self.placeholder.setObjectName("hint")
        self.placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.result_stack = QStackedWidget()
        self.result_stack.addWidget(self.placeholder)
        self.result_stack.addWidget(split)
        self._entities: list[dict[str, Any]] = []
        return self.result_stack

    def show_result(self, result: Any) -> None:
        self._entities = list(result.to_json())
        self.view.setPlainText(self.last_input or "")
        self.view.highlight(
            [(e["start"], e["end"], theme.entity_colour(self._type(e), self)) for e in self._entities]
        )
        self.table.setRowCount(len(self._entities))
        for row, entity in enumerate(self._entities):
            label = entity.get("entity_group") or entity.get("entity", "")
            cells = (entity["word"], label, f"{100 * entity['score']:.1f} %", f"{entity['start']}–{entity['end']}")
            for column, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if column >= 2:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(row, column, item)
            self.table.item(row, 1).setBackground(theme.entity_colour(self._type(entity), self))
        types = sorted({self._type(e) for e in self._entities})
        if types:
            chips = "&nbsp;&nbsp; ".join(
                f"<span style='background:{theme.entity_colour(t, self).name()}'>&nbsp;{html.escape(t)}&nbsp;</span>"
                for t in types
            )
            self.legend.setText(f"{len(self._entities)} entities &nbsp;·&nbsp; {chips}")
        else:
            self.legend.setText("No entities found in this text.")
        self.result_stack.setCurrentIndex(1)

    def build_inside_parts(self) -> list[tuple[str, QWidget]]:
        self.piece_table = PieceProbabilities()
        return [("Label probabilities per piece", self.piece_table)]

    def show_inside_parts(self, internals: dict[str, Any], result: Any) -> None:
        self.piece_table.set_probabilities(
            shown_pieces(internals, "text_")[0],
            internals["text_piece_ids"].tolist(),
            internals["labels"].tolist(),
            internals["piece_probabilities"],
        )

    def clear_result(self) -> None:
        self._entities = []
        self.table.setRowCount(0)
        self.view.clear()
        self.legend.clear()
        self.result_stack.setCurrentIndex(0)

    def reveal_entity(self, row: int) -> None:
        if 0 <= row < len(self._entities):
            entity = self._entities[row]
            self.view.reveal(entity["start"], entity["end"])

    def entity_rows(self) -> list[tuple[str, ...]]:
        """The table's text, row by row (what a person reads)."""
        return [
            tuple(self.table.item(r, c).text() for c in range(self.table.columnCount()))
            for r in range(self.table.rowCount())
        ]

    @staticmethod
    def _type(entity: dict[str, Any]) -> str:
        return entity_type(entity.get("entity_group") or entity.get("entity", ""))

    def explain(self, info: dict[str, Any] | None) -> str:
        head = (
            "This tab adds the <b>token-classification head</b>: every piece's final vector goes "
            "through the <code>classifier</code>, which scores each label. Labels come in pairs: "
            "<code>B-PER</code> begins a person's name, <code>I-PER</code> continues it, and "
            "<code>O</code> is outside any name. A softmax per piece turns scores into "
            "probabilities. The <i>aggregation</i> option decides how pieces become entities: "
            "<i>none</i> lists every piece, <i>simple</i> joins neighbouring pieces of the same type, "
            "and <i>first</i>, <i>average</i> and <i>max</i> first join pieces into whole words, "
            "taking the label of the first piece, the mean of the scores, or the best piece. "
            "Offsets kept by the tokenizer map every entity back to its characters in your text."
        )
        return encoder_paragraph(info) + f"<p>{head}</p>"
