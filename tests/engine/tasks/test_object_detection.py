"""Object detection against transformers: DETR pre-processing (PIL backend) on real-size
images of many modes, post-processing, and the whole pipeline, on a tiny random DETR."""

import io
import json
import threading

import numpy as np
import pytest
import torch
from PIL import Image

from engine import image as imaging
from engine import image_processing as processing
from engine.errors import Cancelled, InputError
from engine.tasks import object_detection as od
from engine.tasks.vision_common import FAMILIES
from engine.tasks.base import Hooks
from tests.engine.image_samples import transformers_input
from tests.engine.models.tiny_detr import save_tiny_detr


def picture(width, height, mode, seed):
    """A smooth gradient with noise on top, so resizing has detail to get right."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([x * 255 / width, y * 255 / height, (x + y) * 127 / (width + height)], -1)
    rgb = np.clip(base + rng.normal(0, 25, base.shape), 0, 255).astype(np.uint8)
    image = Image.fromarray(rgb)
    if mode == "RGBA":
        alpha = Image.fromarray(rng.integers(0, 256, (height, width), dtype=np.uint8))
        image = Image.merge("RGBA", (*image.split(), alpha))
    elif mode == "P":
        image = image.quantize(64)
    elif mode == "I;16":
        image = Image.fromarray((rgb[..., 0].astype(np.uint16) * 3).astype(np.uint16))
    elif mode != "RGB":
        image = image.convert(mode)
    return image


# (file name, width, height, mode, format): landscape, portrait past the 1333 cap, square,
# tiny, and every mode a user may drop in
IMAGES = [
    ("photo.jpg", 640, 480, "RGB", "JPEG"),
    ("alpha.png", 500, 375, "RGBA", "PNG"),
    ("grey_tall.png", 300, 1000, "L", "PNG"),
    ("palette.png", 1024, 683, "P", "PNG"),
    ("cmyk.jpg", 400, 400, "CMYK", "JPEG"),
    ("deep.png", 320, 240, "I;16", "PNG"),
    ("dot.png", 1, 1, "RGB", "PNG"),
]


@pytest.fixture(scope="module")
def image_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("images")
    paths = []
    for seed, (name, width, height, mode, fmt) in enumerate(IMAGES):
        picture(width, height, mode, seed).save(folder / name, fmt)
        paths.append(folder / name)
    # a phone photo stored sideways: EXIF orientation 6 turns 360×240 pixels into 240×360
    exif = Image.Exif()
    exif[0x0112] = 6
    picture(360, 240, "RGB", 99).save(folder / "rotated.jpg", "JPEG", exif=exif)
    paths.append(folder / "rotated.jpg")
    return paths


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    from transformers.models.detr.image_processing_pil_detr import DetrImageProcessorPil

    folder = tmp_path_factory.mktemp("detr")
    reference = save_tiny_detr(folder, num_labels=4)
    DetrImageProcessorPil().save_pretrained(folder)
    return folder, reference


@pytest.fixture(scope="module")
def task(checkpoint):
    return od.ObjectDetection.load(checkpoint[0], device="cpu")


def theirs_processor(**kwargs):
    from transformers.models.detr.image_processing_pil_detr import DetrImageProcessorPil

    return DetrImageProcessorPil(**kwargs)


def test_preprocessing_equals_detr_processor_one_image_at_a_time(image_files, task):
    from transformers.image_utils import load_image

    processor = theirs_processor()
    for path in image_files:
        expected = processor(images=[load_image(transformers_input(path))], return_tensors="pt")
        pixels, mask = od.preprocess([imaging.load_image(path)], task.processor)
        assert pixels.shape == expected["pixel_values"].shape, path.name
        torch.testing.assert_close(pixels, expected["pixel_values"], rtol=0, atol=0, msg=path.name)
        assert torch.equal(mask, expected["pixel_mask"]), path.name
    # 480×640 -> 800×1066, and the tall grey one is capped by its long side
    assert od.preprocess([imaging.load_image(image_files[0])], task.processor)[0].shape[-2:] == (800, 1066)
    assert od.preprocess([imaging.load_image(image_files[2])], task.processor)[0].shape[-2:] == (1333, 400)


def test_padded_batch_and_mask_equal_detr_processor(image_files, task):
    from transformers.image_utils import load_image

    chosen = [image_files[0], image_files[2], image_files[7]]  # landscape, tall, rotated
    expected = theirs_processor()(images=[load_image(str(p)) for p in chosen], return_tensors="pt")
    pixels, mask = od.preprocess([imaging.load_image(p) for p in chosen], task.processor)
    torch.testing.assert_close(pixels, expected["pixel_values"], rtol=0, atol=0)
    assert torch.equal(mask, expected["pixel_mask"])
    assert mask.dtype == torch.int64 and 0 < int(mask[1].sum()) < mask[1].numel()


@pytest.mark.parametrize(
    "saved",
    [
        {"size": 800, "max_size": 1333},  # the Hub's facebook/detr-resnet-50 form
        {"size": 800},  # an int alone: transformers still caps the long side at 1333
        {"size": {"shortest_edge": 512, "longest_edge": 700}, "resample": 3},
    ],
)
def test_processor_config_forms(tmp_path, image_files, saved):
    from transformers.image_utils import load_image

    (tmp_path / "preprocessor_config.json").write_text(json.dumps(saved))
    ours = processing.read_processor_config(tmp_path, defaults=FAMILIES["detr"].processor.defaults,
                                         default_to_square=False)
    expected = theirs_processor(**saved)(images=[load_image(str(image_files[2]))], return_tensors="pt")
    pixels, _ = od.preprocess([imaging.load_image(image_files[2])], ours)
    torch.testing.assert_close(pixels, expected["pixel_values"], rtol=0, atol=0)


def test_postprocessing_equals_post_process_object_detection():
    from transformers.models.detr.modeling_detr import DetrObjectDetectionOutput

    torch.manual_seed(0)
    logits = torch.randn(2, 30, 8) * 4
    boxes = torch.rand(2, 30, 4)
    sizes = [(480, 640), (1000, 300)]
    outputs = DetrObjectDetectionOutput(logits=logits, pred_boxes=boxes)
    for threshold in (0.0, 0.3, 0.5, 0.9):
        expected = theirs_processor().post_process_object_detection(
            outputs, threshold=threshold, target_sizes=torch.tensor(sizes, dtype=torch.int32)
        )
        scores, labels, corners = od.postprocess(logits, boxes, sizes)
        for b, want in enumerate(expected):
            keep = scores[b] > threshold
            assert torch.equal(scores[b][keep], want["scores"])
            assert torch.equal(labels[b][keep], want["labels"])
            assert torch.equal(corners[b][keep], want["boxes"])


def test_pipeline_output_is_the_same(checkpoint, task, image_files):
    from transformers import pipeline

    folder, reference = checkpoint
    detector = pipeline("object-detection", model=reference, image_processor=theirs_processor())
    for path in (image_files[0], image_files[2], image_files[7]):
        # a threshold between the queries' scores, so that some boxes pass and some do not
        scores = sorted(d.score for d in task.run(path).candidates)
        threshold = (scores[len(scores) // 2] + scores[len(scores) // 2 - 1]) / 2
        expected = detector(str(path), threshold=threshold)
        got = task.run(path, threshold=threshold).to_json()
        assert 0 < len(got) < len(scores)
        assert [(d["label"], d["box"]) for d in got] == [(d["label"], d["box"]) for d in expected]
        assert [d["score"] for d in got] == pytest.approx([d["score"] for d in expected], abs=1e-5)


def test_default_threshold_is_the_pipelines(checkpoint, task, image_files):
    from transformers import pipeline

    detector = pipeline("object-detection", model=checkpoint[1], image_processor=theirs_processor())
    expected = detector(str(image_files[0]))
    got = task.run(image_files[0]).to_json()
    assert [(d["label"], d["box"]) for d in got] == [(d["label"], d["box"]) for d in expected]
    assert task.run(image_files[0]).threshold == 0.5


def test_result_keeps_every_query_for_refiltering(task, image_files):
    result = task.run(image_files[0], threshold=0.9)
    assert len(result.candidates) == 12  # one per query
    assert result.detections == result.above(0.9)
    lower = result.above(0.2)
    assert len(lower) >= len(result.detections)
    assert all(d.score > 0.2 for d in lower)
    assert result.image_size == (640, 480) and result.model_input_size == (1066, 800)
    assert set(result.timings) == {"preprocess", "model"}
    box = result.candidates[0].to_json()["box"]
    assert set(box) == {"xmin", "ymin", "xmax", "ymax"}


def test_numpy_frames_bytes_and_pil_give_the_same_answer(task, image_files):
    path = image_files[0]
    from_path = task.run(path, threshold=0.0).to_json()
    with Image.open(path) as opened:
        frame = np.asarray(opened.convert("RGB"))
    assert task.run(frame, threshold=0.0).to_json() == from_path
    assert task.run(path.read_bytes(), threshold=0.0).to_json() == from_path
    assert task.run(Image.fromarray(frame), threshold=0.0).to_json() == from_path


def test_info_reports_the_model(task):
    facts = task.info()
    assert facts["model_type"] == "detr"
    assert (facts["hidden_size"], facts["encoder_layers"], facts["decoder_layers"]) == (32, 2, 2)
    assert facts["queries"] == 12 and facts["labels"] == ["thing0", "thing1", "thing2", "thing3"]
    assert facts["backbone"] == "ResNet 1-2-1-1 (bottleneck)"
    assert facts["parameters"] > 0 and facts["input_size"] == "short side 800, long side ≤ 1333"


def test_bad_input_and_options_are_clear_errors(task, tmp_path):
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    buffer = io.BytesIO()
    picture(64, 48, "RGB", 1).save(buffer, "JPEG")
    truncated = tmp_path / "cut.jpg"
    truncated.write_bytes(buffer.getvalue()[:200])
    for bad in (empty, text, truncated, tmp_path / "missing.jpg", 12):
        with pytest.raises(InputError):
            task.run(bad)
    for threshold in (-0.1, 1.5, "lots"):
        with pytest.raises(InputError, match="threshold"):
            task.run(empty, threshold=threshold)
    with pytest.raises(InputError, match="top_k"):
        task.run(empty, top_k=3)


def test_cancel_before_the_model(task, image_files):
    flag = threading.Event()
    flag.set()
    with pytest.raises(Cancelled):
        task.run(image_files[0], hooks=Hooks(cancel=flag))


def test_catalogue_and_task_facts():
    from engine import tasks

    assert "object-detection" in tasks.available()
    cls = tasks.get("object-detection")
    assert cls is od.ObjectDetection
    assert (cls.modality, cls.input_kind, cls.default_model) == ("vision", "image", "facebook/detr-resnet-50")
    assert cls.resolve_options({}) == {"threshold": 0.5, "explain": False}


def test_cli_prints_the_pipeline_json(checkpoint, image_files, capsys):
    from engine.cli import main

    code = main(["object-detection", str(image_files[0]), "--model", str(checkpoint[0]),
                 "--device", "cpu", "--threshold", "0"])
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    assert len(printed) == 12  # every query scores above 0
    assert set(printed[0]) == {"score", "label", "box"}



def test_output_dir_writes_the_picture_with_its_boxes(checkpoint, image_files, tmp_path, capsys):
    from engine.annotate import PALETTE, palette_index, rgb
    from engine.cli import main

    code = main(["object-detection", str(image_files[0]), "--model", str(checkpoint[0]), "--device", "cpu",
                 "--threshold", "0.3", "--output-dir", str(tmp_path / "out")])
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    path = tmp_path / "out" / f"{image_files[0].stem}-boxes.png"
    assert printed["image"] == str(path) and printed["detections"]
    with Image.open(image_files[0]) as original, Image.open(path) as drawn:
        assert drawn.size == original.size
        pixels, before = np.asarray(drawn.convert("RGB")), np.asarray(original.convert("RGB"))
    changed = (pixels != before).any(-1)
    assert 0 < changed.mean() < 0.5  # outlines and captions, not a repainted picture
    # each box's bottom edge, below the caption, is drawn in its class's colour
    result = od.ObjectDetection.load(checkpoint[0], device="cpu").run(image_files[0], threshold=0.3)
    for detection, entry in zip(result.detections, printed["detections"]):
        assert detection.to_json() == entry
        x0, _, x1, y1 = (int(v) for v in detection.box)
        middle, bottom = (max(x0, 0) + min(x1, pixels.shape[1] - 1)) // 2, min(max(y1, 0), pixels.shape[0] - 1)
        colours = {tuple(c) for c in pixels[max(bottom - 2, 0) : bottom + 3, middle].tolist()}
        assert rgb(PALETTE[palette_index(detection.label_id)]) in colours


# ---------------------------------------------------------------------------- inside the model


def test_explain_keeps_the_last_cross_and_encoder_attention_as_transformers_computes_them(checkpoint, task,
                                                                                         image_files):
    """The decoder's last cross-attention per query and head on the feature grid, the
    encoder's last self-attention averaged over heads, each query's no-object probability;
    with explain off the result is the same and nothing is kept."""
    from transformers import DetrForObjectDetection

    folder, _ = checkpoint
    path = image_files[0]
    plain = task.run(path, threshold=0.0)
    assert task.run(path, threshold=0.0, explain=False).internals == {}
    result = task.run(path, threshold=0.0, explain=True)
    assert [d.label for d in result.candidates] == [d.label for d in plain.candidates]
    np.testing.assert_allclose([d.score for d in result.candidates], [d.score for d in plain.candidates],
                               rtol=0, atol=1e-5)

    reference = DetrForObjectDetection.from_pretrained(folder, attn_implementation="eager").eval()
    inputs = theirs_processor()(images=[imaging.load_image(path)], return_tensors="pt")
    with torch.no_grad():
        out = reference(**inputs, output_attentions=True)
    inside = result.internals
    assert set(inside) == {"cross_attention", "encoder_attention", "no_object", "map_region"}
    width, height = result.model_input_size
    h, w = -(-height // od.STRIDE), -(-width // od.STRIDE)
    cross = out.cross_attentions[-1][0].transpose(0, 1).unflatten(-1, (h, w))  # (queries, heads, h, w)
    assert inside["cross_attention"].shape == (12, 4, h, w) and inside["cross_attention"].dtype == np.float16
    np.testing.assert_allclose(inside["cross_attention"], cross.numpy(), rtol=0, atol=1e-3)
    encoder = out.encoder_attentions[-1][0].mean(0)  # (h·w, h·w)
    np.testing.assert_allclose(inside["encoder_attention"], encoder.numpy(), rtol=0, atol=1e-3)
    np.testing.assert_allclose(inside["no_object"], out.logits[0].softmax(-1)[:, -1].numpy(), rtol=0, atol=1e-5)
    x1, y1 = inside["map_region"][2:]
    assert result.image_size[0] <= x1 < result.image_size[0] * (1 + od.STRIDE / width)
    assert result.image_size[1] <= y1 < result.image_size[1] * (1 + od.STRIDE / height)
