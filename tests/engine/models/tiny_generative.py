"""Tiny random GPT-2, BART and T5 checkpoints saved by transformers, with tokenizers in the
formats the Hub's checkpoints use: byte-level BPE as vocab.json + merges.txt (GPT-2, BART)
and a SentencePiece-style Unigram tokenizer.json (T5). Shared by the generation, model and
task tests."""

from __future__ import annotations

import json
from pathlib import Path

import torch

MAX_POSITIONS = 64

# multi-byte characters on purpose: byte-level tokens then split characters across tokens
CORPUS = [
    "The analysis of London and Paris was born in the year 1843, said Ada Lovelace.",
    "Café Noël à Zürich — naïve? 中文 text 🙂 emoji 👍🏽 and ünïcödé ñ ç ß ø å.",
    "The engine wrote the first programme; the river Thames runs through the city.",
    "Marie Curie was a physicist and chemist who worked in Paris.",
]
PROMPTS = ["The analysis of London", "Café 中文 🙂", "the", "Marie Curie was born in the city of"]

_T5_WORDS = (
    "the analysis of london and paris was born in year said ada lovelace engine wrote first programme "
    "river thames runs through city marie curie physicist chemist who worked café noël zürich naïve "
    "translate english to german french romanian summarize: . , ; ? ! — 🙂 中 文"
).split()


def save_byte_level_bpe(folder: Path, *, roberta: bool, tokenizer_class: str | None = None) -> dict[str, int]:
    """vocab.json and merges.txt trained on CORPUS, and tokenizer_config.json; returns the
    vocabulary. GPT-2's files have one special token (<|endoftext|>); RoBERTa-style ones
    (BART's) have <s> <pad> </s> <unk> first and <mask> last, as the real ones."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    specials = ["<s>", "<pad>", "</s>", "<unk>"] if roberta else ["<|endoftext|>"]
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    tokenizer.train_from_iterator(CORPUS * 3, trainer)
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer.model.save(str(folder))
    vocab = json.loads((folder / "vocab.json").read_text(encoding="utf-8"))
    if roberta:
        vocab["<mask>"] = len(vocab)
        (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    settings: dict = {"model_max_length": MAX_POSITIONS}
    if tokenizer_class:
        settings["tokenizer_class"] = tokenizer_class
    (folder / "tokenizer_config.json").write_text(json.dumps(settings), encoding="utf-8")
    return vocab


def save_unigram(folder: Path) -> int:
    """A T5 tokenizer.json (Unigram, Metaspace, "$A </s>") over a small vocabulary of words and
    characters; returns its size, extra ids included."""
    from transformers import T5Tokenizer

    chars = sorted({c for word in _T5_WORDS for c in word} | set("abcdefghijklmnopqrstuvwxyz"))
    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", -2.0)]
    pieces += [("▁" + word, -3.0 - len(word) / 10) for word in _T5_WORDS]
    pieces += [(c, -5.0) for c in chars] + [("▁" + c, -5.5) for c in chars]
    pieces += [(f"<extra_id_{i}>", 0.0) for i in reversed(range(3))]
    tokenizer = T5Tokenizer(vocab=pieces, extra_ids=3, model_max_length=MAX_POSITIONS)
    tokenizer.save_pretrained(folder)
    return len(tokenizer)


def gpt2_config(vocab_size: int, **overrides):
    from transformers import GPT2Config

    settings = dict(vocab_size=vocab_size, n_embd=32, n_layer=2, n_head=4, n_positions=MAX_POSITIONS,
                    bos_token_id=0, eos_token_id=0, initializer_range=0.2)
    settings.update(overrides)
    return GPT2Config(**settings)


def bart_config(vocab_size: int, **overrides):
    from transformers import BartConfig

    settings = dict(vocab_size=vocab_size, d_model=32, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4,
                    decoder_attention_heads=4, encoder_ffn_dim=48, decoder_ffn_dim=48,
                    max_position_embeddings=MAX_POSITIONS, init_std=0.2)
    settings.update(overrides)
    return BartConfig(**settings)


def t5_config(vocab_size: int, **overrides):
    from transformers import T5Config

    # few buckets and a short reach, so that short test sequences use the logarithmic buckets too
    settings = dict(vocab_size=vocab_size, d_model=32, d_kv=8, d_ff=48, num_layers=2, num_heads=4,
                    relative_attention_num_buckets=8, relative_attention_max_distance=20,
                    decoder_start_token_id=0)
    settings.update(overrides)
    return T5Config(**settings)


def save_model(model_class: type, config, folder: Path, *, seed: int = 0):
    """A random `model_class(config)` saved to `folder` (beside a tokenizer saved there
    already); returns the model in eval mode."""
    torch.manual_seed(seed)
    model = model_class(config).eval()
    model.save_pretrained(folder)
    return model


def save_gpt2(folder: Path, **overrides):
    from transformers import GPT2LMHeadModel

    vocab = save_byte_level_bpe(folder, roberta=False)
    return save_model(GPT2LMHeadModel, gpt2_config(len(vocab), **overrides), folder)


def save_bart(folder: Path, **overrides):
    from transformers import BartForConditionalGeneration

    vocab = save_byte_level_bpe(folder, roberta=True)
    return save_model(BartForConditionalGeneration, bart_config(len(vocab), **overrides), folder)


def save_t5(folder: Path, *, flan: bool = False, **overrides):
    """A tiny T5; with `flan`, a v1.1 / FLAN-T5 one: gated GELU and an untied head, in the Hub's
    layout (transformers 5 always ties T5's head when it builds one, so the head is written in)."""
    from safetensors.torch import load_file, save_file
    from transformers import T5ForConditionalGeneration

    size = save_unigram(folder)
    if flan:
        overrides = {"feed_forward_proj": "gated-gelu", "tie_word_embeddings": False, **overrides}
    model = save_model(T5ForConditionalGeneration, t5_config(size, **overrides), folder)
    if flan:
        state = load_file(folder / "model.safetensors")
        state["lm_head.weight"] = torch.randn(size, model.config.d_model, generator=torch.Generator().manual_seed(1))
        save_file(state, folder / "model.safetensors", metadata={"format": "pt"})
        config = json.loads((folder / "config.json").read_text())
        config.pop("scale_decoder_outputs", None)
        (folder / "config.json").write_text(json.dumps({**config, "tie_word_embeddings": False}))
        model = T5ForConditionalGeneration.from_pretrained(folder).eval()
    return model


# --- running our search and transformers' generate on the same model files ---


def generate_ours(model, prompt: torch.Tensor, on_step=None, memory: torch.Tensor | None = None, **settings):
    """Our search over `model` from `prompt` (1-D ids the decoder starts with); for an
    encoder-decoder, `memory` is the encoder's output."""
    from engine.generation.search import CachedDecoder, generate
    from engine.generation.settings import resolve

    s = resolve([settings], prompt_length=len(prompt))
    rows = s.num_beams if s.num_beams > 1 else s.num_return_sequences
    if memory is None:
        step = lambda ids, cache: model(ids, cache, last_only=True)  # noqa: E731
    else:
        step = lambda ids, cache: model.decode(ids, memory, cache, last_only=True)  # noqa: E731
    return generate(CachedDecoder(step, model.make_cache(rows, s.max_length)), prompt, s, on_step)


def generate_theirs(model, input_ids: torch.Tensor, skip: int, **settings) -> list[list[int]]:
    """transformers' `generate` from `input_ids` (1-D); each row without its first `skip` ids."""
    seed = settings.pop("seed", None)
    if seed is not None:
        torch.manual_seed(seed)
    with torch.no_grad():
        out = model.generate(input_ids[None], **settings)
    return out[:, skip:].tolist()


def assert_same_tokens(ours, theirs: list[list[int]], pad: int) -> None:
    """Our hypotheses are transformers' rows, which may go on with padding."""
    assert len(ours) == len(theirs)
    for hypothesis, row in zip(ours, theirs):
        n = len(hypothesis.tokens)
        assert hypothesis.tokens == row[:n] and set(row[n:]) <= {pad}, (hypothesis.tokens, row)
