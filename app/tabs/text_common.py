"""What the three text tabs share: `TextTab`, whose input is one text box, the How-it-works
sentences on BERT-style encoders, reading the engine's character spans, and the "Inside the
model" view: the head view of attention between the word pieces, beside each tab's own parts."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

from PySide6.QtWidgets import QTabWidget, QWidget

from app.tabs.base import TaskTab
from app.widgets.head_view import HeadView
from app.widgets.text_input import TextInput

_ENCODERS = {
    "bert": (
        "<b>BERT</b> (Devlin et al., 2018) first cuts the text into <i>word pieces</i> from a fixed "
        "vocabulary: common words stay whole, rarer ones become several pieces such as "
        "<code>love</code> + <code>##lace</code>. A <code>[CLS]</code> token goes in front and "
        "<code>[SEP]</code> closes each text. Every piece becomes a vector: its own embedding plus "
        "one for its position and one for its segment (first or second text). The encoder's layers "
        "then let each piece attend to every other piece, left and right, so by the last layer each "
        "vector describes its piece in the context of the whole input."
    ),
    "distilbert": (
        "<b>DistilBERT</b> (Sanh et al., 2019) is BERT with half the layers, trained to imitate a "
        "full-size BERT. It cuts the text into the same kind of <i>word pieces</i>, adds "
        "<code>[CLS]</code> in front and <code>[SEP]</code> after each text, and gives every piece an "
        "embedding plus a position embedding (there are no segment embeddings). Each layer lets every "
        "piece attend to all the others, so the final vectors describe each piece in context."
    ),
}

_GENERIC = (
    "The text is cut into tokens, each token becomes a vector, and a stack of transformer layers "
    "lets every token look at every other one before the task's head reads the result."
)


def encoder_paragraph(info: dict[str, Any] | None) -> str:
    model_type = (info or {}).get("model_type")
    return f"<p>{_ENCODERS.get(model_type, _GENERIC)}</p>"


def entity_type(label: str) -> str:
    """"B-PER" and "I-PER" are both of type "PER"; grouped results already give the type."""
    return label[2:] if label[:2] in ("B-", "I-", "E-", "S-") else label


def result_items(data: Any) -> list[dict[str, Any]]:
    """`to_json()` gives one dict for a single answer and a list for several."""
    if data is None:
        return []
    return list(data) if isinstance(data, list) else [data]


class TextTab(TaskTab):
    """A task tab whose input is a text (`self.text`): typed, pasted, dropped or opened as a
    .txt file. A tab that reads more than one box (a question and a context) builds its own
    input with `text_box` and overrides the methods below that read `self.text`."""

    modality = "text"
    file_filter = "Text files (*.txt);;All files (*)"
    sample: ClassVar[str] = ""  # the text `load_sample` fills in

    def build_input(self) -> QWidget:
        self.text = self.text_box("Type or paste a text, or drop a .txt file here", self.input_changed)
        return self.text

    def current_input(self) -> str | None:
        text = self.text.toPlainText()
        return text if text.strip() else None

    def empty_input_message(self) -> str:
        return "Type or paste a text first (or open a .txt file with Ctrl+O)."

    def open_path(self, path: Path) -> None:
        self.text.load_file(path)

    def load_sample(self) -> None:
        self.text.setPlainText(self.sample)

    def text_box(self, placeholder: str, on_change: Callable[[], None]) -> TextInput:
        """An editable text box that takes typing, pasting and dropped .txt files; a file it
        cannot read is reported in the banner."""
        box = TextInput(placeholder)
        box.textChanged.connect(on_change)
        box.file_error.connect(lambda message: self.banner.show_message("error", message))
        return box

    # ----- inside the model ---------------------------------------------------------------------

    def build_inside(self) -> QWidget | None:
        self.head_view = HeadView()
        self.inside_pages = QTabWidget()
        self.inside_pages.setDocumentMode(True)
        for title, page in self.build_inside_parts():
            self.inside_pages.addTab(page, title)
        self.inside_pages.addTab(self.head_view, "Attention between pieces")
        self.inside_pages.setMinimumHeight(320)
        return self.inside_pages

    def build_inside_parts(self) -> list[tuple[str, QWidget]]:
        """The tab's own pages of the view, shown before the head view."""
        return []

    def show_inside(self, result: Any) -> None:
        internals = getattr(result, "internals", None) or {}
        if "attention" not in internals:
            self.head_view.clear()
            return
        pieces, unknown = shown_pieces(internals)
        self.head_view.set_attention(pieces, internals["piece_ids"].tolist(), internals["attention"], unknown)
        self.show_inside_parts(internals, result)

    def show_inside_parts(self, internals: dict[str, Any], result: Any) -> None:
        """Draw the tab's own pages from a result's `internals` (all there: explain was on)."""


def shown_pieces(internals: dict[str, Any], prefix: str = "") -> tuple[list[str], set[int]]:
    """The pieces as a view shows them: an [UNK] piece as the text it stands for (the indices
    of those come second, to be drawn apart)."""
    pieces, texts = internals[f"{prefix}pieces"].tolist(), internals[f"{prefix}piece_texts"].tolist()
    unknown = {i for i, (piece, text) in enumerate(zip(pieces, texts)) if piece == "[UNK]" and text}
    return [texts[i] if i in unknown else piece for i, piece in enumerate(pieces)], unknown
