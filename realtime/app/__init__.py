"""The live app: ``App`` (``app``) runs the thread loops (``loops``) from sources to the overlay;
``AppConfig`` and the tunables (``config``), ``DataClock`` (``data_clock``), ``Stats`` (``stats``)."""

from realtime.app.app import App
from realtime.app.config import AppConfig

__all__ = ["App", "AppConfig"]
