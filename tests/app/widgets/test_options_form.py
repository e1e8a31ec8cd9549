"""The options form: one widget per engine option, values read back as the engine takes them."""

from __future__ import annotations

from PySide6.QtWidgets import QComboBox, QSpinBox

from app.widgets.options_form import OptionsForm
from engine.tasks.base import Option

OPTIONS = (
    Option("do_sample", bool, None, "draw tokens"),
    Option("early_stopping", str, None, "when beams stop", ("true", "false", "never")),
    Option("max_new_tokens", int, None, "how many"),
    Option("top_k", int, None, "how many labels"),
    Option("aggregation", str, "simple", "how", ("none", "simple")),
)


def test_options_without_a_default_read_auto_until_set(qtbot):
    form = OptionsForm()
    qtbot.addWidget(form)
    form.set_options(OPTIONS)
    assert form.values() == {"do_sample": None, "early_stopping": None, "max_new_tokens": None,
                             "top_k": None, "aggregation": "simple"}
    assert isinstance(form.widget("do_sample"), QComboBox)
    assert form.widget("do_sample").currentText() == "auto"
    assert form.widget("max_new_tokens").specialValueText() == "auto"
    assert form.widget("top_k").specialValueText() == "all"
    form.set_values({"do_sample": False, "early_stopping": "never", "max_new_tokens": 40, "top_k": 3})
    assert form.values() == {"do_sample": False, "early_stopping": "never", "max_new_tokens": 40,
                             "top_k": 3, "aggregation": "simple"}
    form.set_values({"do_sample": None, "early_stopping": None, "max_new_tokens": None})
    assert form.values()["do_sample"] is None and form.values()["early_stopping"] is None
    assert form.values()["max_new_tokens"] is None


def test_a_bool_with_a_default_stays_a_check_box(qtbot):
    form = OptionsForm()
    qtbot.addWidget(form)
    form.set_options((Option("return_full_text", bool, True, "prompt first"),))
    assert not isinstance(form.widget("return_full_text"), (QComboBox, QSpinBox))
    assert form.values() == {"return_full_text": True}
