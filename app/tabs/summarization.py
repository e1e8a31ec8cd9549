"""Summarisation: an article in, its summary streaming out, with how much shorter it is."""

from __future__ import annotations

from typing import Any

from app.tabs.seq2seq_common import SEQ2SEQ_EXPLANATION, Seq2SeqTab

SAMPLE = (
    "The city library reopened on Saturday after two years of building work. The old reading "
    "rooms have been restored, and a new wing adds space for children's books, a small cinema "
    "and rooms that local groups can book for free. On the first day more than three thousand "
    "people visited, many of them queueing before the doors opened. The librarians said the "
    "most borrowed books were local histories and cookery books, and that the coffee bar ran "
    "out of milk by noon. The council plans to keep the library open until nine in the evening "
    "on weekdays, two hours later than before."
)


class SummarizationTab(Seq2SeqTab):
    task = "summarization"
    title = "Summarisation"
    blurb = "Give an article; the model writes a short summary of it, token by token."
    file_filter = "Text files (*.txt *.md);;All files (*)"
    sample = SAMPLE
    output_name = "summary"

    def build_input(self) -> Any:
        holder = super().build_input()
        self.text.setPlaceholderText("Paste an article, or open or drop a .txt or .md file")
        return holder

    def empty_input_message(self) -> str:
        return "Paste an article first (or open a .txt or .md file with Ctrl+O)."

    def describe_result(self, result: Any) -> str:
        article = len(str(self.last_input or "").split())
        summary = len(result.sequences[0].text.split()) if result.sequences else 0
        share = f" ({100 * summary / article:.0f} % of its length)" if article else ""
        return f"{article} words in, {summary} words out{share} · {super().describe_result(result)}"

    def explain(self, info: dict[str, Any] | None) -> str:
        return SEQ2SEQ_EXPLANATION.format(task="summarising", head=(
            "BART (Lewis et al., 2019) was pre-trained to rebuild texts that had been corrupted, then "
            "trained on news articles and their highlights; T5 takes the article after the prefix "
            "<code>summarize: </code>. Beam search keeps several candidate summaries and returns the "
            "best; the model's own settings ask for a minimum and maximum length and forbid repeating "
            "any three tokens."))
