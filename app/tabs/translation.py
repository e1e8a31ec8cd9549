"""Translation: a text in, its translation streaming out, in a language pair the checkpoint
offers."""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QWidget

from app.tabs.seq2seq_common import SEQ2SEQ_EXPLANATION, Seq2SeqTab

SAMPLE = "The library opened a new room for old calculating machines, and it was full all afternoon."


class TranslationTab(Seq2SeqTab):
    task = "translation"
    title = "Translation"
    blurb = "Give a text; the model translates it, token by token, into the language you pick."
    sample = SAMPLE
    output_name = "translation"
    own_options = ("src_lang", "tgt_lang")

    def build_input(self) -> QWidget:
        holder = super().build_input()
        self.text.setPlaceholderText("Type or paste the text to translate, or drop a .txt file here")
        self.pair = QComboBox()
        self.pair.setToolTip("The language pairs this checkpoint was trained for")
        self.pair.currentIndexChanged.connect(lambda _: self.settings.set_value("pair", self.pair.currentData()))
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        label = QLabel("Languages")
        label.setBuddy(self.pair)
        row.addWidget(label)
        row.addWidget(self.pair, 1)
        holder.layout().insertLayout(1, row)  # under the text, above the decoding presets
        return holder

    def _on_loaded(self, job_id: int, model: Any) -> None:
        super()._on_loaded(job_id, model)
        self.fill_pairs(list((self.loaded.info if self.loaded else {}).get("language_pairs") or []))

    def fill_pairs(self, pairs: list[str]) -> None:
        """Offer `pairs` ("en → de"), keeping the user's choice where it is still offered."""
        wanted = self.pair.currentData() or self.settings.value("pair", "")
        self.pair.blockSignals(True)
        self.pair.clear()
        for pair in pairs:
            source, _, target = pair.partition(" → ")
            self.pair.addItem(f"{_LANGUAGE_NAMES.get(source, source)} → {_LANGUAGE_NAMES.get(target, target)}", pair)
        self.pair.setCurrentIndex(max(0, self.pair.findData(wanted)))
        self.pair.blockSignals(False)

    def extra_options(self) -> dict[str, Any]:
        pair = self.pair.currentData()
        if not pair:
            return super().extra_options()
        source, _, target = str(pair).partition(" → ")
        return {**super().extra_options(), "src_lang": source, "tgt_lang": target}

    def explain(self, info: dict[str, Any] | None) -> str:
        return SEQ2SEQ_EXPLANATION.format(task="translating", head=(
            "T5 (Raffel et al., 2019) treats every task as text to text: the input starts with a "
            "prefix such as <code>translate English to German: </code>, and the model was trained "
            "on many tasks at once. FLAN-T5 was further trained to follow instructions. T5 cuts "
            "text into SentencePiece pieces and, instead of position embeddings, adds a learned "
            "bias to attention for each distance between two tokens."))


_LANGUAGE_NAMES = {"en": "English", "de": "German", "fr": "French", "ro": "Romanian"}
