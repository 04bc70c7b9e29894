"""Exceptions a live input raises when it cannot run, each with a one-line message saying what to do.

The caller catches them, turns that modality off, shows the message and keeps the rest running.
``run_cli`` runs an offline tool's ``main``: Ctrl-C ends it with status 130 and one line, no traceback;
worker processes started under ``interrupts_left_to_parent`` ignore Ctrl-C, so none prints one either.
"""

import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import NoReturn, TypeVar

T = TypeVar("T")


class SourceError(RuntimeError):
    """An input (microphone, file, camera, stream) is missing, broken or unsupported."""


class ModelUnavailableError(SourceError):
    """A model a front-end needs (the Vosk ASR model, an encoder's file) is absent, cannot be fetched
    or does not load."""


def loaded_model(load: Callable[[], T]) -> T:
    """``load()``, a model file that is missing or does not load (the loaders' ``FileNotFoundError``
    and one-line ``ValueError``) raised as ``ModelUnavailableError``: the app turns the modality off."""
    try:
        return load()
    except (FileNotFoundError, ValueError) as e:
        raise ModelUnavailableError(one_line(e)) from e


class NonFiniteOutputError(RuntimeError):
    """The engine's output for a window had NaN/inf."""


def one_line(e: BaseException) -> str:
    """An exception's message on one line (its type's name when it has none), for a one-line error."""
    return " ".join(str(e).split()) or type(e).__name__


def run_cli(main: Callable[[], int | None]) -> NoReturn:
    """Exit with ``main()``'s status; on Ctrl-C, with 130 (128 + SIGINT) after one line on stderr."""
    try:
        status = main()
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    sys.exit(status)


@contextmanager
def interrupts_left_to_parent() -> Iterator[None]:
    """Processes started inside ignore Ctrl-C (they inherit it): it is left to this one, which stops them.

    Only the main thread sees Ctrl-C and may set its handler; elsewhere this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
