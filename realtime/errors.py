"""Exceptions a live input raises when it cannot run, each with a one-line message saying what to do.

The caller catches them, turns that modality off, shows the message and keeps the rest running.
"""


class SourceError(RuntimeError):
    """An input (microphone, file, camera, stream) is missing, broken or unsupported."""


class ModelUnavailableError(SourceError):
    """A model a front-end needs (e.g. the Vosk ASR model) is absent and cannot be fetched."""


def one_line(e: BaseException) -> str:
    """An exception's message on one line (its type's name when it has none), for a one-line error."""
    return " ".join(str(e).split()) or type(e).__name__
