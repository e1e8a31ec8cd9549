"""The image-classification tab's "Inside the model" view through the real worker: closed, runs
keep nothing; opened on a result, the picture runs again with internals, and the heat map
follows the chosen layer, head, rollout (ViT) or class (ConvNeXT)."""

from __future__ import annotations

import numpy as np

from tests.app.tabs.vision_fixtures import (  # noqa: F401 (fixtures)
    WAIT_MS,
    images,
    tab_of,
    vision_models,
    wait_for_result,
    window,
)


def open_inside(qtbot, tab):
    """Open the view and wait for the re-run that brings the internals."""
    tab.inside_panel.set_open(True)
    qtbot.waitUntil(lambda: not tab.is_busy() and bool(tab.current.outcome.result.internals), timeout=WAIT_MS)
    return tab.current.outcome.result


def test_vit_view_follows_layer_head_and_rollout(qtbot, window, images):
    tab = tab_of(qtbot, window, "image-classification")
    tab.open_path(images / "still_life.jpg")
    closed = wait_for_result(qtbot, tab, "still_life.jpg")
    assert closed.internals == {}  # the view is closed: nothing kept

    result = open_inside(qtbot, tab)
    vit = tab.inside.vit
    assert tab.inside.currentWidget() is vit
    attention = result.internals["cls_attention"]  # (2 layers, 4 heads, 16 patches)
    assert vit.layer.currentText() == "2 of 2" and vit.head.currentText() == "Average of heads"
    np.testing.assert_allclose(vit.view.values(), attention[1].mean(0).reshape(4, 4), rtol=1e-6)

    vit.head.setCurrentIndex(3)
    np.testing.assert_allclose(vit.view.values(), attention[1, 2].reshape(4, 4))
    vit.layer.setCurrentIndex(0)
    np.testing.assert_allclose(vit.view.values(), attention[0, 2].reshape(4, 4))
    vit.layer.setCurrentIndex(2)  # the rollout: no head to choose
    np.testing.assert_allclose(vit.view.values(), result.internals["rollout"].reshape(4, 4))
    assert not vit.head.isEnabled() and "rollout" in vit.about.text()
    assert vit.logits.text().count("<tr>") == 5 and "orange" in vit.logits.text()

    tab.inside_panel.set_open(False)
    tab.run()
    qtbot.waitUntil(lambda: not tab.is_busy(), timeout=WAIT_MS)
    assert tab.current.outcome.result.internals == {}  # closed again: runs keep nothing


def test_convnext_view_shows_the_chosen_class_map_and_the_stages(qtbot, window, images, vision_models):
    tab = tab_of(qtbot, window, "image-classification")
    tab.inside_panel.set_open(True)
    tab.picker.choose(str(vision_models["convnext"]))
    tab.open_path(images / "still_life.jpg")
    qtbot.waitUntil(
        lambda: tab.current.outcome is not None and "cam" in tab.current.outcome.result.internals
        and not tab.is_busy(), timeout=WAIT_MS,
    )
    view = tab.inside.convnext
    assert tab.inside.currentWidget() is view
    inside = tab.current.outcome.result.internals
    labels = [entry["label"] for entry in tab.current.outcome.result.labels]
    assert [view.label.itemText(i) for i in range(view.label.count())] == labels
    np.testing.assert_allclose(view.view.values(), inside["cam"][0])
    view.label.setCurrentIndex(2)
    np.testing.assert_allclose(view.view.values(), inside["cam"][2])
    assert labels[2] in view.about.text()
    mean, bias = float(inside["cam"][2].mean()), float(inside["cam_bias"][2])
    logit = float(inside["logits"][inside["cam_classes"][2]])
    assert f"{mean:.2f}, plus the classifier's bias, {bias:.2f}, is the logit, {logit:.2f}" in view.about.text()
    assert view.stages.count() == 4 + 1  # four stage maps and the stretch after them


def test_the_class_map_says_when_a_lower_precision_moved_the_logit(qtbot):
    """In bf16 or int8 the run's logit and the float32 map's mean plus bias differ a little: the
    view says so instead of claiming they are equal."""
    from types import SimpleNamespace

    from PySide6.QtCore import QSize

    from app.tabs.classification_inside import ConvNextInside

    view = ConvNextInside()
    qtbot.addWidget(view)
    maps = np.full((1, 2, 2), 1.5, dtype=np.float32)
    internals = {"cam": maps, "cam_classes": np.array([3]), "cam_bias": np.array([0.25], np.float32),
                 "logits": np.array([0, 0, 0, 1.80], np.float32), "map_region": np.array([0, 0, 4, 4], np.float32)}
    view.show_result(SimpleNamespace(internals=internals, labels=[{"label": "cat", "score": 0.9}]), None, QSize(4, 4))
    assert "comes to 1.75, near the logit, 1.80" in view.about.text()
    internals["logits"][3] = 1.75
    view.show_result(SimpleNamespace(internals=internals, labels=[{"label": "cat", "score": 0.9}]), None, QSize(4, 4))
    assert "is the logit, 1.75" in view.about.text()
