"""The recognizer's window as four Triton kernels (shapes of the ``lite`` preset; ``weights`` packs them).

1. ``front_kernel``, one program per window: the voice encoder (per-window mel-mean normalisation,
   four conv blocks with BatchNorm folded in, the trunk's and the GE2E states' pooled statistics
   into the classifier, the GE2E branch's BatchNorm folded into it, per-step embedding), then for each
   modality DMD's patch projection folded into its shared and private 1x1 convs (the common ``c``
   and specific ``s`` steps), the projected presence masks, the pooled ``c`` the homo heads read,
   the input heads and the text encoder's own answer at the last word.
2. ``transformer_kernel``, one program per (transformer, window): a whole pre-LN encoder layer
   (embedding with positions, layer norms of queries and of keys/values, Q/K/V, masked softmax
   attention, output projection, residual, layer norm, feed-forward, residual, final layer norm)
   with the sequence kept on chip. Launched once for the 3 common and 6 crossmodal transformers
   together (d = 32), once for the 3 memory transformers (d = 64). Results leave as masked-mean
   read-outs or, for the crossmodal ones, as the halves of the memory's input.
3. ``head_kernel``, one program per window: homo and hetero heads, gates, fusion head, input heads,
   both GD-Units (edge network, alpha, masked joint softmax over the 6 directed edges) and the
   decision (temperature softmax, words alone answered by the text encoder, valence clamp).

Masks follow the model: padding never enters a product (loads at absent steps read 0), a key that
is absent is never attended, and a query with no key to attend gets a zero attention output.
Per-window vectors pass between stages through a small scratch row (``VEC``) in global memory,
read back after a barrier. ``DOT`` picks the matrix products' arithmetic: 0 float32 (IEEE),
1 TF32, 2 float16 operands, 3 bfloat16 operands (accumulation in float32 always).
"""

from __future__ import annotations

import triton
import triton.language as tl

# sizes of the lite preset (weights.check_supported refuses any other model)
D = tl.constexpr(32)  # DMD width
D2 = tl.constexpr(64)  # memory width (2 d)
HEADS = tl.constexpr(4)
NP = tl.constexpr(32)  # projected steps per modality, padded (24 words, 25 voice, 30 face)
NOUT = tl.constexpr(8)  # 7 class logits + valence
NCLS = tl.constexpr(7)
LN_EPS = tl.constexpr(1e-5)
MASKED = tl.constexpr(-1e9)  # the model's blocked score
# voice encoder
T_A = tl.constexpr(100)  # voice steps
F_A = tl.constexpr(323)  # voice features per step (64 log-mel, activity, pitch, periodicity, 256 GE2E states)
F_TRUNK = tl.constexpr(67)  # the first F_TRUNK of them go into the conv trunk, the rest are the GE2E states
G = tl.constexpr(256)  # GE2E states per step
N_MELS = tl.constexpr(64)
TP = tl.constexpr(128)  # voice steps, padded
CP = tl.constexpr(128)  # voice channels, padded (96)
CB = tl.constexpr(32)  # voice channels per block
VE = tl.constexpr(32)  # voice embedding
VF = tl.constexpr(39)  # voice features handed to DMD: embedding + 7 log-probabilities
STD_EPS = tl.constexpr(1e-5)
# the other modalities' inputs
T_L = tl.constexpr(24)
F_L = tl.constexpr(40)
T_V = tl.constexpr(60)
F_V = tl.constexpr(127)
TEXT_EMBED = tl.constexpr(32)  # the text features' embedding part; then 7 log-probabilities, then valence
PATCH = tl.constexpr(256)  # patch width, padded (40, 4 x 39, 2 x 127)

# the per-window scratch row: offsets of the vectors passed between stages
CPOOL = tl.constexpr(0)  # 3 x d: masked mean of each modality's common steps
IH = tl.constexpr(96)  # 8: the input heads' sum
TEXT = tl.constexpr(104)  # 8: the text encoder's own log-probabilities and valence at the last word
PRESENT = tl.constexpr(112)  # 3 (+ pad): 1 where the modality has a present step
COMMON = tl.constexpr(128)  # 3 x d: read-outs of the common self-attention (c_fusion)
LASTH = tl.constexpr(256)  # 3 x 2d: read-outs of the memory transformers
HOMO_B = tl.constexpr(448)  # 3 x d: homo heads' bottleneck (their representation)
HOMO_R = tl.constexpr(544)  # 3 x d
HOMO_LOGIT = tl.constexpr(640)  # 3 x 8
HETERO_B = tl.constexpr(672)  # 3 x 2d
HETERO_R = tl.constexpr(864)  # 3 x 2d: hetero heads' residual sum (their representation)
HETERO_LOGIT = tl.constexpr(1056)  # 3 x 8
FUSED = tl.constexpr(1088)  # 9 d: the gated read-outs
FUSION_B = tl.constexpr(1376)  # 9 d
FUSION_R = tl.constexpr(1664)  # 9 d
LOGITS = tl.constexpr(1952)  # 8
Z_HOMO = tl.constexpr(1984)  # 3 x 128: GD-Unit node embeddings
Z_HETERO = tl.constexpr(2368)  # 3 x 64
VEC = tl.constexpr(2560)

# indices into the head's parameter list (weights.head_parameters)
HOMO_HEADS = tl.constexpr(0)  # 6 per modality: proj1 w, b, proj2 w, b, out w, b
HETERO_HEADS = tl.constexpr(18)
GATES = tl.constexpr(36)  # w, b for l, v, a, then c
FUSION_HEAD = tl.constexpr(44)
GD_HOMO = tl.constexpr(50)  # W_logit w, b, W_repr w, b, W_edge w, b
GD_HETERO = tl.constexpr(56)


@triton.jit
def _mm(a, b, DOT: tl.constexpr):
    """a @ b with float32 accumulation, operands as ``DOT`` says."""
    if DOT == 0:
        return tl.dot(a, b, input_precision="ieee")
    elif DOT == 1:
        return tl.dot(a, b, input_precision="tf32")
    elif DOT == 2:
        return tl.dot(a.to(tl.float16), b.to(tl.float16))
    else:
        return tl.dot(a.to(tl.bfloat16), b.to(tl.bfloat16))


@triton.jit
def _layer_norm(x, w_ptr, WIDTH: tl.constexpr):
    """Rows of x (n, WIDTH) normalised, times the weight at w_ptr plus the bias after it."""
    c = tl.arange(0, WIDTH)
    mean = tl.sum(x, axis=1) / WIDTH
    centred = x - mean[:, None]
    rstd = 1.0 / tl.sqrt(tl.sum(centred * centred, axis=1) / WIDTH + LN_EPS)
    w = tl.load(w_ptr + c).to(tl.float32)
    b = tl.load(w_ptr + WIDTH + c).to(tl.float32)
    return centred * rstd[:, None] * w[None, :] + b[None, :]


@triton.jit
def _matrix(ptr, ROWS: tl.constexpr, COLS: tl.constexpr):
    """A (ROWS, COLS) row-major block."""
    r = tl.arange(0, ROWS)
    c = tl.arange(0, COLS)
    return tl.load(ptr + r[:, None] * COLS + c[None, :])


@triton.jit
def _vector(ptr, N: tl.constexpr):
    return tl.load(ptr + tl.arange(0, N)).to(tl.float32)


@triton.jit
def _voice_layer(src, dst, w_ptr, b_ptr, m, TAPS: tl.constexpr, DIL: tl.constexpr, RESIDUAL: tl.constexpr,
                 DOT: tl.constexpr):
    """dst = ReLU(conv(src) + bias) * m (+ src): a 'same' dilated conv over the (TP, CP) steps at src,
    weights (TAPS, CP in, CP out), in blocks of CB channels so that little lives in registers."""
    t = tl.arange(0, TP)
    for o0 in range(0, CP, CB):
        o = o0 + tl.arange(0, CB)
        acc = tl.zeros((TP, CB), dtype=tl.float32)
        for j in tl.static_range(TAPS):
            s = t + (j - TAPS // 2) * DIL
            inside = (s >= 0) & (s < T_A)
            for i0 in range(0, CP, CB):
                i = i0 + tl.arange(0, CB)
                x = tl.load(src + s[:, None] * CP + i[None, :], mask=inside[:, None], other=0.0)
                acc += _mm(x, tl.load(w_ptr + j * CP * CP + i[:, None] * CP + o[None, :]), DOT)
        y = tl.maximum(acc + tl.load(b_ptr + o).to(tl.float32)[None, :], 0.0) * m[:, None]
        if RESIDUAL:
            y += tl.load(src + t[:, None] * CP + o[None, :])
        tl.store(dst + t[:, None] * CP + o[None, :], y)
    tl.debug_barrier()


@triton.jit
def _pooled_logits(h, w, w_ptr):
    """(NOUT,) the classifier's share of CB channels h (TP, CB) pooled over steps with weights w (TP,):
    their mean's CB columns at w_ptr and their standard deviation's CB after (rows of 2 (CP + G))."""
    o = tl.arange(0, NOUT)
    c = tl.arange(0, CB)
    mean = tl.sum(h * w[:, None], axis=0)
    centred = h - mean[None, :]
    std = tl.sqrt(tl.sum(centred * centred * w[:, None], axis=0) + STD_EPS)
    cols = w_ptr + o[:, None] * 2 * (CP + G) + c[None, :]
    return (tl.sum(tl.load(cols).to(tl.float32) * mean[None, :], axis=1)
            + tl.sum(tl.load(cols + CB).to(tl.float32) * std[None, :], axis=1))


@triton.jit
def _project(x_ptr, m_ptr, w_ptr, cs_ptr, pm_ptr, vec_ptr, MOD: tl.constexpr, T: tl.constexpr, F: tl.constexpr,
             S: tl.constexpr, SP: tl.constexpr, DOT: tl.constexpr):
    """One modality's patch projection (patches of S steps of F features, T steps) into common and
    specific steps (stored at cs_ptr rows MOD and 3 + MOD), its projected presence and pooled common steps."""
    L: tl.constexpr = (T - S) // S + 1
    p = tl.arange(0, NP)
    col = tl.arange(0, PATCH)
    k = tl.arange(0, SP)
    c = tl.arange(0, D)
    valid = (p < L)[:, None] & (col < S * F)[None, :]
    step_on = tl.load(m_ptr + p[:, None] * S + col[None, :] // F, mask=valid, other=0) != 0
    patches = tl.load(x_ptr + p[:, None] * (S * F) + col[None, :], mask=valid & step_on, other=0.0)
    under = tl.load(m_ptr + p[:, None] * S + k[None, :], mask=(p < L)[:, None] & (k < S)[None, :], other=0)
    present = tl.max((under != 0).to(tl.float32), axis=1)  # (NP,)
    common = _mm(patches, _matrix(w_ptr + MOD * 2 * PATCH * D, PATCH, D), DOT) * present[:, None]
    specific = _mm(patches, _matrix(w_ptr + (MOD * 2 + 1) * PATCH * D, PATCH, D), DOT) * present[:, None]
    tl.store(cs_ptr + MOD * NP * D + p[:, None] * D + c[None, :], common)
    tl.store(cs_ptr + (3 + MOD) * NP * D + p[:, None] * D + c[None, :], specific)
    tl.store(pm_ptr + MOD * NP + p, present)
    count = tl.sum(present, axis=0)
    tl.store(vec_ptr + CPOOL + MOD * D + c, tl.sum(common, axis=0) / tl.maximum(count, 1.0))
    tl.store(vec_ptr + PRESENT + MOD, tl.minimum(count, 1.0))


@triton.jit
def _present_mean(x_ptr, m_ptr, T: tl.constexpr, F: tl.constexpr, TB: tl.constexpr, FB: tl.constexpr):
    """(FB,) mean of the present rows of x (T, F); zeros when none is."""
    t = tl.arange(0, TB)
    f = tl.arange(0, FB)
    on = tl.load(m_ptr + t, mask=t < T, other=0) != 0
    x = tl.load(x_ptr + t[:, None] * F + f[None, :], mask=(on[:, None]) & (f < F)[None, :], other=0.0)
    return tl.sum(x, axis=0) / tl.maximum(tl.sum(on.to(tl.float32), axis=0), 1.0)


@triton.jit
def _input_head(w_ptr, MOD: tl.constexpr, summary, FB: tl.constexpr):
    """(NOUT,) one modality's input head (weights (3, NOUT, 128), zero-padded) on its summary (FB,)."""
    o = tl.arange(0, NOUT)
    f = tl.arange(0, FB)
    w = tl.load(w_ptr + MOD * NOUT * 128 + o[:, None] * 128 + f[None, :]).to(tl.float32)
    return tl.sum(w * summary[None, :], axis=1)


@triton.jit
def front_kernel(visual, visual_mask, audio, audio_mask, text, text_mask,
                 conv_first, conv_rest, conv_bias, embed_w, embed_b, cls_w, cls_b,
                 project_w, input_w, input_b,
                 scratch, voice_out, cs, pm, vec, DOT: tl.constexpr):
    """Per window: voice encoder -> voice_out (T_A, VF); projections -> cs (6, NP, D) and pm (3, NP);
    pooled common steps, presence, input heads and the text's own answer -> vec."""
    b = tl.program_id(0).to(tl.int64)
    t = tl.arange(0, TP)
    am_ptr = audio_mask + b * T_A
    on = tl.load(am_ptr + t, mask=t < T_A, other=0) != 0
    m = on.to(tl.float32)
    n = tl.maximum(tl.sum(m, axis=0), 1.0)
    ping = scratch + b * 2 * TP * CP
    pong = ping + TP * CP
    for c0 in range(0, CP, CB):  # the window's features, log-mel values minus their mean over present steps
        ch = c0 + tl.arange(0, CB)
        x = tl.load(audio + b * T_A * F_A + t[:, None] * F_A + ch[None, :], mask=on[:, None] & (ch < F_TRUNK)[None, :],
                    other=0.0)
        x = tl.where((ch < N_MELS)[None, :], (x - (tl.sum(x, axis=0) / n)[None, :]) * m[:, None], x)
        tl.store(ping + t[:, None] * CP + ch[None, :], x)
    tl.debug_barrier()
    _voice_layer(ping, pong, conv_first, conv_bias, m, 5, 1, False, DOT)
    _voice_layer(pong, ping, conv_rest, conv_bias + CP, m, 3, 2, True, DOT)
    _voice_layer(ping, pong, conv_rest + 3 * CP * CP, conv_bias + 2 * CP, m, 3, 4, True, DOT)
    _voice_layer(pong, ping, conv_rest + 6 * CP * CP, conv_bias + 3 * CP, m, 3, 8, True, DOT)
    # pooled mean and standard deviation of the trunk's steps, then of the GE2E states, CB channels at a
    # time -> the window's emotion log-probabilities; the per-step embedding of both (its rows: the
    # trunk's CP channels, then the GE2E states)
    w = m / n
    o = tl.arange(0, NOUT)
    e = tl.arange(0, VE)
    logits = _vector(cls_b, NOUT)
    embedding = tl.zeros((TP, VE), dtype=tl.float32)
    for c0 in range(0, CP, CB):
        ch = c0 + tl.arange(0, CB)
        h = tl.load(ping + t[:, None] * CP + ch[None, :])
        logits += _pooled_logits(h, w, cls_w + 2 * c0)
        embedding += _mm(h, tl.load(embed_w + ch[:, None] * VE + e[None, :]), DOT)
    for g0 in range(0, G, CB):
        ch = g0 + tl.arange(0, CB)
        h = tl.load(audio + b * T_A * F_A + t[:, None] * F_A + F_TRUNK + ch[None, :], mask=on[:, None], other=0.0)
        logits += _pooled_logits(h, w, cls_w + 2 * (CP + g0))
        embedding += _mm(h, tl.load(embed_w + CP * VE + ch[:, None] * VE + e[None, :]), DOT)
    logits = tl.where(o < NCLS, logits, float("-inf"))
    shifted = logits - tl.max(logits, axis=0)
    log_probs = shifted - tl.log(tl.sum(tl.exp(shifted), axis=0))
    embedding = (embedding + _vector(embed_b, VE)[None, :]) * m[:, None]
    va = voice_out + b * T_A * VF
    tl.store(va + t[:, None] * VF + e[None, :], embedding, mask=(t < T_A)[:, None])
    tl.store(va + t[:, None] * VF + VE + o[None, :], tl.where(o < NCLS, log_probs, 0.0)[None, :] * m[:, None],
             mask=(t < T_A)[:, None] & (o < NCLS)[None, :])
    tl.debug_barrier()
    # DMD's projections (modality indices l 0, v 1, a 2)
    row = vec + b * VEC
    cs_b = cs + b * 6 * NP * D
    pm_b = pm + b * 3 * NP
    _project(text + b * T_L * F_L, text_mask + b * T_L, project_w, cs_b, pm_b, row, 0, T_L, F_L, 1, 1, DOT)
    _project(visual + b * T_V * F_V, visual_mask + b * T_V, project_w, cs_b, pm_b, row, 1, T_V, F_V, 2, 2, DOT)
    _project(va, am_ptr, project_w, cs_b, pm_b, row, 2, T_A, VF, 4, 4, DOT)
    # input heads: the last present word, the mean face and the mean voice step
    n_words = tl.sum((tl.load(text_mask + b * T_L + tl.arange(0, 32), mask=tl.arange(0, 32) < T_L, other=0) != 0)
                     .to(tl.int32), axis=0)
    last = tl.maximum(n_words - 1, 0)
    f = tl.arange(0, 64)
    word_on = (tl.load(text_mask + b * T_L + last) != 0).to(tl.float32)
    word = tl.load(text + b * T_L * F_L + last * F_L + f, mask=f < F_L, other=0.0) * word_on
    ih = (_input_head(input_w, 0, word, 64)
          + _input_head(input_w, 1, _present_mean(visual + b * T_V * F_V, visual_mask + b * T_V, T_V, F_V, 64, 128), 128)
          + _input_head(input_w, 2, _present_mean(va, am_ptr, T_A, VF, TP, 64), 64)
          + _vector(input_b, NOUT))
    tl.store(row + IH + o, ih)
    answer = tl.where(o < NCLS, o + TEXT_EMBED, F_L - 1)  # the 7 log-probabilities, then the valence
    tl.store(row + TEXT + o, tl.sum(tl.where(f[None, :] == answer[:, None], word[None, :], 0.0), axis=1))


@triton.jit
def transformer_kernel(x, pm, weights, positions, q_index, k_index, out_vec, out_seq, vec, seq,
                       WIDTH: tl.constexpr, NSRC: tl.constexpr, SEQ_W: tl.constexpr, SCALE: tl.constexpr,
                       SM_SCALE: tl.constexpr, DOT: tl.constexpr):
    """Program (i, b): transformer i on window b. Queries are source q_index[i] of x (B, NSRC, NP, WIDTH),
    keys and values source k_index[i], masked by pm (B, 3, NP) of their modality (source % 3).
    Writes the masked-mean read-out to vec[b, out_vec[i]:] when out_vec[i] >= 0, else the sequence to
    seq (B, 3, NP, SEQ_W) at row block out_seq[i] // 2, columns (out_seq[i] % 2) * WIDTH. SCALE: the
    embedding's sqrt(WIDTH); SM_SCALE: attention's 1 / sqrt(head width)."""
    i = tl.program_id(0)
    b = tl.program_id(1).to(tl.int64)
    DH: tl.constexpr = WIDTH // HEADS
    t = tl.arange(0, NP)
    c = tl.arange(0, WIDTH)
    qi = tl.load(q_index + i)
    ki = tl.load(k_index + i)
    x_b = x + b * NSRC * NP * WIDTH
    pos = tl.load(positions + t[:, None] * WIDTH + c[None, :])
    h = SCALE * tl.load(x_b + qi * NP * WIDTH + t[:, None] * WIDTH + c[None, :]).to(tl.float32) + pos
    src = SCALE * tl.load(x_b + ki * NP * WIDTH + t[:, None] * WIDTH + c[None, :]).to(tl.float32) + pos
    key_on = tl.load(pm + b * 3 * NP + (ki % 3) * NP + t)  # (NP,) 1 present, 0 absent
    query_on = tl.load(pm + b * 3 * NP + (qi % 3) * NP + t)
    # the layer's parameters, in weights.TRANSFORMER_LAYOUT order
    w = weights + i * (15 * WIDTH + 12 * WIDTH * WIDTH)
    w_q = w + 2 * WIDTH
    b_q = w_q + 3 * WIDTH * WIDTH
    w_o = b_q + 3 * WIDTH
    ln2 = w_o + WIDTH * WIDTH + WIDTH
    w_1 = ln2 + 2 * WIDTH
    w_2 = w_1 + 4 * WIDTH * WIDTH + 4 * WIDTH
    ln_final = w_2 + 4 * WIDTH * WIDTH + WIDTH
    hq = _layer_norm(h, w, WIDTH)
    hk = _layer_norm(src, w, WIDTH)
    q = _mm(hq, _matrix(w_q, WIDTH, WIDTH), DOT) + _vector(b_q, WIDTH)[None, :]
    k = _mm(hk, _matrix(w_q + WIDTH * WIDTH, WIDTH, WIDTH), DOT) + _vector(b_q + WIDTH, WIDTH)[None, :]
    v = _mm(hk, _matrix(w_q + 2 * WIDTH * WIDTH, WIDTH, WIDTH), DOT) + _vector(b_q + 2 * WIDTH, WIDTH)[None, :]
    attended = tl.zeros((NP, WIDTH), dtype=tl.float32)
    for head in tl.static_range(HEADS):
        mine = (c // DH == head)[None, :]
        scores = _mm(tl.where(mine, q, 0.0), tl.trans(k), DOT) * SM_SCALE  # (NP, NP)
        scores = tl.where((key_on != 0)[None, :], scores, MASKED)
        p = tl.exp(scores - tl.max(scores, axis=1)[:, None])
        p = p / tl.sum(p, axis=1)[:, None]
        attended += _mm(p, tl.where(mine, v, 0.0), DOT)
    attended = attended * tl.max(key_on, axis=0)  # a query that sees no key attends to nothing
    h = h + _mm(attended, _matrix(w_o, WIDTH, WIDTH), DOT) + _vector(w_o + WIDTH * WIDTH, WIDTH)[None, :]
    normed = _layer_norm(h, ln2, WIDTH)
    h = h + _vector(w_2 + 4 * WIDTH * WIDTH, WIDTH)[None, :]
    for f0 in range(0, 4 * WIDTH, WIDTH):  # the feed-forward in blocks of WIDTH hidden units
        f = f0 + c
        ff = tl.maximum(_mm(normed, tl.load(w_1 + c[:, None] * 4 * WIDTH + f[None, :]), DOT)
                        + tl.load(w_1 + 4 * WIDTH * WIDTH + f).to(tl.float32)[None, :], 0.0)
        h += _mm(ff, tl.load(w_2 + f[:, None] * WIDTH + c[None, :]), DOT)
    out = _layer_norm(h, ln_final, WIDTH)
    at = tl.load(out_vec + i)
    if at >= 0:
        count = tl.maximum(tl.sum(query_on, axis=0), 1.0)
        tl.store(vec + b * VEC + at + c, tl.sum(out * query_on[:, None], axis=0) / count)
    else:
        slot = tl.load(out_seq + i)
        dst = seq + b * 3 * NP * SEQ_W + (slot // 2) * NP * SEQ_W + (slot % 2) * WIDTH
        tl.store(dst + t[:, None] * SEQ_W + c[None, :], out)


@triton.jit
def _param(table, offsets, index):
    return table + tl.load(offsets + index)


@triton.jit
def _linear(row, X: tl.constexpr, IN: tl.constexpr, BI: tl.constexpr, table, offsets, index,
            Y: tl.constexpr, OUT: tl.constexpr, BO: tl.constexpr, ACT: tl.constexpr, RES: tl.constexpr):
    """row[Y:Y+OUT] = act(W row[X:X+IN] + b) (+ row[RES:RES+OUT] when RES >= 0); W, b the head
    parameters index, index + 1. ACT: 0 none, 1 ReLU, 2 sigmoid. Ends with a barrier."""
    w = _param(table, offsets, index)
    bias = _param(table, offsets, index + 1)
    i = tl.arange(0, BI)
    x = tl.load(row + X + i, mask=i < IN, other=0.0)
    for start in tl.static_range(0, OUT, BO):
        o = start + tl.arange(0, BO)
        inside = o < OUT
        wt = tl.load(w + o[:, None] * IN + i[None, :], mask=inside[:, None] & (i < IN)[None, :], other=0.0)
        y = tl.sum(wt.to(tl.float32) * x[None, :], axis=1) + tl.load(bias + o, mask=inside, other=0.0).to(tl.float32)
        if ACT == 1:
            y = tl.maximum(y, 0.0)
        if ACT == 2:
            y = tl.sigmoid(y)
        if RES >= 0:
            y += tl.load(row + RES + o, mask=inside, other=0.0)
        tl.store(row + Y + o, y, mask=inside)
    tl.debug_barrier()


@triton.jit
def _residual_head(row, X: tl.constexpr, WIDTH: tl.constexpr, BW: tl.constexpr, table, offsets, index,
                   B1: tl.constexpr, R: tl.constexpr, LOGIT: tl.constexpr, BO: tl.constexpr):
    """``model.ResidualHead``: bottleneck -> B1, residual sum -> R, logits -> LOGIT."""
    _linear(row, X, WIDTH, BW, table, offsets, index, B1, WIDTH, BO, 1, -1)
    _linear(row, B1, WIDTH, BW, table, offsets, index + 2, R, WIDTH, BO, 0, X)
    _linear(row, R, WIDTH, BW, table, offsets, index + 4, LOGIT, NOUT, NOUT, 0, -1)


@triton.jit
def _gd_unit(row, LOGIT: tl.constexpr, REPR: tl.constexpr, RW: tl.constexpr, G: tl.constexpr, Z: tl.constexpr,
             table, offsets, index, alpha, edges_out):
    """``gd_unit.GDUnit`` (joint softmax) with presence: z_m = [W_logit logit_m ; W_repr repr_m], edge
    score alpha (W_edge [z_student ; z_teacher] + b), absent edges 0, the rest renormalised."""
    for mod in tl.static_range(3):
        _linear(row, LOGIT + mod * NOUT, NOUT, NOUT, table, offsets, index, Z + mod * 2 * G, G, G, 0, -1)
        _linear(row, REPR + mod * RW, RW, RW, table, offsets, index + 2, Z + mod * 2 * G + G, G, G, 0, -1)
    node = tl.arange(0, 4)
    g = tl.arange(0, 2 * G)
    z = tl.load(row + Z + node[:, None] * 2 * G + g[None, :], mask=(node < 3)[:, None], other=0.0)
    w_edge = _param(table, offsets, index + 4)
    as_student = tl.sum(z * tl.load(w_edge + g).to(tl.float32)[None, :], axis=1)  # (4,)
    as_teacher = tl.sum(z * tl.load(w_edge + 2 * G + g).to(tl.float32)[None, :], axis=1)
    bias = tl.load(_param(table, offsets, index + 5)).to(tl.float32)
    e = tl.arange(0, 8)
    student = e // 2  # edges (teacher, student): V->L A->L L->V A->V L->A V->A
    teacher = e % 2 + (e % 2 >= student).to(tl.int32)
    pick_s = (student[:, None] == node[None, :]).to(tl.float32)
    pick_t = (teacher[:, None] == node[None, :]).to(tl.float32)
    present = tl.load(row + PRESENT + node, mask=node < 3, other=0.0)
    scores = (tl.sum(pick_s * as_student[None, :], axis=1) + tl.sum(pick_t * as_teacher[None, :], axis=1) + bias) * alpha
    valid = (tl.sum(pick_s * present[None, :], axis=1) * tl.sum(pick_t * present[None, :], axis=1)) * (e < 6).to(tl.float32)
    scores = tl.where(valid > 0, scores, MASKED)
    scores = tl.where(e < 6, scores, float("-inf"))
    p = tl.exp(scores - tl.max(scores, axis=0))
    tl.store(edges_out + e, p / tl.sum(p, axis=0) * valid, mask=e < 6)


@triton.jit
def head_kernel(vec, table, offsets, label_valence, probabilities, valence, edges_homo, edges_hetero,
                alpha, temperature, text_temperature):
    """Per window: the heads, gates, fusion, both GD-Units and the decision, from the scratch row."""
    b = tl.program_id(0).to(tl.int64)
    row = vec + b * VEC
    for mod in tl.static_range(3):
        _residual_head(row, CPOOL + mod * D, D, D, table, offsets, HOMO_HEADS + 6 * mod,
                       HOMO_B + mod * D, HOMO_R + mod * D, HOMO_LOGIT + mod * NOUT, D)
        _residual_head(row, LASTH + mod * D2, D2, D2, table, offsets, HETERO_HEADS + 6 * mod,
                       HETERO_B + mod * D2, HETERO_R + mod * D2, HETERO_LOGIT + mod * NOUT, D2)
        _linear(row, LASTH + mod * D2, D2, D2, table, offsets, GATES + 2 * mod, FUSED + mod * D2, D2, D2, 2, -1)
    _linear(row, COMMON, 3 * D, 128, table, offsets, GATES + 6, FUSED + 3 * D2, 3 * D, 32, 2, -1)
    _residual_head(row, FUSED, 9 * D, 512, table, offsets, FUSION_HEAD, FUSION_B, FUSION_R, LOGITS, 16)
    _gd_unit(row, HOMO_LOGIT, HOMO_B, D, 64, Z_HOMO, table, offsets, GD_HOMO, alpha, edges_homo + b * 6)
    _gd_unit(row, HETERO_LOGIT, HETERO_R, D2, 32, Z_HETERO, table, offsets, GD_HETERO, alpha, edges_hetero + b * 6)
    # the decision (Recognizer.decide)
    o = tl.arange(0, NOUT)
    logits = tl.load(row + LOGITS + o) + tl.load(row + IH + o)
    text = tl.load(row + TEXT + o)
    present = tl.load(row + PRESENT + tl.arange(0, 4), mask=tl.arange(0, 4) < 3, other=0.0)
    lone_words = (tl.sum(tl.where(tl.arange(0, 4) == 0, present, 0.0), axis=0) > 0) & (
        tl.sum(tl.where(tl.arange(0, 4) > 0, present, 0.0), axis=0) == 0)
    chosen = tl.where(lone_words, text / text_temperature, logits / temperature)
    chosen = tl.where(o < NCLS, chosen, float("-inf"))
    p = tl.exp(chosen - tl.max(chosen, axis=0))
    p = p / tl.sum(p, axis=0)
    tl.store(probabilities + b * NCLS + o, p, mask=o < NCLS)
    fused_valence = tl.minimum(tl.maximum(logits, -1.0), 1.0)
    # words alone: the mean of the sentiment valence and the expectation of the labels' valence
    expected = tl.sum(p * tl.load(label_valence + o, mask=o < NCLS, other=0.0), axis=0)
    words_valence = (text + expected) / 2
    tl.store(valence + b + o * 0, tl.where(lone_words, words_valence, fused_valence), mask=o == NCLS)
