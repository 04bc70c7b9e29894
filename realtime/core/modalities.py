"""The modalities, named once: their names, their one order, and how the model and the overlay spell them.

``MODALITIES`` (visual, audio, text) is the order of windows, presence columns and pools. The DMD
model and its GD-Unit index them as l, v, a (``MODEL_ORDER``: language, vision, audio, GD-Unit
indices 0, 1, 2); the overlay's graph labels them with capital letters (``LETTER``). ``EDGE_NAMES``
are the GD-Unit's six directed edges teacher -> student in the order it computes them::

    0: V->L   1: A->L   2: L->V   3: A->V   4: L->A   5: V->A
"""

from __future__ import annotations

MODALITIES = ("visual", "audio", "text")
MODEL_KEY = {"visual": "v", "audio": "a", "text": "l"}  # the model's name of each modality
MODEL_ORDER = ("l", "v", "a")  # the model's (and GD-Unit's) index order
LETTER = {m: MODEL_KEY[m].upper() for m in MODALITIES}  # V, A, L: the overlay's node labels
MODALITY_OF_LETTER = {letter: m for m, letter in LETTER.items()}

EDGES: tuple[tuple[int, int], ...] = tuple((i, j) for j in range(3) for i in range(3) if i != j)  # (teacher, student)
EDGE_NAMES: tuple[str, ...] = tuple(f"{MODEL_ORDER[i].upper()}->{MODEL_ORDER[j].upper()}" for i, j in EDGES)
# the voice encoder's reliability (0..1) from which a voice counts in full, in the fusion and in what
# is shown; below it the voice counts in proportion. Chosen on validation pairs and measured again with
# each new voice encoder (MODEL_CARD.md, "A voice the model does not know")
VOICE_FULL_TRUST = 0.5


def voice_trust(reliability: float) -> float:
    """How much a voice of this reliability counts, 0..1: min(1, reliability / VOICE_FULL_TRUST)."""
    return min(1.0, reliability / VOICE_FULL_TRUST)
