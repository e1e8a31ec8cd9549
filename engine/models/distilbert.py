"""DistilBERT: BERT distilled to half the layers, without token types or the pooler, with the
three heads the text tasks use.

Module names follow the Hub checkpoints (`distilbert.embeddings.word_embeddings`,
`distilbert.transformer.layer.N.attention.q_lin`, ...), so their tensors load unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from engine.checkpoint import StateDict, drop_keys, match_prefix
from engine.config import from_dict
from engine.errors import CheckpointError
from engine.models.bert import attention_mask_for_sdpa
from engine.models.common import activation, attend

# DistilBERT hard-codes its LayerNorm epsilon instead of reading it from the config.
LAYER_NORM_EPS = 1e-12

# --------------------------------------------------------------------------- building blocks


class Embeddings(nn.Module):
    def __init__(self, config: DistilBertConfig) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(config.vocab_size, config.dim)
        # learned, or fixed sinusoids (`sinusoidal_pos_embds`): either way stored in the file
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.dim)
        self.LayerNorm = nn.LayerNorm(config.dim, eps=LAYER_NORM_EPS)

    def forward(self, input_ids: Tensor) -> Tensor:
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)
        return self.LayerNorm(self.word_embeddings(input_ids) + self.position_embeddings(positions))


class MultiHeadSelfAttention(nn.Module):
    def __init__(self, config: DistilBertConfig) -> None:
        super().__init__()
        self.num_heads = config.n_heads
        self.q_lin = nn.Linear(config.dim, config.dim)
        self.k_lin = nn.Linear(config.dim, config.dim)
        self.v_lin = nn.Linear(config.dim, config.dim)
        self.out_lin = nn.Linear(config.dim, config.dim)

    def forward(self, x: Tensor, mask: Tensor | None) -> Tensor:
        batch, seq, dim = x.shape
        # (batch, seq, dim) -> (batch, heads, seq, head_dim)
        q, k, v = (
            proj(x).view(batch, seq, self.num_heads, -1).transpose(1, 2)
            for proj in (self.q_lin, self.k_lin, self.v_lin)
        )
        out = attend(self, q, k, v, mask)
        # (batch, heads, seq, head_dim) -> (batch, seq, dim)
        return self.out_lin(out.transpose(1, 2).reshape(batch, seq, dim))


class FFN(nn.Module):
    def __init__(self, config: DistilBertConfig) -> None:
        super().__init__()
        self.lin1 = nn.Linear(config.dim, config.hidden_dim)
        self.lin2 = nn.Linear(config.hidden_dim, config.dim)
        self.act = activation(config.activation)

    def forward(self, x: Tensor) -> Tensor:
        return self.lin2(self.act(self.lin1(x)))


class TransformerBlock(nn.Module):
    """Post-LN, as in BERT: residual first, then the LayerNorm."""

    def __init__(self, config: DistilBertConfig) -> None:
        super().__init__()
        self.attention = MultiHeadSelfAttention(config)
        self.sa_layer_norm = nn.LayerNorm(config.dim, eps=LAYER_NORM_EPS)
        self.ffn = FFN(config)
        self.output_layer_norm = nn.LayerNorm(config.dim, eps=LAYER_NORM_EPS)

    def forward(self, x: Tensor, mask: Tensor | None) -> Tensor:
        x = self.sa_layer_norm(self.attention(x, mask) + x)
        return self.output_layer_norm(self.ffn(x) + x)


class Transformer(nn.Module):
    def __init__(self, config: DistilBertConfig) -> None:
        super().__init__()
        self.layer = nn.ModuleList(TransformerBlock(config) for _ in range(config.n_layers))

    def forward(self, x: Tensor, mask: Tensor | None) -> Tensor:
        for layer in self.layer:
            x = layer(x, mask)
        return x


# --------------------------------------------------------------------------- models


class DistilBertModel(nn.Module):
    """DistilBERT (Sanh et al., 2019, "DistilBERT, a distilled version of BERT: smaller, faster,
    cheaper and lighter"): token ids in, one hidden vector per token out."""

    def __init__(self, config: DistilBertConfig) -> None:
        super().__init__()
        self.embeddings = Embeddings(config)
        self.transformer = Transformer(config)

    def forward(self, input_ids: Tensor, attention_mask: Tensor | None = None) -> Tensor:
        """(batch, seq) ids -> (batch, seq, dim)."""
        return self.transformer(self.embeddings(input_ids), attention_mask_for_sdpa(attention_mask))


# The heads take `token_type_ids` only so that tasks can call BERT and DistilBERT alike;
# DistilBERT has no segment embeddings and ignores them.


class DistilBertForSequenceClassification(nn.Module):
    """DistilBERT with the first token's vector through `pre_classifier`, ReLU and `classifier`."""

    def __init__(self, config: DistilBertConfig, num_labels: int) -> None:
        super().__init__()
        self.distilbert = DistilBertModel(config)
        self.pre_classifier = nn.Linear(config.dim, config.dim)
        self.classifier = nn.Linear(config.dim, num_labels)

    def forward(
        self,
        input_ids: Tensor,
        attention_mask: Tensor | None = None,
        token_type_ids: Tensor | None = None,
    ) -> Tensor:
        """(batch, seq) ids -> (batch, num_labels) logits."""
        first = self.distilbert(input_ids, attention_mask)[:, 0]
        return self.classifier(F.relu(self.pre_classifier(first)))


class DistilBertForTokenClassification(nn.Module):
    """DistilBERT with every token's vector mapped to one logit per label."""

    def __init__(self, config: DistilBertConfig, num_labels: int) -> None:
        super().__init__()
        self.distilbert = DistilBertModel(config)
        self.classifier = nn.Linear(config.dim, num_labels)

    def forward(
        self,
        input_ids: Tensor,
        attention_mask: Tensor | None = None,
        token_type_ids: Tensor | None = None,
    ) -> Tensor:
        """(batch, seq) ids -> (batch, seq, num_labels) logits."""
        return self.classifier(self.distilbert(input_ids, attention_mask))


class DistilBertForQuestionAnswering(nn.Module):
    """DistilBERT scoring each token as the start and as the end of the answer span."""

    def __init__(self, config: DistilBertConfig, num_labels: int = 2) -> None:
        super().__init__()
        self.distilbert = DistilBertModel(config)
        self.qa_outputs = nn.Linear(config.dim, num_labels)

    def forward(
        self,
        input_ids: Tensor,
        attention_mask: Tensor | None = None,
        token_type_ids: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        """(batch, seq) ids -> start and end logits, each (batch, seq)."""
        logits = self.qa_outputs(self.distilbert(input_ids, attention_mask))
        return logits[..., 0], logits[..., 1]


HEADS: dict[str, type[nn.Module]] = {
    "sequence-classification": DistilBertForSequenceClassification,
    "token-classification": DistilBertForTokenClassification,
    "question-answering": DistilBertForQuestionAnswering,
}


# --------------------------------------------------------------------------- config and loading


@dataclass(frozen=True)
class DistilBertConfig:
    """The fields of a DistilBERT config.json that the model reads."""

    POSITIVE: ClassVar[frozenset[str]] = frozenset(
        {"vocab_size", "dim", "n_heads", "hidden_dim", "max_position_embeddings"}
    )
    vocab_size: int
    dim: int
    n_layers: int
    n_heads: int
    hidden_dim: int
    max_position_embeddings: int = 512
    activation: str = "gelu"

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DistilBertConfig:
        config = from_dict(cls, data)
        if config.dim % config.n_heads:
            raise CheckpointError(f"config.json: dim {config.dim} is not a multiple of n_heads {config.n_heads}")
        activation(config.activation, "activation")  # fail at load time, not on the first input
        return config


def adapt(state: StateDict, expected: set[str]) -> StateDict:
    """Add or strip the `distilbert.` prefix and drop the position-id buffer older files carry."""
    state = drop_keys(state, ("embeddings.position_ids",))
    return match_prefix(state, expected, "distilbert.")


def describe(config: DistilBertConfig) -> dict[str, Any]:
    """The architecture's sizes, for the app's "How it works" panel."""
    return {
        "layers": config.n_layers,
        "hidden_size": config.dim,
        "attention_heads": config.n_heads,
        "feed_forward_size": config.hidden_dim,
        "vocabulary_size": config.vocab_size,
        "max_positions": config.max_position_embeddings,
    }
