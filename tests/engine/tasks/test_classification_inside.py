"""Image classification with `explain`: the internals equal what transformers computes on the
same pixels (ViT's attentions, ConvNeXT's feature maps and classifier), and with it off the
result is unchanged and nothing is kept."""

import json

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import (
    ConvNextForImageClassification,
    ConvNextImageProcessorPil,
    ViTForImageClassification,
    ViTImageProcessorPil,
)

from engine import cli, probe
from engine.image_processing import input_region, read_processor_config
from engine.tasks.image_classification import ImageClassification
from tests.engine.tasks.test_image_classification import save_convnext, save_vit

PHOTO = (120, 80)  # (width, height): wider than tall, so the crop of ConvNeXT's processor shows


@pytest.fixture(scope="module")
def photo(tmp_path_factory):
    rng = np.random.default_rng(0)
    path = tmp_path_factory.mktemp("photo") / "photo.png"
    Image.fromarray(rng.integers(0, 256, (PHOTO[1], PHOTO[0], 3), dtype=np.uint8)).save(path)
    return path


@pytest.fixture(scope="module")
def vit(tmp_path_factory):
    folder = save_vit(tmp_path_factory.mktemp("vit"))
    return ImageClassification.load(folder, device="cpu"), folder


@pytest.fixture(scope="module")
def convnext(tmp_path_factory):
    folder = save_convnext(tmp_path_factory.mktemp("convnext"))
    return ImageClassification.load(folder, device="cpu"), folder


def pixels(folder, processor_class, photo):
    return processor_class.from_pretrained(folder)(images=Image.open(photo), return_tensors="pt")["pixel_values"]


@pytest.mark.parametrize("name", ["vit", "convnext"])
def test_explain_off_changes_nothing_and_keeps_nothing(request, photo, name, monkeypatch):
    task, _ = request.getfixturevalue(name)
    plain = task.run(photo, top_k=7)
    probes = []
    watching = probe.watching
    monkeypatch.setattr(probe, "watching", lambda *a, **k: probes.append(a) or watching(*a, **k))
    off = task.run(photo, top_k=7, explain=False)
    assert off.to_json() == plain.to_json() and off.internals == {}
    assert probes == [] and probe.active() is None  # off, no probe is made: nothing can be kept
    on = task.run(photo, top_k=7, explain=True)  # the explicit softmax path: float32 rounding apart
    assert_same_answer(on.to_json(), plain.to_json())
    assert on.internals and len(probes) == 1 and probe.active() is None


def assert_same_answer(ours, expected):
    assert [e["label"] for e in ours] == [e["label"] for e in expected]
    np.testing.assert_allclose([e["score"] for e in ours], [e["score"] for e in expected], rtol=0, atol=1e-6)


def test_vit_cls_attention_and_rollout_equal_transformers_attentions(vit, photo):
    task, folder = vit
    reference = ViTForImageClassification.from_pretrained(folder, attn_implementation="eager").eval()
    with torch.no_grad():
        out = reference(pixel_values=pixels(folder, ViTImageProcessorPil, photo), output_attentions=True)
    attentions = torch.cat(out.attentions)  # (layers, heads, tokens, tokens)
    # rollout as Abnar & Zuidema write it, from the full matrices: mean over heads, half the
    # identity for the residual, multiplied from the first layer up
    flow = torch.eye(attentions.shape[-1])
    for layer in attentions:
        flow = (0.5 * layer.mean(0) + 0.5 * torch.eye(len(flow))) @ flow

    inside = task.run(photo, explain=True).internals
    assert set(inside) == {"cls_attention", "rollout", "grid", "logits", "map_region"}
    assert inside["cls_attention"].shape == (2, 4, 16) and inside["cls_attention"].dtype == np.float32
    np.testing.assert_allclose(inside["cls_attention"], attentions[:, :, 0, 1:].numpy(), rtol=0, atol=1e-6)
    np.testing.assert_allclose(inside["rollout"], flow[0, 1:].numpy(), rtol=0, atol=1e-6)
    np.testing.assert_allclose(inside["logits"], out.logits[0].numpy(), rtol=0, atol=1e-5)
    assert inside["grid"].tolist() == [4, 4]
    assert inside["map_region"].tolist() == [0, 0, *PHOTO]  # ViT's processor squeezes the whole photo


def test_convnext_maps_come_from_transformers_features(convnext, photo):
    task, folder = convnext
    reference = ConvNextForImageClassification.from_pretrained(folder).eval()
    with torch.no_grad():
        out = reference(pixel_values=pixels(folder, ConvNextImageProcessorPil, photo), output_hidden_states=True)
    result = task.run(photo, top_k=3, explain=True)
    inside = result.internals
    labels = [reference.config.id2label[int(i)] for i in inside["cam_classes"]]
    assert labels == [entry["label"] for entry in result.labels]
    last = out.hidden_states[-1][0]  # (C, h, w)
    np.testing.assert_allclose(inside["features"], last.numpy(), rtol=1e-3, atol=1e-3)  # float16
    assert inside["features"].dtype == np.float16 and inside["cam"].shape == (3, *last.shape[-2:])
    bias = reference.classifier.bias[inside["cam_classes"]].detach().numpy()
    logits = out.logits[0, inside["cam_classes"]].numpy()
    np.testing.assert_allclose(inside["cam"].mean((-2, -1)), logits - bias, rtol=0, atol=1e-5)
    np.testing.assert_allclose(inside["cam_bias"], bias)
    for stage, hidden in enumerate(out.hidden_states[1:], start=1):  # [0] is the stem's output
        np.testing.assert_allclose(inside[f"stage_{stage}"], hidden[0].mean(0).numpy(), rtol=0, atol=1e-5)
    # 80 px short side -> 73, crop 64: the crop's window, back in the photo's pixels
    config = read_processor_config(folder)
    np.testing.assert_allclose(inside["map_region"], input_region(PHOTO[1], PHOTO[0], config), rtol=0, atol=1e-4)
    x0, y0, x1, y1 = inside["map_region"]
    assert 0 < x0 < x1 < PHOTO[0] and 0 <= y0 < y1 <= PHOTO[1]


def test_cli_explain_writes_npy_files_that_load_back(vit, photo, tmp_path, capsys):
    task, folder = vit
    code = cli.main(["image-classification", str(photo), "--model", str(folder), "--device", "cpu",
                     "--explain", str(tmp_path / "inside")])
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    assert_same_answer(printed["result"], task.run(photo).to_json())
    expected = task.run(photo, explain=True).internals
    assert set(printed["internals"]) == set(expected)
    for name, path in printed["internals"].items():
        np.testing.assert_array_equal(np.load(path), expected[name])
