"""Tokenizers from the `tokenizers` package: tokenizer.json when the checkpoint has one,
otherwise built from the older vocabulary files."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tokenizers import Tokenizer, decoders, normalizers, pre_tokenizers, processors
from tokenizers.models import WordPiece

from engine.config import read_json
from engine.errors import CheckpointError


@dataclass(frozen=True)
class TokenizerSettings:
    """What tokenizer_config.json says beyond the tokenizer itself."""

    model_max_length: int | None
    do_lower_case: bool


def tokenizer_settings(folder: Path) -> TokenizerSettings:
    path = Path(folder) / "tokenizer_config.json"
    data = read_json(path) if path.is_file() else {}
    max_length = data.get("model_max_length")
    # transformers writes a huge sentinel when the length is unknown
    if not isinstance(max_length, int) or max_length > 1_000_000:
        max_length = None
    return TokenizerSettings(max_length, bool(data.get("do_lower_case", True)))


def load_tokenizer(folder: Path) -> Tokenizer:
    """The checkpoint's tokenizer with padding and truncation off (the tasks set their own)."""
    folder = Path(folder)
    if (folder / "tokenizer.json").is_file():
        try:
            tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        except Exception as exc:
            raise CheckpointError(f"tokenizer.json in {folder} cannot be read ({exc})") from None
    elif (folder / "vocab.txt").is_file():
        tokenizer = _wordpiece(folder)
    else:
        raise CheckpointError(f"{folder} has no tokenizer (tokenizer.json or vocab.txt)")
    tokenizer.no_padding()
    tokenizer.no_truncation()
    return tokenizer


def _wordpiece(folder: Path) -> Tokenizer:
    """BERT's WordPiece tokenizer from vocab.txt, as the original BERT code tokenised."""
    settings = tokenizer_settings(folder)
    lines = (folder / "vocab.txt").read_text(encoding="utf-8").splitlines()
    vocab = {token: i for i, token in enumerate(lines)}
    for special in ("[UNK]", "[CLS]", "[SEP]"):
        if special not in vocab:
            raise CheckpointError(f"vocab.txt in {folder} lacks the {special} token")
    tokenizer = Tokenizer(WordPiece(vocab, unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(
        clean_text=True,
        handle_chinese_chars=True,
        strip_accents=None,  # None follows lowercase, as BERT does
        lowercase=settings.do_lower_case,
    )
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS]:0 $A:0 [SEP]:0",
        pair="[CLS]:0 $A:0 [SEP]:0 $B:1 [SEP]:1",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])],
    )
    tokenizer.decoder = decoders.WordPiece(prefix="##")
    tokenizer.add_special_tokens([t for t in ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]") if t in vocab])
    return tokenizer
