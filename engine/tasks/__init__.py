"""The catalogue of tasks. Each entry names its module, so importing the catalogue imports no
model code; a task whose module is not written yet is simply not available."""

from __future__ import annotations

import importlib
import importlib.util
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from engine.tasks.base import Task

# pipeline name -> (module, class)
CATALOGUE: dict[str, tuple[str, str]] = {
    "automatic-speech-recognition": ("engine.tasks.speech_recognition", "SpeechRecognition"),
    "audio-classification": ("engine.tasks.audio_classification", "AudioClassification"),
    "image-classification": ("engine.tasks.image_classification", "ImageClassification"),
    "object-detection": ("engine.tasks.object_detection", "ObjectDetection"),
    "image-segmentation": ("engine.tasks.image_segmentation", "ImageSegmentation"),
    "depth-estimation": ("engine.tasks.depth_estimation", "DepthEstimation"),
    "text-classification": ("engine.tasks.text_classification", "TextClassification"),
    "token-classification": ("engine.tasks.token_classification", "TokenClassification"),
    "question-answering": ("engine.tasks.question_answering", "QuestionAnswering"),
    "text-generation": ("engine.tasks.text_generation", "TextGeneration"),
    "summarization": ("engine.tasks.summarization", "Summarization"),
    "translation": ("engine.tasks.translation", "Translation"),
    # the pipeline's names for T5's pairs: translation with that pair by default
    "translation_en_to_de": ("engine.tasks.translation", "TranslationEnToDe"),
    "translation_en_to_fr": ("engine.tasks.translation", "TranslationEnToFr"),
    "translation_en_to_ro": ("engine.tasks.translation", "TranslationEnToRo"),
}


def available() -> list[str]:
    """Names of the tasks whose modules exist, in catalogue order."""
    return [name for name, (module, _) in CATALOGUE.items() if importlib.util.find_spec(module)]


def get(name: str) -> type[Task]:
    from engine.errors import InputError

    if name not in CATALOGUE or name not in available():
        raise InputError(f"unknown task {name!r}; available: {', '.join(available())}")
    module, cls = CATALOGUE[name]
    return getattr(importlib.import_module(module), cls)
