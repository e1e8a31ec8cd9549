"""Checkpoint loading: file formats, legacy names, strict keys and the errors people see."""

import json

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from engine.checkpoint import load_model, match_prefix
from engine.errors import CheckpointError
from engine.tasks.base import find_family
from engine.tasks.text_common import FAMILIES as TEXT_FAMILIES


class Tiny(nn.Module):
    """Stands in for a model: a base under `base.` and a head, like BERT's layout."""

    def __init__(self) -> None:
        super().__init__()
        self.base = nn.ModuleDict({"proj": nn.Linear(4, 3), "LayerNorm": nn.LayerNorm(3)})
        self.head = nn.Linear(3, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.base["LayerNorm"](self.base["proj"](x)))


def reference_state() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return {k: v.clone() for k, v in Tiny().state_dict().items()}


def write_config(folder, **extra):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps({"model_type": "tiny", **extra}))


def adapt_prefix(state, expected):
    return match_prefix(state, expected, "base.")


@pytest.fixture
def checkpoint(tmp_path):
    folder = tmp_path / "ckpt"
    write_config(folder)
    save_file(reference_state(), str(folder / "model.safetensors"))
    return folder


def assert_loaded_equal(model: nn.Module) -> None:
    loaded = model.state_dict()
    for key, value in reference_state().items():
        torch.testing.assert_close(loaded[key], value, rtol=0, atol=0)
    assert not model.training


def test_safetensors_loads_exactly(checkpoint):
    assert_loaded_equal(load_model(Tiny, checkpoint))


def test_pytorch_bin_through_weights_only(tmp_path):
    folder = tmp_path / "bin"
    write_config(folder)
    torch.save(reference_state(), folder / "pytorch_model.bin")
    assert_loaded_equal(load_model(Tiny, folder))


def test_bin_with_pickled_code_is_refused(tmp_path):
    folder = tmp_path / "evil"
    write_config(folder)
    torch.save({"head.weight": torch.zeros(2, 3), "hook": print}, folder / "pytorch_model.bin")
    with pytest.raises(CheckpointError, match="weights-only"):
        load_model(Tiny, folder)


def test_sharded_safetensors(tmp_path):
    folder = tmp_path / "sharded"
    write_config(folder)
    state = reference_state()
    keys = sorted(state)
    shards = {"model-00001-of-00002.safetensors": keys[:2], "model-00002-of-00002.safetensors": keys[2:]}
    for name, part in shards.items():
        save_file({k: state[k] for k in part}, str(folder / name))
    index = {"weight_map": {k: name for name, part in shards.items() for k in part}}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    assert_loaded_equal(load_model(Tiny, folder))


def test_sharded_with_a_missing_shard_names_it(tmp_path):
    folder = tmp_path / "sharded"
    write_config(folder)
    index = {"weight_map": {"head.weight": "model-00001-of-00001.safetensors"}}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    with pytest.raises(CheckpointError, match="model-00001-of-00001.safetensors"):
        load_model(Tiny, folder)


def test_legacy_gamma_beta_layer_norm_names(tmp_path):
    folder = tmp_path / "legacy"
    write_config(folder)
    state = reference_state()
    state["base.LayerNorm.gamma"] = state.pop("base.LayerNorm.weight")
    state["base.LayerNorm.beta"] = state.pop("base.LayerNorm.bias")
    save_file(state, str(folder / "model.safetensors"))
    assert_loaded_equal(load_model(Tiny, folder))


def test_checkpoint_without_the_base_prefix(tmp_path):
    folder = tmp_path / "bare"
    write_config(folder)
    state = {k.removeprefix("base."): v for k, v in reference_state().items()}
    save_file(state, str(folder / "model.safetensors"))
    assert_loaded_equal(load_model(Tiny, folder, adapt=adapt_prefix))


def test_truncated_safetensors_is_a_clear_error(checkpoint):
    path = checkpoint / "model.safetensors"
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        load_model(Tiny, checkpoint)


def test_folder_that_is_not_a_checkpoint(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(CheckpointError, match="holds no weights"):
        load_model(Tiny, tmp_path)


def test_missing_and_unexpected_keys_are_named(tmp_path):
    folder = tmp_path / "other"
    write_config(folder)
    state = reference_state()
    del state["head.bias"]
    state["decoder.weight"] = torch.zeros(1)
    save_file(state, str(folder / "model.safetensors"))
    with pytest.raises(CheckpointError) as info:
        load_model(Tiny, folder)
    assert "missing 1 keys (head.bias)" in str(info.value)
    assert "1 unexpected keys (decoder.weight)" in str(info.value)


def test_shape_mismatch_names_the_key(tmp_path):
    folder = tmp_path / "shape"
    write_config(folder)
    state = reference_state()
    state["head.weight"] = torch.zeros(5, 3)
    save_file(state, str(folder / "model.safetensors"))
    with pytest.raises(CheckpointError, match=r"head.weight has shape \(5, 3\)"):
        load_model(Tiny, folder)


def test_integer_values_for_a_float_parameter_name_the_key(tmp_path):
    folder = tmp_path / "ints"
    write_config(folder)
    state = reference_state()
    state["head.weight"] = state["head.weight"].long()
    save_file(state, str(folder / "model.safetensors"))
    with pytest.raises(CheckpointError, match="head.weight holds torch.int64 values"):
        load_model(Tiny, folder)


def test_half_precision_casts_floating_tensors_only(checkpoint):
    model = load_model(Tiny, checkpoint, dtype=torch.bfloat16)
    assert model.head.weight.dtype == torch.bfloat16


class Offsets(nn.Module):
    """A block with a buffer computed from its size, not stored in the checkpoint (as a
    relative position index would be), but no `init_buffers` to compute it after loading."""

    def __init__(self, size: int = 3) -> None:
        super().__init__()
        self.size = size
        self.proj = nn.Linear(size, size)
        self.register_buffer("offsets", self._offsets(torch.device("meta")), persistent=False)

    def _offsets(self, device: torch.device) -> torch.Tensor:
        positions = torch.arange(self.size, device=device)
        return positions[:, None] - positions[None, :]  # (size, size)


class OffsetsWithHook(Offsets):
    def init_buffers(self, device: torch.device) -> None:
        self.offsets = self._offsets(device)


class Nested(nn.Module):
    """Blocks below the root, where `load_model` must still find them."""

    def __init__(self, block: type[nn.Module] = OffsetsWithHook) -> None:
        super().__init__()
        self.blocks = nn.ModuleList([block(), block()])


@pytest.fixture
def offsets_checkpoint(tmp_path):
    folder = tmp_path / "offsets"
    write_config(folder)
    torch.manual_seed(0)
    state = {k: v.clone() for k, v in Nested().state_dict().items()}
    assert not any("offsets" in k for k in state)  # non-persistent: not in the file
    save_file(state, str(folder / "model.safetensors"))
    return folder


def test_init_buffers_fills_computed_buffers_after_loading(offsets_checkpoint):
    model = load_model(Nested, offsets_checkpoint, device="cpu", dtype=torch.bfloat16)
    expected = torch.tensor([[0, -1, -2], [1, 0, -1], [2, 1, 0]])
    for block in model.blocks:
        assert block.offsets.device == torch.device("cpu")
        assert torch.equal(block.offsets, expected)
        assert "offsets" in dict(block.named_buffers())  # still a buffer, still not saved
        assert "offsets" not in block.state_dict()
        assert block.proj.weight.dtype == torch.bfloat16


def test_init_buffers_receives_the_load_device(offsets_checkpoint):
    seen = []

    class Recording(Nested):
        def init_buffers(self, device: torch.device) -> None:
            seen.append(device)

    load_model(Recording, offsets_checkpoint, device="cpu")
    assert seen == [torch.device("cpu")]


def test_a_computed_buffer_without_init_buffers_is_a_bug(offsets_checkpoint):
    with pytest.raises(RuntimeError, match="meta device.*blocks.0.offsets"):
        load_model(lambda: Nested(Offsets), offsets_checkpoint)


def test_wrong_architecture_names_both():
    with pytest.raises(CheckpointError) as info:
        find_family(
            {"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"]},
            TEXT_FAMILIES,
            "sequence-classification",
            "text-classification",
        )
    message = str(info.value)
    assert "gpt2 (GPT2LMHeadModel)" in message and "bert, distilbert" in message
