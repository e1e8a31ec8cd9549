"""Summarisation with BART (distilbart-cnn-12-6, bart-large-cnn) or T5 (after its
"summarize: " prefix), shaped like transformers' summarization pipeline
(`[{"summary_text": ...}]`).

The checkpoint's settings decide the search: distilbart-cnn-12-6 runs 4 beams with length
penalty 2.0, 56 to 142 tokens, no repeated 3-grams, forced <s> first and </s> last; t5-small's
`task_specific_params["summarization"]` says 4 beams, 30 to 200 tokens. Inputs longer than the
model reads are cut, with a warning.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engine.tasks.base import Hooks
from engine.tasks.generation_common import Generation, Seq2SeqTask
from engine.tasks.text_common import check_text


@dataclass
class Summary(Generation):
    output_key = "summary_text"


class Summarization(Seq2SeqTask):
    """Summarise a text with a BART or T5 checkpoint."""

    name = "summarization"
    title = "Summarization"
    default_model = "sshleifer/distilbart-cnn-12-6"
    suggested_models = (
        "sshleifer/distilbart-cnn-12-6",
        "facebook/bart-large-cnn",
        "google-t5/t5-small",
        "google-t5/t5-base",
    )
    result_type = Summary

    def run(self, input: Any, *, hooks: Hooks | None = None, **options: Any) -> Generation:
        options = self.resolve_options(options)
        text = check_text(input)
        params = self.task_params()
        prefix = self.prefix(params, "summarize: ")
        return self.generate_from(text, prefix, params, options, hooks or Hooks())
