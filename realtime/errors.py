"""Exceptions a live input raises when it cannot run, each with a one-line message saying what to do.

The caller catches them, turns that modality off, shows the message and keeps the rest running.
"""


class SourceError(RuntimeError):
    """An input (microphone, file, camera, stream) is missing, broken or unsupported."""


class ModelUnavailableError(SourceError):
    """A model a front-end needs (e.g. the Vosk ASR model) is absent and cannot be fetched."""
