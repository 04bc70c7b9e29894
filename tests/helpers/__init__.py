"""What several test folders use: where things are (``paths``), running ``main.py`` as a user does and
checking what a run leaves (``mainrun``), a private sound server and spoken test audio (``pulse``),
and the offline tools' entry points (``offline_tools``). ``tests/`` is on ``sys.path`` (``conftest.py``
lives there), so tests import ``helpers.<module>``."""
