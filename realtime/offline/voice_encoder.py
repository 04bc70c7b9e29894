"""The voice encoder's training and evaluation: on RAVDESS alone, and across the five speech corpora.

On RAVDESS alone (``train``, ``evaluate``): RAVDESS speech
(24 actors, 1,440 clips, "calm" counted as neutral), actors 1-16 train, 17-20 validate (model
selection only), 21-24 test. Training windows are the ones the live app takes: one every hop
(0.5 s) back from the end of each clip, so they hold the whole sentence or only its start;
validation and test score the window ending at each clip's last step. AdamW (weight decay 1e-2),
one-cycle learning rate up to 2e-3, 25 epochs of batches of 64, label smoothing 0.1; augmentation per
window: a random shift of up to 1 s (the window ends earlier in the clip), a random gain and
spectral tilt of the log-mel values, 2 frequency masks of up to 8 bins and 2 time masks of up to 10
steps (SpecAugment); the last epoch's weights are kept.

Trained on RAVDESS (CC BY-NC-SA 4.0), and across corpora on the other speech corpora too: the
weights are for non-commercial use.

CLI::

    python -m realtime.voice_encoder train --extraction ~/.cache/dmd-realtime/default/extract/ravdess  # RAVDESS alone
    python -m realtime.voice_encoder evaluate --extraction ~/.cache/dmd-realtime/default/extract/ravdess
    python -m realtime.voice_encoder fit-reliability [--weights W] [--data ../shared/data]  # in place
    python -m realtime.voice_encoder fit-readout --weights W --data ../shared/data  # in place
    python -m realtime.voice_encoder evaluate-corpora --data ../shared/data [--view live]  # every corpus's test speakers

``evaluate-corpora``: ``realtime.offline.cross_corpus`` (RAVDESS, nEMO, TESS, TurEV-DB, URDU).

Across corpora (``train-corpora``, ``loco``; weights go to the user cache unless ``--out`` says
otherwise; the shipped encoder is ``train-corpora`` of all five, the same as ``loco``'s last model): the
train speakers of several corpora
together (``speech_corpora`` splits), the final window of each clip and up to 2 earlier hops, each
clip as heard in its speaker's session, as heard alone (a cold start: ``realtime.extract
--clips-alone``) and in its session under live conditions (``offline.live_conditions``; left out
with ``--no-live-conditions``); an epoch draws as many windows as one view holds; each
window's cross-entropy over its own corpus's classes only (a class the corpus lacks is missing, not
a negative); each epoch draws its windows so that a corpus's share goes with its size ** 0.5;
``CORPORA_AUGMENT`` (the above, stronger masking, a noise floor in the log-mel values, speed changes,
a mel-axis warp, and 15 % of the windows with their log-mel values zeroed, the pitch, periodicity and
voice activity left); 20 epochs of 128, one-cycle up to 3e-3; the epoch with the best mean UAR (own
classes) on the corpora's validation speakers (their sessions) is kept; then a linear read-out of the
pooled GE2E states (a multinomial logistic regression over the 7 labels, the corpora weighted as
drawn, L2 penalty C = 0.01) is fitted on the training windows and added to the
classifier (``fit_readout``), and the reliability is fitted on the validation speakers; the log
also holds the validation speakers' UAR with every clip heard alone (``cold_uar``).
``fit-readout`` does the read-out step to weights trained before it existed.
``loco``: for each corpus, a model of the others scored on its test speakers (7-way answers;
``restricted``: its own classes only), their mean, then the model of all of them on each one's test
speakers::

    python -m realtime.voice_encoder train-corpora --data ../shared/data --out realtime/data/models/voice_encoder.safetensors  # ships
    python -m realtime.voice_encoder loco --data ../shared/data  # -> ~/.cache/dmd-realtime/voice_encoder/loco/
"""

from __future__ import annotations

import argparse
import functools
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from dmd_lite.emotion_data import Pool, concat_pools, sequence_pool
from dmd_lite.metrics import classification_metrics, fit_temperature
from realtime.core.feature_spec import GE2E_DIM, LABELS, N_MELS, FeatureSpec
from realtime.nets.voice_encoder import (WEIGHTS_PATH, VoiceConfig, VoiceEncoder, _meta_contract, load_voice_encoder,
                                        mahalanobis)
from realtime.nets.model_files import write_model_files
from realtime.core.errors import SourceError, one_line
from realtime.core.resources import cache_dir
from realtime.offline.cli import add_command, report_confusion, train_evaluate_parser
from realtime.offline.cross_corpus import (LIVE_SEED, VIEWS, VOICE_CORPORA, evaluate_corpora, extract_view,
                                           score_corpus, split_pool, window_logits)
from realtime.offline.speech_corpora import CorpusError, classes, corpus_clips
from realtime.offline.datasets import TEST_ACTORS, TRAIN_ACTORS, VAL_ACTORS, actor_of


def load_windows(extraction: Path, actors: tuple[int, ...], every_hop: bool) -> Pool:
    """Labelled RAVDESS windows of ``actors``: one every hop back along each clip, or the final one."""
    def accept(r: dict) -> bool:
        return r["status"] == "ok" and r.get("label") in LABELS and actor_of(r["speaker"]) in actors

    return sequence_pool(extraction, "audio", accept, FeatureSpec(), every_hop)


@dataclass(frozen=True)
class Augment:
    shift: int = 25  # steps: the window ends up to 1 s earlier in the clip
    gain: float = 0.3  # std of a random offset and of a random tilt across bins of the log-mel values
    freq_masks: int = 2
    freq_width: int = 8  # bins, at most
    time_masks: int = 2
    time_width: int = 10  # steps, at most
    min_steps: int = 10  # a shift that leaves fewer present steps is not applied
    noise: float = 0.0  # probability of a noise floor under the log-mel values (0: none)
    noise_floor: tuple[float, float] = (-1.5, 0.5)  # its level's range, in running-normalised units
    noise_jitter: float = 0.3  # std of its variation over steps and bins
    warp: float = 0.0  # the mel axis is stretched by a random factor in 1 +- warp (another vocal tract or pitch)
    speed: float = 0.0  # the time axis is stretched by a random factor in 1 +- speed (another speaking rate)
    mel_drop: float = 0.0  # probability that a window's log-mel values are all 0 (pitch, periodicity and activity left)


LOCO_DIR = cache_dir("voice_encoder") / "loco"  # where ``loco`` writes its models and loco.json

# trained across corpora: stronger masking, a noise floor as a live microphone gives, other voices and rates,
# and some windows with their prosody alone (pitch carries emotion across corpora better than the log-mel bands)
CORPORA_AUGMENT = Augment(freq_width=12, time_masks=3, time_width=15, noise=0.5, warp=0.12, speed=0.1, mel_drop=0.15)


def stretch(x: torch.Tensor, factor: torch.Tensor, dim: int) -> torch.Tensor:
    """x sampled at ``position * factor`` along ``dim`` (linear interpolation, clamped at the last
    position); factor (B,) per sample: above 1 squeezes the contents toward the start."""
    n = x.shape[dim]
    pos = (torch.arange(n, dtype=x.dtype) * factor[:, None]).clamp(0, n - 1)  # (B, n)
    lo = pos.floor().long()
    hi = (lo + 1).clamp_max(n - 1)
    shape = [x.shape[0]] + [1] * (x.dim() - 1)
    shape[dim] = n
    frac = (pos - lo).reshape(shape)
    lo, hi = (i.reshape(shape).expand_as(x) for i in (lo, hi))
    return torch.gather(x, dim, lo) * (1 - frac) + torch.gather(x, dim, hi) * frac


def augment(x: torch.Tensor, m: torch.Tensor, a: Augment, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Randomly shifted, coloured and masked copies of windows x (B, T, VOICE_FEATURE_DIM), masks m (B, T)."""
    B, T, D = x.shape
    steps = torch.arange(T)
    src = steps - torch.randint(0, a.shift + 1, (B, 1), generator=gen)  # (B, T) step each one takes
    x_shift = torch.gather(x, 1, src.clamp_min(0).unsqueeze(2).expand(B, T, D))
    m_shift = torch.gather(m, 1, src.clamp_min(0)) & (src >= 0)
    ok = m_shift.sum(1, keepdim=True) >= a.min_steps  # (B, 1)
    x, m = torch.where(ok.unsqueeze(2), x_shift, x), torch.where(ok, m_shift, m)
    if a.speed > 0:  # about the window's end, which holds the latest voice; steps whose source was absent stay absent
        factor = 1 + a.speed * (2 * torch.rand(B, generator=gen) - 1)
        m = stretch(m.flip(1).float(), factor, 1).flip(1) > 0.5
        x = stretch(x.flip(1), factor, 1).flip(1) * m.unsqueeze(2)
    bins = torch.arange(N_MELS)
    if a.warp > 0:
        x = torch.cat([stretch(x[..., :N_MELS], 1 + a.warp * (2 * torch.rand(B, generator=gen) - 1), 2),
                       x[..., N_MELS:]], 2)
    mel = (x[..., :N_MELS] + torch.randn(B, 1, 1, generator=gen) * a.gain
           + torch.randn(B, 1, 1, generator=gen) * a.gain * torch.linspace(-1, 1, N_MELS))
    if a.noise > 0:  # log(e^mel + e^floor): a steady noise fills the quiet steps and bins
        lo, hi = a.noise_floor
        floor = (lo + (hi - lo) * torch.rand(B, 1, 1, generator=gen)
                 + a.noise_jitter * torch.randn(B, T, N_MELS, generator=gen))
        noisy = torch.rand(B, 1, 1, generator=gen) < a.noise
        mel = torch.where(noisy, torch.logaddexp(mel, floor), mel)
    if a.mel_drop > 0:
        mel = mel * (torch.rand(B, 1, 1, generator=gen) >= a.mel_drop)
    for _ in range(a.freq_masks):
        width = torch.randint(0, a.freq_width + 1, (B, 1, 1), generator=gen)
        first = torch.randint(0, N_MELS, (B, 1, 1), generator=gen)
        mel = mel.masked_fill((bins >= first) & (bins < first + width), 0.0)
    for _ in range(a.time_masks):
        width = torch.randint(0, a.time_width + 1, (B, 1), generator=gen)
        first = torch.randint(0, T, (B, 1), generator=gen)
        m = m & ~((steps >= first) & (steps < first + width))
    x = torch.cat([mel, x[..., N_MELS:]], 2)
    return x * m.unsqueeze(2), m


@torch.inference_mode()
def predict(model: VoiceEncoder, pool: Pool, batch: int = 512) -> np.ndarray:
    """(N,) predicted label index of each window of ``pool``."""
    return window_logits(model, pool, batch).argmax(1)


@torch.inference_mode()
def pooled_features(model: VoiceEncoder, pool: Pool, batch: int = 512) -> torch.Tensor:
    """(N, 2C + 512) pooled features of each voice window of ``pool`` (what the classifier reads)."""
    model.eval()
    x, m = torch.from_numpy(pool.x), torch.from_numpy(pool.mask)
    return torch.cat([model.pooled(x[i:i + batch], m[i:i + batch]) for i in range(0, len(x), batch)])


RIDGE = 1e-3  # added to the covariance's diagonal, in units of its mean variance


def ridged_precision(f: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The mean of features ``f`` (N, D) and the inverse of their covariance, its diagonal raised by ``RIDGE``."""
    mean = f.mean(0)
    cov = torch.cov((f - mean).T)
    cov += RIDGE * cov.diagonal().mean() * torch.eye(len(mean), dtype=cov.dtype)
    return mean, torch.linalg.inv(cov)


def distance_reference(d: torch.Tensor) -> tuple[float, float]:
    """``familiarity``'s d_ref and d_scale from distances ``d`` of speakers not trained on: their 95th
    percentile, and a third of its distance from their median."""
    q50, q95 = (float(q) for q in torch.quantile(d, torch.tensor([0.5, 0.95], dtype=d.dtype)))
    return q95, max((q95 - q50) / 3, 1e-3)


@torch.inference_mode()
def fit_reliability(model: VoiceEncoder, train_pool: Pool, val_pool: Pool) -> dict[str, float]:
    """Set the encoder's reliability (``realtime.nets.voice_encoder``): the pooled features' mean and
    precision over ``train_pool``, the temperature and the distance scale over ``val_pool`` (windows
    of speakers not trained on). Returns the fitted numbers and the validation windows' mean reliability."""
    mean, precision = ridged_precision(pooled_features(model, train_pool).double())
    model.pooled_mean.copy_(mean.float())
    model.pooled_precision.copy_(precision.float())
    v = pooled_features(model, val_pool)
    logits, labels = model.head(v), torch.from_numpy(val_pool.labels)
    d_ref, d_scale = distance_reference(mahalanobis(v - model.pooled_mean, model.pooled_precision))
    t = fit_temperature(logits, labels)
    model.reliability_fit.copy_(torch.tensor([t, d_ref, d_scale]))
    x, m = torch.from_numpy(val_pool.x), torch.from_numpy(val_pool.mask)
    return {"temperature": t, "d_ref": d_ref, "d_scale": d_scale,
            "val_mean_reliability": float(model.reliability(x, m).mean())}


READOUT_C = 0.01  # inverse strength of the read-out's L2 penalty, as scikit-learn's LogisticRegression's C
READOUT_WEIGHT = 1.0  # how much the read-out's logits count beside the trained classifier's


def fit_readout(model: VoiceEncoder, pool: Pool, weights: np.ndarray, c: float = READOUT_C,
                weight: float = READOUT_WEIGHT) -> dict[str, float]:
    """Fold a strongly regularised linear read-out of the GE2E states into the classifier: a multinomial
    logistic regression over the 7 labels on the pooled, normalised states of ``pool``'s windows (windows
    weighted by ``weights`` (N,); L2 penalty on the weights as scikit-learn's with ``c``; L-BFGS), whose
    weights and bias, times ``weight``, are added to the classifier's GE2E columns and bias. Unlike the
    trained classifier's loss, a class a window's corpus lacks counts as a negative here: the read-out
    learns how rare each class is across the corpora. Returns its settings and the windows' weighted loss."""
    g = pooled_features(model, pool)[:, -2 * GE2E_DIM:].double()
    y = torch.from_numpy(pool.labels).long()
    s = torch.from_numpy(np.asarray(weights, np.float64))
    s = s / s.mean()
    w = torch.zeros(len(LABELS), g.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros(len(LABELS), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=1000, tolerance_grad=1e-9, tolerance_change=1e-12,
                            history_size=20, line_search_fn="strong_wolfe")

    def loss() -> torch.Tensor:
        return (F.cross_entropy(g @ w.T + b, y, reduction="none") * s).mean()

    def closure() -> torch.Tensor:
        opt.zero_grad()
        total = loss() + w.square().sum() / (2 * c * len(y))
        total.backward()
        return total

    opt.step(closure)
    with torch.no_grad():
        model.head[-1].weight[:, -2 * GE2E_DIM:] += weight * w.float()
        model.head[-1].bias += weight * b.float()
        return {"c": c, "weight": weight, "windows": len(y), "train_loss": round(float(loss()), 4)}


def scores(model: VoiceEncoder, pool: Pool) -> dict:
    """Accuracy, macro and weighted F1 and confusion matrix of the model on a labelled pool."""
    return classification_metrics(predict(model, pool), pool.labels, len(LABELS))


def masked_cross_entropy(logits: torch.Tensor, y: torch.Tensor, allowed: torch.Tensor,
                         label_smoothing: float = 0.0) -> torch.Tensor:
    """Cross-entropy over each sample's own classes only: ``allowed`` (B, 7) bool; the other logits
    are -inf, so they take no probability mass and get no gradient (a missing class is no negative).
    Label smoothing spreads over the allowed classes."""
    logp = F.log_softmax(logits.masked_fill(~allowed, float("-inf")), 1).masked_fill(~allowed, 0.0)
    nll = -logp.gather(1, y[:, None]).squeeze(1)
    smooth = -logp.sum(1) / allowed.sum(1)
    return ((1 - label_smoothing) * nll + label_smoothing * smooth).mean()


@dataclass(frozen=True)
class Schedule:
    """How a voice encoder is trained (see the module docstring)."""

    epochs: int = 25
    lr: float = 2e-3
    weight_decay: float = 1e-2
    label_smoothing: float = 0.1
    batch_size: int = 64
    seed: int = 0


def fit(model: VoiceEncoder, train_pool: Pool, validate: Callable[[VoiceEncoder], dict[str, float]], aug: Augment,
        s: Schedule, allowed: np.ndarray | None = None, weights: np.ndarray | None = None,
        select: str | None = None, epoch_windows: int | None = None) -> list[dict]:
    """Train ``model`` on ``train_pool``'s windows, ``validate`` after every epoch (its figures are
    logged and printed). ``allowed`` (N, 7) bool: each window's own classes (``masked_cross_entropy``);
    ``weights`` (N,): each epoch draws ``epoch_windows`` windows (default: as many as there are), with
    replacement, in proportion to them (default: every window once); ``select``: keep the epoch with
    the highest such figure (default: the last). Returns the log."""
    from tqdm import tqdm

    torch.manual_seed(s.seed)
    gen = torch.Generator().manual_seed(s.seed)
    x, m, y = (torch.from_numpy(a) for a in (train_pool.x, train_pool.mask, train_pool.labels))
    ok = None if allowed is None else torch.from_numpy(allowed)
    draw = None if weights is None else torch.from_numpy(np.asarray(weights, np.float64))
    opt = torch.optim.AdamW(model.parameters(), lr=s.lr, weight_decay=s.weight_decay)
    per_epoch = (epoch_windows or len(y)) // s.batch_size
    if per_epoch < 1:
        raise ValueError(f"{len(y)} training windows: fewer than one batch of {s.batch_size}")
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, s.lr, total_steps=s.epochs * per_epoch, pct_start=0.15)
    log: list[dict] = []
    best: tuple[float, dict] | None = None
    for epoch in range(1, s.epochs + 1):
        model.train()
        order = (torch.randperm(len(y), generator=gen) if draw is None
                 else torch.multinomial(draw, per_epoch * s.batch_size, replacement=True, generator=gen))
        total = 0.0
        for i in tqdm(range(per_epoch), desc=f"epoch {epoch}/{s.epochs}", leave=False, unit="batch"):
            idx = order[i * s.batch_size:(i + 1) * s.batch_size]
            xb, mb = augment(x[idx], m[idx], aug, gen)
            logits = model.classify(xb, mb)
            loss = (F.cross_entropy(logits, y[idx], label_smoothing=s.label_smoothing) if ok is None
                    else masked_cross_entropy(logits, y[idx], ok[idx], s.label_smoothing))
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach())
        val = validate(model)
        log.append({"epoch": epoch, "loss": total / per_epoch, **{f"val_{k}": v for k, v in val.items()}})
        print(f"epoch {epoch:2d}  loss {total / per_epoch:.4f}  "
              + "  ".join(f"val {k} {v:.4f}" for k, v in val.items()), flush=True)
        if select is not None and (best is None or val[select] > best[0]):
            best = (val[select], {k: v.detach().clone() for k, v in model.state_dict().items()})
    if best is not None:
        model.load_state_dict(best[1])
    return log


def train(extraction: Path, out: Path, cfg: VoiceConfig, aug: Augment, s: Schedule) -> dict:
    """Train on actors 1-16 (every-hop windows), report actors 17-20 after every epoch, write the last
    epoch's float32 weights and a JSON sidecar."""
    t0 = time.perf_counter()
    train_pool = load_windows(extraction, TRAIN_ACTORS, every_hop=True)
    val_pool = load_windows(extraction, VAL_ACTORS, every_hop=False)
    if not len(train_pool) or not len(val_pool):
        raise ValueError(f"{extraction}: no labelled RAVDESS windows for the train or validation actors")
    print(f"training windows: {len(train_pool)} (actors {TRAIN_ACTORS[0]}-{TRAIN_ACTORS[-1]}); "
          f"validation clips: {len(val_pool)} (actors {VAL_ACTORS[0]}-{VAL_ACTORS[-1]})", flush=True)
    model = VoiceEncoder(cfg)

    def validate(model: VoiceEncoder) -> dict[str, float]:
        val = scores(model, val_pool)
        return {"accuracy": val["accuracy"], "macro_f1": val["macro_f1"]}

    log = fit(model, train_pool, validate, aug, s)
    val = scores(model, val_pool)
    meta = {**_meta_contract(), "config": asdict(cfg), "out_dim": model.out_dim,
            "metrics": {"val_actors_17_20": {k: val[k] for k in ("accuracy", "macro_f1", "weighted_f1")}},
            "reliability": fit_reliability(model, train_pool, val_pool),
            "training": {"data": "RAVDESS speech actors 1-16, windows every hop along each clip; model selection on "
                                 "actors 17-20; RAVDESS is CC BY-NC-SA 4.0, non-commercial use only",
                         "extraction": str(extraction), **asdict(s),
                         "augment": asdict(aug), "seconds": round(time.perf_counter() - t0, 1), "log": log}}
    return _write(model, out, meta)


def _write(model: VoiceEncoder, out: Path, meta: dict) -> dict:
    meta = write_model_files({k: v.float() for k, v in model.state_dict().items()}, out, out.with_suffix(".json"), meta)
    print(f"wrote {out} ({out.stat().st_size / 2**20:.2f} MiB) and {out.with_suffix('.json').name}", flush=True)
    return meta


# ---------------------------------------------------------------- across corpora

def parse_corpora(names: str) -> tuple[str, ...]:
    """``"ravdess,nemo"`` -> the corpus names; CorpusError (one line) for an unknown or repeated one."""
    corpora = tuple(n.strip() for n in names.split(",") if n.strip())
    if bad := [n for n in corpora if n not in VOICE_CORPORA]:
        raise CorpusError(f"unknown speech corpus {', '.join(map(repr, bad))}; known: {', '.join(VOICE_CORPORA)}")
    if not corpora or len(set(corpora)) != len(corpora):
        raise CorpusError(f"--corpora {names!r}: name each corpus once, comma-separated")
    return corpora


def corpus_weights(corpus_of: np.ndarray, power: float) -> np.ndarray:
    """(N,) sampling weight of each window so that corpus c gets a share of every epoch in
    proportion to n_c ** power (0: every corpus alike; 1: as the windows come)."""
    names, index, counts = np.unique(corpus_of, return_inverse=True, return_counts=True)
    share = counts.astype(np.float64) ** power
    return (share / share.sum() / counts)[index]


@dataclass(frozen=True)
class CorporaData:
    """Where the corpora are and how many of their windows a training takes."""

    data: Path  # the shared data folder
    extraction: Path  # per-corpus ``realtime.extract`` outputs (extracted first where missing)
    windows: int = 3  # per training clip: the final window and up to windows - 1 earlier hops
    limit: int | None = None  # clips per corpus and split at most (a quick check)
    workers: int = 2
    cold_start: bool = True  # train on each clip heard alone as well as in its speaker's session
    live: bool = False  # and in its session under live conditions (``offline.live_conditions``)

    def views(self) -> tuple[str, ...]:
        """The views of a clip that a training reads (``cross_corpus.VIEWS``)."""
        return ("session",) + ("alone",) * self.cold_start + ("live",) * self.live


def corpora_pools(d: CorporaData, corpora: tuple[str, ...], split: str,
                  view: str = "session") -> dict[str, tuple[Pool, tuple[str, ...]]]:
    """``{corpus: (its windows of split, its classes)}`` as heard in ``view`` (one of ``cross_corpus.VIEWS``;
    features extracted first where missing; each is read once per process)."""
    return {c: _cached_corpus_pool(d, c, split, view) for c in corpora}


def training_pools(d: CorporaData, corpora: tuple[str, ...]) -> dict[str, tuple[Pool, tuple[str, ...]]]:
    """The train split of each corpus as ``corpora_pools`` gives it, in each of ``d.views()``; read
    afresh for every training and one corpus at a time (the windows of all views take gigabytes: they
    are not kept after it)."""
    def views(c: str) -> tuple[Pool, tuple[str, ...]]:
        pools = {v: _corpus_pool(d, c, "train", v) for v in d.views()}
        return concat_pools({v: p for v, (p, _) in pools.items()}), pools["session"][1]

    return {c: views(c) for c in corpora}


def training_pool(d: CorporaData, corpora: tuple[str, ...]) -> tuple[Pool, np.ndarray]:
    """The train windows of ``corpora`` (``training_pools``) in one pool, and each window's own classes
    (N, 7) bool."""
    pools = training_pools(d, corpora)
    allowed = np.concatenate([np.tile([lab in own for lab in LABELS], (len(p), 1)) for p, own in pools.values()])
    print("training windows: " + ", ".join(f"{c} {len(p)}" for c, (p, _) in pools.items()), flush=True)
    return concat_pools({c: p for c, (p, _) in pools.items()}), allowed


def _corpus_pool(d: CorporaData, corpus: str, split: str, view: str) -> tuple[Pool, tuple[str, ...]]:
    clips = corpus_clips(d.data, corpus)
    folder = extract_view(d.data, d.extraction, d.workers, corpus, view)
    return split_pool(folder, clips, split, d.windows if split == "train" else 1, d.limit), classes(clips)


_cached_corpus_pool = functools.lru_cache(maxsize=None)(_corpus_pool)


def corpus_uars(model: VoiceEncoder, pools: dict[str, tuple[Pool, tuple[str, ...]]],
                    answers: str = "restricted") -> dict[str, float]:
    """{corpus: UAR over the corpus's own classes of the model's answers among them (``answers``
    "restricted") or among all 7 ("raw")} of ``corpora_pools``' pools."""
    return {c: score_corpus(window_logits(model, p), p.labels, own)[answers]["uar"] for c, (p, own) in pools.items()}


def finish_training(model: VoiceEncoder, pool: Pool, balance: float,
                    val_pools: dict[str, tuple[Pool, tuple[str, ...]]]) -> dict[str, dict]:
    """What follows the training of ``train-corpora``: ``fit_readout`` on the training windows (the
    corpora weighted as ``fit`` draws them), with the validation speakers' mean UAR (raw and restricted)
    before and after, then ``fit_reliability``. Returns the sidecar's ``readout`` and ``reliability``."""
    def mean_uars() -> dict[str, float]:
        return {k: round(float(np.mean(list(corpus_uars(model, val_pools, k).values()))), 4)
                for k in ("raw", "restricted")}

    before = mean_uars()
    readout = fit_readout(model, pool, corpus_weights(pool.groups, balance))
    readout |= {"val_uar_before": before, "val_uar_after": mean_uars()}
    return {"readout": readout,
            "reliability": fit_reliability(model, pool, concat_pools({c: p for c, (p, _) in val_pools.items()}))}


def train_corpora(d: CorporaData, corpora: tuple[str, ...], out: Path, cfg: VoiceConfig, aug: Augment,
                  s: Schedule, balance: float = 0.5) -> tuple[VoiceEncoder, dict]:
    """Train on the train speakers of ``corpora`` together (each window's loss over its own corpus's
    classes, corpora drawn with shares in proportion to n ** ``balance``), keep the epoch with the
    best mean UAR on their validation speakers, write its weights and sidecar to ``out``."""
    t0 = time.perf_counter()
    pool, allowed = training_pool(d, corpora)
    val_pools, cold_val = corpora_pools(d, corpora, "val"), corpora_pools(d, corpora, "val", "alone")
    print("validation clips: " + ", ".join(f"{c} {len(p)}" for c, (p, _) in val_pools.items()), flush=True)
    model = VoiceEncoder(cfg)

    def validate(model: VoiceEncoder) -> dict[str, float]:
        uar = corpus_uars(model, val_pools)
        return {"uar": float(np.mean(list(uar.values()))), **{f"{c}_uar": u for c, u in uar.items()},
                "cold_uar": float(np.mean(list(corpus_uars(model, cold_val).values())))}

    log = fit(model, pool, validate, aug, s, allowed, corpus_weights(pool.groups, balance), select="uar",
              epoch_windows=len(pool) // len(d.views()))
    best = max(log, key=lambda r: r["val_uar"])
    meta = {**_meta_contract(), "config": asdict(cfg), "out_dim": model.out_dim,
            "metrics": {"val_mean_uar": best["val_uar"], "epoch": best["epoch"]},
            **finish_training(model, pool, balance, val_pools),
            "training": {"data": f"train speakers of {', '.join(corpora)} (speech_corpora splits), "
                                 f"{d.windows} windows per clip; model selection on their validation speakers; "
                                 "non-commercial use only (RAVDESS CC BY-NC-SA 4.0; see each corpus's licence)",
                         "corpora": list(corpora), "balance": balance, "windows": d.windows, "limit": d.limit,
                         "cold_start": d.cold_start, "live": d.live,
                         "extraction": str(d.extraction), **asdict(s), "augment": asdict(aug),
                         "seconds": round(time.perf_counter() - t0, 1), "log": log}}
    return model, _write(model, out, meta)


@torch.inference_mode()
def mean_reliability(model: VoiceEncoder, pool: Pool) -> float:
    """The encoder's mean reliability over the windows of ``pool``."""
    model.eval()
    return round(float(model.reliability(torch.from_numpy(pool.x), torch.from_numpy(pool.mask)).mean()), 4)


def held_out_scores(model: VoiceEncoder, d: CorporaData, corpus: str) -> dict:
    """A corpus's test speakers (read here, once per model): n, chance and the 7-way (``raw``) and
    own-classes (``restricted``) accuracy, UAR and macro F1."""
    pool, own = corpora_pools(d, (corpus,), "test")[corpus]
    e = score_corpus(window_logits(model, pool), pool.labels, own)
    return {"n": e["n"], "chance": e["chance_uniform"], "mean_reliability": mean_reliability(model, pool),
            **{k: e["raw"][k] for k in ("accuracy", "uar", "macro_f1")},
            "restricted": {k: e["restricted"][k] for k in ("accuracy", "uar", "macro_f1")}}


def finished(weights: Path, corpora: tuple[str, ...], aug: Augment, s: Schedule, balance: float,
             d: CorporaData) -> VoiceEncoder | None:
    """The model at ``weights`` when an earlier run trained it on ``corpora`` with the same options and
    fitted its reliability (so ``loco`` resumes), else None."""
    try:
        meta = json.loads(weights.with_suffix(".json").read_text())
        t = meta["training"]
        same = (t["corpora"] == list(corpora) and t["augment"] == json.loads(json.dumps(asdict(aug)))
                and t.get("cold_start", False) == d.cold_start and t.get("live", False) == d.live
                and all(t[k] == v for k, v in asdict(s).items()) and t["balance"] == balance
                and "readout" in meta and "reliability" in meta)
        return load_voice_encoder(weights) if same else None
    except (OSError, ValueError, KeyError):
        return None


def loco(d: CorporaData, out_dir: Path, corpora: tuple[str, ...], cfg: VoiceConfig, aug: Augment, s: Schedule,
         balance: float = 0.5) -> dict:
    """Leave-one-corpus-out: for each corpus, a model trained on the others scored on its test
    speakers, and their mean UAR; then the model of all of them on each one's test speakers. Every
    step is added to ``out_dir/loco.json`` as it ends; models an earlier run finished (``finished``)
    are scored again, not retrained."""
    result: dict = {"voice_cross_corpus": {}, "voice_all_corpora_heldout": {}, "seconds": {}}

    def save() -> None:
        (out_dir / "loco.json").write_text(json.dumps(result, indent=1))

    out_dir.mkdir(parents=True, exist_ok=True)
    for left in corpora:
        t0 = time.perf_counter()
        others = tuple(c for c in corpora if c != left)
        print(f"=== leaving out {left}: training on {', '.join(others)}", flush=True)
        model = (finished(out_dir / f"voice_without_{left}.pt", others, aug, s, balance, d)
                 or train_corpora(d, others, out_dir / f"voice_without_{left}.pt", cfg, aug, s, balance)[0])
        result["voice_cross_corpus"][left] = entry = held_out_scores(model, d, left)
        entry["seen_mean_reliability"] = round(float(np.mean(
            [mean_reliability(model, corpora_pools(d, (c,), "test")[c][0]) for c in others])), 4)
        result["seconds"][f"without_{left}"] = round(time.perf_counter() - t0, 1)
        print(f"{left} (left out): {json.dumps(entry)}", flush=True)
        cross = result["voice_cross_corpus"]
        for k in ("uar", "accuracy", "macro_f1"):
            cross_mean = [cross[c][k] for c in corpora if c in cross]
            result[f"mean_{k}"] = round(float(np.mean(cross_mean)), 4)
        result["mean_uar_restricted"] = round(float(np.mean([cross[c]["restricted"]["uar"] for c in cross])), 4)
        save()
    t0 = time.perf_counter()
    print(f"=== all of {', '.join(corpora)}", flush=True)
    model = (finished(out_dir / "voice_all.pt", corpora, aug, s, balance, d)
             or train_corpora(d, corpora, out_dir / "voice_all.pt", cfg, aug, s, balance)[0])
    for c in corpora:
        result["voice_all_corpora_heldout"][c] = held_out_scores(model, d, c)
    result["voice_reliability"] = {
        "left_out_mean": round(float(np.mean([e["mean_reliability"] for e in result["voice_cross_corpus"].values()])), 4),
        "seen_heldout_mean": round(float(np.mean([e["seen_mean_reliability"] for e in result["voice_cross_corpus"].values()])), 4)}
    result["seconds"]["all"] = round(time.perf_counter() - t0, 1)
    save()
    return result


def as_trained(d: CorporaData, training: dict) -> CorporaData:
    """``d`` with the windows per clip, clip limit and views that a ``train-corpora`` sidecar's
    ``training`` record says its weights were trained on."""
    return replace(d, windows=training["windows"], limit=training.get("limit"),
                   cold_start=training.get("cold_start", False), live=training.get("live", False))


def refit_reliability(weights: Path, extraction: Path, data: Path | None) -> dict:
    """Fit the reliability of trained weights on the data they were trained on and rewrite them with it:
    RAVDESS's train actors' every-hop windows and validation actors' final ones (``extraction``/ravdess),
    or, for weights of ``train-corpora`` (their sidecar names the corpora), their training windows as
    trained (``training_pool``, both views where they had both) and those corpora's validation speakers
    (``data``), as ``train-corpora`` fits it. Prints the fitted numbers as JSON."""
    model = load_voice_encoder(weights)
    meta = json.loads(weights.with_suffix(".json").read_text())
    corpora = tuple(meta.get("training", {}).get("corpora", ()))
    if corpora:
        if data is None:
            raise CorpusError(f"{weights} was trained on {', '.join(corpora)}: pass --data, the shared data folder")
        d = as_trained(CorporaData(data, extraction), meta["training"])
        train = training_pool(d, corpora)[0]
        val = concat_pools({c: p for c, (p, _) in corpora_pools(d, corpora, "val").items()})
    else:
        train = load_windows(extraction / "ravdess", TRAIN_ACTORS, every_hop=True)
        val = load_windows(extraction / "ravdess", VAL_ACTORS, every_hop=False)
    meta["reliability"] = fit_reliability(model, train, val)
    _write(model, weights, meta)  # its weights' sha256 is written anew
    print(json.dumps(meta["reliability"]))
    return meta["reliability"]


def add_readout(weights: Path, d: CorporaData) -> dict:
    """Fold the GE2E read-out into weights ``train-corpora`` wrote without one and refit their reliability
    (``finish_training``, as ``train-corpora`` now ends), rewrite them; prints JSON."""
    model = load_voice_encoder(weights)
    meta = json.loads(weights.with_suffix(".json").read_text())
    if "readout" in meta:
        raise ValueError(f"{weights} already has its read-out; retrain it to fit another")
    corpora = tuple(meta.get("training", {}).get("corpora", ()))
    if not corpora:
        raise ValueError(f"{weights} was not trained by train-corpora: it has no corpora to fit a read-out on")
    d = as_trained(d, meta["training"])
    pool, _ = training_pool(d, corpora)
    meta |= finish_training(model, pool, meta["training"]["balance"], corpora_pools(d, corpora, "val"))
    _write(model, weights, meta)
    print(json.dumps({k: meta[k] for k in ("readout", "reliability")}))
    return meta


def evaluate(extraction: Path, weights: Path, png: Path) -> dict:
    """Actors 21-24 scores of the shipped weights on each clip's final window; saves the confusion
    matrix; the last line printed is JSON."""
    model = load_voice_encoder(weights)
    test = load_windows(extraction, TEST_ACTORS, every_hop=False)
    if not len(test):
        raise ValueError(f"{extraction}: no labelled RAVDESS clips of actors {TEST_ACTORS[0]}-{TEST_ACTORS[-1]}")
    m = scores(model, test)
    report_confusion(m["confusion"], png,
                     f"RAVDESS actors 21-24 (voice): acc {m['accuracy']:.3f}, mF1 {m['macro_f1']:.3f}")
    result = {"split": f"ravdess_actors_{TEST_ACTORS[0]}_{TEST_ACTORS[-1]}", "n": len(test),
              **{k: round(m[k], 4) for k in ("accuracy", "macro_f1", "weighted_f1")}}
    print(json.dumps(result))
    return result


def parser() -> argparse.ArgumentParser:
    """The command line: ``train``, ``evaluate``, ``fit-reliability``, ``fit-readout``, ``evaluate-corpora``,
    ``train-corpora`` and ``loco`` sub-commands."""
    ap, t = train_evaluate_parser(
        "python -m realtime.voice_encoder", __doc__, "voice_encoder",
        ("train on RAVDESS actors 1-16, report actors 17-20 after every epoch",
         "score weights on RAVDESS actors 21-24 and save a confusion matrix"),
        lambda p, _: p.add_argument("--extraction", type=Path, required=True,
                                    help="`python -m realtime.extract --kind audio` output of RAVDESS"),
        WEIGHTS_PATH)
    t.set_defaults(out=cache_dir("voice_encoder") / "ravdess" / "voice_ravdess.safetensors")  # the shipped one is of five corpora
    t.add_argument("--epochs", type=int, default=25, help="training epochs (default: %(default)s)")
    t.add_argument("--lr", type=float, default=2e-3, help="peak of the one-cycle schedule")
    t.add_argument("--weight-decay", type=float, default=1e-2, help="AdamW weight decay (default: %(default)s)")
    t.add_argument("--label-smoothing", type=float, default=0.1,
                   help="label smoothing of the cross-entropy (default: %(default)s)")
    t.add_argument("--batch-size", type=int, default=64, help="mini-batch size (default: %(default)s)")
    t.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    c = add_command(ap, "fit-reliability", "fit the reliability of trained weights on the speakers they were trained on")
    c.add_argument("--weights", type=Path, default=WEIGHTS_PATH, help="the weights, rewritten in place (default: %(default)s)")
    c.add_argument("--extraction", type=Path, default=cache_dir("default") / "extract",
                   help="folder of the corpora's extractions (ravdess/, nemo/, ...; default: %(default)s)")
    c.add_argument("--data", type=Path, help="the shared data folder, for weights trained on several corpora")
    c = add_command(ap, "fit-readout", "fold the GE2E read-out into weights train-corpora wrote without one")
    c.add_argument("--weights", type=Path, required=True, help="the weights, rewritten in place")
    c.add_argument("--data", type=Path, required=True, help="the shared data folder (ravdess_speech_16k, speech/)")
    c.add_argument("--extraction", type=Path, default=cache_dir("default") / "extract",
                   help="folder of the corpora's extractions (ravdess/, nemo/, ...; default: %(default)s)")
    c = add_command(ap, "evaluate-corpora", "score weights on the test speakers of every speech corpus")
    c.add_argument("--data", type=Path, required=True, help="the shared data folder (ravdess_speech_16k, speech/)")
    c.add_argument("--corpora", nargs="+", choices=VOICE_CORPORA, default=list(VOICE_CORPORA),
                   help="which corpora (default: all)")
    c.add_argument("--weights", type=Path, default=WEIGHTS_PATH, help="the weights to score (default: %(default)s)")
    c.add_argument("--extraction", type=Path, default=cache_dir("default") / "extract",
                   help="where the corpora's voice features are (or will be) extracted (default: %(default)s)")
    c.add_argument("--report", type=Path, default=cache_dir("voice_encoder") / "corpora",
                   help="where the confusion matrices are saved (default: %(default)s)")
    c.add_argument("--workers", type=int, default=2, help="extraction worker processes (default: %(default)s)")
    c.add_argument("--view", choices=tuple(VIEWS), default="session",
                   help="how the clips are heard: in their speaker's session, each alone (a cold start), or "
                        f"in session under live conditions (room, noise, level, codec; seed {LIVE_SEED}) "
                        "(default: %(default)s)")
    for command, what in (("train-corpora", "train on the train speakers of several speech corpora together"),
                          ("loco", "leave-one-corpus-out: train without each corpus, score on it; then all of them")):
        c = add_command(ap, command, what)
        c.add_argument("--data", type=Path, required=True, help="the shared data folder (ravdess_speech_16k, speech/)")
        c.add_argument("--corpora", default=",".join(VOICE_CORPORA),
                       help="comma-separated corpora (default: %(default)s)")
        if command == "train-corpora":
            c.add_argument("--out", type=Path, default=cache_dir("voice_encoder") / "corpora" / "voice_corpora.pt",
                           help="where the weights and their JSON sidecar go (default: %(default)s)")
        else:
            c.add_argument("--out", type=Path, default=LOCO_DIR,
                           help="folder of the models and loco.json (default: %(default)s)")
        c.add_argument("--extraction", type=Path, default=cache_dir("default") / "extract",
                       help="where the corpora's voice features are (or will be) extracted (default: %(default)s)")
        c.add_argument("--epochs", type=int, default=20, help="training epochs (default: %(default)s)")
        c.add_argument("--batch-size", type=int, default=128, help="mini-batch size (default: %(default)s)")
        c.add_argument("--lr", type=float, default=3e-3, help="peak of the one-cycle schedule (default: %(default)s)")
        c.add_argument("--windows", type=int, default=3,
                       help="windows per training clip: the final one and earlier hops (default: %(default)s)")
        c.add_argument("--balance", type=float, default=0.5,
                       help="each corpus's share of an epoch is in proportion to its windows ** this "
                            "(0: alike, 1: as they come; default: %(default)s)")
        c.add_argument("--limit", type=int, default=None, help="clips per corpus and split at most (a quick check)")
        c.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
        c.add_argument("--sessions-only", action="store_true",
                       help="train on clips as heard in their speaker's session only, not also alone")
        c.add_argument("--live-conditions", action=argparse.BooleanOptionalAction, default=True,
                       help="train also on clips heard in session under live conditions (room, noise, level, "
                            f"codec; seed {LIVE_SEED}), as the shipped encoder was (default: on)")
        c.add_argument("--workers", type=int, default=2, help="extraction worker processes (default: %(default)s)")
    return ap


def run_corpora(a: argparse.Namespace) -> dict:
    """``train-corpora`` and ``loco``; the last line printed is JSON."""
    corpora = parse_corpora(a.corpora)
    if a.cmd == "loco" and len(corpora) < 2:
        raise CorpusError("loco needs at least two corpora")
    d = CorporaData(a.data, a.extraction, a.windows, a.limit, a.workers, not a.sessions_only, a.live_conditions)
    s = Schedule(a.epochs, a.lr, 1e-2, 0.1, a.batch_size, a.seed)
    t0 = time.perf_counter()
    if a.cmd == "loco":
        result = loco(d, a.out, corpora, VoiceConfig(), CORPORA_AUGMENT, s, a.balance)
    else:
        _, meta = train_corpora(d, corpora, a.out, VoiceConfig(), CORPORA_AUGMENT, s, a.balance)
        result = {"weights": str(a.out), "corpora": list(corpora), **meta["metrics"]}
    result["seconds_total"] = round(time.perf_counter() - t0, 1)
    print(json.dumps(result))
    return result


def evaluate_on_corpora(a: argparse.Namespace) -> dict:
    """``evaluate-corpora``: the weights' own answer on every corpus's test speakers; the last line printed is JSON."""
    model = load_voice_encoder(a.weights)
    result = evaluate_corpora(lambda pool: window_logits(model, pool), a.data, a.extraction, a.report, a.workers,
                              tuple(a.corpora), what=f"voice encoder {a.weights.name}", view=a.view)
    print(json.dumps(result))
    return result


def main(argv: list[str] | None = None) -> int:
    p = parser()
    a = p.parse_args(argv)
    torch.set_num_threads(1)  # a small model: one thread leaves the other cores to the live app or other jobs
    if a.cmd == "train":
        train(a.extraction, a.out, VoiceConfig(), Augment(),
              Schedule(a.epochs, a.lr, a.weight_decay, a.label_smoothing, a.batch_size, a.seed))
    elif a.cmd == "fit-reliability":
        try:
            refit_reliability(a.weights, a.extraction, a.data)
        except (FileNotFoundError, ValueError, SourceError) as e:
            p.exit(2, f"{p.prog} fit-reliability: {one_line(e)}\n")
    elif a.cmd == "fit-readout":
        try:
            add_readout(a.weights, CorporaData(a.data, a.extraction))
        except (FileNotFoundError, ValueError, SourceError) as e:
            p.exit(2, f"{p.prog} fit-readout: {one_line(e)}\n")
    elif a.cmd == "evaluate":
        evaluate(a.extraction, a.weights, a.png)
    elif a.cmd in ("train-corpora", "loco"):
        try:
            run_corpora(a)
        except (FileNotFoundError, ValueError, SourceError) as e:
            p.exit(2, f"{p.prog} {a.cmd}: {one_line(e)}\n")
    else:
        try:
            evaluate_on_corpora(a)
        except (FileNotFoundError, ValueError, SourceError) as e:
            p.exit(2, f"{p.prog} evaluate-corpora: {one_line(e)}\n")
    return 0
