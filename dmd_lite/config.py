"""Model configuration and presets.

`paper` presets reproduce the official DMD hyper-parameters (``config/config.json``, key ``dmd``,
of github.com/mdswyz/DMD); they load official checkpoints and keep the official behaviour,
quirks included. The `lite` preset is sized for real-time edge inference on masked windows.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace


@dataclass(frozen=True)
class DMDConfig:
    name: str = "custom"
    # inputs: feature size and sequence length per modality
    dim_l: int = 768
    dim_a: int = 5
    dim_v: int = 20
    len_l: int = 50
    len_a: int = 50
    len_v: int = 50
    # temporal projection (bias-free Conv1d per modality)
    kernel_l: int = 5
    kernel_a: int = 5
    kernel_v: int = 5
    same_padding: bool = False  # pad the convs so every step keeps its time (needed for masks)
    stride_l: int = 1  # > 1: unpadded conv over patches, one step per `stride` input steps
    stride_a: int = 1
    stride_v: int = 1
    # transformers
    d_model: int = 50
    num_heads: int = 10
    nlevels: int = 4  # layers of every transformer
    min_mem_layers: int = 3  # the *_mem ones get max(nlevels, this): the official code asks 3, gets 4
    causal: bool = True  # MulT's future mask (official `attn_mask`)
    # dropouts (official names; the crossmodal assignment keeps MulT's naming quirk)
    attn_dropout: float = 0.3
    attn_dropout_a: float = 0.2
    attn_dropout_v: float = 0.0
    relu_dropout: float = 0.0
    res_dropout: float = 0.0
    embed_dropout: float = 0.2
    output_dropout: float = 0.5
    text_dropout: float = 0.5
    # masks: True = take presence masks; padding is kept out of attention, pooling and read-out
    # (masked mean instead of last step and of flattening). False = the official behaviour.
    use_masks: bool = False
    keep_unused: bool = True  # build official modules that feed no loss (proj_cosine_*)
    input_heads: bool = False  # lite: a linear head per modality on its pooled input, added to the output
    text_last_step: bool = False  # the text input head reads the last present word, not the mean (cumulative features)
    # output heads: K-way classification and/or a regression score (sentiment)
    n_classes: int = 0
    regression: bool = True
    # GD-Units (official values)
    gd_size_homo: int = 64
    gd_size_hetero: int = 32
    gd_prior_homo: tuple[float, ...] = (0, 0, 1, 0, 1, 0)
    gd_prior_hetero: tuple[float, ...] = (0, 0, 1, 0, 1, 1)
    gd_prior_temperature: float = 0.25
    gd_alpha: float = 1 / 8  # edge logits are multiplied by alpha before the softmax
    gd_normalize: str = "joint"  # "joint": one softmax over 6 edges (DMD); "per_target": per student (Luo et al.)
    labels: tuple[str, ...] = field(default_factory=tuple)  # class names, when n_classes > 0

    @property
    def n_outputs(self) -> int:
        return self.n_classes + int(self.regression)

    @property
    def mem_layers(self) -> int:
        return max(self.nlevels, self.min_mem_layers)

    def dim(self, m: str) -> int:
        return getattr(self, f"dim_{m}")

    def length(self, m: str) -> int:
        return getattr(self, f"len_{m}")

    def kernel(self, m: str) -> int:
        return getattr(self, f"kernel_{m}")

    def stride(self, m: str) -> int:
        return getattr(self, f"stride_{m}")

    def padding(self, m: str) -> int:
        """Padding of the temporal projection conv (same padding applies to stride 1 only)."""
        return (self.kernel(m) - 1) // 2 if self.same_padding and self.stride(m) == 1 else 0

    def projected_length(self, m: str) -> int:
        """Sequence length after the temporal projection conv."""
        return (self.length(m) + 2 * self.padding(m) - self.kernel(m)) // self.stride(m) + 1

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> DMDConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown DMD config keys {sorted(unknown)}; is the checkpoint from a newer version?")
        tuples = {k: tuple(v) for k, v in d.items() if isinstance(v, list)}
        return cls(**{**d, **tuples})

    def with_data(self, **sizes: int) -> DMDConfig:
        """A copy sized for a data set (``dim_*``, ``len_*``)."""
        return replace(self, **sizes)


_MOSI = DMDConfig(name="mosi_aligned")
_MOSEI = DMDConfig(
    name="mosei_aligned", dim_a=74, dim_v=35, kernel_a=1, kernel_v=3, d_model=30, num_heads=6,
    attn_dropout=0.4, attn_dropout_a=0.0, embed_dropout=0.0, text_dropout=0.3,
)

PRESETS: dict[str, DMDConfig] = {
    "mosi_aligned": _MOSI,
    # MOSI unaligned lengths are hard-coded in the official model: vision 500, audio 375
    "mosi_unaligned": replace(_MOSI, name="mosi_unaligned", len_v=500, len_a=375),
    "mosei_aligned": _MOSEI,
    "mosei_unaligned": replace(_MOSEI, name="mosei_unaligned", len_v=500, len_a=500),
    # Sized for a 4 s window at batch 1 within about 5 ms on one CPU core: the 12 transformers
    # (3 common self-attention, 6 crossmodal, 3 memory) have one layer each at d=32, because at
    # these sizes the cost is per layer, not per FLOP (2 layers: about 1.8x the latency);
    # voice (25 Hz) and face (15 Hz) are projected in patches of 4 and 2 steps (6.25 and 7.5 steps
    # a second: a third of the attention and feed-forward work), words one step per word; a
    # projected step is present where any step of its patch is. No causal mask, because the
    # read-out is a masked mean, not the last step. Inputs are a window's
    # features: words 40 (realtime.frontends.text_frontend), voice 39 (the recognizer's frozen
    # realtime.nets.voice_encoder), face 127 (realtime.frontends.face).
    # The input heads add a late-fusion path (each modality's pooled input -> logits) to the
    # fused output, so the encoders' own class evidence reaches it directly and the crossmodal
    # path learns what to add. The words' features are cumulative over their utterance's words,
    # so the last word's sum up its utterance: the text input head reads that slot.
    "lite": DMDConfig(
        name="lite", dim_l=40, dim_a=39, dim_v=127, len_l=24, len_a=100, len_v=60,
        kernel_l=1, kernel_a=4, kernel_v=2, same_padding=True, stride_a=4, stride_v=2,
        d_model=32, num_heads=4, nlevels=1, min_mem_layers=1, causal=False,
        attn_dropout=0.1, attn_dropout_a=0.1, attn_dropout_v=0.1, relu_dropout=0.1, res_dropout=0.1,
        embed_dropout=0.1, output_dropout=0.2, text_dropout=0.1,
        use_masks=True, keep_unused=False, input_heads=True, text_last_step=True, n_classes=0, regression=True,
    ),
}


def preset(name: str) -> DMDConfig:
    """A named preset; raises with the list of names when unknown."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    return PRESETS[name]
