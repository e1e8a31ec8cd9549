"""Text as it is generated: ids decoded a few at a time, so that each step shows only what it
adds, and a character whose bytes span several byte-level tokens appears once it is whole,
never as a replacement character."""

from __future__ import annotations

from dataclasses import dataclass

from tokenizers import Tokenizer

REPLACEMENT = "\ufffd"  # what a decoder shows for bytes that are not (yet) a whole character


@dataclass(frozen=True)
class StreamedText:
    """What `Hooks.on_partial` receives while a generation task runs.

    `text` is the generated text so far and `delta` what this partial adds to the previous
    one's text. Beam search sends its current best hypothesis with `provisional` True and an
    empty `delta`: a later partial may replace it as a whole. The last partial is never
    provisional, so the deltas of a whole stream add up to the final text either way."""

    text: str
    delta: str
    provisional: bool = False


class TextStream:
    """Ids in, text out, special tokens skipped: `push(id)` returns the text that id completes.

    Only a short window is decoded each time: the ids since the last text that came out whole
    (`prefix` to `read`) with and without the new ones, and what the longer decodes to beyond
    the shorter is new. Until a step's text stops ending in a replacement character nothing
    comes out and the window grows, so a character split across tokens appears once, whole.
    (The approach of Hugging Face's text-generation-inference.)"""

    def __init__(self, tokenizer: Tokenizer) -> None:
        self.tokenizer = tokenizer
        self.ids: list[int] = []
        self.prefix = 0  # where the window starts
        self.read = 0  # ids up to here have come out as text
        self.text = ""

    def push(self, token: int) -> str:
        self.ids.append(token)
        before, after = self._window()
        if len(after) <= len(before) or after.endswith(REPLACEMENT):
            return ""
        return self._emit(after[len(before) :])

    def flush(self) -> str:
        """Whatever is left, a partial character included (as the final decode shows it)."""
        before, after = self._window()
        return self._emit(after[len(before) :]) if len(after) > len(before) else ""

    def _window(self) -> tuple[str, str]:
        window = self.ids[self.prefix :]
        decode = self.tokenizer.decode
        return decode(window[: self.read - self.prefix], skip_special_tokens=True), decode(window, skip_special_tokens=True)

    def _emit(self, delta: str) -> str:
        self.prefix, self.read = self.read, len(self.ids)
        self.text += delta
        return delta
