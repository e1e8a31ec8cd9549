"""One tiny random checkpoint per task and model family, saved by transformers: what the
precision tests and bench/bench_precision.py run every task on."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.engine.models import tiny_wav2vec2
from tests.engine.models.tiny_detr import save_tiny_detr
from tests.engine.models.tiny_text import NER_LABELS, bert_config, distilbert_config, save_model


def _sst(folder: Path) -> None:
    from transformers import DistilBertForSequenceClassification

    save_model(DistilBertForSequenceClassification, distilbert_config(labels=["NEGATIVE", "POSITIVE"]), folder)


def _ner(folder: Path) -> None:
    from transformers import BertForTokenClassification

    save_model(BertForTokenClassification, bert_config(labels=NER_LABELS), folder, cased=True, label_bias=[0] + [1] * 8)


def _squad(folder: Path) -> None:
    from transformers import BertForQuestionAnswering

    save_model(BertForQuestionAnswering, bert_config(), folder)


def _vit(folder: Path) -> None:
    from tests.engine.tasks.test_image_classification import save_vit

    save_vit(folder)


def _convnext(folder: Path) -> None:
    from tests.engine.tasks.test_image_classification import save_convnext

    save_convnext(folder)


def _detr(folder: Path) -> None:
    from transformers import DetrImageProcessorPil

    save_tiny_detr(folder)
    DetrImageProcessorPil(size={"shortest_edge": 64, "longest_edge": 96}).save_pretrained(folder)


def _segformer(folder: Path) -> None:
    from tests.engine.models.tiny_segformer import save_tiny_segformer

    save_tiny_segformer(folder, seed=1, processor={"size": {"height": 64, "width": 64}})


def _depth(folder: Path) -> None:
    from tests.engine.tasks.test_depth_estimation import save_checkpoint

    save_checkpoint(folder)


def _gpt2(folder: Path) -> None:
    from tests.engine.models.tiny_generative import save_gpt2

    save_gpt2(folder, tie_word_embeddings=False)  # an untied head: a linear layer int8 replaces


def _flan_t5(folder: Path) -> None:
    from tests.engine.models.tiny_generative import save_t5

    save_t5(folder, flan=True)


def _bart(folder: Path) -> None:
    from tests.engine.models.tiny_generative import save_bart

    save_bart(folder)


def _wav2vec2(variant: str) -> Callable[[Path], None]:
    return lambda folder: tiny_wav2vec2.save_variant(variant, folder)


#: name -> (task, how to save it)
CHECKPOINTS: dict[str, tuple[str, Callable[[Path], None]]] = {
    "distilbert-sst": ("text-classification", _sst),
    "bert-ner": ("token-classification", _ner),
    "bert-squad": ("question-answering", _squad),
    "vit": ("image-classification", _vit),
    "convnext": ("image-classification", _convnext),
    "detr": ("object-detection", _detr),
    "segformer": ("image-segmentation", _segformer),
    "depth-anything": ("depth-estimation", _depth),
    "gpt2": ("text-generation", _gpt2),
    "flan-t5": ("translation", _flan_t5),
    "bart": ("summarization", _bart),
    "wav2vec2-ctc": ("automatic-speech-recognition", _wav2vec2("ctc-group")),
    "wav2vec2-cls": ("audio-classification", _wav2vec2("cls-last")),
}


def checkpoint(name: str, root: Path) -> tuple[str, Path]:
    """(task, folder) of checkpoint `name` under `root`, saved on first use."""
    task, save = CHECKPOINTS[name]
    folder = Path(root) / name
    if not (folder / "config.json").is_file():
        folder.mkdir(parents=True, exist_ok=True)
        save(folder)
    return task, folder
