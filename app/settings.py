"""What the app remembers between sessions, in QSettings: the window's state is kept by the
window itself; each tab's model, recent models, options and panel state live here."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QSettings

MAX_RECENT = 8


def as_bool(value: Any, default: bool = False) -> bool:
    """INI files hand back "true"/"false" strings; native stores hand back bools."""
    if value is None:
        return default
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes")
    return bool(value)


class TabSettings:
    """One tab's saved state, under `tabs/<task>/` in `settings`."""

    def __init__(self, settings: QSettings, task: str) -> None:
        self._settings = settings
        self._prefix = f"tabs/{task}/"

    def _get(self, name: str, default: Any = None) -> Any:
        return self._settings.value(self._prefix + name, default)

    def _set(self, name: str, value: Any) -> None:
        self._settings.setValue(self._prefix + name, value)

    def model(self) -> str:
        return str(self._get("model", "") or "")

    def set_model(self, ref: str) -> None:
        self._set("model", ref)

    def recent(self) -> list[str]:
        value = self._get("recent", [])
        # one-element lists come back from INI files as a plain string
        return [value] if isinstance(value, str) else [str(v) for v in value or []]

    def remember(self, ref: str) -> None:
        """`ref` loaded fine: make it the tab's model and the first of the recent ones."""
        self.set_model(ref)
        self._set("recent", ([ref] + [r for r in self.recent() if r != ref])[:MAX_RECENT])

    def options(self, names: list[str]) -> dict[str, Any]:
        """Saved option values; "" stands for None (INI files cannot hold None)."""
        saved = {}
        for name in names:
            value = self._get(f"options/{name}")
            if value is not None:
                saved[name] = None if value == "" else value
        return saved

    def save_options(self, values: dict[str, Any]) -> None:
        for name, value in values.items():
            self._set(f"options/{name}", "" if value is None else value)

    def value(self, name: str, default: Any = None) -> Any:
        """A tab's own extra state (e.g. the QA tab's question)."""
        return self._get(f"state/{name}", default)

    def set_value(self, name: str, value: Any) -> None:
        self._set(f"state/{name}", value)

    def how_open(self) -> bool:
        return as_bool(self._get("how_open"), default=True)

    def set_how_open(self, open_: bool) -> None:
        self._set("how_open", open_)
