"""BERT: a post-LayerNorm Transformer encoder over WordPiece tokens, with the three heads the text
tasks use (sequence classification, token classification, extractive question answering).

Module names follow the Hub checkpoints (`bert.embeddings.word_embeddings`,
`bert.encoder.layer.N.attention.self.query`, ...), so their tensors load unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from engine.checkpoint import StateDict, drop_keys, match_prefix
from engine.config import from_dict
from engine.errors import CheckpointError
from engine.models.common import activation, attend


def attention_mask_for_sdpa(attention_mask: Tensor | None) -> Tensor | None:
    """The tokenizer's (batch, seq) 1/0 mask as a boolean (batch, 1, 1, seq) mask over keys, or
    None when nothing is padded, which lets SDPA take its fastest path."""
    if attention_mask is None or bool(attention_mask.all()):
        return None
    return attention_mask.bool()[:, None, None, :]


# --------------------------------------------------------------------------- building blocks


class BertEmbeddings(nn.Module):
    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden_size)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, input_ids: Tensor, token_type_ids: Tensor | None) -> Tensor:
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        x = (
            self.word_embeddings(input_ids)
            + self.position_embeddings(positions)
            + self.token_type_embeddings(token_type_ids)
        )
        return self.LayerNorm(x)


class BertSelfAttention(nn.Module):
    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.num_heads = config.num_attention_heads
        self.query = nn.Linear(config.hidden_size, config.hidden_size)
        self.key = nn.Linear(config.hidden_size, config.hidden_size)
        self.value = nn.Linear(config.hidden_size, config.hidden_size)

    def forward(self, x: Tensor, mask: Tensor | None) -> Tensor:
        batch, seq, hidden = x.shape
        # (batch, seq, hidden) -> (batch, heads, seq, head_dim)
        q, k, v = (
            proj(x).view(batch, seq, self.num_heads, -1).transpose(1, 2)
            for proj in (self.query, self.key, self.value)
        )
        out = attend(self, q, k, v, mask)
        # (batch, heads, seq, head_dim) -> (batch, seq, hidden)
        return out.transpose(1, 2).reshape(batch, seq, hidden)


class BertSelfOutput(nn.Module):
    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, attended: Tensor, residual: Tensor) -> Tensor:
        return self.LayerNorm(self.dense(attended) + residual)


class BertAttention(nn.Module):
    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.self = BertSelfAttention(config)
        self.output = BertSelfOutput(config)

    def forward(self, x: Tensor, mask: Tensor | None) -> Tensor:
        return self.output(self.self(x, mask), x)


class BertIntermediate(nn.Module):
    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.intermediate_size)
        self.act = activation(config.hidden_act)

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.dense(x))


class BertOutput(nn.Module):
    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(config.intermediate_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, expanded: Tensor, residual: Tensor) -> Tensor:
        return self.LayerNorm(self.dense(expanded) + residual)


class BertLayer(nn.Module):
    """Post-LN: each sub-layer adds its residual and then normalises."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.attention = BertAttention(config)
        self.intermediate = BertIntermediate(config)
        self.output = BertOutput(config)

    def forward(self, x: Tensor, mask: Tensor | None) -> Tensor:
        x = self.attention(x, mask)
        return self.output(self.intermediate(x), x)


class BertEncoder(nn.Module):
    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.layer = nn.ModuleList(BertLayer(config) for _ in range(config.num_hidden_layers))

    def forward(self, x: Tensor, mask: Tensor | None) -> Tensor:
        for layer in self.layer:
            x = layer(x, mask)
        return x


class BertPooler(nn.Module):
    """The [CLS] vector through a dense layer and tanh, trained on next-sentence prediction."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)

    def forward(self, hidden: Tensor) -> Tensor:
        return torch.tanh(self.dense(hidden[:, 0]))


# --------------------------------------------------------------------------- models


class BertModel(nn.Module):
    """BERT (Devlin et al., 2019, "BERT: Pre-training of Deep Bidirectional Transformers for
    Language Understanding"): token ids in, one hidden vector per token out."""

    def __init__(self, config: BertConfig, *, with_pooler: bool = False) -> None:
        super().__init__()
        self.embeddings = BertEmbeddings(config)
        self.encoder = BertEncoder(config)
        self.pooler = BertPooler(config) if with_pooler else None

    def forward(
        self,
        input_ids: Tensor,
        attention_mask: Tensor | None = None,
        token_type_ids: Tensor | None = None,
    ) -> Tensor:
        """(batch, seq) ids -> (batch, seq, hidden)."""
        x = self.embeddings(input_ids, token_type_ids)
        return self.encoder(x, attention_mask_for_sdpa(attention_mask))


class BertForSequenceClassification(nn.Module):
    """BERT with the pooled [CLS] vector mapped to one logit per label."""

    def __init__(self, config: BertConfig, num_labels: int) -> None:
        super().__init__()
        self.bert = BertModel(config, with_pooler=True)
        self.classifier = nn.Linear(config.hidden_size, num_labels)

    def forward(
        self,
        input_ids: Tensor,
        attention_mask: Tensor | None = None,
        token_type_ids: Tensor | None = None,
    ) -> Tensor:
        """(batch, seq) ids -> (batch, num_labels) logits."""
        hidden = self.bert(input_ids, attention_mask, token_type_ids)
        pooler = self.bert.pooler
        if pooler is None:  # __init__ builds the encoder with_pooler=True
            raise RuntimeError("BertForSequenceClassification's encoder has no pooler")
        return self.classifier(pooler(hidden))


class BertForTokenClassification(nn.Module):
    """BERT with every token's hidden vector mapped to one logit per label."""

    def __init__(self, config: BertConfig, num_labels: int) -> None:
        super().__init__()
        self.bert = BertModel(config)
        self.classifier = nn.Linear(config.hidden_size, num_labels)

    def forward(
        self,
        input_ids: Tensor,
        attention_mask: Tensor | None = None,
        token_type_ids: Tensor | None = None,
    ) -> Tensor:
        """(batch, seq) ids -> (batch, seq, num_labels) logits."""
        return self.classifier(self.bert(input_ids, attention_mask, token_type_ids))


class BertForQuestionAnswering(nn.Module):
    """BERT scoring each token as the start and as the end of the answer span."""

    def __init__(self, config: BertConfig, num_labels: int = 2) -> None:
        super().__init__()
        self.bert = BertModel(config)
        self.qa_outputs = nn.Linear(config.hidden_size, num_labels)

    def forward(
        self,
        input_ids: Tensor,
        attention_mask: Tensor | None = None,
        token_type_ids: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        """(batch, seq) ids -> start and end logits, each (batch, seq)."""
        logits = self.qa_outputs(self.bert(input_ids, attention_mask, token_type_ids))
        return logits[..., 0], logits[..., 1]


HEADS: dict[str, type[nn.Module]] = {
    "sequence-classification": BertForSequenceClassification,
    "token-classification": BertForTokenClassification,
    "question-answering": BertForQuestionAnswering,
}


# --------------------------------------------------------------------------- config and loading


@dataclass(frozen=True)
class BertConfig:
    """The fields of a BERT config.json that the model reads."""

    POSITIVE: ClassVar[frozenset[str]] = frozenset(
        {"vocab_size", "hidden_size", "num_attention_heads", "intermediate_size", "max_position_embeddings",
         "type_vocab_size"}
    )  # fmt: skip
    vocab_size: int
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    intermediate_size: int
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    hidden_act: str = "gelu"
    layer_norm_eps: float = 1e-12

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BertConfig:
        config = from_dict(cls, data)
        if config.hidden_size % config.num_attention_heads:
            raise CheckpointError(
                f"config.json: hidden_size {config.hidden_size} is not a multiple of "
                f"num_attention_heads {config.num_attention_heads}"
            )
        activation(config.hidden_act)  # fail at load time, not on the first input
        return config


def adapt(state: StateDict, expected: set[str]) -> StateDict:
    """Fit the Hub's BERT files to our heads: add or strip the `bert.` prefix, drop the position
    and token-type buffers older files carry, and the pooler where the head does not use it
    (token classification and QA files come with or without one)."""
    state = drop_keys(state, ("embeddings.position_ids", "embeddings.token_type_ids"))
    state = match_prefix(state, expected, "bert.")
    if not any(".pooler." in "." + k for k in expected):
        state = {k: v for k, v in state.items() if ".pooler." not in "." + k}
    return state


def describe(config: BertConfig) -> dict[str, Any]:
    """The architecture's sizes, for the app's "How it works" panel."""
    return {
        "layers": config.num_hidden_layers,
        "hidden_size": config.hidden_size,
        "attention_heads": config.num_attention_heads,
        "feed_forward_size": config.intermediate_size,
        "vocabulary_size": config.vocab_size,
        "max_positions": config.max_position_embeddings,
    }
