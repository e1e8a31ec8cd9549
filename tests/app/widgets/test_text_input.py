"""The text box: dropped files, unreadable files, and Qt's positions for Python's indices."""

from __future__ import annotations

from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QColor, QDropEvent

from app.widgets.text_input import TextInput, to_qt_position


def drop(box: TextInput, path) -> None:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    event = QDropEvent(
        QPointF(5, 5), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    )
    box.dropEvent(event)


def test_a_dropped_text_file_replaces_the_text(qtbot, tmp_path):
    box = TextInput("")
    qtbot.addWidget(box)
    path = tmp_path / "note.txt"
    path.write_text("dropped ünïcode text", encoding="utf-8")
    with qtbot.waitSignal(box.file_loaded):
        drop(box, path)
    assert box.toPlainText() == "dropped ünïcode text"


def test_an_unreadable_file_is_reported_and_the_text_kept(qtbot, tmp_path):
    box = TextInput("")
    qtbot.addWidget(box)
    box.setPlainText("keep me")
    path = tmp_path / "photo.txt"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe")
    with qtbot.waitSignal(box.file_error) as blocker:
        drop(box, path)
    assert "not UTF-8" in blocker.args[0]
    assert box.toPlainText() == "keep me"


def test_qt_positions_count_characters_beyond_the_bmp_twice():
    text = "😀a\nb"
    assert [to_qt_position(text, i) for i in range(len(text) + 1)] == [0, 2, 3, 4, 5]


def test_highlight_marks_python_spans(qtbot):
    box = TextInput("")
    qtbot.addWidget(box)
    text = "🎉 Ada 😀😀 London\nand Paris"
    box.setPlainText(text)
    spans = [(2, 5, QColor("yellow")), (9, 15, QColor("red")), (20, 25, QColor("blue"))]
    box.highlight(spans)
    assert [s.cursor.selectedText() for s in box.extraSelections()] == ["Ada", "London", "Paris"]


def test_a_file_beyond_the_text_bound_is_refused_without_reading_it_whole(qtbot, tmp_path):
    from engine.text import MAX_TEXT_BYTES

    box = TextInput("")
    qtbot.addWidget(box)
    box.setPlainText("keep me")
    huge = tmp_path / "huge.txt"
    with huge.open("wb") as f:
        f.truncate(MAX_TEXT_BYTES + 1)  # sparse: costs no disk
    with qtbot.waitSignal(box.file_error) as blocker:
        drop(box, huge)
    assert "10 MB" in blocker.args[0]
    assert box.toPlainText() == "keep me"
    with qtbot.waitSignal(box.file_error) as blocker:
        box.load_file(tmp_path)  # the open dialog's path can be anything: here a folder
    assert "folder" in blocker.args[0]
