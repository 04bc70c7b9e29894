"""What the encoders' offline command lines share: the ``train`` / ``evaluate`` parser and the
confusion-matrix report."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import numpy as np

from dmd_lite.metrics import save_confusion_png
from realtime.core.feature_spec import LABELS
from realtime.core.resources import cache_dir


def add_png_option(parser: argparse.ArgumentParser, name: str) -> None:
    """``--png``: where ``evaluate`` saves its confusion matrix (default: the user cache's ``name``/)."""
    parser.add_argument("--png", type=Path, default=cache_dir(name) / "confusion.png",
                        help="where the confusion matrix is saved (default: %(default)s)")


def train_evaluate_parser(prog: str, doc: str, name: str, helps: tuple[str, str],
                          add_inputs: Callable[[argparse.ArgumentParser, str], None],
                          weights: Path | None = None) -> tuple[argparse.ArgumentParser, argparse.ArgumentParser]:
    """An encoder's command line with ``train`` and ``evaluate`` sub-commands (``helps``, in that order):
    ``add_inputs(sub_parser, command)`` adds the options both take; with ``weights``, ``train --out``
    and ``evaluate --weights`` default to it; ``evaluate --png`` goes to the user cache's ``name``/.
    Returns the parser and ``train``'s, for its own options (``evaluate`` is complete)."""
    ap = argparse.ArgumentParser(prog=prog, description=doc.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True, help="what to do")
    train, evaluate = (sub.add_parser(command, help=what) for command, what in zip(("train", "evaluate"), helps))
    for command, p in (("train", train), ("evaluate", evaluate)):
        add_inputs(p, command)
    if weights is not None:
        train.add_argument("--out", type=Path, default=weights,
                           help="where the weights (and their JSON sidecar) are written (default: %(default)s)")
        evaluate.add_argument("--weights", type=Path, default=weights,
                              help="the weights to score (default: %(default)s)")
    add_png_option(evaluate, name)
    return ap, train


def add_command(parser: argparse.ArgumentParser, command: str, what: str) -> argparse.ArgumentParser:
    """Another sub-command of a ``train_evaluate_parser`` command line; its parser, for its options."""
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))  # argparse has no public getter
    return sub.add_parser(command, help=what)


def report_confusion(confusion: np.ndarray, png: Path, title: str, cell: int = 6, row_label: int = 10) -> None:
    """Print ``confusion`` (rows true, columns predicted, ``LABELS`` order; ``cell`` characters a count,
    ``row_label`` for the row names) and save it as a picture at ``png``, titled ``title``."""
    print("rows true, columns predicted: " + " ".join(f"{lab[:cell - 1]:>{cell}}" for lab in LABELS))
    for lab, row in zip(LABELS, confusion):
        print(f"{lab:>{row_label}} " + " ".join(f"{v:{cell}d}" for v in row))
    save_confusion_png(confusion, LABELS, png, title)
    print(f"confusion matrix saved to {png}")
