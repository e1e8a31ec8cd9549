"""Errors the engine raises on purpose. Each message is written for the person using the app."""


class EngineError(Exception):
    """Base class: the message is complete and safe to show as it is."""


class InputError(EngineError):
    """The input or an option given to a task cannot be used."""


class CheckpointError(EngineError):
    """A checkpoint folder is missing files, corrupt, or of another architecture."""


class ModelUnavailable(EngineError):
    """A Hub model is not cached and cannot be downloaded (offline, unknown id, no access)."""


class Cancelled(EngineError):
    """The caller asked the running job to stop."""

    def __init__(self, message: str = "cancelled") -> None:
        super().__init__(message)
