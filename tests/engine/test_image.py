"""engine.image against transformers: the same RGB pixels from files of every mode, the same
pixel tensors as its PIL image processors for every preprocessor_config.json variant, the
same size rules; and clear refusals for files that are not images or are too large."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import ConvNextImageProcessorPil, DetrImageProcessorPil, DPTImageProcessorPil, ViTImageProcessorPil
from transformers.models.dpt.image_processing_pil_dpt import get_resize_output_image_size as dpt_output_size
from transformers.image_transforms import get_resize_output_image_size, get_size_with_aspect_ratio
from transformers.image_utils import load_image as hf_load_image

from engine import image as img
from engine import image_processing as processing
from engine.errors import CheckpointError, InputError
from tests.engine.image_samples import SAMPLE_FILES, photo, transformers_input, write_huge_png, write_samples

IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]

# name -> (transformers' PIL processor class, preprocessor_config.json, how a bare int size reads)
PROCESSORS = {
    # The forms the Hub files of the default checkpoints use (4.x feature-extractor JSON).
    "vit-hub": (
        ViTImageProcessorPil,
        {"feature_extractor_type": "ViTFeatureExtractor", "do_normalize": True, "do_resize": True,
         "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5], "resample": 2, "size": 224},
        True,
    ),
    "convnext-hub": (
        ConvNextImageProcessorPil,
        {"feature_extractor_type": "ConvNextFeatureExtractor", "crop_pct": 0.875, "do_normalize": True,
         "do_resize": True, "image_mean": IMAGENET_MEAN, "image_std": IMAGENET_STD, "resample": 3, "size": 224},
        False,
    ),
    "detr-hub": (
        DetrImageProcessorPil,
        {"feature_extractor_type": "DetrFeatureExtractor", "format": "coco_detection", "do_normalize": True,
         "do_resize": True, "image_mean": IMAGENET_MEAN, "image_std": IMAGENET_STD, "max_size": 1333, "size": 800},
        False,
    ),
    "dpt-hub": (  # depth-anything/Depth-Anything-V2-*-hf
        DPTImageProcessorPil,
        {"image_processor_type": "DPTImageProcessor", "do_normalize": True, "do_pad": False, "do_rescale": True,
         "do_resize": True, "ensure_multiple_of": 14, "image_mean": IMAGENET_MEAN, "image_std": IMAGENET_STD,
         "keep_aspect_ratio": True, "resample": 3, "rescale_factor": 0.00392156862745098,
         "size": {"height": 518, "width": 518}, "size_divisor": None},
        True,
    ),
    # Other variants real checkpoints use.
    "dpt-warp-in-multiples": (
        DPTImageProcessorPil,
        {"size": 384, "ensure_multiple_of": 32, "keep_aspect_ratio": False, "resample": 2},
        True,
    ),
    "convnext-384-warp": (
        ConvNextImageProcessorPil,
        {"crop_pct": 0.875, "resample": 3, "size": {"shortest_edge": 384}, "image_mean": IMAGENET_MEAN,
         "image_std": IMAGENET_STD},
        False,
    ),
    "short-side-then-crop": (
        ViTImageProcessorPil,
        {"size": {"shortest_edge": 256}, "do_center_crop": True, "crop_size": 224, "resample": 3},
        True,
    ),
    "crop-larger-than-image": (
        ViTImageProcessorPil,
        {"size": {"height": 150, "width": 201}, "do_center_crop": True, "crop_size": {"height": 224, "width": 224}},
        True,
    ),
    "fit-in-box": (ViTImageProcessorPil, {"size": {"max_height": 300, "max_width": 200}, "resample": 4}, True),
    "pair-size-lanczos": (ViTImageProcessorPil, {"size": [96, 160], "resample": 1, "image_mean": 0.45}, True),
    "no-rescale": (
        ViTImageProcessorPil,
        {"size": {"height": 64, "width": 64}, "resample": 0, "do_rescale": False,
         "image_mean": [127.5, 127.5, 127.5], "image_std": [127.5, 127.5, 127.5]},
        True,
    ),
    "shortest-and-longest": (
        ViTImageProcessorPil,
        {"size": {"shortest_edge": 300, "longest_edge": 400}, "do_normalize": False},
        True,
    ),
}
EVERY_FILE_PROCESSORS = ("vit-hub", "convnext-hub", "detr-hub", "dpt-hub")
SOME_FILES = ("rgb_640x480.jpg", "rgba_480x640.png", "exif_rotated_480x640.jpg", "one_pixel.png")


@pytest.fixture(scope="module")
def samples(tmp_path_factory):
    paths = write_samples(tmp_path_factory.mktemp("images"))
    assert set(paths) == set(SAMPLE_FILES)
    return paths


@pytest.fixture(scope="module")
def processors(tmp_path_factory):
    """name -> (transformers' processor loaded from the JSON file, our config from the same file)."""
    loaded = {}
    for name, (cls, data, square) in PROCESSORS.items():
        folder = tmp_path_factory.mktemp(name)
        (folder / "preprocessor_config.json").write_text(json.dumps(data))
        loaded[name] = (cls.from_pretrained(folder), processing.read_processor_config(folder, default_to_square=square))
    return loaded


def rgb_pixels(image: Image.Image) -> np.ndarray:
    assert image.mode == "RGB"
    return np.asarray(image)


# --- loading -----------------------------------------------------------------------------------


DEEP_FILES = ("grey16_600x400.png", "grey32_600x400.tif")  # see `transformers_input`


@pytest.mark.parametrize("name", SAMPLE_FILES)
def test_load_image_gives_the_pixels_transformers_loader_gives(samples, name):
    expected = rgb_pixels(hf_load_image(transformers_input(samples[name])))
    np.testing.assert_array_equal(rgb_pixels(img.load_image(samples[name])), expected)
    np.testing.assert_array_equal(rgb_pixels(img.load_image(samples[name].read_bytes())), expected)
    np.testing.assert_array_equal(rgb_pixels(img.load_image(str(samples[name]))), expected)


@pytest.mark.parametrize("name", DEEP_FILES)
def test_deep_grey_is_scaled_to_8_bits_not_clipped_as_transformers_does(samples, name):
    clipped = rgb_pixels(hf_load_image(str(samples[name])))
    assert clipped.mean() > 250  # transformers: the photo is lost in white
    notes: list[str] = []
    ours = rgb_pixels(img.load_image(samples[name], notes=notes))
    photo_8_bit = photo(400, 600, seed=5).mean(axis=-1)  # what the sample was widened from
    assert np.abs(ours[..., 0] - photo_8_bit).max() <= 1
    assert notes == [f"{name} has 16-bit values; they were scaled to 8 bits (0..65535 to 0..255) as an image viewer shows it"]


@pytest.mark.parametrize("mode, dtype", [("I;16", "<u2"), ("I;16B", ">u2"), ("I", "=i4")])
def test_16_bit_scaling_undoes_the_8_to_16_bit_widening_exactly(mode, dtype):
    levels = np.arange(256).reshape(16, 16)
    wide = Image.frombytes(mode, (16, 16), (levels * 257).astype(dtype).tobytes())
    np.testing.assert_array_equal(rgb_pixels(img.load_image(wide))[..., 1], levels)


def test_float_pictures_are_scaled_by_their_range(tmp_path):
    unit = np.linspace(0, 1, 64, dtype=np.float32).reshape(8, 8)
    path = tmp_path / "unit.tif"
    Image.fromarray(unit).save(path)
    notes: list[str] = []
    np.testing.assert_array_equal(rgb_pixels(img.load_image(path, notes=notes))[..., 0], np.round(unit * 255))
    assert "floating-point values from 0 to 1" in notes[0]
    assert hf_load_image(str(path)).getextrema() == ((0, 1),) * 3  # transformers: all but black
    # other ranges (and 32-bit integers beyond 16 bits) are stretched from their minimum to
    # their maximum; values that are not numbers become black
    wide = np.array([[-2.0, 0.0, 6.0, np.nan]], dtype=np.float32)
    assert rgb_pixels(img.load_image(Image.fromarray(wide)))[0, :, 0].tolist() == [0, 64, 255, 0]
    big = np.array([[-100, 0, 100_000]], dtype=np.int32)
    assert rgb_pixels(img.load_image(Image.fromarray(big)))[0, :, 0].tolist() == [0, 0, 255]
    with pytest.raises(InputError, match="no pixel values that are numbers"):
        img.load_image(Image.fromarray(np.full((2, 2), np.nan, np.float32)))


def test_exif_orientation_is_applied_and_the_callers_image_is_left_alone(samples):
    stored = Image.open(samples["exif_rotated_480x640.jpg"])
    assert stored.size == (640, 480)
    upright = img.load_image(stored)
    assert upright.size == (480, 640)
    assert stored.size == (640, 480) and stored.getexif().get(0x0112) == 6
    np.testing.assert_array_equal(rgb_pixels(upright), rgb_pixels(hf_load_image(stored)))


def test_alpha_is_dropped_not_blended_as_transformers_does(samples):
    rgba = Image.open(samples["rgba_480x640.png"])
    np.testing.assert_array_equal(rgb_pixels(img.load_image(rgba)), np.asarray(rgba)[..., :3])


def test_camera_frames_as_arrays():
    frame = photo(48, 64)
    np.testing.assert_array_equal(rgb_pixels(img.load_image(frame)), frame)
    grey = frame[..., 0].copy()
    np.testing.assert_array_equal(rgb_pixels(img.load_image(grey)), np.repeat(grey[..., None], 3, axis=-1))
    with_alpha = np.dstack([frame, np.full(frame.shape[:2], 9, np.uint8)])
    np.testing.assert_array_equal(rgb_pixels(img.load_image(with_alpha)), frame)
    strided = frame[:, ::2]  # a view, as a cropped camera buffer may be
    np.testing.assert_array_equal(rgb_pixels(img.load_image(strided)), strided)


@pytest.mark.parametrize(
    "array, message",
    [
        (np.zeros((4, 4, 3), np.float32), "uint8"),
        (np.zeros((4, 4, 2), np.uint8), "HxW"),
        (np.zeros((2, 4, 4, 3), np.uint8), "HxW"),
    ],
)
def test_unusable_arrays_are_refused(array, message):
    with pytest.raises(InputError, match=message):
        img.load_image(array)


def test_an_image_mode_without_rgb_conversion_is_refused():
    with pytest.raises(InputError, match="mode La"):
        img.load_image(Image.new("La", (4, 4)))


# --- bad files ---------------------------------------------------------------------------------


def test_empty_missing_and_non_image_inputs_are_refused(tmp_path):
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    text = tmp_path / "notes.jpg"
    text.write_text("this is not a picture\n" * 20)
    with pytest.raises(InputError, match="empty"):
        img.load_image(empty)
    with pytest.raises(InputError, match="empty"):
        img.load_image(b"")
    with pytest.raises(InputError, match="not an image"):
        img.load_image(text)
    with pytest.raises(InputError, match="no such file"):
        img.load_image(tmp_path / "absent.png")
    with pytest.raises(InputError, match="no such file"):
        img.load_image(tmp_path)  # a folder
    with pytest.raises(InputError, match="cannot read an image from a int"):
        img.load_image(42)


@pytest.mark.parametrize("name", ["rgb_640x480.jpg", "rgb_640x480.png"])
def test_truncated_and_corrupt_files_are_refused(samples, tmp_path, name):
    data = samples[name].read_bytes()
    truncated = tmp_path / f"truncated_{name}"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="corrupt or truncated"):
        img.load_image(truncated)
    scrambled = bytearray(data)
    scrambled[200:-200] = bytes(len(scrambled) - 400)  # header intact, contents gone
    with pytest.raises(InputError, match="corrupt or truncated|not an image"):
        img.load_image(bytes(scrambled))


def peak_memory_growth_mb(action) -> float:
    """How far the process's peak resident memory rises above its current size during
    `action` (Linux: the peak is reset through /proc/self/clear_refs first)."""
    status, clear = Path("/proc/self/status"), Path("/proc/self/clear_refs")
    if not status.exists():
        pytest.skip("needs Linux /proc to measure peak memory")

    def read(key: str) -> float:
        line = next(line for line in status.read_text().splitlines() if line.startswith(key))
        return int(line.split()[1]) / 1024

    try:
        clear.write_text("5")
    except OSError:
        pytest.skip("cannot reset the peak memory counter here")
    before = read("VmRSS:")
    action()
    return read("VmHWM:") - before


@pytest.fixture(scope="module")
def huge_png(tmp_path_factory):
    return write_huge_png(tmp_path_factory.mktemp("huge") / "huge_20000x20000.png")


@pytest.mark.parametrize("pil_limit", ["default", "disabled"])
def test_a_20000x20000_image_is_refused_without_decoding_it(huge_png, monkeypatch, pil_limit):
    if pil_limit == "disabled":  # our own guard must hold even when PIL's is switched off
        monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)

    def attempt() -> None:
        with pytest.raises(InputError, match="megapixels") as caught:
            img.load_image(huge_png)
        if pil_limit == "disabled":
            assert "20000×20000" in str(caught.value)

    # Decoding would take 400 MB (bilevel) and 1.2 GB (RGB).
    assert peak_memory_growth_mb(attempt) < 100


def test_a_large_jpeg_is_decoded_at_reduced_scale_with_a_note(tmp_path):
    path = tmp_path / "large.jpg"
    Image.fromarray(photo(900, 1200)).save(path, quality=90)
    notes: list[str] = []
    reduced = img.load_image(path, max_pixels=300_000, notes=notes)
    assert reduced.size == (600, 450) and reduced.mode == "RGB"
    assert len(notes) == 1 and "1/2 scale" in notes[0] and "1200×900" in notes[0]
    assert img.load_image(path, max_pixels=2_000_000, notes=notes).size == (1200, 900)
    assert len(notes) == 1  # no note when nothing was reduced
    with pytest.raises(InputError, match="1200×900 pixels"):
        img.load_image(path, max_pixels=10_000)  # even 1/8 scale (150x113) is too large


def test_a_large_png_is_refused_before_decoding(samples):
    with pytest.raises(InputError, match="640×480 pixels; images above 0.1 megapixels"):
        img.load_image(samples["rgb_640x480.png"], max_pixels=100_000)


# --- preprocessing -----------------------------------------------------------------------------


def assert_same_pixel_values(path: Path, processors, name: str) -> None:
    theirs, ours = processors[name]
    expected = theirs(hf_load_image(transformers_input(path)), return_tensors="pt")["pixel_values"]
    got = processing.preprocess(img.load_image(path), ours)
    assert got.dtype == torch.float32 and got.shape == expected.shape
    torch.testing.assert_close(got, expected.float(), rtol=0, atol=1e-6)


@pytest.mark.parametrize("processor", EVERY_FILE_PROCESSORS)
@pytest.mark.parametrize("name", SAMPLE_FILES)
def test_pixel_values_equal_transformers_pil_processors(samples, processors, name, processor):
    assert_same_pixel_values(samples[name], processors, processor)


@pytest.mark.parametrize("processor", [p for p in PROCESSORS if p not in EVERY_FILE_PROCESSORS])
@pytest.mark.parametrize("name", SOME_FILES)
def test_pixel_values_equal_for_other_processor_variants(samples, processors, name, processor):
    assert_same_pixel_values(samples[name], processors, processor)


def test_hub_configs_read_as_their_processors_read_them(processors):
    assert processors["vit-hub"][1].size == processing.Size(height=224, width=224)
    convnext = processors["convnext-hub"][1]
    assert convnext.size == processing.Size(shortest_edge=224) and convnext.crop_pct == 0.875
    assert convnext.resample == processing.BICUBIC
    detr = processors["detr-hub"][1]
    assert detr.size == processing.Size(shortest_edge=800, longest_edge=1333)
    assert detr.resample == processing.BILINEAR and detr.image_mean == tuple(IMAGENET_MEAN)
    dpt = processors["dpt-hub"][1]
    assert dpt.size == processing.Size(height=518, width=518) and dpt.resample == processing.BICUBIC
    assert (dpt.keep_aspect_ratio, dpt.ensure_multiple_of, dpt.size_divisor, dpt.do_pad) == (True, 14, None, False)


def test_config_variants_and_defaults(tmp_path):
    read = processing.ImageProcessorConfig.from_dict
    assert read({"size": {"height": 32, "width": 48, "shortest_edge": None}}).size == processing.Size(height=32, width=48)
    assert read({"size": 300}, default_to_square=False).size == processing.Size(shortest_edge=300)
    assert read({"size": 800, "max_size": 1333}, default_to_square=False).size.longest_edge == 1333
    assert read({"resample": "BICUBIC"}).resample == processing.BICUBIC
    assert read({"image_std": 0.25}).image_std == (0.25, 0.25, 0.25)
    assert read({"pad_and_return_pixel_mask": False}, defaults={"do_pad": True}).do_pad is False
    assert read({}, defaults={"do_pad": True}).do_pad is True
    assert read({"crop_size": 200, "do_center_crop": True}).crop_size == processing.Size(height=200, width=200)
    # A checkpoint without preprocessor_config.json gets its processor class's defaults.
    assert processing.read_processor_config(tmp_path, defaults={"size": 64}).size == processing.Size(height=64, width=64)


@pytest.mark.parametrize(
    "data, message",
    [
        ({"size": {"longest_edge": 100}}, "size this app cannot use"),
        ({"size": "large"}, "size this app cannot use"),
        ({"size": {"height": "224", "width": 224}}, "size this app cannot use"),
        ({"crop_pct": -1}, "positive number"),
        ({"resample": 9}, "unknown resample"),
        ({"image_mean": [0.5, 0.5]}, "one number or three"),
        ({"do_center_crop": True}, "without a crop_size"),
        ({"ensure_multiple_of": 0}, "positive whole number"),
        ({"size_divisor": 2.5}, "positive whole number"),
    ],
)
def test_unusable_configs_are_checkpoint_errors(data, message):
    with pytest.raises(CheckpointError, match=message):
        processing.ImageProcessorConfig.from_dict(data)


def test_centre_crop_size_needs_height_and_width():
    """from_dict refuses a crop without height and width; a config built by hand says so at the
    first image instead of failing inside the crop."""
    read = processing.ImageProcessorConfig.from_dict
    assert read({"do_center_crop": True, "crop_size": {"height": 20, "width": 30}}).center_crop_size() == (20, 30)
    assert read({"do_center_crop": False, "crop_size": 20}).center_crop_size() is None
    by_hand = processing.ImageProcessorConfig(do_center_crop=True, crop_size=processing.Size(shortest_edge=20))
    with pytest.raises(CheckpointError, match="crop_size with height and width"):
        processing.preprocess(Image.new("RGB", (40, 40)), by_hand)


def test_opening_images_does_not_import_torch():
    """The app opens and shows pictures before any model is loaded."""
    import subprocess
    import sys

    code = "import sys, engine.image; print('torch' in sys.modules)"
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root)
    assert done.stdout.strip() == "False"


def test_preprocess_wants_rgb():
    with pytest.raises(InputError, match="RGB"):
        processing.preprocess(Image.new("L", (8, 8)), processing.ImageProcessorConfig())


# --- size rules --------------------------------------------------------------------------------

SIZES = [(1, 1), (1, 3000), (17, 3000), (480, 640), (640, 480), (800, 800), (799, 1333), (333, 500), (1066, 800),
         (3000, 17), (4032, 3024), (2, 5000), (1333, 800), (600, 1999)]


def at_least_one_pixel(size) -> tuple[int, int]:
    """transformers' size, except that a side it makes 0 (a 1×3000 picture capped at 1333
    long) is 1 here: no resize can make a side of 0, so transformers fails there."""
    return tuple(max(1, side) for side in size)


@pytest.mark.parametrize("longest", [None, 1333, 1000])
@pytest.mark.parametrize("shortest", [800, 224, 1])
def test_detr_size_rule_matches_transformers(shortest, longest):
    for height, width in SIZES:
        expected = at_least_one_pixel(get_size_with_aspect_ratio((height, width), shortest, longest))
        assert processing.size_with_aspect_ratio(height, width, shortest, longest) == expected, (height, width)


@pytest.mark.parametrize("max_size", [None, 1333])
@pytest.mark.parametrize("shortest", [256, 384, 800])
def test_short_side_rule_matches_transformers(shortest, max_size):
    for height, width in SIZES:
        expected = get_resize_output_image_size(
            np.zeros((height, width, 3)), shortest, default_to_square=False, max_size=max_size,
            input_data_format="channels_last",
        )
        assert processing.short_side_size(height, width, shortest, max_size) == at_least_one_pixel(expected), (height, width)


@pytest.mark.parametrize("keep_aspect_ratio", [True, False])
@pytest.mark.parametrize("target, multiple", [((518, 518), 14), ((384, 384), 32), ((384, 512), 1), ((256, 320), 7)])
def test_dpt_size_rule_matches_transformers(target, multiple, keep_aspect_ratio):
    for height, width in SIZES:
        expected = dpt_output_size(np.zeros((3, height, width)), target, keep_aspect_ratio, multiple)
        if not expected.height or not expected.width:  # transformers then fails to resize
            with pytest.raises(InputError, match="too narrow"):
                processing.multiple_of_size(height, width, *target, keep_aspect_ratio, multiple)
            continue
        got = processing.multiple_of_size(height, width, *target, keep_aspect_ratio, multiple)
        assert got == (expected.height, expected.width), (height, width)


def test_dpt_rule_needs_a_size_with_height_and_width():
    config = processing.ImageProcessorConfig(size=processing.Size(shortest_edge=518), ensure_multiple_of=14)
    with pytest.raises(CheckpointError, match="need a size with height and width"):
        processing.preprocess(Image.new("RGB", (40, 40)), config)
