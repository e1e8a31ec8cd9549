"""Tokenizers from the `tokenizers` package: tokenizer.json when the checkpoint has one,
otherwise built from the older vocabulary files (BERT's vocab.txt, GPT-2's and RoBERTa's
vocab.json with merges.txt)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from typing import Any

from tokenizers import AddedToken, Tokenizer, decoders, normalizers, pre_tokenizers, processors
from tokenizers.models import BPE, WordPiece

from engine.config import read_json
from engine.errors import CheckpointError


@dataclass(frozen=True)
class TokenizerSettings:
    """What tokenizer_config.json says beyond the tokenizer itself."""

    model_max_length: int | None
    do_lower_case: bool


def tokenizer_settings(folder: Path) -> TokenizerSettings:
    data = _tokenizer_config(folder)
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
    elif (folder / "vocab.json").is_file() and (folder / "merges.txt").is_file():
        tokenizer = _byte_level_bpe(folder)
    else:
        raise CheckpointError(f"{folder} has no tokenizer (tokenizer.json, vocab.txt, or vocab.json with merges.txt)")
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


# the special tokens of RoBERTa-style vocabularies (BART's), and GPT-2's one
_ROBERTA_SPECIALS = {"bos_token": "<s>", "pad_token": "<pad>", "eos_token": "</s>", "unk_token": "<unk>", "mask_token": "<mask>"}
_GPT2_SPECIALS = {"eos_token": "<|endoftext|>"}


def _byte_level_bpe(folder: Path) -> Tokenizer:
    """GPT-2's and RoBERTa's byte-level BPE from vocab.json and merges.txt. A RoBERTa-style
    vocabulary (BART's: <s> and </s>, tokenizer_class Roberta or Bart) wraps each text in
    <s> … </s>; GPT-2's adds nothing."""
    config = _tokenizer_config(folder)
    try:
        model = BPE.from_file(str(folder / "vocab.json"), str(folder / "merges.txt"))
    except Exception as exc:
        raise CheckpointError(f"vocab.json and merges.txt in {folder} cannot be read ({exc})") from None
    tokenizer = Tokenizer(model)
    vocab = tokenizer.get_vocab()
    named = str(config.get("tokenizer_class") or "")
    roberta = named.startswith(("Roberta", "Bart")) or (not named and "<s>" in vocab and "</s>" in vocab)
    prefix_space = bool(config.get("add_prefix_space", False))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=prefix_space)
    tokenizer.decoder = decoders.ByteLevel()
    specials = {**(_ROBERTA_SPECIALS if roberta else _GPT2_SPECIALS), **_named_specials(folder, config)}
    tokenizer.add_special_tokens([AddedToken(token, special=True) for token in specials.values() if token in vocab])
    if roberta:
        bos, eos = specials["bos_token"], specials["eos_token"]
        if bos not in vocab or eos not in vocab:
            raise CheckpointError(f"vocab.json in {folder} lacks {bos} or {eos}")
        tokenizer.post_processor = processors.RobertaProcessing(
            (eos, vocab[eos]), (bos, vocab[bos]), trim_offsets=True, add_prefix_space=prefix_space
        )
    return tokenizer


def _named_specials(folder: Path, config: dict[str, Any]) -> dict[str, str]:
    """The special tokens tokenizer_config.json and special_tokens_map.json name (each either
    the token itself or {"content": token, ...})."""
    path = Path(folder) / "special_tokens_map.json"
    named = {**(read_json(path) if path.is_file() else {}), **config}
    found = {}
    for key in ("bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"):
        value = named.get(key)
        if isinstance(value, dict):
            value = value.get("content")
        if isinstance(value, str):
            found[key] = value
    return found


def _tokenizer_config(folder: Path) -> dict[str, Any]:
    path = Path(folder) / "tokenizer_config.json"
    return read_json(path) if path.is_file() else {}
