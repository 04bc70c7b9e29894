"""The overlay, as a pure function: ``render(frame, state) -> image`` (a new BGR image, OpenCV only).

What it draws, readable at a glance on a 640x480 frame (sizes scale with the frame's height):
  * the face box, in the colour of the shown emotion;
  * top left: the shown label with its confidence ("uncertain" in grey, with why), a bar per class
    (smoothed probabilities), and a valence meter from negative (-1) to positive (+1) ("unknown"
    while no modality is reliable enough);
  * top right: the three modalities as nodes (V face, A voice, L words) and the live HeteroGD edge
    weights as arrows whose width is the weight; a modality that is absent is grey, its edges are
    0 and are not drawn; a present one fades from green toward grey with its reliability (a voice
    unlike the ones trained on fades). Hetero, not homo, edges are shown: they are the cross-modal teaching
    between the modality-exclusive parts, the ones that differ between people and moments;
  * under the panels, in red: the modalities that are off and why (the message's first clause;
    the whole message is in the log and the events);
  * bottom: the last recognised words (the tentative ones dimmer) and a readout of latencies
    (capture to display, model, ASR lag) and the display frame rate; on a Jetson, above them, a line
    of its own load figures (``Readout.device``, from ``outputs.tegrastats``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import cv2
import numpy as np

from realtime.core.modalities import EDGE_NAMES, MODALITY_OF_LETTER
from realtime.smoothing import UNCERTAIN, Decision

NODE_NAMES = {"V": "face", "A": "voice", "L": "words"}
LABEL_COLOURS = {  # BGR
    "neutral": (200, 200, 200), "happy": (0, 215, 255), "sad": (220, 120, 40), "angry": (40, 40, 230),
    "fearful": (180, 80, 160), "disgusted": (60, 170, 60), "surprised": (0, 140, 255),
}
GREY = (128, 128, 128)
WHITE = (255, 255, 255)
RED = (60, 60, 255)
EDGE_COLOUR = (255, 220, 120)
MAX_EDGE_PX = 14  # arrow width of an edge of weight 1
MIN_EDGE = 0.02  # lighter edges are not drawn
FONT = cv2.FONT_HERSHEY_SIMPLEX


@dataclass(frozen=True)
class Readout:
    """The small latency / rate readout; None where not measured yet."""

    glass_ms: float | None = None  # frame captured -> shown with its overlay
    model_ms: float | None = None
    asr_lag_s: float | None = None  # clock now -> end of the audio the ASR has decoded
    fps: float | None = None  # frames shown per second
    device: str = ""  # the device's load line (tegrastats on a Jetson); '' draws nothing


@dataclass(frozen=True)
class OverlayState:
    """Everything the overlay shows besides the frame."""

    labels: tuple[str, ...]
    decision: Decision | None = None  # None until the first answer
    box: tuple[int, int, int, int] | None = None  # face box in frame pixels, None without a face
    present: Mapping[str, bool] = field(default_factory=dict)  # per modality, in the last window
    off: Mapping[str, str] = field(default_factory=dict)  # modality -> why it is off
    edges_hetero: np.ndarray | None = None  # (6,) in gd_unit.EDGE_NAMES order
    words: str = ""  # last recognised words
    partial: str = ""  # tentative words of the utterance in progress
    readout: Readout = Readout()
    reliability: Mapping[str, float] = field(default_factory=dict)  # per modality 0 .. 1; a node fades with it


def label_colour(label: str, labels: tuple[str, ...]) -> tuple[int, int, int]:
    if label in LABEL_COLOURS:
        return LABEL_COLOURS[label]
    if label == UNCERTAIN or label not in labels:
        return GREY
    hue = int(180 * labels.index(label) / len(labels))
    return tuple(int(c) for c in cv2.cvtColor(np.uint8([[[hue, 200, 230]]]), cv2.COLOR_HSV2BGR)[0, 0])


def _panel(img: np.ndarray, x0: int, y0: int, x1: int, y1: int) -> None:
    """Darken a rectangle (clipped to the image) so text on it reads on any background."""
    h, w = img.shape[:2]
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
    if x1 > x0 and y1 > y0:
        img[y0:y1, x0:x1] //= 3


def _text(img: np.ndarray, text: str, org: tuple[int, int], scale: float, colour, thick: int = 1) -> None:
    cv2.putText(img, text, org, FONT, scale, colour, thick, cv2.LINE_AA)


def _edges(img: np.ndarray, state: OverlayState, x0: int, y0: int, size: int, s: float) -> None:
    """The modality graph in the square (x0, y0, size): nodes, and arrows for the hetero edges."""
    r = round(16 * s)
    nodes = {"V": (x0 + r + 4, y0 + size - r - 4), "A": (x0 + size - r - 4, y0 + size - r - 4),
             "L": (x0 + size // 2, y0 + r + round(16 * s))}
    edges = state.edges_hetero
    if edges is not None:
        for name, w in zip(EDGE_NAMES, np.asarray(edges, np.float64)):
            if w < MIN_EDGE:
                continue
            a, b = np.array(nodes[name[0]], float), np.array(nodes[name[-1]], float)
            d = (b - a) / np.linalg.norm(b - a)
            shift = np.array([-d[1], d[0]]) * 5 * s  # two directions between a pair sit side by side
            p, q = a + d * (r + 2) + shift, b - d * (r + 2) + shift
            cv2.arrowedLine(img, tuple(np.round(p).astype(int)), tuple(np.round(q).astype(int)), EDGE_COLOUR,
                            max(1, round(w * MAX_EDGE_PX * s)), cv2.LINE_AA, tipLength=0.2)
    for key, (cx, cy) in nodes.items():
        modality = MODALITY_OF_LETTER[key]
        on = state.present.get(modality, False) and modality not in state.off
        trust = float(np.clip(state.reliability.get(modality, 1.0), 0.0, 1.0)) if on else 0.0
        colour = tuple(round(g + trust * (c - g)) for c, g in zip((90, 200, 90), GREY))
        cv2.circle(img, (cx, cy), r, colour, -1, cv2.LINE_AA)
        cv2.circle(img, (cx, cy), r, WHITE if on else (70, 70, 70), 1, cv2.LINE_AA)
        _text(img, key, (cx - round(6 * s), cy + round(6 * s)), 0.55 * s, (20, 20, 20), max(1, round(2 * s)))
        name_at = (cx + r + 3, cy + round(4 * s)) if key == "L" else (cx - r, cy + r + round(13 * s))
        _text(img, NODE_NAMES[key], name_at, 0.4 * s, WHITE if on else GREY)
    _text(img, "GD-Unit (hetero)", (x0 + 4, y0 + round(12 * s)), 0.4 * s, WHITE)


def _readout(r: Readout) -> str:
    def ms(v: float | None) -> str:
        return "-" if v is None else f"{v:.0f} ms"

    asr = "-" if r.asr_lag_s is None else f"{r.asr_lag_s:.1f} s"
    fps = "-" if r.fps is None else f"{r.fps:.1f}"
    return f"capture->display {ms(r.glass_ms)} | model {ms(r.model_ms)} | ASR lag {asr} | {fps} fps"


def render(frame: np.ndarray, state: OverlayState) -> np.ndarray:
    """A copy of the BGR ``frame`` with the overlay drawn on it."""
    img = frame.copy()
    h, w = img.shape[:2]
    s = max(0.6, h / 480)
    d = state.decision
    label = d.label if d is not None else UNCERTAIN
    colour = label_colour(label, state.labels)

    if state.box is not None:
        x0, y0, x1, y1 = state.box
        cv2.rectangle(img, (x0, y0), (x1, y1), colour, max(2, round(2 * s)), cv2.LINE_AA)
        _text(img, label, (x0, max(12, y0 - round(6 * s))), 0.55 * s, colour, max(1, round(2 * s)))

    # left panel: label, bars, valence
    pw, row = round(210 * s), round(17 * s)
    bars_y = round(44 * s)
    valence_y = bars_y + row * len(state.labels) + round(10 * s)
    _panel(img, 0, 0, pw, valence_y + round(30 * s))
    if d is None:
        title = "waiting for the first window"
    elif d.label == UNCERTAIN:
        title = f"uncertain ({d.reason})"
    else:
        title = f"{d.label} {100 * d.confidence:.0f}%"
    _text(img, title, (round(8 * s), round(28 * s)), (0.75 if d is not None and d.label != UNCERTAIN else 0.5) * s,
          colour, max(1, round(2 * s)))
    probs = d.probabilities if d is not None else np.zeros(len(state.labels))
    bar_x, bar_w = round(82 * s), pw - round(90 * s)
    for i, (name, p) in enumerate(zip(state.labels, probs)):
        y = bars_y + i * row
        _text(img, name, (round(8 * s), y + row - round(5 * s)), 0.42 * s, WHITE)
        cv2.rectangle(img, (bar_x, y + 2), (bar_x + bar_w, y + row - 3), (70, 70, 70), 1)
        fill = round(float(p) * bar_w)
        if fill > 0:
            cv2.rectangle(img, (bar_x, y + 3), (bar_x + fill, y + row - 4), label_colour(name, state.labels), -1)
    _text(img, "valence", (round(8 * s), valence_y + round(14 * s)), 0.42 * s, WHITE)
    vx0, vx1, vy = bar_x, bar_x + bar_w, valence_y + round(9 * s)
    cv2.line(img, (vx0, vy), (vx1, vy), (90, 90, 90), max(2, round(4 * s)))
    cv2.line(img, ((vx0 + vx1) // 2, vy - round(6 * s)), ((vx0 + vx1) // 2, vy + round(6 * s)), WHITE, 1)
    if d is not None and d.valence is None:
        _text(img, "unknown", (vx0 + round(4 * s), vy + round(4 * s)), 0.4 * s, GREY)
    elif d is not None:
        vx = round(vx0 + (np.clip(d.valence, -1, 1) + 1) / 2 * (vx1 - vx0))
        tone = (80, 200, 80) if d.valence >= 0 else (80, 80, 230)
        cv2.line(img, ((vx0 + vx1) // 2, vy), (vx, vy), tone, max(2, round(4 * s)))
        cv2.circle(img, (vx, vy), round(6 * s), tone, -1, cv2.LINE_AA)

    # right panel: modalities and edges
    size = round(150 * s)
    _panel(img, w - size, 0, w, size + round(8 * s))
    _edges(img, state, w - size, 0, size, s)

    # modalities that are off, in red
    y = valence_y + round(48 * s)
    for modality, why in state.off.items():
        _panel(img, 0, y - round(14 * s), w, y + round(6 * s))
        _text(img, f"{modality} off: {why.split(': ')[0]}"[:100], (round(8 * s), y), 0.42 * s, RED)
        y += round(20 * s)

    # bottom: the device's load line (if any), words and readout
    footer_h = 62 if state.readout.device else 44
    _panel(img, 0, h - round(footer_h * s), w, h)
    if state.readout.device:
        _text(img, state.readout.device[:100], (round(8 * s), h - round(44 * s)), 0.4 * s, (200, 230, 200))
    words = state.words[-70:]
    _text(img, words, (round(8 * s), h - round(26 * s)), 0.5 * s, WHITE)
    if state.partial:
        (tw, _), _ = cv2.getTextSize(words + " ", FONT, 0.5 * s, 1)
        _text(img, state.partial[-40:], (round(8 * s) + tw, h - round(26 * s)), 0.5 * s, (150, 150, 150))
    _text(img, _readout(state.readout), (round(8 * s), h - round(8 * s)), 0.4 * s, (200, 230, 200))
    return img
