"""The Vosk model zip is checked against its pinned sha256 and size before anything is unpacked:
real HTTP downloads from a local server (the tests run offline)."""

from __future__ import annotations

import functools
import hashlib
import http.server
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from realtime.core.errors import ModelUnavailableError
from realtime.frontends.asr import DEFAULT_MODEL_URL, MODEL_ENV, MODEL_PINS, resolve_vosk_model


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, tuple[str, int]]]:
    """(url of a tiny model zip served on 127.0.0.1, its true (sha256, size))."""
    folder = tmp_path / "served"
    folder.mkdir()
    archive = folder / "vosk-model-tiny.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("vosk-model-tiny/am/final.mdl", b"acoustic model")
        z.writestr("vosk-model-tiny/conf/model.conf", b"--beam=10.0\n")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            yield (f"http://127.0.0.1:{server.server_address[1]}/{archive.name}",
                   (hashlib.sha256(archive.read_bytes()).hexdigest(), archive.stat().st_size))
        finally:
            server.shutdown()


@pytest.fixture(autouse=True)
def _no_env_model(monkeypatch):
    monkeypatch.delenv(MODEL_ENV, raising=False)


def test_the_default_model_is_pinned():
    sha256, size = MODEL_PINS[DEFAULT_MODEL_URL]
    assert len(sha256) == 64 and int(sha256, 16) and size > 1 << 20


def test_the_pinned_zip_unpacks(tmp_path, served):
    url, pin = served
    path = resolve_vosk_model(cache_dir=tmp_path / "cache", url=url, pin=pin)
    assert path == tmp_path / "cache" / "vosk-model-tiny"
    assert (path / "am" / "final.mdl").read_bytes() == b"acoustic model"
    assert [p.name for p in (tmp_path / "cache").iterdir()] == ["vosk-model-tiny"]  # no temporary left
    offline = "http://127.0.0.1:9/vosk-model-tiny.zip"  # nothing listens there: the cached copy answers
    assert resolve_vosk_model(cache_dir=tmp_path / "cache", url=offline) == path


@pytest.mark.parametrize("wrong", ["sha256", "size", "larger"])
def test_a_zip_that_differs_from_its_pin_is_refused_and_nothing_is_unpacked(tmp_path, served, wrong):
    url, (sha256, size) = served
    pin = {"sha256": ("0" * 64, size), "size": (sha256, size + 1), "larger": (sha256, size - 1)}[wrong]
    with pytest.raises(ModelUnavailableError) as e:
        resolve_vosk_model(cache_dir=tmp_path / "cache", url=url, pin=pin)
    message = str(e.value)
    assert "\n" not in message and url in message and "not the pinned" in message
    assert list((tmp_path / "cache").iterdir()) == []  # no model, no partial download


def test_an_unpinned_url_is_not_downloaded(tmp_path, served):
    url, _ = served
    with pytest.raises(ModelUnavailableError, match="no sha256 is pinned") as e:
        resolve_vosk_model(cache_dir=tmp_path / "cache", url=url)
    assert "\n" not in str(e.value) and not (tmp_path / "cache").exists()
