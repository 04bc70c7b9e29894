import subprocess
import sys
from pathlib import Path

import numpy as np

from realtime.asr import Word
from realtime.text import (PIECES_PER_WORD, TEXT_BUCKETS, encode_text, encode_timed_words, encode_word,
                           encode_words, tokenize, transcript_times, word_pieces)

WORDS = ["happy", "don't", "a", "unbelievably", "행복해요"]


def test_tokenize_lowercases_and_strips_punctuation():
    assert tokenize("Oh. That’s SO Monica, isn't it?! 27") == ["oh", "thats", "so", "monica", "isnt", "it", "27"]
    assert tokenize("...") == []


def test_pieces_are_the_word_then_its_boundary_trigrams():
    assert word_pieces("ok") == ["<ok>", "<ok", "ok>"]
    assert word_pieces("a") == ["<a>"]
    long = word_pieces("unbelievably")
    assert len(long) == PIECES_PER_WORD and long[:2] == ["<unbelievably>", "<un"] and long[-1] == "ly>"


def test_shapes_range_and_padding():
    ids = encode_words(WORDS)
    assert ids.shape == (len(WORDS), PIECES_PER_WORD) and ids.dtype == np.int64
    assert ids.min() >= 0 and ids.max() < TEXT_BUCKETS
    assert (encode_word("ok")[3:] == 0).all() and (encode_word("ok")[:3] > 0).all()
    assert (encode_word("") == 0).all()
    assert encode_words([]).shape == (0, PIECES_PER_WORD)
    np.testing.assert_array_equal(encode_text("Happy, a!"), encode_words(["happy", "a"]))


def test_misrecognised_word_shares_pieces_with_the_right_one():
    right, wrong, other = (set(encode_word(w)) - {0} for w in ("happy", "happpy", "angry"))
    assert len(right & wrong) >= 3 > len(right & other)


def test_hashing_is_stable_across_processes():
    # a fresh interpreter with a different hash seed must give identical ids
    code = f"from realtime.text import encode_words; print(encode_words({WORDS!r}).tolist())"
    out = [subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          cwd=Path(__file__).parents[1], env={"PYTHONHASHSEED": seed}).stdout for seed in ("1", "2")]
    assert out[0] == out[1] == f"{encode_words(WORDS).tolist()}\n"


def test_timed_words_take_the_word_centre():
    times, ids = encode_timed_words([Word("Hello,", 1.0, 1.4, 0.9), Word("?", 1.5, 1.6, 0.9), Word("you", 2.0, 2.2, 0.9)])
    np.testing.assert_allclose(times, [1.2, 2.1])
    np.testing.assert_array_equal(ids, encode_words(["hello", "you"]))
    np.testing.assert_allclose(transcript_times(3, t0=1.0), [1.2, 1.6, 2.0])
