"""Tiny vision checkpoints written by transformers (the oracle) for the vision tabs, and for
screenshots:

    python -c "from tests.app.tabs.vision_models import build_vision_models; build_vision_models('/tmp/tiny')"
    python -m app --screenshots shots --model-dir /tmp/tiny

The weights are random, except that the last linear layers of each head are fitted by least
squares so that the sample picture each tab opens gets plausible answers: the street scene gets
boxes on its stop sign, traffic light and buildings, the still life gets fruit labels. On any
other picture the answers are as random as the rest of the weights. That gives the tests boxes at
known places, and the screenshots something a person can check by eye.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

SAMPLES = Path(__file__).resolve().parents[3] / "resources" / "samples"

DETECTION_LABELS = ["stop sign", "tree", "car", "traffic light", "building", "person", "bench", "bicycle"]
# (label, score, x0, y0, x1, y1) in the pixels of street.jpg (1200×800)
STREET_OBJECTS = [
    ("stop sign", 0.98, 617, 196, 823, 404),
    ("traffic light", 0.95, 398, 188, 472, 422),
    ("building", 0.84, 250, 218, 521, 516),
    ("building", 0.78, 900, 259, 1200, 516),
    ("building", 0.66, 0, 299, 251, 516),
    ("car", 0.31, 40, 600, 330, 760),
    ("person", 0.14, 520, 420, 560, 530),
]
CLASSIFICATION_LABELS = [
    "orange", "tennis ball", "pomegranate", "Granny Smith", "dining table", "lemon",
    "bell pepper", "fig", "banana", "strawberry", "cucumber", "pool table",
]
# probabilities for still_life.jpg, in label order; the rest share what is left
STILL_LIFE_SCORES = [0.46, 0.21, 0.12, 0.08, 0.05]


def _labels(names: list[str]) -> dict:
    return {"id2label": dict(enumerate(names)), "label2id": {n: i for i, n in enumerate(names)}}


def _fit_linear(layer: torch.nn.Linear, inputs: torch.Tensor, targets: torch.Tensor) -> None:
    """Set `layer` so that layer(inputs) == targets: the least-norm exact solution, which exists
    while there are fewer rows than input features."""
    ones = torch.ones(inputs.shape[0], 1, dtype=torch.float64)
    design = torch.cat([inputs.double(), ones], dim=1)  # (rows, features + 1)
    solution = torch.linalg.pinv(design) @ targets.double()  # (features + 1, outputs)
    with torch.no_grad():
        layer.weight.copy_(solution[:-1].T.float())
        layer.bias.copy_(solution[-1].float())


def save_detr(folder: Path, fit_to: Path | None = SAMPLES / "street.jpg") -> Path:
    """A tiny DETR (ResNet backbone in transformers' layout) with a small processor, its heads
    fitted to `fit_to` when given."""
    from PIL import Image
    from transformers import DetrConfig, DetrForObjectDetection, DetrImageProcessorPil, ResNetConfig

    from tests.engine.models.tiny_detr import randomize

    torch.manual_seed(0)
    backbone = ResNetConfig(embedding_size=8, hidden_sizes=[8, 16, 24, 32], depths=[1, 1, 1, 1],
                            layer_type="basic", out_features=["stage4"])
    config = DetrConfig(
        backbone_config=backbone, use_timm_backbone=False, d_model=32, encoder_layers=1, decoder_layers=2,
        encoder_attention_heads=4, decoder_attention_heads=4, encoder_ffn_dim=48, decoder_ffn_dim=48,
        num_queries=12, num_labels=len(DETECTION_LABELS), **_labels(DETECTION_LABELS),
    )
    model = DetrForObjectDetection(config).eval()
    randomize(model)
    processor = DetrImageProcessorPil(size={"shortest_edge": 160, "longest_edge": 267})
    if fit_to is not None:
        image = Image.open(fit_to).convert("RGB")
        inputs = processor(images=image, return_tensors="pt")
        with torch.no_grad():
            hidden = model.model(pixel_values=inputs["pixel_values"], pixel_mask=inputs["pixel_mask"])[0][0]
            layers = model.bbox_predictor.layers
            features = torch.relu(layers[1](torch.relu(layers[0](hidden))))
        _fit_linear(model.class_labels_classifier, hidden, _class_targets(len(hidden)))
        _fit_linear(layers[2], features, _box_targets(len(hidden), image.size))
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return Path(folder)


def _class_targets(queries: int) -> torch.Tensor:
    """Logits giving each object's query its score; other queries say "no object"."""
    classes = len(DETECTION_LABELS)
    targets = torch.zeros(queries, classes + 1, dtype=torch.float64)
    targets[:, classes] = 9.0  # the no-object column
    for query, (label, score, *_) in enumerate(STREET_OBJECTS):
        # with every other logit (no-object included) at 0, softmax gives e^a / (e^a + classes)
        targets[query, classes] = 0.0
        targets[query, DETECTION_LABELS.index(label)] = math.log(score * classes / (1 - score))
    return targets


def _box_targets(queries: int, size: tuple[int, int]) -> torch.Tensor:
    """Pre-sigmoid (cx, cy, w, h) for each object's box; leftover queries get a small box."""
    width, height = size
    boxes = torch.full((queries, 4), 0.1, dtype=torch.float64)
    for query, (*_, x0, y0, x1, y1) in enumerate(STREET_OBJECTS):
        boxes[query] = torch.tensor([(x0 + x1) / 2 / width, (y0 + y1) / 2 / height,
                                     (x1 - x0) / width, (y1 - y0) / height])
    boxes = boxes.clamp(1e-4, 1 - 1e-4)
    return torch.log(boxes / (1 - boxes))


def save_vit(folder: Path, fit_to: Path | None = SAMPLES / "still_life.jpg") -> Path:
    """A tiny ViT (32×32 input, 8×8 patches) whose classifier prefers fruit on the still life."""
    from PIL import Image
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessorPil

    torch.manual_seed(0)
    config = ViTConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
                       image_size=32, patch_size=8, **_labels(CLASSIFICATION_LABELS))
    model = ViTForImageClassification(config).eval()
    processor = ViTImageProcessorPil(size={"height": 32, "width": 32})
    if fit_to is not None:
        pixels = processor(images=Image.open(fit_to).convert("RGB"), return_tensors="pt")["pixel_values"]
        with torch.no_grad():
            cls = model.vit(pixel_values=pixels)[0][:, 0]  # (1, hidden): what the classifier reads
        rest = (1 - sum(STILL_LIFE_SCORES)) / (len(CLASSIFICATION_LABELS) - len(STILL_LIFE_SCORES))
        probabilities = STILL_LIFE_SCORES + [rest] * (len(CLASSIFICATION_LABELS) - len(STILL_LIFE_SCORES))
        # a few made-up neighbours of the still life keep the fit from being a constant
        inputs = torch.cat([cls, cls + 0.3 * torch.randn(3, cls.shape[1])])
        targets = torch.log(torch.tensor(probabilities, dtype=torch.float64)).expand(4, -1)
        targets = targets + torch.cat([torch.zeros(1, len(probabilities)), torch.randn(3, len(probabilities))])
        _fit_linear(model.classifier, inputs, targets)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return Path(folder)


def save_convnext(folder: Path) -> Path:
    from transformers import ConvNextConfig, ConvNextForImageClassification, ConvNextImageProcessorPil

    torch.manual_seed(0)
    config = ConvNextConfig(hidden_sizes=[8, 16, 24, 32], depths=[1, 1, 1, 1], **_labels(CLASSIFICATION_LABELS))
    ConvNextForImageClassification(config).save_pretrained(folder)
    ConvNextImageProcessorPil(size={"shortest_edge": 64}).save_pretrained(folder)
    return Path(folder)


def save_depth_anything(folder: Path, **overrides) -> Path:
    """A tiny Depth Anything (relative unless `overrides` say metric) with a small DPT processor:
    56 pixels, sides in multiples of its 7-pixel patches."""
    from transformers import DPTImageProcessorPil

    from tests.engine.models.tiny_depth_anything import PATCH, save_tiny_depth_anything

    save_tiny_depth_anything(folder, **overrides)
    DPTImageProcessorPil(size={"height": 56, "width": 56}, keep_aspect_ratio=True, ensure_multiple_of=PATCH,
                         resample=3, image_mean=[0.485, 0.456, 0.406],
                         image_std=[0.229, 0.224, 0.225]).save_pretrained(folder)
    return Path(folder)


SEGMENT_LABELS = ["sky", "building", "road", "sidewalk", "traffic light", "stop sign"]


def _street_regions(size: tuple[int, int]) -> torch.Tensor:
    """(height, width) class ids for street.jpg, drawn from its layout: sky above, road below,
    the pavement between, the buildings, the traffic light and the stop sign in their boxes."""
    width, height = size
    ys = torch.arange(height, dtype=torch.float64)[:, None] / height * 800
    xs = torch.arange(width, dtype=torch.float64)[None, :] / width * 1200
    regions = torch.zeros(height, width, dtype=torch.long)  # sky

    def inside(x0, y0, x1, y1):
        return (xs >= x0) & (xs < x1) & (ys >= y0) & (ys < y1)

    for *_, x0, y0, x1, y1 in (o for o in STREET_OBJECTS if o[0] == "building"):
        regions[inside(x0, y0, x1, y1)] = SEGMENT_LABELS.index("building")
    regions[inside(398, 188, 472, 422) | inside(426, 422, 442, 530)] = SEGMENT_LABELS.index("traffic light")
    regions[inside(617, 196, 823, 404)] = SEGMENT_LABELS.index("stop sign")
    regions[(ys >= 512).expand(height, width)] = SEGMENT_LABELS.index("sidewalk")
    regions[(ys >= 540).expand(height, width)] = SEGMENT_LABELS.index("road")
    return regions


def save_segformer(folder: Path, fit_to: Path | None = SAMPLES / "street.jpg") -> Path:
    """A tiny SegFormer (MiT-b0's layout shrunk, 128×128 input) whose classifier is fitted so
    that the street scene comes out as sky, buildings, road, pavement, traffic light and sign."""
    from PIL import Image
    from transformers import SegformerConfig, SegformerForSemanticSegmentation, SegformerImageProcessorPil

    from tests.engine.models.random_values import spread_values
    from tests.engine.models.tiny_segformer import CONFIGS

    torch.manual_seed(0)
    layout = {**CONFIGS["b0-like"], "decoder_hidden_size": 96}
    config = SegformerConfig(**layout, **_labels(SEGMENT_LABELS))
    model = SegformerForSemanticSegmentation(config).eval()
    spread_values(model)
    processor = SegformerImageProcessorPil(size={"height": 128, "width": 128})
    if fit_to is not None:
        pixels = processor(images=Image.open(fit_to).convert("RGB"), return_tensors="pt")["pixel_values"]
        seen = []
        hook = model.decode_head.classifier.register_forward_pre_hook(lambda _m, args: seen.append(args[0]))
        with torch.no_grad():
            model(pixel_values=pixels)
        hook.remove()
        features = seen[0][0].flatten(1).T  # (positions, decoder_hidden_size)
        height, width = seen[0].shape[-2:]
        regions = _street_regions((width, height)).flatten()
        targets = torch.full((len(regions), len(SEGMENT_LABELS)), -4.0, dtype=torch.float64)
        targets[torch.arange(len(regions)), regions] = 4.0
        classifier = model.decode_head.classifier
        fitted = torch.nn.Linear(features.shape[1], len(SEGMENT_LABELS))
        _fit_linear(fitted, features, targets)
        with torch.no_grad():
            classifier.weight.copy_(fitted.weight[:, :, None, None])
            classifier.bias.copy_(fitted.bias)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return Path(folder)


def save_glpn(folder: Path) -> Path:
    """A tiny GLPN (metric, up to 10 m) with the Hub's processor file: sides cut down to multiples
    of 32, bilinear, rescale only."""
    from tests.engine.models.tiny_glpn import save_tiny_glpn

    save_tiny_glpn(folder, processor={})
    return Path(folder)


def build_vision_models(root: str | Path) -> dict[str, Path]:
    """One folder per vision task under `root`, named by task, plus "convnext"."""
    root = Path(root)
    return {
        "image-classification": save_vit(root / "image-classification"),
        "object-detection": save_detr(root / "object-detection"),
        "depth-estimation": save_depth_anything(root / "depth-estimation"),
        "image-segmentation": save_segformer(root / "image-segmentation"),
        "convnext": save_convnext(root / "convnext"),
    }
