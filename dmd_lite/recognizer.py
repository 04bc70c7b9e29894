"""The shipped emotion model: one window of front-end features -> emotion, valence and GD-Unit edges.

The frozen voice encoder (``realtime.nets.voice_encoder``) turns the window's voice features into
per-step features; DMD-lite fuses them with the visual features (blendshapes, head pose,
expression CNN) and the words' (the text front-end's, ``realtime.frontends.text_frontend``, made once per
utterance outside the window). It is one module so that training (which pre-encodes the voice
pools once and trains ``dmd``), the app and the exported graph all run the same code.

Inputs, batch first (shapes from the ``FeatureSpec``; masks True where a step is present)::

    visual (B, 60, 127) float32   visual_mask (B, 60) bool
    audio  (B, 100, 323) float32  audio_mask  (B, 100) bool
    text   (B, 24, 40)  float32   text_mask   (B, 24) bool

Outputs: ``probabilities`` (B, K) (temperature-scaled softmax), ``valence`` (B,) in [-1, 1],
``edges_homo`` and ``edges_hetero`` (B, 6) GD-Unit edge weights in ``gd_unit.EDGE_NAMES`` order,
``voice_reliability`` (B,) in [0, 1] (the voice encoder's, 0 without voice).

A voice that is not to be trusted does not override the others: DMD answers each window twice, as
it is and without its voice (one pass over the two stacked as a batch of 2B, cheaper at batch 1 than
two passes), and the answer with the voice and the recognizer's answer without it (probabilities,
valence, edges; a face or words left alone get their encoder's) are mixed with the voice's weight
``min(1, voice_reliability / VOICE_FULL_TRUST)`` (``voice_weight``, ``combine``); a window with
nothing but a voice keeps the voice's answer.

A modality alone is answered by its own encoder; DMD answers windows of two or three. Words alone:
the text encoder's emotion log-probabilities at the last word, at their own temperature, and as
valence the mean of its sentiment valence and the expectation of ``LABEL_VALENCE`` under those
probabilities, so the valence leans with the shown label. A voice alone: the voice encoder's window
log-probabilities at the temperature fitted with its reliability. A face alone: the expression CNN's
probabilities (the last K visual features, as ``realtime.frontends.face`` lays them out) averaged
over the window's frames, so an expression held across the window outweighs one that passes. Voice
and face take as valence the expectation of ``LABEL_VALENCE`` under those probabilities. The fusion
reads those same features, so alone it can at best match them, and it learned each lone modality
from its fit set's few people where the encoder learned from every training speaker, utterance or
face (MODEL_CARD.md has the figures).

A checkpoint is a directory (``realtime/data/models/default`` is the shipped one): ``model.safetensors`` holds
the DMD weights (``dmd.``), the voice encoder's (``voice.``) and the two temperatures; ``config.json``
the DMD config, the FeatureSpec (with its normalisation), the voice encoder's config and whatever
the recipe recorded (seed, data, metrics).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import torch
from torch import Tensor, nn

from realtime.core.feature_spec import LABEL_VALENCE, FeatureSpec
from realtime.core.modalities import VOICE_FULL_TRUST
from realtime.core.resources import shipped
from realtime.nets.text_encoder import own_answer
from realtime.nets.voice_encoder import VoiceConfig, VoiceEncoder

from .checkpoint import load_model, read_config, write_checkpoint
from .config import DMDConfig
from .model import DMD, last_present

DEFAULT_CHECKPOINT = shipped("models/default")
def voice_weight(reliability: Tensor, visual_mask: Tensor, audio_mask: Tensor, text_mask: Tensor) -> Tensor:
    """(B,) weight of the answer with the voice against the one without: min(1, reliability /
    VOICE_FULL_TRUST) (``realtime.core.modalities.voice_trust``) where another modality is present, 1
    where the voice is alone (or nothing is)."""
    others = visual_mask.any(1) | text_mask.any(1)
    return torch.where(others & audio_mask.any(1), (reliability / VOICE_FULL_TRUST).clamp(max=1.0),
                       torch.ones_like(reliability))


def with_and_without_voice(visual: Tensor, visual_mask: Tensor, voice: Tensor, audio_mask: Tensor, text: Tensor,
                           text_mask: Tensor) -> list[Tensor]:
    """A batch of B windows (the recognizer's inputs, raw or encoded voice) -> 2B: the windows as they
    are, then the same windows without their voice (zeros, no step present), for one pass over both."""
    def twice(x: Tensor) -> Tensor:
        return torch.cat([x, x])

    def silenced(x: Tensor) -> Tensor:
        return torch.cat([x, torch.zeros_like(x)])

    return [twice(visual), twice(visual_mask), silenced(voice), silenced(audio_mask), twice(text), twice(text_mask)]


def mix(weight: Tensor, with_voice: Tensor, without_voice: Tensor) -> Tensor:
    """weight (B,) * with_voice (B, ...) + (1 - weight) * without_voice."""
    w = weight
    for _ in range(with_voice.dim() - 1):  # unsqueeze, not reshape(-1, ...): exported shapes stay static
        w = w.unsqueeze(-1)
    return w * with_voice + (1 - w) * without_voice


def present_mean(x: Tensor, mask: Tensor) -> Tensor:
    """(B, T, e) -> (B, e): the mean over each window's present steps (zeros where none is)."""
    m = mask.unsqueeze(-1).to(x.dtype)
    return (x * m).sum(1) / m.sum(1).clamp_min(1.0)


def words_answer(words: Tensor, text_mask: Tensor) -> tuple[Tensor, Tensor]:
    """The text encoder's own answer at each window's last word: per-slot word features (B, T, D),
    oldest first -> emotion log-probabilities (B, K) and valence (B,)."""
    return own_answer(last_present(words, text_mask))


def voice_answer(voice: Tensor, audio_mask: Tensor, temperature: Tensor, k: int) -> Tensor:
    """The voice encoder's own answer inside its per-step features (B, T, out_dim): probabilities (B, k)
    at ``temperature`` (the last k features of every present step hold the same log-probabilities)."""
    return (present_mean(voice[..., -k:], audio_mask) / temperature).softmax(-1)


def face_answer(visual: Tensor, visual_mask: Tensor, mean: Tensor, std: Tensor) -> Tensor:
    """The expression CNN's probabilities (B, k) averaged over each window's present frames, from the
    normalised visual features (B, T, D) whose last k values are its probabilities; ``mean`` and
    ``std`` (k,) undo their normalisation."""
    k = len(mean)
    probs = (present_mean(visual[..., -k:], visual_mask) * std + mean).clamp_min(0.0)
    return probs / probs.sum(-1, keepdim=True).clamp_min(1e-6)


class Recognizer(nn.Module):
    """Frozen voice encoder + DMD-lite; ``forward`` takes a batch of windows (see the module docstring)."""

    def __init__(self, dmd: DMD, voice: VoiceEncoder, spec: FeatureSpec) -> None:
        super().__init__()
        self.dmd, self.voice, self.spec = dmd, voice, spec
        self.register_buffer("temperature", torch.ones(()))  # of DMD's logits
        self.register_buffer("text_temperature", torch.ones(()))  # of the text encoder's, for words alone
        # a lone modality's answer (``lone_answers``): each label's valence, the CNN probabilities' normalisation
        k, norm = len(spec.labels), spec.visual_norm
        self.register_buffer("label_valence", torch.tensor([LABEL_VALENCE[c] for c in spec.labels]), persistent=False)
        self.register_buffer("face_mean", torch.tensor(norm.mean[-k:] if norm else [0.0] * k), persistent=False)
        self.register_buffer("face_std", torch.tensor(norm.std[-k:] if norm else [1.0] * k), persistent=False)
        for p in voice.parameters():
            p.requires_grad_(False)

    @property
    def labels(self) -> tuple[str, ...]:
        return self.spec.labels

    def forward(self, visual: Tensor, visual_mask: Tensor, audio: Tensor, audio_mask: Tensor,
                text: Tensor, text_mask: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        voice, reliability = self.voice.encode(audio, audio_mask)
        answers = self.answer(*with_and_without_voice(visual, visual_mask, voice, audio_mask, text, text_mask))
        with_voice, without = zip(*(a.chunk(2) for a in answers))
        return (*self.combine(with_voice, without, reliability, visual, voice, visual_mask, audio_mask, text_mask),
                reliability)

    def unmixed(self, visual: Tensor, visual_mask: Tensor, audio: Tensor, audio_mask: Tensor, text: Tensor,
                text_mask: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """DMD's answer with the voice, whatever its reliability, a lone face or voice too (what the fused
        kernels compute)."""
        return self.answer(visual, visual_mask, self.voice(audio, audio_mask), audio_mask, text, text_mask)

    def answer(self, visual: Tensor, visual_mask: Tensor, voice: Tensor, audio_mask: Tensor, text: Tensor,
               text_mask: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """One DMD pass over encoded voice features (B, T_a, out_dim): probabilities, valence and edges."""
        words = text * text_mask.unsqueeze(-1).to(text.dtype)  # (B, T_l, text_dim), zero at empty slots
        out = self.dmd(words, voice, visual, text_mask, audio_mask, visual_mask)
        return *self.decide(out.logits, words, visual_mask, audio_mask, text_mask), out.edges_homo, out.edges_hetero

    def decide(self, logits: Tensor, words: Tensor, visual_mask: Tensor, audio_mask: Tensor, text_mask: Tensor,
               temperature: bool = True) -> tuple[Tensor, Tensor]:
        """DMD's output (B, K + 1) and the window's word features (B, T, D) -> probabilities (B, K)
        (softmax at the checkpoint's temperatures, or at 1) and valence (B,) in [-1, 1]; words alone
        get the text encoder's answer (module docstring)."""
        k = len(self.labels)
        fused_scale, text_scale = (self.temperature, self.text_temperature) if temperature else (1.0, 1.0)
        text_log_probs, text_valence = words_answer(words, text_mask)  # (B, K), (B,)
        text_probs = (text_log_probs / text_scale).softmax(-1)
        lone_words = text_mask.any(1) & ~audio_mask.any(1) & ~visual_mask.any(1)  # (B,)
        probs = torch.where(lone_words.unsqueeze(1), text_probs, (logits[:, :k] / fused_scale).softmax(-1))
        words_valence = (text_valence + text_probs @ self.label_valence) / 2
        return probs, torch.where(lone_words, words_valence, logits[:, k].clamp(-1.0, 1.0))

    def combine(self, with_voice: Sequence[Tensor], without: Sequence[Tensor], reliability: Tensor, visual: Tensor,
                voice: Tensor, visual_mask: Tensor, audio_mask: Tensor, text_mask: Tensor,
                temperature: bool = True) -> tuple[Tensor, ...]:
        """The window's answer from DMD's answers (probabilities, valence, then the edges) with and without
        its voice: the one without is what the recognizer answers with the voice removed (a face or words
        left alone get their encoder's answer), the two are mixed by the voice's weight (``voice_weight``),
        and a window with a face or a voice alone gets its encoder's answer (``lone_answers``; each
        encoder's answer is taken once, the voice's at its fitted temperature or at 1)."""
        scale = self.voice.reliability_fit[0] if temperature else torch.ones(())
        face = face_answer(visual, visual_mask, self.face_mean, self.face_std)
        heard = voice_answer(voice, audio_mask, scale, len(self.labels))
        silent = torch.zeros_like(audio_mask)
        without = (*self.lone_answers(*without[:2], face, heard, visual_mask, silent, text_mask), *without[2:])
        w = voice_weight(reliability, visual_mask, audio_mask, text_mask)
        probs, valence, *edges = (mix(w, a, b) for a, b in zip(with_voice, without))
        return (*self.lone_answers(probs, valence, face, heard, visual_mask, audio_mask, text_mask), *edges)

    def lone_answers(self, probs: Tensor, valence: Tensor, face: Tensor, heard: Tensor, visual_mask: Tensor,
                     audio_mask: Tensor, text_mask: Tensor) -> tuple[Tensor, Tensor]:
        """The answer (probabilities (B, K), valence (B,)) with each window that holds a face alone or a
        voice alone answered by that modality's encoder instead (module docstring): ``face`` and
        ``heard`` (B, K) are the expression CNN's and the voice encoder's probabilities."""
        has_face, has_voice, has_words = visual_mask.any(1), audio_mask.any(1), text_mask.any(1)
        lone_face, lone_voice = has_face & ~has_voice & ~has_words, has_voice & ~has_face & ~has_words
        own = torch.where(lone_face.unsqueeze(1), face, heard)
        alone = lone_face | lone_voice
        return torch.where(alone.unsqueeze(1), own, probs), torch.where(alone, own @ self.label_valence, valence)


def save_recognizer(model: Recognizer, directory: str | Path, **extra: object) -> Path:
    """Write a checkpoint directory; ``extra`` (JSON-serialisable) goes into config.json."""
    meta = {"model": model.dmd.cfg.to_dict(), "feature_spec": model.spec.to_dict(),
            "voice_encoder": asdict(model.voice.cfg), **extra}
    return write_checkpoint(model, directory, meta, "dmd_lite.recognizer")


def resolve_checkpoint(name: str | Path) -> Path:
    """``default`` -> the shipped model; anything else is a checkpoint directory."""
    return DEFAULT_CHECKPOINT if str(name) == "default" else Path(name)


def load_recognizer(name: str | Path = "default", device: str = "cpu") -> tuple[Recognizer, dict]:
    """(model in eval mode, config.json contents); refuses weights that are damaged or do not fit the config."""
    directory = resolve_checkpoint(name)
    meta = read_config(directory)
    if "feature_spec" not in meta or "voice_encoder" not in meta:
        raise ValueError(f"{directory} is a bare DMD checkpoint, not a recognizer; load it with dmd_lite.checkpoint")
    return load_model(directory, meta, build_recognizer, device), meta


def build_recognizer(meta: dict) -> Recognizer:
    """An untrained recognizer shaped as a checkpoint's config.json says."""
    return Recognizer(DMD(DMDConfig.from_dict(meta["model"])), VoiceEncoder(VoiceConfig(**meta["voice_encoder"])),
                      FeatureSpec.from_dict(meta["feature_spec"]))
