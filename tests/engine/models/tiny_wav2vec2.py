"""Tiny random Wav2Vec2 / HuBERT checkpoints written by transformers, with a 960h-style
vocabulary and feature extractor, and synthetic test audio. Shared by the model, speech task,
streaming and classification tests.

Checkpoints are cached under the session's base temp folder, so each variant is built once per
test run however many test modules ask for it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

RATE = 16_000
# the 960h vocabulary's layout: specials, the word delimiter, upper-case letters and '
VOCAB = ["<pad>", "<s>", "</s>", "<unk>", "|", *"ETAONIHSRDLUMWCFGYPBVK'XJQZ"]
LABELS = ["yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go", "_silence_", "_unknown_"]

_BASE = dict(
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=37,
    conv_dim=(16, 16, 16, 16, 16, 16, 16),  # the real kernels and strides: 320 samples a frame
    num_conv_pos_embeddings=16,
    num_conv_pos_embedding_groups=4,
    vocab_size=len(VOCAB),
)

# name -> (model class, config overrides, feature extractor settings)
VARIANTS: dict[str, tuple[str, dict, dict]] = {
    # wav2vec2-base-960h: group norm, no conv bias, post-LN, no attention mask
    "ctc-group": ("Wav2Vec2ForCTC", {}, {"do_normalize": True, "return_attention_mask": False}),
    # large-lv60 style: layer norm in every conv, conv bias, pre-LN, attention mask
    "ctc-layer-stable": (
        "Wav2Vec2ForCTC",
        {"feat_extract_norm": "layer", "conv_bias": True, "do_stable_layer_norm": True},
        {"do_normalize": True, "return_attention_mask": True},
    ),
    # an odd positional kernel (nothing trimmed), relu in the FFN
    "ctc-odd-kernel": ("Wav2Vec2ForCTC", {"num_conv_pos_embeddings": 15, "hidden_act": "relu"}, {}),
    # MMS style: per-layer language adapters on a pre-LN stack
    "ctc-adapter": (
        "Wav2Vec2ForCTC",
        {"feat_extract_norm": "layer", "do_stable_layer_norm": True, "adapter_attn_dim": 8},
        {"return_attention_mask": True},
    ),
    # for the long-file tests, where only the plumbing is under test: one conv of kernel 400
    # and stride 320 keeps base's frame geometry (400-sample field, 20 ms frames) at little cost
    "ctc-micro": (
        "Wav2Vec2ForCTC",
        {"conv_dim": (8,), "conv_kernel": (400,), "conv_stride": (320,), "hidden_size": 8,
         "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 16,
         "num_conv_pos_embedding_groups": 2},
        {},
    ),
    "hubert-ctc": ("HubertForCTC", {}, {}),
    "hubert-ctc-bn": (
        "HubertForCTC",
        {"feat_proj_layer_norm": False, "conv_pos_batch_norm": True, "feat_extract_norm": "layer",
         "do_stable_layer_norm": True},
        {"return_attention_mask": True},
    ),
    # superb-ks style: weighted layer sum, no normalisation, attention mask
    "cls-weighted": (
        "Wav2Vec2ForSequenceClassification",
        {"use_weighted_layer_sum": True, "classifier_proj_size": 24},
        {"do_normalize": False, "return_attention_mask": True},
    ),
    "cls-stable-weighted": (
        "Wav2Vec2ForSequenceClassification",
        {"use_weighted_layer_sum": True, "feat_extract_norm": "layer", "do_stable_layer_norm": True,
         "conv_bias": True, "classifier_proj_size": 24},
        {"do_normalize": True, "return_attention_mask": True},
    ),
    "cls-last": ("Wav2Vec2ForSequenceClassification", {"classifier_proj_size": 24}, {"return_attention_mask": False}),
    "hubert-cls": (
        "HubertForSequenceClassification",
        {"use_weighted_layer_sum": True, "classifier_proj_size": 24},
        {"return_attention_mask": True},
    ),
}


@pytest.fixture(scope="module")
def single_thread():
    """Tiny models in one thread: their ops are too small to share, and on a busy machine
    two OpenMP threads spinning against other processes make them many times slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def checkpoint(variant: str, root: Path) -> Path:
    """The folder of `variant` under `root`, built on first use."""
    folder = Path(root) / f"wav2vec2-{variant}"
    if not (folder / "config.json").is_file():
        save_variant(variant, folder)
    return folder


def save_variant(variant: str, folder: Path, seed: int = 0) -> None:
    import transformers

    class_name, overrides, features = VARIANTS[variant]
    model_class = getattr(transformers, class_name)
    config_class = transformers.HubertConfig if class_name.startswith("Hubert") else transformers.Wav2Vec2Config
    settings = {**_BASE, **overrides}
    if "Classification" in class_name:
        settings.update(id2label=dict(enumerate(LABELS)), label2id={l: i for i, l in enumerate(LABELS)})
    torch.manual_seed(seed)
    model = model_class(config_class(**settings)).eval()
    _liven(model)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    transformers.Wav2Vec2FeatureExtractor(**features).save_pretrained(folder)
    if "CTC" in class_name:
        (folder / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(VOCAB)}))
        transformers.Wav2Vec2CTCTokenizer(str(folder / "vocab.json")).save_pretrained(folder)


def _liven(model: torch.nn.Module) -> None:
    """Random init gives near-constant outputs; wider heads and norms make the argmax move
    from frame to frame (so decoding has words to find) and the labels disagree."""
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.startswith(("lm_head", "classifier", "projector")) and p.dim() == 2:
                p.copy_(torch.randn(p.shape, generator=generator) * 0.5)
            elif "layer_norm" in name and name.endswith("weight"):
                p.copy_(1 + 0.3 * torch.randn(p.shape, generator=generator))
            elif "layer_weights" in name:
                p.copy_(torch.randn(p.shape, generator=generator))
        if hasattr(model, "lm_head"):
            model.lm_head.bias[0] += 1.0  # blank and the word delimiter win often, as in a trained model
            model.lm_head.bias[4] += 1.0


def speech_like(seconds: float, seed: int = 0, rate: int = RATE) -> np.ndarray:
    """Deterministic audio with syllable-like bursts: tones under a slow envelope, plus noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    envelope = np.clip(np.sin(2 * np.pi * 2.3 * t + rng.uniform(0, 6)), 0, None) ** 2
    tones = sum(np.sin(2 * np.pi * f * t + rng.uniform(0, 6)) for f in rng.uniform(120, 900, size=4))
    signal = 0.15 * envelope * tones + 0.02 * rng.standard_normal(len(t))
    return signal.astype(np.float32)


def rewrite_weight_norm_as_g_v(folder: Path, target: Path) -> Path:
    """A copy of `folder` whose positional conv is stored the old way (weight_g, weight_v)."""
    import shutil

    from safetensors.torch import load_file, save_file

    shutil.copytree(folder, target)
    state = load_file(str(folder / "model.safetensors"))
    renamed = {
        k.replace("parametrizations.weight.original0", "weight_g").replace("parametrizations.weight.original1", "weight_v"): v
        for k, v in state.items()
    }
    assert renamed.keys() != state.keys(), "the checkpoint had no parametrized weight norm to rewrite"
    save_file(renamed, str(target / "model.safetensors"), metadata={"format": "pt"})
    return target
