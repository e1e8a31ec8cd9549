"""The activation table every model file reads config.json's activation names through."""

import pytest
import torch
import torch.nn.functional as F

from engine.errors import CheckpointError
from engine.models.common import activation


@pytest.mark.parametrize(
    "name, expected",
    [
        ("gelu", lambda x: F.gelu(x)),  # the exact erf form
        ("gelu_new", lambda x: F.gelu(x, approximate="tanh")),
        ("gelu_pytorch_tanh", lambda x: F.gelu(x, approximate="tanh")),
        ("relu", F.relu),
        ("silu", F.silu),
        ("swish", F.silu),
    ],
)
def test_known_names_give_their_functions(name, expected):
    x = torch.linspace(-4, 4, 101)
    torch.testing.assert_close(activation(name)(x), expected(x), rtol=0, atol=0)


def test_exact_and_tanh_gelu_differ():
    x = torch.linspace(-4, 4, 101)
    assert not torch.equal(activation("gelu")(x), activation("gelu_new")(x))


def test_an_unknown_name_names_the_key_and_the_known_ones():
    with pytest.raises(CheckpointError) as info:
        activation("mish", "feat_extract_activation")
    message = str(info.value)
    assert "feat_extract_activation 'mish' in config.json is not a supported activation" in message
    assert "gelu, gelu_new, gelu_pytorch_tanh, relu, silu, swish" in message
