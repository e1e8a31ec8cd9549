"""Tiny random BERT and DistilBERT checkpoints and WordPiece tokenizers written by transformers,
shared by the model, tokenizer and text-task tests."""

from __future__ import annotations

from pathlib import Path

import torch

MAX_POSITIONS = 64
NER_LABELS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG", "B-MISC", "I-MISC"]

_LETTERS = "abcdefghijklmnopqrstuvwxyz"
_SYMBOLS = "0123456789.,;:!?'\"-()éèàüöçñ"
# Arabic and Hebrew letters, and one CJK character (BERT splits CJK into single characters)
_SCRIPTS = "ابتثجحخدذرزسشصضطظعغفقكلمنهوية" + "אבגדהוזחטיכלמנסעפצקרשת" + "中"
# whole words and pieces, so that real words split into several tokens
_WORDS_LOWER = [
    "the", "a", "of", "in", "is", "and", "to", "what", "who", "where", "when", "did", "was",
    "lon", "##don", "par", "##is", "ber", "##lin", "ada", "love", "##lace", "mar", "##ie",
    "cur", "##ie", "anal", "##ysis", "wro", "##te", "live", "##d", "##s", "##ing", "##ed",
    "engine", "##er", "math", "##ema", "##tic", "##ian", "first", "program", "##me",
    "city", "river", "tha", "##mes", "born", "year", "capital", "france",
]


def vocabulary(cased: bool) -> list[str]:
    """A WordPiece vocabulary: specials, single characters with their ## forms, then words."""
    chars = _LETTERS + (_LETTERS.upper() if cased else "") + _SYMBOLS + _SCRIPTS
    words = list(_WORDS_LOWER)
    if cased:
        words += [w.capitalize() for w in _WORDS_LOWER if not w.startswith("##")]
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    for token in [*chars, *("##" + c for c in chars), *words]:
        if token not in vocab:
            vocab.append(token)
    return vocab


def save_tokenizer(folder: Path, *, cased: bool = False, with_json: bool = True) -> None:
    """vocab.txt, tokenizer_config.json and (unless `with_json` is False) tokenizer.json."""
    from transformers import BertTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    vocab_file = folder / "vocab.txt"
    vocab_file.write_text("\n".join(vocabulary(cased)) + "\n", encoding="utf-8")
    tokenizer = BertTokenizer(vocab=str(vocab_file), do_lower_case=not cased, model_max_length=MAX_POSITIONS)
    tokenizer.save_pretrained(folder)
    if not with_json:
        (folder / "tokenizer.json").unlink()


def bert_config(num_labels: int = 2, labels: list[str] | None = None, **overrides):
    from transformers import BertConfig

    settings = dict(
        vocab_size=len(vocabulary(cased=True)),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=37,
        max_position_embeddings=MAX_POSITIONS,
        initializer_range=0.3,  # large enough that tiny models disagree between labels
    )
    settings.update(overrides)
    return BertConfig(**settings, **_label_settings(num_labels, labels))


def distilbert_config(num_labels: int = 2, labels: list[str] | None = None, **overrides):
    from transformers import DistilBertConfig

    settings = dict(
        vocab_size=len(vocabulary(cased=True)),
        dim=32,
        n_layers=2,
        n_heads=4,
        hidden_dim=37,
        max_position_embeddings=MAX_POSITIONS,
        initializer_range=0.3,
    )
    settings.update(overrides)
    return DistilBertConfig(**settings, **_label_settings(num_labels, labels))


def _label_settings(num_labels: int, labels: list[str] | None) -> dict:
    if labels is None:
        return {"num_labels": num_labels}
    return {"id2label": dict(enumerate(labels)), "label2id": {l: i for i, l in enumerate(labels)}}


def save_model(
    model_class: type, config, folder: Path, *, cased: bool = False, seed: int = 0, label_bias: list[float] | None = None
):
    """Save a random `model_class(config)` with a tokenizer to `folder`; return the model.
    `label_bias` steers a random token classifier: the classifier's bias is set so that every
    label's mean logit over random tokens is zero, then `label_bias` is added to it."""
    torch.manual_seed(seed)
    model = model_class(config).eval()
    if label_bias is not None:
        _steer_labels(model, label_bias)
    model.save_pretrained(folder)
    save_tokenizer(folder, cased=cased)
    return model


def _steer_labels(model, label_bias: list[float]) -> None:
    # a random encoder gives every token much the same vector, so one label would win everywhere
    ids = torch.randint(5, model.config.vocab_size, (4, 32), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        model.classifier.bias.zero_()
        mean = model(input_ids=ids).logits.mean(dim=(0, 1))
        model.classifier.bias.copy_(torch.tensor(label_bias) - mean)

