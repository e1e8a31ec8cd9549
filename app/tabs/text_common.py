"""What the three text tabs share: the How-it-works sentences on BERT-style encoders, and reading
the engine's character spans."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

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


def text_box(tab: Any, placeholder: str, on_change: Callable[[], None]) -> TextInput:
    """An editable text box that takes typing, pasting and dropped .txt files; a file it
    cannot read is reported in `tab`'s banner."""
    box = TextInput(placeholder)
    box.textChanged.connect(on_change)
    box.file_error.connect(lambda message: tab.banner.show_message("error", message))
    return box
