"""Image pre-processing on the model's device (engine.image_device), forced onto the CPU and
compared with the PIL path (itself bit-exact with transformers): the same shapes, crops,
padding and pixel masks, pixel values within a grey level or two, and the same answers from
the vision tasks on tiny checkpoints.

Measured here on the sample photos: at most 1 grey level apart, in the interior and at the
borders alike, and 98.7 % to 100 % of values identical (ViT 224, ConvNeXT 224 crop, DETR 800,
Depth Anything 518 in multiples of 14).
"""

import numpy as np
import pytest
import torch
from PIL import Image

from engine import image as imaging
from engine import image_processing as processing
from engine import image_device
from engine.errors import InputError
from engine.tasks import object_detection as od
from engine.tasks.image_classification import ImageClassification
from engine.tasks.vision_common import FAMILIES
from tests.engine.image_samples import photo, write_samples
from tests.engine.models.tiny_detr import save_tiny_detr

CPU = torch.device("cpu")
IMAGENET_MEAN, IMAGENET_STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]

# The Hub checkpoints' own preprocessor_config.json, read as the tasks read them.
CONFIGS = {
    "vit": processing.ImageProcessorConfig.from_dict(  # google/vit-base-patch16-224
        {"do_normalize": True, "do_resize": True, "image_mean": [0.5] * 3, "image_std": [0.5] * 3,
         "resample": 2, "size": 224},
        defaults=FAMILIES["vit"].processor.defaults,
    ),
    "convnext": processing.ImageProcessorConfig.from_dict(  # facebook/convnext-tiny-224
        {"crop_pct": 0.875, "do_normalize": True, "do_resize": True, "image_mean": IMAGENET_MEAN,
         "image_std": IMAGENET_STD, "resample": 3, "size": 224},
        defaults=FAMILIES["convnext"].processor.defaults,
        default_to_square=False,
    ),
    "detr": processing.ImageProcessorConfig.from_dict(  # facebook/detr-resnet-50
        {"do_normalize": True, "do_resize": True, "image_mean": IMAGENET_MEAN, "image_std": IMAGENET_STD,
         "max_size": 1333, "size": 800},
        defaults=FAMILIES["detr"].processor.defaults,
        default_to_square=False,
    ),
    "depth_anything": processing.ImageProcessorConfig.from_dict(  # depth-anything/Depth-Anything-V2-Small-hf
        {"do_normalize": True, "do_pad": False, "do_rescale": True, "do_resize": True, "ensure_multiple_of": 14,
         "image_mean": IMAGENET_MEAN, "image_std": IMAGENET_STD, "keep_aspect_ratio": True, "resample": 3,
         "rescale_factor": 0.00392156862745098, "size": {"height": 518, "width": 518}, "size_divisor": None},
        defaults=FAMILIES["depth_anything"].processor.defaults,
    ),
}
SAMPLES = ("rgb_640x480.jpg", "rgba_480x640.png", "grey_500x300.png", "palette_520x360.gif",
           "exif_rotated_480x640.jpg", "one_pixel.png")
# what the tests allow: the largest gap in grey levels, and the smallest share of identical values
MAX_LEVELS, MIN_IDENTICAL = 2.0, 0.95


@pytest.fixture(scope="module")
def samples(tmp_path_factory):
    return write_samples(tmp_path_factory.mktemp("images"))


@pytest.fixture(scope="module")
def pictures(samples):
    return {name: imaging.load_image(samples[name]) for name in SAMPLES}


def grey_levels(pixels: torch.Tensor, config: processing.ImageProcessorConfig) -> torch.Tensor:
    """Undo normalisation and rescaling: (1, 3, H, W) pixel values back to 0..255, float64."""
    mean = torch.tensor(config.image_mean, dtype=torch.float64).view(1, 3, 1, 1)
    std = torch.tensor(config.image_std, dtype=torch.float64).view(1, 3, 1, 1)
    return (pixels.double() * std + mean) / config.rescale_factor


def compare(config, picture):
    """(PIL path's tensor, device path's tensor, |difference| in grey levels)."""
    expected = processing.preprocess(picture, config)
    actual = image_device.preprocess(picture, config, CPU)
    assert actual.shape == expected.shape and actual.dtype == torch.float32
    return expected, actual, (grey_levels(actual, config) - grey_levels(expected, config)).abs()


# ------------------------------------------------------------------------------ pixel values


@pytest.mark.parametrize("name", SAMPLES)
@pytest.mark.parametrize("kind", CONFIGS)
def test_the_hub_processors_within_a_grey_level_or_two(kind, name, pictures):
    _, _, gap = compare(CONFIGS[kind], pictures[name])
    interior = gap[..., 2:-2, 2:-2]
    assert interior.max() <= MAX_LEVELS + 1e-3
    assert gap.max() <= MAX_LEVELS + 1e-3  # the borders too: torch renormalises cut kernels as PIL does
    assert (gap < 1e-3).double().mean() >= MIN_IDENTICAL


@pytest.mark.parametrize("resample", [processing.BILINEAR, processing.BICUBIC])
@pytest.mark.parametrize("size", [(37, 53), (97, 131), (800, 1066)])
def test_hard_edges_up_and_down(resample, size):
    """Noise and a one-pixel checkerboard, shrunk and enlarged: bicubic overshoots there, and
    PIL clips between its two passes, which this path must do too to stay close."""
    rng = np.random.default_rng(size[0])
    checker = (np.indices((120, 160)).sum(0) % 2 * 255).astype(np.uint8)
    config = processing.ImageProcessorConfig(size=processing.Size(height=size[0], width=size[1]), resample=resample)
    for array in (rng.integers(0, 256, (120, 160, 3), dtype=np.uint8), np.dstack([checker] * 3)):
        _, _, gap = compare(config, Image.fromarray(array))
        assert gap.max() <= MAX_LEVELS + 1e-3
        assert (gap < 1e-3).double().mean() >= 0.6  # ties at 127.5 fall either way on a checkerboard


@pytest.mark.parametrize("size", [(600, 800), (224, 224), (173, 1001), (1, 1)])
def test_nearest_picks_the_pixels_pil_picks(size):
    """PIL's running sum lands below whole numbers where a direct product would not
    (480 -> 600 reads row 5 for row 7, not 6): the same rows and columns, so exact."""
    picture = Image.fromarray(photo(480, 640, seed=7))
    config = CONFIGS["vit"].replace(size=processing.Size(height=size[0], width=size[1]), resample=processing.NEAREST)
    expected, actual, _ = compare(config, picture)
    torch.testing.assert_close(actual, expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize("resample", [processing.LANCZOS, processing.BOX, processing.HAMMING])
def test_filters_torch_lacks_are_resized_by_pil_before_the_upload(resample, pictures):
    config = CONFIGS["convnext"].replace(resample=resample)
    expected, actual, _ = compare(config, pictures["rgb_640x480.jpg"])
    torch.testing.assert_close(actual, expected, rtol=0, atol=1e-6)


def test_without_resizing_crop_and_normalisation_are_exact(pictures):
    """A crop larger than the picture is filled with black, where PIL's crop puts it; rescale
    and normalise fused into one multiply-add stay within float32 rounding."""
    config = CONFIGS["vit"].replace(do_resize=False, do_center_crop=True,
                                    crop_size=processing.Size(height=400, width=560))
    for name in ("grey_500x300.png", "rgb_640x480.jpg", "one_pixel.png"):
        expected, actual, _ = compare(config, pictures[name])
        torch.testing.assert_close(actual, expected, rtol=0, atol=1e-6)
    unnormalised = config.replace(do_normalize=False, do_rescale=False)
    expected, actual, _ = compare(unnormalised, pictures["grey_500x300.png"])
    assert torch.equal(actual, expected)


def test_the_models_dtype_comes_out(pictures):
    config = CONFIGS["vit"]
    values = image_device.preprocess(pictures["rgb_640x480.jpg"], config, CPU, torch.bfloat16)
    assert values.dtype == torch.bfloat16 and values.is_contiguous()
    reference = processing.preprocess(pictures["rgb_640x480.jpg"], config)
    torch.testing.assert_close(values.float(), reference, rtol=0, atol=0.02)


def test_upload_is_the_decoded_uint8_picture(pictures):
    picture = pictures["rgba_480x640.png"]
    uploaded = image_device.upload(picture, CPU)
    assert uploaded.dtype == torch.uint8 and uploaded.shape == (640, 480, 3)
    assert np.array_equal(uploaded.numpy(), np.asarray(picture))


def test_non_rgb_input_is_refused():
    with pytest.raises(InputError, match="RGB"):
        image_device.preprocess(Image.new("L", (8, 8)), CONFIGS["vit"], CPU)


def test_a_device_without_the_kernel_resizes_on_the_cpu(monkeypatch, pictures):
    """MPS before torch 2.8 has no antialiased bicubic: that one step moves to the CPU."""
    real = torch.nn.functional.interpolate
    calls = []

    def missing_once(*args, **kwargs):
        calls.append(args[0].device)
        if len(calls) == 1:
            raise NotImplementedError("no kernel here")
        return real(*args, **kwargs)

    monkeypatch.setattr(image_device.F, "interpolate", missing_once)
    expected = processing.preprocess(pictures["rgb_640x480.jpg"], CONFIGS["convnext"])
    actual = image_device.preprocess(pictures["rgb_640x480.jpg"], CONFIGS["convnext"], CPU)
    assert len(calls) == 3  # width (refused, then retried), height
    gap = grey_levels(actual, CONFIGS["convnext"]) - grey_levels(expected, CONFIGS["convnext"])
    assert gap.abs().max() <= MAX_LEVELS + 1e-3


# ------------------------------------------------------------------------ DETR: pad and mask


def test_detr_batch_pads_and_masks_as_the_pil_path(pictures):
    chosen = [pictures[n] for n in ("rgb_640x480.jpg", "rgba_480x640.png", "grey_500x300.png")]
    expected, expected_mask = od.preprocess(chosen, CONFIGS["detr"])
    actual, mask = od.preprocess(chosen, CONFIGS["detr"], device=CPU)
    assert actual.shape == expected.shape == (3, 3, 1066, 1333)
    assert torch.equal(mask, expected_mask) and mask.dtype == torch.int64
    assert torch.all(actual[mask[:, None].expand_as(actual) == 0] == 0)  # padding stays zero
    for index in range(3):
        gap = (grey_levels(actual[index : index + 1], CONFIGS["detr"])
               - grey_levels(expected[index : index + 1], CONFIGS["detr"])).abs()
        assert gap[..., mask[index].bool()].max() <= MAX_LEVELS + 1e-3


def test_detr_without_padding_gives_a_full_mask(pictures):
    config = CONFIGS["detr"].replace(do_pad=False)
    values, mask = od.preprocess([pictures["rgb_640x480.jpg"]], config, device=CPU)
    assert values.shape == (1, 3, 800, 1066) and torch.equal(mask, torch.ones(1, 800, 1066, dtype=torch.int64))
    with pytest.raises(InputError, match="padding"):
        od.preprocess([pictures["rgb_640x480.jpg"], pictures["grey_500x300.png"]], config, device=CPU)


# ---------------------------------------------------------------------- choosing the path


@pytest.mark.parametrize(
    ("setting", "device", "expected"),
    [
        (None, "cpu", False), (None, "cuda", True), (None, "mps", True), ("auto", "cuda", True),
        ("device", "cpu", True), ("DEVICE", "cpu", True), ("pil", "cuda", False), ("pil", "mps", False),
    ],
)
def test_the_path_is_chosen_from_the_device_or_the_environment(monkeypatch, setting, device, expected):
    if setting is None:
        monkeypatch.delenv(image_device.ENVIRONMENT_VARIABLE, raising=False)
    else:
        monkeypatch.setenv(image_device.ENVIRONMENT_VARIABLE, setting)
    assert image_device.use_device_path(torch.device(device)) is expected


def test_an_unknown_setting_is_a_clear_error(monkeypatch):
    monkeypatch.setenv(image_device.ENVIRONMENT_VARIABLE, "gpu")
    with pytest.raises(InputError, match="auto, device or pil"):
        image_device.use_device_path(CPU)


# ------------------------------------------------------------------- the tasks, both paths


def save_vit(folder):
    from transformers import ViTConfig, ViTForImageClassification

    torch.manual_seed(0)
    config = ViTConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
                       image_size=32, patch_size=8, id2label={i: f"label{i}" for i in range(7)})
    ViTForImageClassification(config).save_pretrained(folder)
    (folder / "preprocessor_config.json").write_text('{"size": {"height": 32, "width": 32}, "resample": 2}')
    return folder


def save_convnext(folder):
    from transformers import ConvNextConfig, ConvNextForImageClassification

    torch.manual_seed(0)
    config = ConvNextConfig(hidden_sizes=[8, 16, 24, 32], depths=[1, 1, 2, 1],
                            id2label={i: f"label{i}" for i in range(7)})
    ConvNextForImageClassification(config).save_pretrained(folder)
    (folder / "preprocessor_config.json").write_text('{"size": 64, "crop_pct": 0.875, "resample": 3}')
    return folder


@pytest.fixture(scope="module", params=["vit", "convnext"])
def classifier(request, tmp_path_factory):
    """A tiny classifier loaded with the device path forced on, as on a GPU."""
    folder = tmp_path_factory.mktemp(request.param)
    (save_vit if request.param == "vit" else save_convnext)(folder)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(image_device.ENVIRONMENT_VARIABLE, "device")
        return ImageClassification.load(folder, device="cpu")


def run_both_ways(task, source, **options):
    """(the PIL path's result, the device path's result) from one loaded task."""
    task.preprocess_on_device = False
    try:
        pil = task.run(source, **options)
    finally:
        task.preprocess_on_device = True
    return pil, task.run(source, **options)


def test_the_environment_turns_the_device_path_on_at_load(classifier):
    assert classifier.preprocess_on_device is True


@pytest.mark.parametrize("name", SAMPLES)
def test_classifiers_give_the_same_top_label(classifier, samples, name):
    pil, device = run_both_ways(classifier, samples[name], top_k=7)
    assert device.labels[0]["label"] == pil.labels[0]["label"]
    assert device.image_size == pil.image_size
    np.testing.assert_allclose([e["score"] for e in device.labels],
                               [e["score"] for e in pil.labels], rtol=0, atol=1e-3)


@pytest.fixture(scope="module")
def detector(tmp_path_factory):
    folder = tmp_path_factory.mktemp("detr")
    save_tiny_detr(folder, num_labels=4)
    (folder / "preprocessor_config.json").write_text('{"size": 800, "max_size": 1333}')
    task = od.ObjectDetection.load(folder, device="cpu")
    assert task.preprocess_on_device is False  # the PIL path is the CPU's default
    return task


@pytest.mark.parametrize("name", ["rgb_640x480.jpg", "rgba_480x640.png", "grey_500x300.png"])
def test_detr_boxes_agree_between_the_paths(detector, samples, name):
    pil, device = run_both_ways(detector, samples[name], threshold=0.0)
    assert device.image_size == pil.image_size
    assert device.model_input_size == pil.model_input_size
    assert [d.label for d in device.candidates] == [d.label for d in pil.candidates]
    boxes = np.array([d.box for d in device.candidates])
    expected = np.array([d.box for d in pil.candidates])
    # the same original size scales both; a grey level here and there moves a box by far
    # less than a pixel (0.004 px measured)
    np.testing.assert_allclose(boxes, expected, rtol=0, atol=0.25)
    np.testing.assert_allclose([d.score for d in device.candidates], [d.score for d in pil.candidates], atol=1e-3)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_on_cuda_the_result_matches_the_cpu(pictures):
    cuda = torch.device("cuda")
    for kind, config in CONFIGS.items():
        on_cpu = image_device.preprocess(pictures["rgb_640x480.jpg"], config, CPU)
        on_gpu = image_device.preprocess(pictures["rgb_640x480.jpg"], config, cuda).cpu()
        gap = (grey_levels(on_gpu, config) - grey_levels(on_cpu, config)).abs()
        assert gap.max() <= MAX_LEVELS + 1e-3, kind
