"""Wav2Vec2 and HuBERT against transformers on the same tiny checkpoint files: every variant
the Hub uses, both weight-norm storage forms, padded batches, and the loading errors."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from engine.checkpoint import load_model
from engine.errors import CheckpointError
from engine.models import wav2vec2
from engine.tasks.speech_common import load_speech_model
from tests.engine.models.tiny_wav2vec2 import VARIANTS, checkpoint, rewrite_weight_norm_as_g_v, speech_like
from tests.engine.models.tiny_wav2vec2 import single_thread  # noqa: F401 (a fixture, used below)

pytestmark = pytest.mark.usefixtures("single_thread")

TOL = dict(atol=1e-5, rtol=1e-5)


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return tmp_path_factory.getbasetemp() / "tiny-wav2vec2"


def _oracle(folder):
    import transformers

    name = json.loads((folder / "config.json").read_text())["architectures"][0]
    return getattr(transformers, name).from_pretrained(folder).eval()


def _head(variant: str) -> str:
    return "ctc" if "CTC" in VARIANTS[variant][0] else "audio-classification"


def _batch() -> tuple[torch.Tensor, torch.Tensor]:
    """Two clips, the second padded with zeros after 1.3 s."""
    long, short = speech_like(2.0, seed=1), speech_like(1.3, seed=2)
    values = torch.zeros(2, len(long))
    values[0] = torch.from_numpy(long)
    values[1, : len(short)] = torch.from_numpy(short)
    mask = torch.zeros(2, len(long), dtype=torch.long)
    mask[0] = 1
    mask[1, : len(short)] = 1
    return values, mask


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_logits_match_transformers(root, variant):
    folder = checkpoint(variant, root)
    oracle = _oracle(folder)
    ours, _ = load_speech_model(folder, _head(variant), torch.device("cpu"), torch.float32)
    x = torch.from_numpy(speech_like(1.7, seed=3))[None]
    with torch.no_grad():
        expected = oracle(x).logits
    got = ours(x)
    assert got.shape == expected.shape
    torch.testing.assert_close(got, expected, **TOL)


@pytest.mark.parametrize("variant", ["ctc-layer-stable", "hubert-ctc-bn", "cls-weighted", "cls-stable-weighted"])
def test_padded_batch_with_attention_mask_matches_transformers(root, variant):
    folder = checkpoint(variant, root)
    oracle = _oracle(folder)
    ours, config = load_speech_model(folder, _head(variant), torch.device("cpu"), torch.float32)
    values, mask = _batch()
    with torch.no_grad():
        expected = oracle(values, attention_mask=mask).logits
        got = ours(values, mask)
        short = int(mask[1].sum())
        alone = ours(values[1:, :short], mask[1:, :short])[0]
    if "CTC" in VARIANTS[variant][0]:  # frames past the short clip's end are padding in both
        real = int(wav2vec2.frame_lengths(mask.sum(-1), config)[1])
        torch.testing.assert_close(got[0], expected[0], **TOL)
        torch.testing.assert_close(got[1, :real], expected[1, :real], **TOL)
        got = got[1, :real]
    else:
        torch.testing.assert_close(got, expected, **TOL)
        got = got[1]
    if config.feat_extract_norm == "layer":  # group norm sees the padding; layer norm does not
        torch.testing.assert_close(got, alone, **TOL)


def test_old_weight_norm_keys_load_the_same_weights(root, tmp_path):
    folder = checkpoint("ctc-group", root)
    old = rewrite_weight_norm_as_g_v(folder, tmp_path / "g-v")
    assert any(k.endswith("weight_g") for k in load_file(str(old / "model.safetensors")))
    new_form, _ = load_speech_model(folder, "ctc", torch.device("cpu"), torch.float32)
    old_form, _ = load_speech_model(old, "ctc", torch.device("cpu"), torch.float32)
    assert torch.equal(
        new_form.wav2vec2.encoder.pos_conv_embed.conv.weight, old_form.wav2vec2.encoder.pos_conv_embed.conv.weight
    )
    x = torch.from_numpy(speech_like(1.0))[None]
    with torch.no_grad():
        expected = _oracle(old)(x).logits  # transformers reads the old form too
    torch.testing.assert_close(old_form(x), expected, **TOL)


def test_folded_weight_norm_equals_torch_weight_norm():
    conv = torch.nn.utils.parametrizations.weight_norm(torch.nn.Conv1d(8, 8, 5, groups=2), name="weight", dim=2)
    g = conv.parametrizations.weight.original0.detach()
    v = conv.parametrizations.weight.original1.detach()
    assert g.shape == (1, 1, 5)
    torch.testing.assert_close(wav2vec2.fold_weight_norm(g, v), conv.weight.detach(), atol=1e-7, rtol=1e-6)


def test_checkpoint_saved_without_the_base_prefix_loads(root, tmp_path):
    folder = checkpoint("cls-last", root)
    bare = tmp_path / "bare"
    shutil.copytree(folder, bare)
    state = load_file(str(folder / "model.safetensors"))
    save_file({k.removeprefix("wav2vec2."): v for k, v in state.items()}, str(bare / "model.safetensors"))
    a, _ = load_speech_model(folder, "audio-classification", "cpu", torch.float32)
    b, _ = load_speech_model(bare, "audio-classification", "cpu", torch.float32)
    for (name, mine), theirs in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(mine, theirs), name
    x = torch.from_numpy(speech_like(0.5))[None]
    torch.testing.assert_close(a(x), b(x), **TOL)


def test_frame_geometry_matches_transformers(root):
    import transformers

    folder = checkpoint("ctc-group", root)
    config = wav2vec2.Wav2Vec2Config.from_json(json.loads((folder / "config.json").read_text()))
    oracle = transformers.Wav2Vec2ForCTC.from_pretrained(folder)
    lengths = torch.tensor([400, 401, 719, 720, 16000, 160_000, 480_123])
    assert torch.equal(wav2vec2.frame_lengths(lengths, config), oracle._get_feat_extract_output_lengths(lengths))
    assert config.samples_per_frame == oracle.config.inputs_to_logits_ratio == 320
    assert config.receptive_field == 400
    assert wav2vec2.frame_lengths(torch.tensor([399]), config).item() == 0


@pytest.mark.parametrize("variant", ["ctc-group", "ctc-layer-stable"])
def test_bf16_stays_close_to_float32(root, variant):
    """Within 5% of the largest logit. transformers' bf16 on these files is far off (about
    100%): oneDNN's bf16 kernel (torch 2.13) misadds the positional convolution's 16-wide
    kernel over the toy checkpoints' 8 channels per group, and the engine runs that one
    convolution in float32 there."""
    folder = checkpoint(variant, root)
    full, _ = load_speech_model(folder, "ctc", "cpu", torch.float32)
    half, _ = load_speech_model(folder, "ctc", "cpu", torch.bfloat16)
    assert half.lm_head.weight.dtype == torch.bfloat16
    x = torch.from_numpy(speech_like(1.0))[None]
    with torch.no_grad():
        expected = full(x)
        got = half(x.bfloat16()).float()
    assert (got - expected).abs().max() < 0.05 * expected.abs().max()


def test_a_pretraining_checkpoint_is_refused_by_name(root, tmp_path):
    folder = tmp_path / "pretraining"
    shutil.copytree(checkpoint("ctc-group", root), folder)
    data = json.loads((folder / "config.json").read_text())
    data["architectures"] = ["Wav2Vec2ForPreTraining"]
    (folder / "config.json").write_text(json.dumps(data))
    with pytest.raises(CheckpointError, match="Wav2Vec2ForPreTraining.*CTC"):
        load_speech_model(folder, "ctc", "cpu", torch.float32)


def test_a_classification_checkpoint_lacks_the_ctc_head(root, tmp_path):
    folder = tmp_path / "no-architectures"
    shutil.copytree(checkpoint("cls-last", root), folder)
    data = json.loads((folder / "config.json").read_text())
    del data["architectures"]
    data["vocab_size"] = 32
    (folder / "config.json").write_text(json.dumps(data))
    with pytest.raises(CheckpointError, match="lm_head"):
        load_speech_model(folder, "ctc", "cpu", torch.float32)


def test_other_architectures_are_named(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "whisper", "architectures": ["WhisperForConditionalGeneration"]}))
    with pytest.raises(CheckpointError, match="whisper.*hubert, wav2vec2"):
        load_speech_model(tmp_path, "ctc", "cpu", torch.float32)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"conv_kernel": [10, 3]}, "differ in length"),
        ({"feat_extract_norm": "batch"}, "feat_extract_norm"),
        ({"hidden_act": "mish"}, "activation"),
        ({"add_adapter": True}, "add_adapter"),
        ({"hidden_size": None}, "hidden_size"),
    ],
)
def test_bad_configs_are_clear_errors(root, change, message):
    data = json.loads((checkpoint("ctc-group", root) / "config.json").read_text())
    data.update(change)
    data = {k: v for k, v in data.items() if v is not None}
    with pytest.raises(CheckpointError, match=message):
        wav2vec2.Wav2Vec2Config.from_json(data)


def test_a_truncated_weight_norm_pair_is_named(root):
    state = {"encoder.pos_conv_embed.conv.weight_g": torch.ones(1, 1, 4)}
    with pytest.raises(CheckpointError, match="weight_v"):
        wav2vec2.adapt(state, set())


def test_loading_assigns_every_tensor(root):
    folder = checkpoint("hubert-ctc-bn", root)
    model = load_model(
        lambda: wav2vec2.Wav2Vec2ForCTC(wav2vec2.Wav2Vec2Config.from_json(json.loads((folder / "config.json").read_text()))),
        folder,
        adapt=wav2vec2.adapt,
    )
    assert not any(t.is_meta for t in [*model.parameters(), *model.buffers()])
    assert np.isfinite(model(torch.from_numpy(speech_like(0.5))[None]).detach().numpy()).all()


def test_describe_gives_the_architecture():
    config = wav2vec2.Wav2Vec2Config.from_json(
        {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 37,
         "conv_dim": [16] * 7, "feat_extract_norm": "layer", "do_stable_layer_norm": True}
    )
    assert wav2vec2.describe(config) == {
        "feature_encoder": "7 conv layers, 16 channels, kernels [10, 3, 3, 3, 3, 2, 2], "
        "strides [5, 2, 2, 2, 2, 2, 2], layer norm",
        "layers": 2,
        "hidden_size": 32,
        "attention_heads": 4,
        "ffn_size": 37,
        "layer_norm": "pre-LN (stable)",
        "samples_per_frame": 320,
    }


@pytest.mark.parametrize("norm", ["group", "layer"])
@pytest.mark.parametrize(
    "kernels, strides",
    [
        ([10, 3, 3, 3, 3, 2, 2], [5, 2, 2, 2, 2, 2, 2]),  # the Hub's checkpoints
        ([4, 5, 2], [3, 2, 3]),  # kernels longer, much longer and shorter than their strides
    ],
)
def test_the_feature_encoder_as_products_equals_the_convolutions(norm, kernels, strides):
    """The waveform encoder written as matrix products over time-major frames, with the first
    layer's group norm folded into its weight, against transformers' convolutions."""
    import transformers

    settings = dict(conv_dim=[12] * len(kernels), conv_kernel=kernels, conv_stride=strides,
                    feat_extract_norm=norm, conv_bias=True, hidden_size=8, num_hidden_layers=1,
                    num_attention_heads=2, intermediate_size=8, num_conv_pos_embeddings=4,
                    num_conv_pos_embedding_groups=2)
    torch.manual_seed(0)
    theirs = transformers.Wav2Vec2Model(transformers.Wav2Vec2Config(**settings)).feature_extractor.eval()
    for parameter in theirs.parameters():  # away from the initial norms' ones and zeros
        parameter.data.normal_(0, 0.5)
    ours = wav2vec2.FeatureEncoder(wav2vec2.Wav2Vec2Config.from_json(settings))
    ours.load_state_dict(theirs.state_dict())
    batch = torch.stack([torch.from_numpy(speech_like(0.25, seed=s)) for s in (1, 2)])
    with torch.no_grad():
        expected = theirs(batch).transpose(1, 2)
        got = ours(batch)
    assert got.shape == expected.shape
    torch.testing.assert_close(got, expected, atol=1e-5 * expected.abs().max().item(), rtol=1e-5)
