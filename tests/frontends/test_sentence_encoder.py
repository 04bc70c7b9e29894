import json
import shutil

import numpy as np
import pytest
import torch
from helpers.weights import copied_weights, write_sidecar

from realtime.core.tokens import tokenize
from realtime.core.wordpiece import (CLS_ID, MAX_TOKENS, SEP_ID, VOCAB_SIZE, basic_words, sentence_pieces, vocab_path,
                                     wordpiece_ids)
from realtime.nets.sentence_encoder import (CONTEXT_DIM, CONTEXT_LAYERS, WEIGHTS_PATH, SentenceEncoder, dequantize,
                                            load_sentence_encoder)
from realtime.offline.sentence_encoder import quantize

# Ids from the real all-MiniLM-L6-v2 vocabulary, checked against Hugging Face's tokenizer.
KNOWN_IDS = {"unbelievably": [4895, 8671, 2666, 3567, 6321], "hello!": [7592, 999], "café": [7668],
             "naïve": [15743], "3rd": [3822], "dont": [2123, 2102], "emoji😀": [100], "x" * 101: [100]}


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


@pytest.fixture(scope="module")
def encoder() -> SentenceEncoder:
    return load_sentence_encoder()


def test_shipped_files_load_and_are_small(encoder):
    assert WEIGHTS_PATH.stat().st_size < 18_000_000
    meta = json.loads(WEIGHTS_PATH.with_suffix(".json").read_text())
    assert meta["context_layers"] == list(CONTEXT_LAYERS) and meta["context_dim"] == CONTEXT_DIM
    assert "Apache-2.0" in meta["source"]
    assert len(encoder.vocab) == VOCAB_SIZE and encoder.vocab["[CLS]"] == CLS_ID and encoder.vocab["[SEP]"] == SEP_ID
    assert not encoder.training and all(p.dtype == torch.float32 for p in encoder.parameters())


def test_known_wordpiece_ids(encoder):
    for word, ids in KNOWN_IDS.items():
        assert wordpiece_ids([word], encoder.vocab) == ids, word
    assert wordpiece_ids(["hello!", "unbelievably"], encoder.vocab) == KNOWN_IDS["hello!"] + KNOWN_IDS["unbelievably"]
    assert wordpiece_ids([], encoder.vocab) == []
    assert basic_words("Héllo,  WORLD?!\t中文") == ["hello", ",", "world", "?", "!", "中", "文"]


def test_output_shape_and_empty_inputs(encoder):
    assert encoder.encode([]).shape == (0, CONTEXT_DIM) and encoder.encode([]).dtype == np.float32
    empty = encoder.encode([[]])
    with torch.inference_mode():
        ref = encoder(torch.tensor([[CLS_ID, SEP_ID]]), torch.ones(1, 2, dtype=torch.bool))
    assert empty.shape == (1, CONTEXT_DIM) and ref.dtype == torch.float32
    np.testing.assert_allclose(empty[0], ref[0].numpy(), atol=1e-6)
    assert np.isfinite(empty).all()


def test_batch_composition_does_not_matter(encoder):
    utterances = [tokenize(t) for t in ("Oh my God!", "", "I can't believe you did that to me, you know how much "
                                        "I loved that", "What?", "fine", "Well, next time you should try and relax.")]
    together = encoder.encode(utterances, batch=4)
    alone = np.stack([encoder.encode([u])[0] for u in utterances])
    np.testing.assert_allclose(together, alone, atol=1e-5)
    with torch.inference_mode():  # what sits in the padding is never seen
        ids = torch.tensor([[CLS_ID, 7592, SEP_ID, 0, 0], [CLS_ID, 7592, SEP_ID, 4895, 999]])
        mask = torch.tensor([[True] * 3 + [False] * 2] * 2)
        out = encoder(ids, mask)
    torch.testing.assert_close(out[0], out[1])


def test_long_utterance_keeps_its_last_pieces(encoder):
    words = [w for _ in range(20) for w in ("i", "love", "you", "so", "much")] + ["bye"]  # one piece each
    assert len(sentence_pieces(words, encoder.vocab)) == MAX_TOKENS
    assert sentence_pieces(words, encoder.vocab) == [CLS_ID, *wordpiece_ids(words[-(MAX_TOKENS - 2):], encoder.vocab), SEP_ID]
    long, tail = encoder.encode([words, words[-(MAX_TOKENS - 2):]])
    np.testing.assert_allclose(long, tail, atol=1e-6)
    assert sentence_pieces(["unbelievably"] * 20, encoder.vocab)[1:3] == [3567, 6321]  # the cut may fall inside a word


def test_context_vectors_carry_meaning(encoder):
    angry, furious, grateful = encoder.encode([tokenize(t) for t in (
        "i am so angry at you", "you make me furious", "thank you so much i love it")])
    assert cosine(angry, furious) > cosine(angry, grateful) + 0.03  # 0.80 vs 0.73
    going, time, home = encoder.encode([tokenize(t) for t in (
        "where are you going?", "what time is it?", "i am going home")])
    assert cosine(going, time) > cosine(going, home) + 0.03  # 0.73 vs 0.67: the question, not the shared word


def test_quantization_round_trip():
    w = torch.randn(5, 7)
    stored = quantize({"w": w, "b": torch.randn(7)})
    assert stored["w"].dtype == torch.int8 and stored["w.scale"].dtype == torch.float16
    assert stored["b"].dtype == torch.float16 and stored["w"].abs().max() == 127
    back = dequantize(stored)
    assert set(back) == {"w", "b"}
    assert (back["w"] - w).abs().max() <= w.abs().amax(1).max() / 127


def test_missing_files_and_mismatched_sidecar_raise(tmp_path):
    with pytest.raises(FileNotFoundError, match="convert"):
        load_sentence_encoder(tmp_path / "absent.safetensors")
    path, meta = copied_weights(WEIGHTS_PATH, tmp_path)
    write_sidecar(path, {**meta, "max_tokens": 128})
    with pytest.raises(ValueError, match="max_tokens") as err:
        load_sentence_encoder(path)
    assert "\n" not in str(err.value)
    write_sidecar(path, meta)
    with pytest.raises(FileNotFoundError, match="vocabulary"):
        load_sentence_encoder(path)
    vocab_path(path).write_text("[PAD]\n[UNK]\n")
    with pytest.raises(ValueError, match="pieces"):
        load_sentence_encoder(path)
    shutil.copy(vocab_path(WEIGHTS_PATH), vocab_path(path))
    path.write_bytes(b"not safetensors")
    with pytest.raises(ValueError, match="safetensors"):
        load_sentence_encoder(path)


def test_encode_needs_a_vocabulary():
    with pytest.raises(RuntimeError, match="vocabulary"):
        SentenceEncoder().encode([["hi"]])
