"""The voice front-end's model: emotion from the last 4 s of voice features, and per-step features for DMD.

Input is the audio part of a ``Window``: audio (B, T, 323) float32 (``realtime.frontends.voice``: 64
running-normalised log-mel values, voice activity, normalised pitch and periodicity, then 256 GE2E
states, 25 Hz; T = 100 for a 4 s window, the spec without ``audio_norm``) and mask (B, T) bool. For every present step the
encoder gives ``out_dim`` features::

    [ embed_dim per-step embedding ; 7 emotion log-probabilities of the whole window (LABELS order) ]

and zeros at absent steps (an all-absent window gives all zeros). ``reliability`` says how far the
window's answer is to be trusted, 0 (not at all) .. 1::

    reliability = confidence * familiarity
    confidence  = (max softmax(logits / T) - 1/7) / (1 - 1/7)   # T fitted on validation speakers
    familiarity = sigmoid((d_ref - d) / d_scale)                 # d: Mahalanobis distance of the pooled
                                                                 # trunk features to the training windows'

``d_ref`` is the 95th percentile of d over the validation speakers and ``d_scale`` a third of its
distance from their median (``realtime.offline.voice_encoder fit-reliability``): a voice unlike the
ones trained on, or an answer the encoder is unsure of, says so, and the recognizer leans on the
other modalities (``dmd_lite.recognizer``). An encoder whose reliability was never fitted has T = 1
and familiarity 1.

What it is (133 k parameters, 0.5 MiB float32; the file is 2.5 MB with the reliability's 704 x 704
precision matrix): two branches whose pooled features one linear classifier reads.
The trunk: the log-mel values minus their mean over the window's present steps (per-window
cepstral-mean normalisation: removes the microphone's colouring and part of the speaker's timbre,
keeps the contour) with activity, pitch and periodicity, through a 1-D conv trunk over time (conv 5 to
``channels``, then residual dilated convs 3 with dilations 2, 4, 8; BatchNorm, ReLU, absent steps
zeroed after every layer), masked mean + standard deviation pooling. The GE2E states: masked mean +
standard deviation pooling, then BatchNorm (a pretrained network's states, which carry emotion to
corpora the trunk never heard). Dropout and the classifier over both; after training, the
classifier's GE2E columns and bias also take a strongly regularised linear read-out of the pooled
states (``realtime.offline.voice_encoder.fit_readout``: it carries to unheard corpora better than the
trained weights alone), so inference is one linear layer as before. The embedding is a 1x1 conv
of the trunk and the GE2E states. Conv, BatchNormalization, Relu, ReduceSum, Sqrt, Gemm,
LogSoftmax, Concat, Transpose, Slice and element-wise ops, no data-dependent loops: exported with
``torch.onnx.export`` at opset 17, onnxruntime matches torch within 3e-6.

Training, data and the CLI: ``realtime.offline.voice_encoder``; results: MODEL_CARD.md.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from realtime.core.feature_spec import (FEATURE_RATE_HZ, GE2E_DIM, GE2E_START, LABELS, N_MELS, VOICE_FEATURE_DIM,
                                        FeatureSpec)
from realtime.core.resources import shipped
from realtime.nets.weights import checked_sidecar, load_weights

WEIGHTS_PATH = shipped("models/voice_encoder.safetensors")

DILATIONS = (1, 2, 4, 8)  # of the trunk's blocks, first to last
STD_EPS = 1e-5  # inside the square root of the pooled variance
UNFITTED_REF = 1e4  # d_ref of an encoder whose reliability was never fitted: every voice familiar


@dataclass(frozen=True)
class VoiceConfig:
    channels: int = 96  # width of the conv trunk
    depth: int = 4  # conv blocks, at most len(DILATIONS)
    embed_dim: int = 32  # per-step embedding handed to the fused model
    dropout: float = 0.3  # before the classifier


# ---------------------------------------------------------------- model

class ConvBlock(nn.Module):
    """Conv1d -> BatchNorm -> ReLU with absent steps zeroed; residual when the width is kept."""

    def __init__(self, c_in: int, c_out: int, kernel: int, dilation: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(c_in, c_out, kernel, padding=dilation * (kernel // 2), dilation=dilation, bias=False)
        self.bn = nn.BatchNorm1d(c_out)
        self.residual = c_in == c_out

    def forward(self, x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        """x (B, C_in, T), m (B, 1, T) float -> (B, C_out, T)."""
        y = F.relu(self.bn(self.conv(x))) * m
        return x + y if self.residual else y


class VoiceEncoder(nn.Module):
    """Voice window -> per-step [embedding ; window emotion log-probs], and window emotion logits."""

    def __init__(self, cfg: VoiceConfig = VoiceConfig()) -> None:
        super().__init__()
        if not 1 <= cfg.depth <= len(DILATIONS):
            raise ValueError(f"VoiceConfig.depth must be in 1..{len(DILATIONS)}, got {cfg.depth}")
        self.cfg = cfg
        self.out_dim = cfg.embed_dim + len(LABELS)
        c = cfg.channels
        self.blocks = nn.ModuleList([ConvBlock(GE2E_START, c, 5, 1)]
                                    + [ConvBlock(c, c, 3, d) for d in DILATIONS[1:cfg.depth]])
        self.ge2e_norm = nn.BatchNorm1d(2 * GE2E_DIM)
        self.embed = nn.Conv1d(c + GE2E_DIM, cfg.embed_dim, 1)
        pooled = 2 * c + 2 * GE2E_DIM
        self.head = nn.Sequential(nn.Dropout(cfg.dropout), nn.Linear(pooled, len(LABELS)))
        # reliability (module docstring): pooled features' mean and precision, [T, d_ref, d_scale]
        self.register_buffer("pooled_mean", torch.zeros(pooled))
        self.register_buffer("pooled_precision", torch.zeros(pooled, pooled))
        self.register_buffer("reliability_fit", torch.tensor([1.0, UNFITTED_REF, 1.0]))

    def _trunk(self, audio: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """audio (B, T, 323), mask (B, T) -> trunk features (B, C, T), GE2E states (B, 256, T), both zero
        at absent steps, and the float mask (B, 1, T)."""
        m = mask.to(audio.dtype).unsqueeze(1)  # (B, 1, T)
        x = audio.transpose(1, 2) * m  # (B, 323, T), absent steps zero whatever they held
        n = m.sum(2, keepdim=True).clamp_min(1.0)  # (B, 1, 1)
        mel = x[:, :N_MELS]
        mel = (mel - mel.sum(2, keepdim=True) / n) * m  # (B, 64, T) minus the window's mean
        h = torch.cat([mel, x[:, N_MELS:GE2E_START]], 1)
        for block in self.blocks:
            h = block(h, m)
        return h, x[:, GE2E_START:], m

    @staticmethod
    def _pooled(h: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        """Masked mean and std over time of h (B, C, T) -> (B, 2C)."""
        w = m / m.sum(2, keepdim=True).clamp_min(1.0)  # (B, 1, T), sums to 1 over present steps
        mean = (h * w).sum(2)  # (B, C)
        var = ((h - mean.unsqueeze(2)).square() * w).sum(2)  # (B, C)
        return torch.cat([mean, (var + STD_EPS).sqrt()], 1)

    def _both_pooled(self, h: torch.Tensor, g: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        """(B, 2C + 512): the trunk's pooled features and the GE2E states' pooled and normalised."""
        return torch.cat([self._pooled(h, m), self.ge2e_norm(self._pooled(g, m))], 1)

    def pooled(self, audio: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """audio (B, T, 323), mask (B, T) -> (B, 2C + 512) pooled features (what the classifier reads)."""
        return self._both_pooled(*self._trunk(audio, mask))

    def _reliability(self, pooled: torch.Tensor, logits: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        """(B,) reliability from pooled features (B, 2C + 512) and logits (B, 7); 0 without a present step."""
        t, d_ref, d_scale = self.reliability_fit.unbind()
        k = logits.shape[1]
        confidence = ((logits / t).softmax(1).amax(1) - 1 / k) / (1 - 1 / k)
        d = mahalanobis(pooled - self.pooled_mean, self.pooled_precision)
        return confidence * familiarity(d, d_ref, d_scale) * (m.sum((1, 2)) > 0).to(pooled.dtype)

    def classify(self, audio: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """audio (B, T, 323) float32, mask (B, T) bool -> (B, 7) emotion logits of the window."""
        return self.head(self.pooled(audio, mask))

    def encode(self, audio: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """audio (B, T, 323) float32, mask (B, T) bool -> per-step features (B, T, out_dim), zero at
        absent steps, and the window's reliability (B,) (module docstring)."""
        h, g, m = self._trunk(audio, mask)
        pooled = self._both_pooled(h, g, m)
        logits = self.head(pooled)
        log_probs = logits.log_softmax(1).unsqueeze(2) * m  # (B, 7, T)
        features = torch.cat([self.embed(torch.cat([h, g], 1)) * m, log_probs], 1).transpose(1, 2)
        return features, self._reliability(pooled, logits, m)

    def forward(self, audio: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """audio (B, T, 323) float32, mask (B, T) bool -> (B, T, out_dim), zero at absent steps."""
        return self.encode(audio, mask)[0]

    def reliability(self, audio: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """audio (B, T, 323) float32, mask (B, T) bool -> (B,) reliability, 0 .. 1."""
        return self.encode(audio, mask)[1]


def mahalanobis(z: torch.Tensor, precision: torch.Tensor) -> torch.Tensor:
    """(N, D) offsets from the mean -> (N,) their Mahalanobis distances under ``precision`` (D, D)."""
    return ((z @ precision) * z).sum(1).clamp_min(0.0).sqrt()


def familiarity(d: torch.Tensor, d_ref: torch.Tensor | float, d_scale: torch.Tensor | float) -> torch.Tensor:
    """Distances -> familiarity, 0 .. 1: one half at ``d_ref``, falling over ``d_scale``."""
    return torch.sigmoid((d_ref - d) / d_scale)


def _meta_contract() -> dict:
    """What the weights were made for; loading refuses anything else."""
    spec = FeatureSpec()
    return {"labels": list(LABELS), "audio_dim": VOICE_FEATURE_DIM, "audio_rate_hz": FEATURE_RATE_HZ,
            "audio_steps": spec.audio_steps, "audio_norm": None}


def load_voice_encoder(path: Path | str = WEIGHTS_PATH) -> VoiceEncoder:
    """The shipped encoder in eval mode (float32), checked against its JSON sidecar."""
    path = Path(path)
    meta = checked_sidecar(path, _meta_contract(), "voice encoder",
                           "python -m realtime.voice_encoder train-corpora --data <the shared data folder>")
    known = {f.name for f in fields(VoiceConfig)}
    if not isinstance(meta.get("config"), dict) or set(meta["config"]) != known:
        raise ValueError(f"{path.with_suffix('.json')}: config {meta.get('config')!r} does not have the fields {sorted(known)}; retrain")
    return load_weights(VoiceEncoder(VoiceConfig(**meta["config"])), path)


# ---------------------------------------------------------------- data
