"""`python -m app` on a machine where Qt cannot load: one clear line naming what to install,
not a traceback. (Runs without Qt: main() stops before importing it.)"""

from __future__ import annotations

import app.__main__ as launcher


def test_a_missing_qt_library_is_one_line_that_says_what_to_install(monkeypatch, capsys):
    monkeypatch.setattr(launcher, "qt_missing", lambda: "libGL.so.1: cannot open shared object file")
    assert launcher.main([]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "libGL.so.1" in err and "apt-get install" in err and "libgl1" in err
