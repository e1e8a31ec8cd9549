"""The Mix Transformer encoder on its own: GLPN's encoder (the other model built on it) against
transformers, and the config's checks."""

import pytest
import torch

from engine.checkpoint import load_model, match_prefix
from engine.errors import CheckpointError
from engine.models.mix_transformer import MixTransformerConfig, MixTransformerEncoder


def test_glpn_encoder_matches_transformers(tmp_path):
    from transformers import GLPNConfig, GLPNModel

    torch.manual_seed(0)
    settings = dict(hidden_sizes=[8, 16, 24, 32], depths=[1, 1, 2, 1], num_attention_heads=[1, 2, 2, 4],
                    sr_ratios=[4, 2, 2, 1], decoder_hidden_size=16)
    reference = GLPNModel(GLPNConfig(**settings)).eval()
    reference.save_pretrained(tmp_path)  # a bare GLPNModel: keys start at `encoder.`
    config = MixTransformerConfig.from_json(settings)
    encoder = load_model(lambda: MixTransformerEncoder(config), tmp_path,
                         adapt=lambda state, expected: match_prefix(state, expected, "encoder."))
    pixels = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        expected = reference(pixel_values=pixels, output_hidden_states=True).hidden_states
        for ours, theirs in zip(encoder(pixels), expected, strict=True):
            torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5)


def test_per_stage_lists_must_agree():
    with pytest.raises(CheckpointError, match="4 encoder blocks but depths has 3"):
        MixTransformerConfig.from_json({"depths": [1, 1, 1]})
    with pytest.raises(CheckpointError, match="3 encoder blocks but"):
        MixTransformerConfig.from_json({"num_encoder_blocks": 3})
    with pytest.raises(CheckpointError, match="not a multiple of 3 heads"):
        MixTransformerConfig.from_json({"num_attention_heads": [1, 2, 3, 8]})
    with pytest.raises(CheckpointError, match="hidden_act"):
        MixTransformerConfig.from_json({"hidden_act": "mish"})


def test_reductions_multiply_the_strides():
    assert MixTransformerConfig().reductions == (4, 8, 16, 32)
    assert MixTransformerConfig.from_json({"strides": [2, 2, 2, 2]}).reductions == (2, 4, 8, 16)
