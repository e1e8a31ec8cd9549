"""The registry of task tabs, keyed by engine task name.

A tab is shown when its engine task is available (`engine.tasks.available()`, which imports no
model code) and its module exists. To add one, write the module (see `app/tabs/base.py`) and add
its line below; the sidebar groups tabs by their `modality` in `MODALITIES` order, and within a
group keeps the order of this table.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from app.tabs.base import TaskTab

# engine task name -> (module, class)
TABS: dict[str, tuple[str, str]] = {
    "automatic-speech-recognition": ("app.tabs.speech_recognition", "SpeechRecognitionTab"),
    "audio-classification": ("app.tabs.audio_classification", "AudioClassificationTab"),
    "image-classification": ("app.tabs.image_classification", "ImageClassificationTab"),
    "object-detection": ("app.tabs.object_detection", "ObjectDetectionTab"),
    "depth-estimation": ("app.tabs.depth_estimation", "DepthEstimationTab"),
    "image-segmentation": ("app.tabs.image_segmentation", "ImageSegmentationTab"),
    "text-classification": ("app.tabs.text_classification", "TextClassificationTab"),
    "token-classification": ("app.tabs.token_classification", "TokenClassificationTab"),
    "question-answering": ("app.tabs.question_answering", "QuestionAnsweringTab"),
    "text-generation": ("app.tabs.text_generation", "TextGenerationTab"),
    "summarization": ("app.tabs.summarization", "SummarizationTab"),
    "translation": ("app.tabs.translation", "TranslationTab"),
}

MODALITIES: dict[str, str] = {"audio": "Audio", "vision": "Vision", "text": "Text"}


def available_tabs() -> list[type[TaskTab]]:
    """Tab classes for the engine tasks that exist, grouped by modality."""
    from engine import tasks

    engine_tasks = set(tasks.available())
    found = []
    for name, (module, cls) in TABS.items():
        if name in engine_tasks and importlib.util.find_spec(module) is not None:
            found.append(getattr(importlib.import_module(module), cls))
    order = list(MODALITIES)
    return sorted(found, key=lambda tab: order.index(tab.modality) if tab.modality in order else len(order))
