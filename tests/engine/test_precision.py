"""Precisions without a task: resolving a choice on a device (with the hardware check
injected), int8 quantisation of linear layers, and what the weights then count."""

import pytest
import torch
from torch import nn

from engine import precision
from engine.errors import InputError
from engine.precision import Precision, candidates, learned_tensors, quantize, quantized_layers, resolve_precision

CPU = torch.device("cpu")


def yes(_device):
    return True


def no(_device):
    return False


@pytest.mark.parametrize("name", ["fp32", "fp16", "bf16", "int8"])
def test_each_name_resolves_to_itself_where_the_hardware_has_it(name):
    chosen = resolve_precision(name, CPU, has_native_bf16=yes, has_int8=yes)
    assert chosen == Precision(name) and chosen.label() == name


def test_none_is_fp32_and_int8_computes_in_float32():
    assert resolve_precision(None, CPU) == Precision("fp32")
    assert Precision("int8").dtype == torch.float32 and Precision("int8").quantized
    assert Precision("bf16").dtype == torch.bfloat16 and not Precision("bf16").quantized


def test_bf16_without_native_support_falls_back_to_fp32_with_a_message():
    chosen = resolve_precision("bf16", CPU, has_native_bf16=no)
    assert chosen.name == "fp32" and chosen.dtype == torch.float32
    assert "no native bf16" in chosen.note and chosen.label() == "fp32 (bf16 unavailable)"


def test_int8_off_the_cpu_falls_back_to_fp32_with_a_message():
    chosen = resolve_precision("int8", torch.device("cuda"))
    assert chosen.name == "fp32" and "cuda" in chosen.note


def test_unknown_names_and_auto_are_input_errors():
    with pytest.raises(InputError, match="unknown precision 'fp8'"):
        resolve_precision("fp8", CPU)
    with pytest.raises(InputError, match="measured on a model"):
        resolve_precision("auto", CPU)


def test_candidates_are_what_the_device_runs_well_most_exact_first():
    assert [p.name for p in candidates(CPU, has_native_bf16=yes, has_int8=yes)] == ["fp32", "bf16", "int8"]
    assert [p.name for p in candidates(CPU, has_native_bf16=no, has_int8=yes)] == ["fp32", "int8"]
    assert [p.name for p in candidates(torch.device("cuda"), has_native_bf16=yes)] == ["fp32", "bf16", "fp16"]


def test_the_default_bf16_check_reads_the_cpu(monkeypatch):
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    assert not precision.native_bf16(CPU)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True)
    assert precision.native_bf16(CPU)


def mlp():
    torch.manual_seed(0)
    return nn.Sequential(nn.LayerNorm(64), nn.Linear(64, 256), nn.GELU(), nn.Linear(256, 8)).eval()


# without AVX512-VNNI, 8-bit inputs may saturate torch's kernels: `quantize` never uses them there
NEEDS_VNNI = pytest.mark.skipif(not precision.vnni(), reason="8-bit inputs need AVX512-VNNI")


@pytest.mark.parametrize("full_range", [False, pytest.param(True, marks=NEEDS_VNNI)])
def test_quantize_replaces_every_linear_layer_and_stays_close(full_range):
    model = mlp()
    x = torch.randn(16, 64)
    with torch.inference_mode():
        expected = model(x)
        numbers = sum(t.numel() for t in learned_tensors(model))
        assert quantize(model, full_range=full_range) is model
        got = model(x)
    assert quantized_layers(model) == 2 and not any(isinstance(m, nn.Linear) for m in model.modules())
    assert got.shape == expected.shape and got.dtype == torch.float32
    assert (got - expected).abs().max() < 0.05 * expected.abs().max()
    assert sum(t.numel() for t in learned_tensors(model)) == numbers  # int8 weights still count
    int8_weights = [t for t in learned_tensors(model) if t.dtype == torch.qint8]
    assert [tuple(t.shape) for t in int8_weights] == [(256, 64), (8, 256)]
    assert all(t.qscheme() == torch.per_channel_affine for t in int8_weights)


@NEEDS_VNNI
def test_full_range_inputs_round_less_than_seven_bits():
    x = torch.randn(64, 64)
    errors = {}
    for full_range in (False, True):
        model = mlp()
        with torch.inference_mode():
            expected = model[1](x)
            errors[full_range] = (quantize(model, full_range=full_range)[1](x) - expected).abs().mean()
    assert errors[True] < 0.75 * errors[False]


class Merging(nn.Module):
    """A module whose forward reads one linear layer's weights (to merge them), as SegFormer's
    decode head does, and calls another."""

    keep_float = ("read",)

    def __init__(self):
        super().__init__()
        self.read = nn.Linear(16, 16)
        self.called = nn.Linear(16, 16)

    def forward(self, x):
        return self.called(x @ self.read.weight.T)


def test_layers_a_module_reads_stay_float_and_the_rest_are_quantised():
    model = nn.Sequential(Merging(), nn.Linear(16, 4)).eval()
    x = torch.randn(3, 16)
    with torch.inference_mode():
        expected = model(x)
        quantize(model)
        got = model(x)
    assert isinstance(model[0].read, nn.Linear) and quantized_layers(model) == 2
    assert (got - expected).abs().max() < 0.05 * expected.abs().max()
