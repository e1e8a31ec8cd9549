"""Tiny random DETR checkpoints written by transformers, shared by the model and task tests."""

from __future__ import annotations

from pathlib import Path

import torch

from tests.engine.models.random_values import spread_values


def save_tiny_detr(
    folder: Path,
    *,
    layer_type: str = "bottleneck",
    depths: tuple[int, ...] = (1, 2, 1, 1),
    hidden_sizes: tuple[int, ...] = (8, 16, 24, 32),
    embedding_size: int = 8,
    num_labels: int = 5,
    seed: int = 0,
) -> torch.nn.Module:
    """Save a DETR with a small transformers-layout ResNet to `folder` and return the
    transformers model (the oracle). Frozen batch-norm statistics are randomised: left at
    their defaults (mean 0, var 1) they would hide a mixed-up norm."""
    from transformers import DetrConfig, DetrForObjectDetection, ResNetConfig

    torch.manual_seed(seed)
    backbone = ResNetConfig(
        embedding_size=embedding_size,
        hidden_sizes=list(hidden_sizes),
        depths=list(depths),
        layer_type=layer_type,
        out_features=["stage4"],
    )
    config = DetrConfig(
        backbone_config=backbone,
        use_timm_backbone=False,
        d_model=32,
        encoder_layers=2,
        decoder_layers=2,
        encoder_attention_heads=4,
        decoder_attention_heads=4,
        encoder_ffn_dim=64,
        decoder_ffn_dim=48,
        num_queries=12,
        num_labels=num_labels,
        id2label={i: f"thing{i}" for i in range(num_labels)},
        label2id={f"thing{i}": i for i in range(num_labels)},
    )
    model = DetrForObjectDetection(config).eval()
    randomize(model)
    model.save_pretrained(folder)
    return model


def randomize(model: torch.nn.Module) -> None:
    """Give every tensor a spread of values (`spread_values`): with transformers' DETR init the
    queries come out nearly identical and a swapped tensor could go unnoticed."""
    spread_values(model, unit_normal=("query_position_embeddings.weight",))
    with torch.no_grad():
        # sharp cross-attention makes each query look at its own part of the image, and
        # confident class scores give thresholds and the argmax something to choose
        for layer in model.model.decoder.layers:
            layer.encoder_attn.q_proj.weight.mul_(4)
            layer.encoder_attn.o_proj.weight.mul_(4)
        model.class_labels_classifier.weight.mul_(3)
