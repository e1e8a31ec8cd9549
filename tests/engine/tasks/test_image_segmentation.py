"""The image-segmentation task against transformers on tiny SegFormer checkpoints saved with
their PIL image processor: pre-processing bit for bit, `post_process_semantic_segmentation`'s
class map exactly, and the pipeline's segments (labels, masks, areas, boxes) on photos of
several shapes and modes."""

import io
import json
import threading
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import SegformerImageProcessorPil, pipeline
from transformers.image_utils import load_image as their_load_image

from engine import image as imaging
from engine import image_device, tasks
from engine import image_processing as processing
from engine.errors import Cancelled, CheckpointError, InputError
from engine.tasks import segments as post
from engine.tasks import class_map as class_map_module
from engine.tasks.class_map import class_map
from engine.tasks.base import Hooks
from engine.tasks.image_segmentation import ImageSegmentation
from tests.engine.image_samples import write_samples
from tests.engine.models.tiny_segformer import save_tiny_segformer

IMAGES = ("rgb_640x480.jpg", "rgba_480x640.png", "grey_500x300.png", "palette_520x360.gif",
          "cmyk_640x480.jpg", "grey16_600x400.png", "exif_rotated_480x640.jpg", "one_pixel.png")
# the two tiny encoders, each with its processor's size (one not square)
CHECKPOINTS = {"b0-like": {"height": 64, "width": 64}, "other": {"height": 48, "width": 80}}
# every mode and shape on the first; three shapes on the second
CASES = [("b0-like", name) for name in IMAGES] + [
    ("other", name) for name in ("rgb_640x480.jpg", "exif_rotated_480x640.jpg", "one_pixel.png")]


@pytest.fixture(scope="module")
def samples(tmp_path_factory):
    return write_samples(tmp_path_factory.mktemp("images"))


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """shape -> (folder, ours, transformers' pipeline) on the same saved files."""
    made = {}
    for shape, size in CHECKPOINTS.items():
        folder = tmp_path_factory.mktemp(shape)
        # seed 1 gives maps with several classes on the sample photos
        save_tiny_segformer(folder, shape=shape, seed=1, processor={"size": size})
        reference = pipeline("image-segmentation", model=str(folder),
                             image_processor=SegformerImageProcessorPil.from_pretrained(folder))
        made[shape] = folder, ImageSegmentation.load(folder, device="cpu"), reference
    return made


@pytest.fixture(scope="module")
def checkpoint(checkpoints):
    """The b0-like one, for what does not depend on the encoder's shape."""
    return checkpoints["b0-like"]


def oracle(folder, reference, path):
    """transformers' pipeline output for `path`, and its upsampled (C, H, W) class scores."""
    processor = reference.image_processor
    picture, given = their_load_image(str(path)), str(path)
    with Image.open(path) as raw:
        if "16" in raw.mode:  # transformers clips 16-bit grey to white: give it our 8 bits
            picture = given = imaging.load_image(path)
    with torch.no_grad():
        outputs = reference.model(**processor(images=[picture], return_tensors="pt"))
    scores = processor.post_process_semantic_segmentation(
        outputs, target_sizes=[(picture.height, picture.width)], return_segmentation_scores=True
    )[0]["segmentation_scores"]
    return reference(given), scores


def assert_same_segments(result, expected, scores):
    """Same labels in the same order, no score, masks equal to the pipeline's, and each
    segment's area and box those of its mask. A pixel where the oracle's two best classes are
    within 1e-5 may go either way: the float32 rounding of the logits decides it (one pixel
    of 300 000, 1e-7 apart, in these tests)."""
    best_two = scores.topk(2, dim=0).values
    undecided = (best_two[0] - best_two[1] < 1e-5).numpy()
    assert [s.label for s in result.segments] == [e["label"] for e in expected]
    assert all(s.score is None and e["score"] is None for s, e in zip(result.segments, expected))
    for segment, entry in zip(result.segments, expected):
        theirs = np.asarray(entry["mask"]) == 255
        ours = result.mask(segment)
        assert not (ours != theirs)[~undecided].any(), segment.label
        mask = result.mask_image(segment)
        assert segment.area == int(np.count_nonzero(ours)) and segment.bbox == mask.getbbox()
        if np.array_equal(ours, theirs):
            assert np.array_equal(np.asarray(mask), np.asarray(entry["mask"]))


# ------------------------------------------------------------------------------ pre-processing


@pytest.mark.parametrize(
    "saved",
    [
        {"size": 512, "resample": 2, "image_mean": [0.485, 0.456, 0.406], "image_std": [0.229, 0.224, 0.225],
         "do_reduce_labels": True},  # nvidia/segformer-b0-finetuned-ade-512-512's form
        {"size": {"height": 40, "width": 72}, "resample": 3},
        {"do_resize": False, "do_normalize": False},
        {},  # the processor class's own defaults
    ],
)
def test_preprocessing_equals_segformer_processor(tmp_path, samples, saved):
    (tmp_path / "preprocessor_config.json").write_text(json.dumps(saved))
    from engine.tasks.vision_common import FAMILIES, read_processor

    ours = read_processor(tmp_path, FAMILIES["segformer"])
    theirs = SegformerImageProcessorPil(**saved)
    for name in ("rgb_640x480.jpg", "rgba_480x640.png", "grey_500x300.png", "one_pixel.png"):
        expected = theirs(images=[their_load_image(str(samples[name]))], return_tensors="pt")["pixel_values"]
        pixels = processing.preprocess(imaging.load_image(samples[name]), ours)
        torch.testing.assert_close(pixels, expected, rtol=0, atol=0, msg=name)


# ----------------------------------------------------------------------------- post-processing


def their_semantic_map(logits, size):
    outputs = SimpleNamespace(logits=logits[None])
    return SegformerImageProcessorPil().post_process_semantic_segmentation(outputs, target_sizes=[size])[0]


@pytest.mark.parametrize(
    "classes, grid, size",
    [(150, (32, 32), (120, 160)), (6, (16, 24), (300, 500)), (5, (16, 16), (9, 7)), (4, (5, 3), (1, 1)),
     (3, (1, 1), (20, 30)), (19, (2, 40), (33, 1000))],
)
def test_class_map_equals_post_process_semantic_segmentation(classes, grid, size):
    torch.manual_seed(classes)
    # smooth blobs, as real score maps are, plus noise
    logits = torch.nn.functional.interpolate(torch.randn(1, classes, 4, 4) * 3, size=grid, mode="bilinear")[0]
    logits += 0.3 * torch.randn(classes, *grid)
    expected = their_semantic_map(logits, size)
    assert torch.equal(class_map(logits, size).long(), expected)


def test_ties_go_to_the_lower_class_as_in_transformers(monkeypatch):
    torch.manual_seed(0)
    logits = torch.randn(5, 8, 8)
    logits[3] = logits[1]  # classes 1 and 3 tie everywhere
    logits[4] = logits[1]
    settled = []
    settle = class_map_module._settle
    monkeypatch.setattr(class_map_module, "_settle", lambda *args: settled.append(1) or settle(*args))
    expected = their_semantic_map(logits, (40, 30))
    ours = class_map(logits, (40, 30))
    assert torch.equal(ours.long(), expected) and 1 in ours and 3 not in ours
    assert settled  # exact ties are close calls, settled by F.interpolate itself


def test_channels_last_logits_as_the_model_gives_them():
    torch.manual_seed(1)
    logits = torch.nn.functional.interpolate(torch.randn(1, 7, 5, 5), size=(20, 30), mode="bilinear")[0]
    channels_last = logits.permute(1, 2, 0).contiguous().permute(2, 0, 1)
    assert torch.equal(class_map(channels_last, (97, 131)).long(), their_semantic_map(logits, (97, 131)))


def test_a_class_that_wins_only_between_grid_points_is_found():
    # class 2 wins nowhere on the grid but between its two points; class 3 never comes close
    logits = torch.tensor([[[10.0, -10.0]], [[-10.0, 10.0]], [[3.0, 3.0]], [[-20.0, -20.0]]])
    classes = class_map(logits, (1, 8))
    assert 2 in classes and torch.equal(classes.long(), their_semantic_map(logits, (1, 8)))


def test_extents_give_areas_and_exclusive_boxes():
    ids = torch.zeros(6, 9, dtype=torch.int32)
    ids[1:4, 2:7] = 3
    ids[5, 8] = 1
    areas, boxes = post.extents(ids)
    assert areas.tolist() == [54 - 16, 1, 0, 15]
    assert boxes.tolist() == [[0, 0, 9, 6], [8, 5, 9, 6], [0, 0, 0, 0], [2, 1, 7, 4]]


# ----------------------------------------------------------------------------------- the task


@pytest.mark.parametrize("shape, name", CASES)
def test_segments_equal_the_pipeline(checkpoints, samples, shape, name):
    folder, task, reference = checkpoints[shape]
    result = task.run(samples[name])
    assert_same_segments(result, *oracle(folder, reference, samples[name]))
    assert result.segmentation.shape == (result.image_size[1], result.image_size[0])
    if name == "rgb_640x480.jpg":  # a map of one class would compare little
        assert len(result.segments) >= 4


@pytest.mark.parametrize("shape", CHECKPOINTS)
def test_the_result_keeps_the_logits_and_score_maps(checkpoints, samples, shape):
    folder, task, reference = checkpoints[shape]
    result = task.run(samples["rgb_640x480.jpg"])
    size = CHECKPOINTS[shape]
    assert result.model_input_size == (size["width"], size["height"])
    pixels = SegformerImageProcessorPil.from_pretrained(folder)(
        images=[their_load_image(str(samples["rgb_640x480.jpg"]))], return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        expected = reference.model(pixel_values=pixels).logits[0]
    torch.testing.assert_close(result.outputs["logits"], expected, rtol=1e-5, atol=1e-5)
    maps = result.score_maps()
    assert maps.shape == (6, size["height"] // 4, size["width"] // 4)
    torch.testing.assert_close(maps.sum(0), torch.ones(maps.shape[1:]))
    assert set(result.timings) == {"preprocess", "model", "postprocess"}


def test_other_options_rerun_only_the_postprocessing(checkpoint, samples, monkeypatch):
    _, task, _ = checkpoint
    result = task.run(samples["rgb_640x480.jpg"])
    assert result.subtask == "semantic"
    monkeypatch.setattr(task.model, "forward", lambda *args: pytest.fail("the model ran again"))
    moved = result.with_options(threshold=0.2, mask_threshold=0.7)
    assert moved.to_json() == result.to_json() and moved.options["threshold"] == 0.2
    for bad in ({"subtask": "panoptic"}, {"threshold": 1.5}, {"overlap_mask_area_threshold": -1}):
        with pytest.raises(InputError):
            result.with_options(**bad)


def test_json_has_the_pipeline_keys_and_no_mask(checkpoint, samples):
    _, task, _ = checkpoint
    printed = task.run(samples["grey_500x300.png"]).to_json()
    assert printed and all(set(entry) == {"score", "label", "area", "bbox"} for entry in printed)
    assert sum(entry["area"] for entry in printed) == 500 * 300
    json.dumps(printed)


def test_write_files_gives_the_masks_paths(checkpoint, samples, tmp_path):
    _, task, _ = checkpoint
    result = task.run(samples["rgb_640x480.jpg"])
    written = result.write_files(tmp_path, "street")
    for segment, entry in zip(result.segments, written):
        assert entry["mask"].startswith(str(tmp_path / "street-")) and entry["mask"].endswith(".png")
        with Image.open(entry["mask"]) as mask:
            assert mask.mode == "L" and mask.size == (640, 480)
            assert np.array_equal(np.asarray(mask), np.asarray(result.mask_image(segment)))


def test_every_input_kind_gives_the_same_answer(checkpoint, samples):
    _, task, _ = checkpoint
    path = samples["rgb_640x480.jpg"]
    expected = task.run(path).to_json()
    picture = Image.open(path)
    for source in (str(path), path.read_bytes(), picture, np.asarray(picture.convert("RGB"))):
        assert task.run(source).to_json() == expected


def test_the_device_path_agrees_with_the_pil_path(checkpoint, samples):
    folder, task, _ = checkpoint
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(image_device.ENVIRONMENT_VARIABLE, "device")
        on_device = ImageSegmentation.load(folder, device="cpu")
    assert on_device.preprocess_on_device and not task.preprocess_on_device
    for name in ("rgb_640x480.jpg", "grey_500x300.png"):
        pil, device = task.run(samples[name]), on_device.run(samples[name])
        torch.testing.assert_close(device.outputs["logits"], pil.outputs["logits"], rtol=0, atol=0.05)
        agree = (device.segmentation == pil.segmentation).float().mean()
        assert agree > 0.98, name  # a grey level moves only class borders


def test_half_precision_runs(checkpoint, samples):
    folder, task, _ = checkpoint
    half = ImageSegmentation.load(folder, device="cpu", dtype="bf16")
    result = half.run(samples["rgb_640x480.jpg"])
    assert result.outputs["logits"].dtype == torch.float32
    assert result.segments and sum(s.area for s in result.segments) == 640 * 480


def test_info_and_offered_options(checkpoint):
    _, task, _ = checkpoint
    info = task.info()
    assert info["architecture"] == "SegFormer" and info["labels"] == 6 and info["subtasks"] == ["semantic"]
    assert info["parameters"] > 0 and info["preprocessing"].endswith("bilinear")
    assert task.offered_options() == ()  # semantic only: no subtask to choose, no threshold to move


def test_bad_input_and_options_are_clear_errors(checkpoint, samples, tmp_path):
    _, task, _ = checkpoint
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    buffer = io.BytesIO()
    Image.open(samples["rgb_640x480.jpg"]).save(buffer, "JPEG")
    truncated = tmp_path / "cut.jpg"
    truncated.write_bytes(buffer.getvalue()[:300])
    for bad in (empty, text, truncated, tmp_path / "missing.jpg", 12):
        with pytest.raises(InputError):
            task.run(bad)
    with pytest.raises(InputError, match="semantic segmentation only, not instance"):
        task.run(samples["one_pixel.png"], subtask="instance")
    with pytest.raises(InputError, match="must be one of"):
        task.run(samples["one_pixel.png"], subtask="everything")
    with pytest.raises(InputError, match="--mask-threshold must lie between 0 and 1"):
        task.run(samples["one_pixel.png"], mask_threshold=2.0)
    assert len(task.run(samples["one_pixel.png"]).segments) == 1  # 1×1 works, as in the pipeline


def test_a_set_cancel_flag_stops_the_run(checkpoint, samples):
    _, task, _ = checkpoint
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Cancelled):
        task.run(samples["one_pixel.png"], hooks=Hooks(cancel=cancel))


def test_other_architectures_are_refused_by_name(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "vit", "architectures": ["ViTForImageClassification"]}))
    with pytest.raises(CheckpointError, match="image-segmentation here needs one of: mask2former, segformer"):
        ImageSegmentation.load(tmp_path, device="cpu")


def test_the_catalogue_offers_the_task():
    assert tasks.get("image-segmentation") is ImageSegmentation
    assert ImageSegmentation.resolve_options({}) == {
        "subtask": "default", "threshold": 0.9, "mask_threshold": 0.5, "overlap_mask_area_threshold": 0.5,
        "explain": False}
