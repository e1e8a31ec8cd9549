"""The image-segmentation task on tiny Mask2Former checkpoints against transformers' pipeline
with its PIL image processor: pre-processing bit for bit, and the pipeline's segments for all
three subtasks on real-size photos of several shapes and modes; options that re-run only the
post-processing; the per-layer predictions of `explain`."""

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from transformers import Mask2FormerImageProcessorPil, pipeline
from transformers.image_utils import load_image as their_load_image

from engine import image as imaging
from engine import image_processing as processing
from engine.errors import CheckpointError, InputError
from engine.tasks.base import SAMPLES
from engine.tasks.image_segmentation import ImageSegmentation
from engine.tasks.query_segments import REFERENCE_SIZE
from engine.tasks.vision_common import FAMILIES, read_processor
from tests.engine.image_samples import write_samples
from tests.engine.models.tiny_mask2former import save_tiny_mask2former

PROCESSOR = {"size": {"height": 96, "width": 128}, "size_divisor": 32}
PHOTOS = ("street.jpg", "cat.jpg", "astronaut.jpg")  # 1200x800, 451x300, 512x512
MODES = ("rgba_480x640.png", "grey_500x300.png", "cmyk_640x480.jpg")


@pytest.fixture(scope="module")
def pictures(tmp_path_factory):
    written = write_samples(tmp_path_factory.mktemp("images"))
    return {**{name: SAMPLES / name for name in PHOTOS}, **{name: written[name] for name in MODES}}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """(folder, ours, transformers' pipeline); seed and scales chosen so that the street photo
    has several panoptic segments of several classes, and instances that overlap."""
    folder = tmp_path_factory.mktemp("mask2former")
    save_tiny_mask2former(folder, seed=2, class_scale=8, mask_scale=30, processor=PROCESSOR)
    with pytest.MonkeyPatch.context() as patch:  # transformers' loss wants scipy, never used here
        patch.setattr("transformers.models.mask2former.modeling_mask2former.requires_backends", lambda *a: None)
        reference = pipeline("image-segmentation", model=str(folder),
                             image_processor=Mask2FormerImageProcessorPil.from_pretrained(folder))
    return folder, ImageSegmentation.load(folder, device="cpu"), reference


def undecided(reference, picture, subtask, threshold):
    """(H, W) bool: the pixels where transformers' own numbers are too close to call, so that
    float32 rounding of the logits may send them either way."""
    processor, size = reference.image_processor, (picture.height, picture.width)
    with torch.no_grad():
        outputs = reference.model(**processor(images=[picture], return_tensors="pt"))
    classes, masks = outputs.class_queries_logits[0], outputs.masks_queries_logits[0]
    at_reference = F.interpolate(masks[None], size=REFERENCE_SIZE, mode="bilinear", align_corners=False)[0]
    if subtask == "semantic":
        scores = processor.post_process_semantic_segmentation(
            outputs, target_sizes=[size], return_segmentation_scores=True)[0]["segmentation_scores"]
        best = scores.topk(2, dim=0).values
        return (best[0] - best[1] < 1e-5).numpy()
    if subtask == "instance":
        near_zero = (at_reference.abs() < 1e-4).float()
        return F.interpolate(near_zero[None], size=size, mode="nearest")[0].any(0).numpy()
    probabilities, labels = classes.softmax(-1).max(-1)
    kept = (labels != classes.shape[1] - 1) & (probabilities > threshold)
    if kept.sum() < 2:
        return np.zeros(size, dtype=bool)
    weighted = F.interpolate(at_reference[kept].sigmoid()[None], size=size, mode="bilinear", align_corners=False)[0]
    best = (weighted * probabilities[kept].view(-1, 1, 1)).topk(2, dim=0).values
    return (best[0] - best[1] < 1e-5).numpy()


def assert_same_segments(result, expected, loose):
    """Same labels in the same order, scores within 1e-5, masks equal to the pipeline's but at
    the `loose` pixels, and each segment's area and box those of its mask."""
    assert [s.label for s in result.segments] == [e["label"] for e in expected]
    for segment, entry in zip(result.segments, expected):
        if entry["score"] is None:
            assert segment.score is None and segment.query is None
        else:
            assert segment.score == pytest.approx(entry["score"], abs=1e-5) and segment.query is not None
        theirs = np.asarray(entry["mask"]) == 255
        ours = result.mask(segment)
        assert not (ours != theirs)[~loose].any(), segment.label
        assert segment.area == int(np.count_nonzero(ours))
        assert segment.bbox == (result.mask_image(segment).getbbox() or (0, 0, 0, 0))


# ----------------------------------------------------------------------------- pre-processing


@pytest.mark.parametrize(
    "saved",
    [
        {"size": {"height": 384, "width": 384}, "size_divisor": 32, "resample": 2, "image_mean": [0.485, 0.456, 0.406],
         "image_std": [0.229, 0.224, 0.225], "do_reduce_labels": True, "ignore_index": 255},  # the Hub's form
        {"size": {"shortest_edge": 90, "longest_edge": 150}, "size_divisor": 32},  # rounded up to 96x128
        {"size": {"height": 50, "width": 70}, "size_divisor": 16, "resample": 3},
        {},  # the processor class's own defaults: 800 short side, at most 1333, multiples of 32
    ],
)
def test_preprocessing_equals_mask2former_processor(tmp_path, pictures, saved):
    (tmp_path / "preprocessor_config.json").write_text(json.dumps(saved))
    ours = read_processor(tmp_path, FAMILIES["mask2former"])
    theirs = Mask2FormerImageProcessorPil(**saved)
    for name in ("cat.jpg", "rgba_480x640.png"):
        expected = theirs(images=[their_load_image(str(pictures[name]))], return_tensors="pt")["pixel_values"]
        pixels = processing.preprocess(imaging.load_image(pictures[name]), ours)
        torch.testing.assert_close(pixels, expected, rtol=0, atol=0, msg=name)


# ----------------------------------------------------------------------------------- the task


#: every subtask on photos of three shapes, and on the other modes
CASES = [("street.jpg", "panoptic"), ("cat.jpg", "panoptic"), ("cmyk_640x480.jpg", "panoptic"),
         ("cat.jpg", "instance"), ("astronaut.jpg", "instance"), ("rgba_480x640.png", "instance"),
         ("cat.jpg", "semantic"), ("grey_500x300.png", "semantic")]


@pytest.mark.parametrize("name, subtask", CASES)
def test_segments_equal_the_pipeline(checkpoint, pictures, name, subtask):
    _, task, reference = checkpoint
    threshold = 0.5  # 0.9 keeps too few of a random model's queries to compare much
    result = task.run(pictures[name], subtask=subtask, threshold=threshold)
    expected = reference(str(pictures[name]), subtask=subtask, threshold=threshold)
    loose = undecided(reference, their_load_image(str(pictures[name])), subtask, threshold)
    assert_same_segments(result, expected, loose)
    if name == "street.jpg":  # a map of one segment would compare little
        assert len(result.segments) >= 2 and len({s.label for s in result.segments}) >= 2


def test_overlapping_instances_cover_earlier_ones_as_in_transformers(checkpoint, pictures):
    _, task, _ = checkpoint
    result = task.run(pictures["cat.jpg"], subtask="instance", threshold=0.5)
    assert len(result.segments) >= 4 and [s.id for s in result.segments] == list(range(len(result.segments)))
    assert sum(s.area for s in result.segments) < 451 * 300  # the pixels of no instance stay -1
    assert (result.segmentation == -1).any()


def test_other_options_rerun_only_the_postprocessing(checkpoint, pictures, monkeypatch):
    _, task, _ = checkpoint
    path = pictures["cat.jpg"]
    changes = ({"threshold": 0.8}, {"subtask": "instance", "threshold": 0.3}, {"subtask": "semantic"},
               {"mask_threshold": 0.3, "overlap_mask_area_threshold": 0.8})
    fresh = [task.run(path, **{"threshold": 0.5, **change}).to_json() for change in changes]
    result = task.run(path, threshold=0.5)
    assert result.subtask == "panoptic"
    monkeypatch.setattr(task.model, "forward", lambda *args, **kwargs: pytest.fail("the model ran again"))
    for change, expected in zip(changes, fresh):
        moved = result.with_options(**change)
        assert moved.options == {**result.options, **change} and moved.to_json() == expected
    with pytest.raises(InputError, match="run the model again"):
        result.with_options(explain=True)
    with pytest.raises(InputError):
        result.with_options(threshold=1.5)


def test_explain_keeps_every_layer_and_changes_nothing_else(checkpoint, pictures):
    _, task, _ = checkpoint
    plain = task.run(pictures["cat.jpg"], threshold=0.5)
    explained = task.run(pictures["cat.jpg"], threshold=0.5, explain=True)
    assert plain.query_layers is None and plain.query_layer_logits is None
    assert explained.to_json() == plain.to_json() and torch.equal(explained.segmentation, plain.segmentation)
    for name, value in plain.outputs.items():
        assert torch.equal(explained.outputs[name], value)
    queries, height, width = plain.outputs["mask_logits"].shape
    layers = explained.query_layers
    assert len(layers) == 4 and all(m.dtype == np.float16 and m.shape == (queries, height, width) for m in layers)
    np.testing.assert_array_equal(layers[-1], plain.outputs["mask_logits"].sigmoid().half().numpy())
    logits = explained.query_layer_logits
    assert logits.dtype == np.float32 and logits.shape == (4, queries, 71)
    np.testing.assert_array_equal(logits[-1], plain.outputs["class_logits"].numpy())
    assert all(s.query is not None and 0 <= s.query < queries for s in explained.segments)
    assert plain.internals == {}  # what --explain DIR writes: the same arrays, stacked
    np.testing.assert_array_equal(explained.internals["query_masks"], np.stack(layers))
    assert explained.internals["query_logits"] is logits


def test_score_maps_are_the_semantic_scores_at_mask_resolution(checkpoint, pictures):
    _, task, _ = checkpoint
    result = task.run(pictures["cat.jpg"], subtask="semantic")
    maps = result.score_maps()
    assert maps.shape == (70, *result.outputs["mask_logits"].shape[1:])
    assert all(s.query is None for s in result.segments)


def test_json_writes_and_info(checkpoint, pictures, tmp_path):
    _, task, _ = checkpoint
    result = task.run(pictures["street.jpg"], threshold=0.5)
    printed = result.to_json()
    assert printed and all(set(e) == {"score", "label", "area", "bbox"} for e in printed)
    written = result.write_files(tmp_path, "street")
    for segment, entry in zip(result.segments, written):
        with Image.open(entry["mask"]) as mask:
            assert mask.mode == "L" and mask.size == (1200, 800) and int((np.asarray(mask) == 255).sum()) == entry["area"]
    info = task.info()
    assert info["architecture"] == "Mask2Former" and info["subtasks"] == ["panoptic", "instance", "semantic"]
    assert info["preprocessing"] == "96×128, bilinear"
    assert {o.name for o in task.offered_options()} == {
        "subtask", "threshold", "mask_threshold", "overlap_mask_area_threshold"}


def test_a_checkpoint_of_another_architecture_is_refused_by_name(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "vit", "architectures": ["ViTForImageClassification"]}))
    with pytest.raises(CheckpointError, match="image-segmentation here needs one of: mask2former, segformer"):
        ImageSegmentation.load(tmp_path, device="cpu")


def test_a_mask2former_of_another_backbone_is_refused(tmp_path):
    from transformers import Mask2FormerConfig

    Mask2FormerConfig(backbone_config={"model_type": "resnet"}, num_labels=3).save_pretrained(tmp_path)
    with pytest.raises(CheckpointError, match="only Swin backbones"):
        ImageSegmentation.load(tmp_path, device="cpu")
