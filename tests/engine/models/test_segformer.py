"""SegFormer against transformers on tiny random checkpoints saved by transformers itself: the
encoder's stage maps and the logits, for two encoder shapes and inputs of several sizes."""

import copy

import pytest
import torch
from safetensors.torch import load_file, save_file

from engine.checkpoint import load_model
from engine.config import read_json
from engine.errors import CheckpointError, InputError
from engine.models import segformer
from tests.engine.models.tiny_segformer import CONFIGS, save_tiny_segformer


def load(folder):
    config = segformer.SegformerConfig.from_json(read_json(folder / "config.json"))
    return load_model(lambda: segformer.SegformerForSemanticSegmentation(config), folder, adapt=segformer.adapt)


@pytest.fixture(scope="module", params=list(CONFIGS))
def tiny(request, tmp_path_factory):
    folder = tmp_path_factory.mktemp(request.param)
    num_labels = {"b0-like": 6, "other": 3}[request.param]
    return folder, save_tiny_segformer(folder, shape=request.param, num_labels=num_labels)


@pytest.mark.parametrize("size", [(64, 64), (64, 96), (72, 40)])
def test_stage_maps_and_logits_match_transformers(tiny, size):
    folder, reference = tiny
    model = load(folder)
    pixels = torch.randn(2, 3, *size)
    with torch.no_grad():
        expected = reference(pixel_values=pixels, output_hidden_states=True)
        maps = model.forward_features(pixels)
        assert len(maps) == len(expected.hidden_states) == 4
        for ours, theirs in zip(maps, expected.hidden_states):
            torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5)
        logits = model.forward_head(maps)
        assert logits.shape == (2, reference.config.num_labels, (size[0] + 3) // 4, (size[1] + 3) // 4)
        torch.testing.assert_close(logits, expected.logits, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(model(pixels), logits, rtol=0, atol=0)


def test_a_file_without_the_batch_norm_count_loads(tiny, tmp_path):
    """`num_batches_tracked` is a training statistic some files carry and others do not."""
    folder, reference = tiny
    state = load_file(folder / "model.safetensors")
    del state["decode_head.batch_norm.num_batches_tracked"]
    save_file(state, tmp_path / "model.safetensors")
    (tmp_path / "config.json").write_text((folder / "config.json").read_text())
    pixels = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(load(tmp_path)(pixels), reference(pixel_values=pixels).logits, rtol=1e-5, atol=1e-5)


def test_an_image_classifier_is_refused_by_name(tmp_path):
    from transformers import SegformerConfig, SegformerForImageClassification

    SegformerForImageClassification(SegformerConfig(**CONFIGS["b0-like"], num_labels=4)).save_pretrained(tmp_path)
    with pytest.raises(CheckpointError, match="SegformerForImageClassification"):
        load(tmp_path)


def test_a_picture_too_small_for_the_reduction_is_a_clear_error(tiny):
    folder, _ = tiny
    with pytest.raises(InputError, match="too small"):
        load(folder)(torch.randn(1, 3, 8, 8))


def test_half_precision_drifts_no_more_than_transformers(tiny):
    """Random unit-scale weights make these tiny models drift in bfloat16 (transformers' own
    drift is a good part of the logits' range): the bar is the oracle's drift on the same file."""
    folder, reference = tiny
    config = segformer.SegformerConfig.from_json(read_json(folder / "config.json"))
    model = load_model(lambda: segformer.SegformerForSemanticSegmentation(config), folder,
                       adapt=segformer.adapt, dtype=torch.bfloat16)
    pixels = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        logits = model(pixels.bfloat16())
        expected = reference(pixel_values=pixels).logits
        theirs = copy.deepcopy(reference).bfloat16()(pixel_values=pixels.bfloat16()).logits
    assert logits.dtype == torch.bfloat16
    their_drift = (theirs.float() - expected).abs().mean()
    assert (logits.float() - expected).abs().mean() < 1.5 * their_drift + 1e-3


def test_config_reads_the_labels_and_the_decoder():
    config = segformer.SegformerConfig.from_json(
        {**CONFIGS["b0-like"], "id2label": {"0": "wall", "1": "sky", "2": "tree"}}
    )
    assert config.num_labels == 3 and config.decoder_hidden_size == 16
    assert config.encoder.hidden_sizes == (8, 16, 24, 32)
    assert segformer.SegformerConfig.from_json({}).encoder.depths == (2, 2, 2, 2)  # b0's defaults


def test_describe_gives_the_architecture():
    config = segformer.SegformerConfig.from_json({**CONFIGS["other"], "num_labels": 3})
    assert segformer.describe(config) == {
        "architecture": "SegFormer",
        "encoder": "Mix Transformer",
        "stages": 4,
        "depths": [2, 1, 1, 2],
        "hidden_sizes": [16, 16, 32, 48],
        "heads": [2, 1, 4, 2],
        "reduction_ratios": [4, 2, 1, 1],
        "strides": [4, 8, 16, 32],
        "layers": 6,
        "decoder_hidden_size": 24,
        "output_stride": 4,
    }
