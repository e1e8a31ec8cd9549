"""Image classification: the picture with its best label on it, and the top labels as bars."""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import QWidget

from app.tabs.classification_inside import ClassificationInside
from app.tabs.vision_common import VisionTab
from app.widgets.score_bars import ScoresPanel
from app.worker import Outcome

_VIT = (
    "<p><b>ViT</b>, the Vision Transformer (Dosovitskiy et al., 2020), reads a picture the way "
    "BERT reads a sentence. The picture is resized to a fixed square (224×224 for most models) "
    "and cut into patches of 16×16 pixels, 196 of them, and each patch is flattened and projected "
    "to a vector. A learned <code>[CLS]</code> vector goes in front, a learned position embedding "
    "is added to every patch, and a stack of transformer layers lets every patch attend to every "
    "other one.</p>"
    "<p>The classifier reads only the final <code>[CLS]</code> vector and gives one number per "
    "class; a softmax turns those numbers into probabilities, and the tab shows the best few.</p>"
)
_CONVNEXT = (
    "<p><b>ConvNeXT</b> (Liu et al., 2022) is a convolutional network rebuilt with lessons "
    "learned from vision transformers. The picture's short side is scaled to 256 pixels and the "
    "central 224×224 square is kept. A 4×4 convolution with stride 4 cuts it into patches; four "
    "stages follow, each halving the resolution and widening the channels, made of blocks with "
    "a 7×7 depthwise convolution, a LayerNorm and a two-layer MLP, added back to their input.</p>"
    "<p>The last feature map is averaged into one vector, normalised, and a linear classifier "
    "gives one number per class; a softmax turns those into probabilities, and the tab shows the "
    "best few.</p>"
)
_GENERIC = (
    "<p>The picture is resized and normalised as the checkpoint's processor asks, the network "
    "turns it into one vector, and a linear classifier gives a score for every class it knows.</p>"
)


class ImageClassificationTab(VisionTab):
    task = "image-classification"
    title = "Image classification"
    modality = "vision"
    blurb = "Name what a picture shows: the model's most likely labels, with their probabilities."
    sample = "still_life.jpg"

    def build_result(self) -> QWidget:
        holder = ScoresPanel()
        self.summary, self.bars = holder.summary, holder.bars
        holder.layout().addStretch(1)
        self.clear_outcome()
        return holder

    def build_inside(self) -> QWidget:
        self.inside = ClassificationInside()
        return self.inside

    def show_inside(self, result: Any) -> None:
        found = self.inside_picture(result)
        if found is not None:
            self.inside.show_result(*found)
        elif not self.live.is_running():
            self.inside.clear()

    def show_outcome(self, outcome: Outcome) -> None:
        if self.inside_open():
            self.show_inside(outcome.result)
        rows = [(entry["label"], entry["score"]) for entry in outcome.result.to_json()]
        self.bars.set_scores(rows)
        if not rows:
            self.summary.setText("The model returned no labels.")
            return
        label, score = rows[0]
        self.summary.setText(
            f"<span style='font-size:14pt'><b>{label}</b></span>&nbsp; {100 * score:.1f} %"
            f"<br><span style='color:#8c959f'>the {len(rows)} most likely labels</span>"
        )
        self.view.set_caption(f"{label} · {100 * score:.0f}%")

    def clear_outcome(self) -> None:
        if hasattr(self, "inside"):  # build_result clears before build_inside has run
            self.inside.clear()
        self.bars.set_scores([])
        self.summary.setText(
            "<span style='color:#8c959f'>Open a picture, drop one here or start the "
            "camera to see what the model thinks it shows.</span>"
        )

    def explain(self, info: dict[str, Any] | None) -> str:
        model_type = (info or {}).get("model_type")
        return {"vit": _VIT, "convnext": _CONVNEXT}.get(model_type, _VIT + _CONVNEXT if info is None else _GENERIC)
