"""The text encoder's corpus readers, training and evaluation.

Data: MELD train for emotion and sentiment, CMU-MOSI train + valid for valence (MOSI scores / 3
as soft negative/neutral/positive targets, so their expectation is the score), and the train
splits of the written corpora (``WRITTEN``: GoEmotions, DailyDialog, CARER, ISEAR) for emotion,
without marks as the live ASR gives words. A corpus's rows are scored over its own classes only
(a class it lacks is missing, not a negative); GoEmotions' multi-label rows are left out. Model
selection uses MELD dev only; the test splits are touched by ``evaluate`` and ``cross-corpus``.

Trained on research corpora (MELD, from TV dialogue; CMU-MOSI, research-only; CARER and ISEAR for
research and education): the weights are for non-commercial research use.

CLI::

    python -m realtime.text_encoder train --data ../shared/data/text --out realtime/data/models/text_encoder.safetensors
    python -m realtime.text_encoder evaluate --data ../shared/data/text
    python -m realtime.text_encoder cross-corpus --data ../shared/data/text  # without MELD, without GoEmotions
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import operator
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import reduce
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from dmd_lite.metrics import class_scores, classification_metrics
from realtime.core.feature_spec import LABELS
from realtime.core.files import sha256
from realtime.core.resources import cache_dir
from realtime.core.tokens import MARK_IDS, TEXT_BUCKETS, strip_marks, tokenize
from realtime.nets.model_files import write_model_files
from realtime.nets.sentence_encoder import WEIGHTS_PATH as SENTENCE_WEIGHTS
from realtime.nets.sentence_encoder import SentenceEncoder, load_sentence_encoder
from realtime.nets.text_encoder import (EMBED_DIM, MARK_SCALE, N_FEATURES, NORM_EPS, SENTIMENTS, WEIGHTS_PATH,
                                        TextEncoder, _meta_contract, contexts, encode_batch, load_text_encoder)
from realtime.offline.cli import add_command, report_confusion, train_evaluate_parser
from realtime.offline.datasets import EMORYNLP_DROPPED, EMORYNLP_EMOTIONS, MELD_EMOTIONS, MELD_SENTIMENTS, MOSI_SCALE


@dataclass
class TextSet:
    """Utterances with whichever labels their corpus has."""

    words: list[list[str]]  # tokenized utterances, words with their marks
    emotion: np.ndarray  # (n,) int64 index into LABELS, -1 where the corpus has none
    valence: np.ndarray  # (n,) float32 in [-1, 1], NaN where the corpus has none
    allowed: np.ndarray | None = None  # (n, 7) bool: the classes of each row's corpus (None: all seven)

    def __post_init__(self) -> None:
        if self.allowed is None:
            self.allowed = np.ones((len(self.words), len(LABELS)), bool)

    def __len__(self) -> int:
        return len(self.words)

    def __add__(self, other: TextSet) -> TextSet:
        return TextSet(self.words + other.words, np.concatenate([self.emotion, other.emotion]),
                       np.concatenate([self.valence, other.valence]), np.concatenate([self.allowed, other.allowed]))

    def without_marks(self) -> TextSet:
        """The same set with every utterance's "?" and "!" marks removed (as the live ASR gives words)."""
        return TextSet([strip_marks(u) for u in self.words], self.emotion, self.valence, self.allowed)


def _own_classes(labels: Sequence[str], n: int) -> np.ndarray:
    """(n, 7) bool: every row allows the labels a corpus has (a class it lacks is missing, not a negative)."""
    return np.tile([lab in set(labels) for lab in LABELS], (n, 1))


def _read_rows(path: Path, required: Sequence[str]) -> list[dict[str, str]]:
    """CSV rows as dicts; a missing file or column raises with the path and what is missing."""
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found")
    with path.open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in required if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path}: missing column(s) {missing}; found {reader.fieldnames}")
        return list(reader)


def _mapped(mapping: dict, value: str, column: str, path: Path):
    """``mapping[value]``, or a ValueError naming the file, the column and the values it knows."""
    if value not in mapping:
        raise ValueError(f"{path}: unknown {column} {value!r}; expected one of {sorted(mapping)}")
    return mapping[value]


def read_meld(path: Path) -> TextSet:
    """A MELD ``*_sent_emo.csv``: Utterance, Emotion (7 classes), Sentiment -> valence -1/0/1."""
    rows = _read_rows(path, ("Utterance", "Emotion", "Sentiment"))
    emotion = [LABELS.index(_mapped(MELD_EMOTIONS, r["Emotion"], "Emotion", path)) for r in rows]
    valence = [_mapped(MELD_SENTIMENTS, r["Sentiment"], "Sentiment", path) for r in rows]
    return TextSet([tokenize(r["Utterance"]) for r in rows], np.array(emotion, np.int64), np.array(valence, np.float32))


def read_emorynlp(path: Path) -> TextSet:
    """An EmoryNLP ``emorynlp_*_final.csv``: Utterance, Emotion; Peaceful and Powerful rows dropped."""
    rows = [r for r in _read_rows(path, ("Utterance", "Emotion")) if r["Emotion"] not in EMORYNLP_DROPPED]
    emotion = [LABELS.index(_mapped(EMORYNLP_EMOTIONS, r["Emotion"], "Emotion", path)) for r in rows]
    return TextSet([tokenize(r["Utterance"]) for r in rows], np.array(emotion, np.int64),
                   np.full(len(rows), np.nan, np.float32), _own_classes(EMORYNLP_EMOTIONS.values(), len(rows)))


@dataclass(frozen=True)
class LabelledCsv:
    """One of the written-text corpora as the shared data maps it to the 7 labels."""

    path: str  # inside the text data folder
    label: str  # the column with one of LABELS; empty (unmapped, or several labels) rows are left out
    split: str  # the column with the split ("" : ISEAR, split here by respondent)
    splits: tuple[str, str, str]  # the corpus's names of train, dev and test


# GoEmotions: only its single-label rows (a multi-label comment has no one answer to score against);
# CARER: "love" unmapped, no neutral or disgust; ISEAR: shame and guilt unmapped, no neutral or surprise
WRITTEN = {"goemotions": LabelledCsv("goemotions/goemotions_7class.csv", "single_label7", "split",
                                     ("train", "dev", "test")),
           "dailydialog": LabelledCsv("dailydialog/dailydialog_utterances.csv", "label_mapped", "split",
                                      ("train", "validation", "test")),
           "carer": LabelledCsv("carer/dair_emotion_7class.csv", "label7", "split", ("train", "val", "test")),
           "isear": LabelledCsv("isear/isear_7class.csv", "label7", "", ("train", "dev", "test"))}
SPLIT_NAMES = ("train", "dev", "test")
# each written row's weight against a spoken one (a MELD utterance counts four times, with and without
# marks); chosen between 1.0 and 0.3 on MELD dev (MODEL_CARD.md, "Text encoder")
WRITTEN_WEIGHT = 0.3
CROSS_CORPUS_TEXT = ("meld", "goemotions")  # left out in turn by ``cross-corpus``
CROSS_CORPUS_DIR = cache_dir("text_encoder") / "cross_corpus"


def isear_split(respondent: str) -> str:
    """ISEAR has no split: respondents whose id ends in 0 are test, in 1 dev, the others train."""
    return {"0": "test", "1": "dev"}.get(respondent.strip()[-1:], "train")


def read_written(data: Path, corpus: str, split: str) -> TextSet:
    """``split`` (train, dev or test) of a ``WRITTEN`` corpus, its mapped rows only; no valence. Each row
    allows the classes its corpus has in any split."""
    c = WRITTEN[corpus]
    path = data / c.path
    rows = _read_rows(path, ("text", c.label) + ((c.split,) if c.split else ("respondent_id",)))
    if bad := {r[c.label] for r in rows} - set(LABELS) - {""}:
        raise ValueError(f"{path}: {c.label} has {sorted(bad)}, none of {list(LABELS)}")
    own = sorted({r[c.label] for r in rows} - {""})
    want = c.splits[SPLIT_NAMES.index(split)]
    kept = [r for r in rows
            if r[c.label] and (r[c.split] == want if c.split else isear_split(r["respondent_id"]) == split)]
    return TextSet([tokenize(r["text"]) for r in kept], np.array([LABELS.index(r[c.label]) for r in kept], np.int64),
                   np.full(len(kept), np.nan, np.float32), _own_classes(own, len(kept)))


def read_mosi(path: Path, modes: Sequence[str]) -> TextSet:
    """CMU-MOSI ``label.csv`` rows of the given ``mode`` (train/valid/test): text, label / 3 -> valence."""
    rows = [r for r in _read_rows(path, ("text", "label", "mode")) if r["mode"] in modes]
    return TextSet([tokenize(r["text"]) for r in rows], np.full(len(rows), -1, np.int64),
                   np.array([float(r["label"]) / MOSI_SCALE for r in rows], np.float32))


def meld_split(data: Path, split: str) -> TextSet:
    """MELD ``split`` (train/dev/test) under the text data folder."""
    return read_meld(data / "meld" / f"{split}_sent_emo.csv")


def _coo(indices: torch.Tensor, values: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """Coalesced sparse COO matrix (duplicates summed), indices checked against the shape."""
    with torch.sparse.check_sparse_tensor_invariants():
        return torch.sparse_coo_tensor(indices, values, shape).coalesce()


def _sparse_bags(model: TextEncoder, utterances: Sequence[Sequence[str]], chunk: int = 1024) -> torch.Tensor:
    """(n, N_FEATURES) sparse COO: each utterance's normalised weighted bag, as ``forward`` sees it at
    its last word (so a head fitted on these rows is exact for the module)."""
    rows, cols, vals = [], [], []
    for start in range(0, len(utterances), chunk):
        feats, w = model.weighted_features(encode_batch(utterances[start:start + chunk]))  # (b, T, P + 1)
        norm = w.square().sum((1, 2)).sqrt().clamp_min(NORM_EPS)  # (b,)
        keep = w > 0
        rows.append(torch.nonzero(keep)[:, 0] + start)
        cols.append(feats[keep])
        vals.append((w / norm[:, None, None])[keep])
    idx = torch.stack([torch.cat(rows), torch.cat(cols)])
    return _coo(idx, torch.cat(vals), (len(utterances), N_FEATURES))


def fit_idf(model: TextEncoder, utterances: Sequence[Sequence[str]]) -> None:
    """Set ``model.idf`` to log((1 + n) / (1 + df)) + 1 of the training utterances (scikit-learn's
    smooth idf), times ``MARK_SCALE`` for the mark pieces; padding keeps 0."""
    model.idf.fill_(1.0)
    present = _sparse_bags(model, utterances).indices()[1]  # one entry per (utterance, feature)
    df = torch.bincount(present, minlength=N_FEATURES).float()
    model.idf.copy_(torch.log((1 + len(utterances)) / (1 + df)) + 1)
    model.idf[list(MARK_IDS)] *= MARK_SCALE
    model.idf[0] = 0.0


def sentiment_targets(valence: np.ndarray) -> torch.Tensor:
    """(n, 3) soft negative/neutral/positive targets whose expected value is the valence."""
    v = torch.from_numpy(np.clip(valence, -1, 1)).float()
    return torch.stack([(-v).clamp_min(0), 1 - v.abs(), v.clamp_min(0)], dim=1)


def class_weights(emotion: np.ndarray, power: float) -> torch.Tensor:
    """(n_classes,) (mean count / count) ** power over labelled rows."""
    counts = np.bincount(emotion[emotion >= 0], minlength=len(LABELS)).astype(np.float64)
    return torch.tensor((counts.mean() / np.maximum(counts, 1)) ** power, dtype=torch.float32)


MISSING_CLASS = -1e4  # the logit a class the row's corpus lacks gets in the loss: no mass, no gradient


@dataclass
class Batch:
    """Training rows as the losses need them."""

    bags: torch.Tensor  # (n, N_FEATURES) sparse normalised bags
    context: torch.Tensor  # (n, CONTEXT_DIM) the utterances' contexts
    emotion: torch.Tensor  # (n,) int64, -1 = none
    allowed: torch.Tensor  # (n, 7) bool: the classes of the row's corpus
    sentiment: torch.Tensor  # (n, 3) soft targets, rows of NaN valence are zero
    emotion_weight: torch.Tensor  # (n,) class weight, 0 where no emotion; mean 1 over labelled rows
    sentiment_weight: torch.Tensor  # (n,) 1 where a valence exists, times the corpus weight

    def loss(self, emotion_logits: torch.Tensor, sentiment_logits: torch.Tensor,
             rows: torch.Tensor | None = None) -> torch.Tensor:
        """Weighted emotion cross-entropy over each row's own classes + soft sentiment cross-entropy, of
        all rows or of ``rows``."""
        pick = (lambda t: t) if rows is None else (lambda t: t[rows])
        ew, sw = pick(self.emotion_weight), pick(self.sentiment_weight)
        own = emotion_logits.masked_fill(~pick(self.allowed), MISSING_CLASS)
        ce = F.cross_entropy(own, pick(self.emotion).clamp_min(0), reduction="none")
        soft = -(pick(self.sentiment) * sentiment_logits.log_softmax(-1)).sum(-1)
        return (ce * ew).sum() / ew.sum().clamp_min(1e-9) + (soft * sw).sum() / sw.sum().clamp_min(1e-9)


def make_batch(model: TextEncoder, data: TextSet, context: torch.Tensor, power: float, corpus_weight: np.ndarray) -> Batch:
    """``corpus_weight`` (n,): a sample weight per row (extra corpora can count for less)."""
    emotion = torch.from_numpy(data.emotion)
    labelled = emotion >= 0
    cw = torch.from_numpy(corpus_weight).float()
    ew = torch.where(labelled, class_weights(data.emotion, power)[emotion.clamp_min(0)] * cw, 0.0)
    has_valence = torch.from_numpy(~np.isnan(data.valence))
    return Batch(_sparse_bags(model, data.words), context, emotion, torch.from_numpy(data.allowed),
                 sentiment_targets(np.nan_to_num(data.valence)),
                 ew / ew[labelled].mean(), has_valence.float() * cw)


@dataclass
class Scored:
    """A labelled set with its utterances' contexts, to score the encoder on."""

    data: TextSet
    context: torch.Tensor  # (n, CONTEXT_DIM)


@torch.inference_mode()
def set_scores(model: TextEncoder, data: TextSet, context: torch.Tensor) -> tuple[dict[str, float], np.ndarray]:
    """Accuracy, weighted F1, macro F1 and UAR over the set's own classes (``TextSet.allowed``), valence
    MAE where the set has valence; and the confusion matrix."""
    pred = model.predict(encode_batch(data.words), context)
    m = classification_metrics(pred.probs.argmax(-1), data.emotion, len(LABELS))
    scores = {"n": len(data), "accuracy": m["accuracy"], "weighted_f1": m["weighted_f1"],
              **class_scores(m["confusion"], np.flatnonzero(data.allowed.any(0)))}
    if not np.isnan(data.valence).all():
        scores["valence_mae"] = float(np.nanmean(np.abs(pred.valence.numpy() - data.valence)))
    return scores, np.asarray(m["confusion"])


def dev_scores(model: TextEncoder, dev: Scored) -> dict[str, float]:
    """``set_scores`` of a labelled set with its contexts."""
    return set_scores(model, dev.data, dev.context)[0]


def fit_heads(model: TextEncoder, batch: Batch, dev: Scored, weight_decay: float, context_decay: float,
              rounds: int, iters: int, log: list) -> None:
    """Full-batch L-BFGS on the head table, the context head and the bias, with L2 penalties
    ``weight_decay`` on the table and ``context_decay`` on the context head. Runs ``rounds`` of
    ``iters`` iterations (the problem is convex: the last round is the best)."""
    from tqdm import tqdm

    n_emo = len(LABELS)
    opt = torch.optim.LBFGS([model.head_table, model.head_bias, model.context_head], lr=1.0, max_iter=iters, history_size=20,
                            line_search_fn="strong_wolfe", tolerance_grad=1e-7, tolerance_change=1e-10)

    def closure() -> torch.Tensor:
        opt.zero_grad()
        out = torch.sparse.mm(batch.bags, model.head_table) + model.head_bias + model.context_logits(batch.context)
        loss = (batch.loss(out[:, :n_emo], out[:, n_emo:]) + weight_decay * model.head_table.square().sum()
                + context_decay * model.context_head.square().sum())
        loss.backward()
        return loss.detach()

    for r in (bar := tqdm(range(1, rounds + 1), desc="heads (L-BFGS)", unit="round")):
        loss = float(opt.step(closure))
        dev_m = dev_scores(model, dev)
        log.append({"stage": "heads", "round": r, "iterations": r * iters, "loss": loss,
                    **{f"dev_{k}": v for k, v in dev_m.items()}})
        bar.write(f"heads round {r:2d}  loss {loss:.4f}  " + "  ".join(f"dev {k} {v:.4f}" for k, v in dev_m.items()
                                                                  if isinstance(v, float)))


def fit_embedding(model: TextEncoder, batch: Batch, dev: TextSet, epochs: int, lr: float, dropout: float,
                  seed: int, log: list, batch_size: int = 256) -> float:
    """Adam on the embedding table through throw-away linear heads (emotion, sentiment); keeps the
    epoch with the best dev weighted F1 of its emotion head and returns that score."""
    from tqdm import tqdm

    gen = torch.Generator().manual_seed(seed)
    table = torch.randn(TEXT_BUCKETS, EMBED_DIM, generator=gen) * 0.1
    table[0] = 0
    table.requires_grad_(True)
    heads = nn.ModuleList([nn.Linear(EMBED_DIM, len(LABELS)), nn.Linear(EMBED_DIM, len(SENTIMENTS))])
    drop = nn.Dropout(dropout)
    opt = torch.optim.AdamW([{"params": [table], "weight_decay": 0.0},
                             {"params": heads.parameters(), "weight_decay": 1e-2}], lr=lr)
    pieces = _columns_below(batch.bags, TEXT_BUCKETS)
    dev_bags = _columns_below(_sparse_bags(model, dev.words), TEXT_BUCKETS)
    n = pieces.shape[0]
    best, best_table = -1.0, None
    for epoch in range(1, epochs + 1):
        order = torch.randperm(n, generator=gen)
        total = 0.0
        heads.train()
        for i in tqdm(range(0, n, batch_size), desc=f"embedding epoch {epoch}/{epochs}", leave=False, unit="batch"):
            idx = order[i:i + batch_size]
            e = drop(torch.sparse.mm(pieces.index_select(0, idx), table))  # (b, EMBED_DIM)
            loss = batch.loss(heads[0](e), heads[1](e), idx)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
        heads.eval()
        with torch.no_grad():
            pred = heads[0](torch.sparse.mm(dev_bags, table)).argmax(-1)
        m = classification_metrics(pred, dev.emotion, len(LABELS))
        log.append({"stage": "embedding", "epoch": epoch, "loss": total / n, "dev_accuracy": m["accuracy"],
                    "dev_weighted_f1": m["weighted_f1"], "dev_macro_f1": m["macro_f1"]})
        print(f"embedding epoch {epoch:2d}  loss {total / n:.4f}  probe dev acc {m['accuracy']:.4f}  "
              f"wF1 {m['weighted_f1']:.4f}  mF1 {m['macro_f1']:.4f}", flush=True)
        if m["weighted_f1"] > best:
            best, best_table = m["weighted_f1"], table.detach().clone()
    with torch.no_grad():
        model.embed_table.copy_(best_table)
    return best


def _columns_below(x: torch.Tensor, n_cols: int) -> torch.Tensor:
    """The first ``n_cols`` columns of a coalesced sparse COO matrix."""
    idx, val = x.indices(), x.values()
    keep = idx[1] < n_cols
    return _coo(idx[:, keep], val[keep], (x.shape[0], n_cols))


def cached_contexts(sentences: SentenceEncoder, utterances: Sequence[Sequence[str]]) -> torch.Tensor:
    """``contexts`` of the utterances, kept in the user cache under a hash of them and of the sentence
    encoder's weights (a written corpus takes minutes to encode)."""
    digest = hashlib.sha256(json.dumps([sha256(SENTENCE_WEIGHTS), [list(u) for u in utterances]]).encode()).hexdigest()
    path = cache_dir("text_encoder") / "contexts" / f"{digest[:24]}.npy"
    if path.is_file():
        return torch.from_numpy(np.load(path, allow_pickle=False))
    found = contexts(sentences, utterances)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, found.numpy(), allow_pickle=False)
    return found


def train(data: Path, out: Path, power: float, weight_decay: float, context_decay: float, emorynlp_weight: float,
          mosi_weight: float, rounds: int, iters: int, epochs: int, lr: float, dropout: float, seed: int,
          written: tuple[str, ...] = tuple(WRITTEN), written_weight: float = WRITTEN_WEIGHT, meld: bool = True) -> dict:
    """Fit idf, context statistics, heads and embedding on MELD train (+ MOSI valence, + EmoryNLP if
    weighted), every utterance four times: its bag and its context each with and without its marks,
    and on the train splits of the ``written`` corpora without marks, as the ASR gives words; select on
    MELD dev (GoEmotions dev without MELD); write float16 weights and a JSON sidecar with dev scores
    with and without marks."""
    torch.manual_seed(seed)
    t0 = time.perf_counter()
    parts = [(meld_split(data, "train"), 1.0 if meld else 0.0),
             (read_mosi(data / "mosi" / "label.csv", ("train", "valid")), mosi_weight)]
    if emorynlp_weight > 0:
        parts += [(read_emorynlp(data / "emorynlp" / f"emorynlp_{s}_final.csv"), emorynlp_weight)
                  for s in ("train", "dev", "test")]
    parts = [(p, w) for p, w in parts if w > 0]
    corpus = reduce(operator.add, (p for p, _ in parts))
    bare = corpus.without_marks()
    extra = [(read_written(data, c, "train").without_marks(), written_weight) for c in written]
    extra = [(p, w) for p, w in extra if w > 0 and len(p)]
    train_set = reduce(operator.add, [corpus, corpus, bare, bare] + [p for p, _ in extra])  # spoken rows four times,
    corpus_weight = np.concatenate([np.tile(np.concatenate([np.full(len(p), w, np.float32) for p, w in parts]), 4)]
                                   + [np.full(len(p), w, np.float32) for p, w in extra])  # written ones once
    dev = meld_split(data, "dev") if meld else read_written(data, "goemotions", "dev")
    sizes = ", ".join([f"4 x {len(p)} x {w}" for p, w in parts] + [f"{len(p)} x {w}" for p, w in extra])
    print(f"training rows: {len(train_set)} ({sizes}); dev {len(dev)}", flush=True)

    sentences = load_sentence_encoder()
    print("contexts of the training and dev utterances ...", flush=True)
    dev_bare = dev.without_marks()
    scored_dev = Scored(dev, cached_contexts(sentences, dev.words))
    scored_bare = Scored(dev_bare, cached_contexts(sentences, dev_bare.words))
    model = TextEncoder()
    with torch.no_grad():
        fit_idf(model, reduce(operator.add, [corpus, bare] + [p for p, _ in extra]).words)
        marked_context, bare_context = cached_contexts(sentences, corpus.words), cached_contexts(sentences, bare.words)
        train_context = torch.cat([marked_context, bare_context] * 2  # ... each with a context with and without
                                  + [cached_contexts(sentences, p.words) for p, _ in extra])
        model.context_mean.copy_(train_context.mean(0))
        model.context_std.copy_(train_context.std(0).clamp_min(1e-3))
        batch = make_batch(model, train_set, train_context, power, corpus_weight)
    log: list[dict] = []
    fit_heads(model, batch, scored_dev, weight_decay, context_decay, rounds, iters, log)
    probe = fit_embedding(model, batch, dev, epochs, lr, dropout, seed, log)
    with torch.no_grad():  # ship float16: score what is shipped
        for t in model.state_dict().values():
            t.copy_(t.half().float())
    dev_m, bare_m = dev_scores(model, scored_dev), dev_scores(model, scored_bare)
    dev_name = "meld_dev" if meld else "goemotions_dev"
    for name, m in ((f"{dev_name} (float16 weights)", dev_m), ("  without marks", bare_m)):
        print(f"{name}: " + "  ".join(f"{k} {v:.4f}" for k, v in m.items()), flush=True)
    meta = {**_meta_contract(),
            "metrics": {dev_name: dev_m, f"{dev_name}_without_marks": bare_m, "embedding_probe_dev_weighted_f1": probe},
            "training": {"data": ("MELD train (emotion, sentiment), " if meld else "")
                                 + "CMU-MOSI train+valid (valence)"
                                 + (", EmoryNLP all splits (emotion)" if emorynlp_weight > 0 else "")
                                 + "".join(f", {c} train without marks (emotion)" for c in written if written_weight > 0)
                                 + "; research corpora, non-commercial research use only",
                         "written": list(written), "written_weight": written_weight, "meld": meld,
                         "seed": seed, "class_weight_power": power, "weight_decay": weight_decay,
                         "context_decay": context_decay,
                         "emorynlp_weight": emorynlp_weight, "mosi_weight": mosi_weight,
                         "marks": "every utterance four times: bag and context each with and without its marks",
                         "lbfgs_rounds": rounds,
                         "lbfgs_iters_per_round": iters, "embedding_epochs": epochs, "embedding_lr": lr,
                         "embedding_dropout": dropout, "seconds": round(time.perf_counter() - t0, 1), "log": log}}
    meta = write_model_files({k: v.half() for k, v in model.state_dict().items()}, out, out.with_suffix(".json"), meta)
    print(f"wrote {out} ({out.stat().st_size / 2**20:.2f} MiB) and {out.with_suffix('.json').name}", flush=True)
    return meta


def test_scores(data: Path, weights: Path = WEIGHTS_PATH) -> tuple[dict, np.ndarray]:
    """Test scores of the weights (``set_scores``): MELD with the marks of the raw text and without any
    (as live), each written corpus without marks; and MELD's confusion matrix (with marks)."""
    model, sentences = load_text_encoder(weights), load_sentence_encoder()

    def scores(data: TextSet) -> tuple[dict, np.ndarray]:
        found, confusion = set_scores(model, data, cached_contexts(sentences, data.words))
        return {k: round(v, 4) if isinstance(v, float) else v for k, v in found.items()}, confusion

    test = meld_split(data, "test")
    with_marks, confusion = scores(test)
    return ({"split": "meld_test", **with_marks, "without_marks": scores(test.without_marks())[0],
             "written_test_without_marks": {c: scores(read_written(data, c, "test").without_marks())[0]
                                            for c in WRITTEN}},
            confusion)


def evaluate(data: Path, weights: Path, png: Path) -> dict:
    """``test_scores``; saves MELD's confusion matrix; the last line printed is JSON."""
    result, confusion = test_scores(data, weights)
    report_confusion(confusion, png, f"MELD test (text): acc {result['accuracy']:.3f}, "
                                     f"wF1 {result['weighted_f1']:.3f}, mF1 {result['macro_f1']:.3f}")
    print(json.dumps(result))
    return result


def parser() -> argparse.ArgumentParser:
    """The command line: ``train``, ``evaluate`` and ``cross-corpus`` sub-commands."""
    ap, t = train_evaluate_parser(
        "python -m realtime.text_encoder", __doc__, "text_encoder",
        ("fit the text encoder on MELD train (+ MOSI valence) and the written corpora, select on MELD dev",
         "score weights on MELD test (with and without marks) and the written corpora's test splits"),
        lambda p, _: p.add_argument("--data", type=Path, required=True, help="folder with meld/, emorynlp/ and mosi/"),
        WEIGHTS_PATH)
    t.add_argument("--class-weight-power", type=float, default=0.75, help="0 = unweighted, 1 = balanced")
    t.add_argument("--weight-decay", type=float, default=5e-5, help="L2 penalty on the head table")
    t.add_argument("--context-decay", type=float, default=1e-4, help="L2 penalty on the context head")
    t.add_argument("--emorynlp-weight", type=float, default=0.0, help="sample weight of EmoryNLP rows (0 = unused)")
    t.add_argument("--mosi-weight", type=float, default=1.0, help="sample weight of MOSI valence rows")
    t.add_argument("--rounds", type=int, default=4, help="L-BFGS rounds, dev metrics after each")
    t.add_argument("--iters", type=int, default=40, help="L-BFGS iterations per round")
    t.add_argument("--epochs", type=int, default=6, help="embedding epochs")
    t.add_argument("--lr", type=float, default=3e-3, help="embedding learning rate")
    t.add_argument("--dropout", type=float, default=0.5, help="embedding dropout")
    t.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    t.add_argument("--written", default=",".join(WRITTEN),
                   help="comma-separated written corpora trained on without marks, or '' (default: %(default)s)")
    t.add_argument("--written-weight", type=float, default=WRITTEN_WEIGHT,
                   help="sample weight of their rows (default: %(default)s)")
    t.add_argument("--without-meld", action="store_true", help="leave MELD out (select on GoEmotions dev)")
    c = add_command(ap, "cross-corpus", "train without MELD, then without GoEmotions; score each on the one left out")
    c.add_argument("--data", type=Path, required=True, help="folder with meld/, mosi/ and the written corpora")
    c.add_argument("--out", type=Path, default=CROSS_CORPUS_DIR,
                   help="folder of the weights and cross_corpus.json (default: %(default)s)")
    return ap


def train_with(a: argparse.Namespace, out: Path, written: tuple[str, ...], meld: bool) -> dict:
    """``train`` with the options of a parsed ``train`` command line."""
    return train(a.data, out, a.class_weight_power, a.weight_decay, a.context_decay, a.emorynlp_weight, a.mosi_weight,
                 a.rounds, a.iters, a.epochs, a.lr, a.dropout, a.seed, written, a.written_weight, meld)


def cross_corpus(a: argparse.Namespace) -> dict:
    """For MELD and GoEmotions in turn, an encoder trained without it (``train``'s defaults otherwise),
    scored on its test split without marks; written to ``a.out``/cross_corpus.json as each ends."""
    defaults = parser().parse_args(["train", "--data", str(a.data)])
    sentences, result = load_sentence_encoder(), {}
    for left in CROSS_CORPUS_TEXT:
        weights = a.out / f"text_without_{left}.safetensors"
        train_with(defaults, weights, tuple(c for c in WRITTEN if c != left), meld=left != "meld")
        test = (meld_split(a.data, "test") if left == "meld" else read_written(a.data, left, "test")).without_marks()
        scores = set_scores(load_text_encoder(weights), test, cached_contexts(sentences, test.words))[0]
        result[left] = {k: round(v, 4) if isinstance(v, float) else v for k, v in scores.items()}
        (a.out / "cross_corpus.json").write_text(json.dumps(result, indent=1))
    print(json.dumps(result))
    return result


def main(argv: list[str] | None = None) -> None:
    p = parser()
    a = p.parse_args(argv)
    torch.set_num_threads(1)  # small sparse problems: one thread is as fast and leaves the others free
    if a.cmd == "train":
        written = tuple(c.strip() for c in a.written.split(",") if c.strip())
        if bad := [c for c in written if c not in WRITTEN]:
            p.exit(2, f"{p.prog} train: unknown written corpus {', '.join(bad)}; known: {', '.join(WRITTEN)}\n")
        train_with(a, a.out, written, not a.without_meld)
    elif a.cmd == "cross-corpus":
        cross_corpus(a)
    else:
        evaluate(a.data, a.weights, a.png)
