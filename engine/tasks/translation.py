"""Translation with T5 (t5-small, t5-base, FLAN-T5): the text after a task prefix
("translate English to German: "), shaped like transformers' translation pipeline
(`[{"translation_text": ...}]`).

The language pair picks config.json's `task_specific_params["translation_xx_to_yy"]`: its
prefix and its generation settings (t5-small: 4 beams, at most 300 tokens). The pipeline's
names for one pair (`translation_en_to_de`, ...) are the same task with that pair as default.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, cast

from engine.errors import InputError
from engine.tasks.base import Hooks, Option
from engine.tasks.generation_common import Generation, Seq2SeqTask
from engine.tasks.text_common import check_text

#: The languages of T5's translation prefixes.
LANGUAGES = {"en": "English", "de": "German", "fr": "French", "ro": "Romanian"}
#: Without a pair named (here or in the task's name), the model's first, else this one.
DEFAULT_PAIR = ("en", "de")


@dataclass
class TranslatedText(Generation):
    output_key = "translation_text"


class Translation(Seq2SeqTask):
    """Translate a text with a T5 checkpoint: the prefix names the pair, beam search (by the
    model's settings) writes the translation."""

    name = "translation"
    title = "Translation"
    default_model = "google-t5/t5-small"
    suggested_models = ("google-t5/t5-small", "google-t5/t5-base", "google/flan-t5-small", "google/flan-t5-base")
    result_type = TranslatedText
    options = (
        *Seq2SeqTask.options,
        Option("src_lang", str, None, "the text's language: " + ", ".join(LANGUAGES)),
        Option("tgt_lang", str, None, "the language to translate to: " + ", ".join(LANGUAGES)),
    )

    def run(self, input: Any, *, hooks: Hooks | None = None, **options: Any) -> Generation:
        options = self.resolve_options(options)
        text = check_text(input)
        source, target = self.pair(options["src_lang"], options["tgt_lang"])
        params = self.task_params(f"translation_{source}_to_{target}")
        prefix = self.prefix(params, f"translate {LANGUAGES[source]} to {LANGUAGES[target]}: ")
        return self.generate_from(text, prefix, params, options, hooks or Hooks())

    def info(self) -> dict[str, Any]:
        return {**super().info(), "language_pairs": [f"{s} → {t}" for s, t in self.offered_pairs()]}

    def offered_pairs(self) -> list[tuple[str, str]]:
        """The pairs config.json's `task_specific_params` names (t5-small: English to German,
        French and Romanian), or every pair of `LANGUAGES` for a model that names none."""
        named = [key.split("_") for key in self.config.get("task_specific_params") or {} if key.startswith("translation_")]
        pairs = [(p[1], p[3]) for p in named if len(p) == 4 and p[1] in LANGUAGES and p[3] in LANGUAGES]
        return pairs or [(s, t) for s in LANGUAGES for t in LANGUAGES if s != t]

    def pair(self, source: str | None, target: str | None) -> tuple[str, str]:
        """The language pair: as given, else the first the model's config.json names, else
        English to German."""
        if source is None and target is None:
            named = [key.split("_") for key in self.config.get("task_specific_params") or {} if key.startswith("translation_")]
            source, target = (named[0][1], named[0][3]) if named and len(named[0]) == 4 else DEFAULT_PAIR
        source, target = source or DEFAULT_PAIR[0], target or DEFAULT_PAIR[1]
        for flag, code in (("--src-lang", source), ("--tgt-lang", target)):
            if code not in LANGUAGES:
                raise InputError(f"{flag} must be one of {', '.join(LANGUAGES)}, not {code!r}")
        if source == target:
            raise InputError("--src-lang and --tgt-lang are the same language")
        return source, target

    @classmethod
    def for_pair(cls, source: str, target: str) -> type[Translation]:
        """The task under the pipeline's name for one pair (`translation_en_to_de`), which
        makes that pair the default."""
        defaults = {"src_lang": source, "tgt_lang": target}
        options = tuple(dataclasses.replace(o, default=defaults[o.name]) if o.name in defaults else o for o in cls.options)
        members = {
            "name": f"translation_{source}_to_{target}",
            "title": f"Translation, {LANGUAGES[source]} to {LANGUAGES[target]}",
            "options": options,
        }
        return cast(type[Translation], type(f"Translation{source.title()}To{target.title()}", (cls,), members))


TranslationEnToDe = Translation.for_pair("en", "de")
TranslationEnToFr = Translation.for_pair("en", "fr")
TranslationEnToRo = Translation.for_pair("en", "ro")
