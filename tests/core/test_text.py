import subprocess
import sys
from pathlib import Path

import numpy as np

from realtime.core.tokens import (MARK_IDS, PIECES_PER_WORD, TEXT_BUCKETS, encode_text, encode_word, encode_words,
                                  split_mark, strip_marks, timed_tokens, tokenize, transcript_times, word_pieces)
from realtime.frontends.asr import Word

WORDS = ["happy", "don't", "a", "unbelievably", "행복해요"]


# ids of these words from the tokenizer before marks existed: unmarked words must keep them
OLD_WORDS = ["happy", "dont", "a", "unbelievably", "행복해요", "it"]
OLD_IDS = [[14431, 204, 4896, 944, 23515, 5810, 0, 0], [9163, 13541, 29630, 18365, 3288, 0, 0, 0],
           [25116, 0, 0, 0, 0, 0, 0, 0], [23428, 22767, 20997, 18054, 5550, 17542, 10125, 13925],
           [31549, 17579, 7, 29107, 32719, 0, 0, 0], [30480, 766, 28112, 0, 0, 0, 0, 0]]


def test_tokenize_lowercases_and_strips_punctuation():
    text = "Oh. That’s SO Monica, isn't it?! 27"
    assert tokenize(text) == ["oh", "thats", "so", "monica", "isnt", "it!", "27"]
    words = ["oh", "thats", "so", "monica", "isnt", "it", "27"]
    assert tokenize(text, marks=False) == strip_marks(tokenize(text)) == words
    assert tokenize("...") == [] and tokenize("?!") == []


def test_marks_come_from_the_punctuation_right_after_a_word():
    assert tokenize('"Why?" he said. Really ? No!!! Wait...what?!') == ["why?", "he", "said", "really", "no!", "wait",
                                                                     "what!"]
    assert tokenize("Don't!") == ["dont!"] and tokenize("ＷＨＡＴ？") == ["what?"]
    assert split_mark("it?") == ("it", "?") and split_mark("it") == ("it", "") and split_mark("") == ("", "")


def test_unmarked_words_keep_their_ids():
    np.testing.assert_array_equal(encode_words(OLD_WORDS), OLD_IDS)
    np.testing.assert_array_equal(encode_text("Happy, don't a unbelievably... 행복해요. It."), OLD_IDS)


def test_a_mark_is_one_more_piece_after_the_words_own():
    for word in ("ok", "a", "행복해요"):
        assert word_pieces(word + "?") == [*word_pieces(word), "?"]
        ids = encode_word(word + "!")
        n = len(word_pieces(word))
        np.testing.assert_array_equal(ids[:n], encode_word(word)[:n])
        assert ids[n] == MARK_IDS[1] and (ids[n + 1:] == 0).all()
    long, marked = word_pieces("unbelievably"), word_pieces("unbelievably?")  # full row: a middle 3-gram makes room
    assert len(marked) == PIECES_PER_WORD and marked[-1] == "?"
    assert marked[:-1] == [p for p in long if p != long[PIECES_PER_WORD // 2]]


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
    np.testing.assert_array_equal(encode_text("Happy, a!"), encode_words(["happy", "a!"]))


def test_misrecognised_word_shares_pieces_with_the_right_one():
    right, wrong, other = (set(encode_word(w)) - {0} for w in ("happy", "happpy", "angry"))
    assert len(right & wrong) >= 3 > len(right & other)


def test_hashing_is_stable_across_processes():
    # a fresh interpreter with a different hash seed must give identical ids
    code = f"from realtime.core.tokens import encode_words; print(encode_words({WORDS!r}).tolist())"
    out = [subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          cwd=Path(__file__).parents[1], env={"PYTHONHASHSEED": seed}).stdout for seed in ("1", "2")]
    assert out[0] == out[1] == f"{encode_words(WORDS).tolist()}\n"


def test_timed_words_take_the_word_centre():
    times, tokens = timed_tokens([Word("Hello,", 1.0, 1.4, 0.9), Word("?", 1.5, 1.6, 0.9), Word("you!", 2.0, 2.2, 0.9)])
    np.testing.assert_allclose(times, [1.2, 2.1])
    assert tokens == ["hello", "you"]  # ASR words carry no mark
    np.testing.assert_allclose(transcript_times(3, t0=1.0), [1.2, 1.6, 2.0])
