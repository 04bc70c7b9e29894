import json
import shutil

import numpy as np
import pytest
import torch
from helpers.paths import DATA as SHARED_DATA

from realtime.core.feature_spec import LABELS
from realtime.core.tokens import PIECES_PER_WORD, encode_words, tokenize
from realtime.nets.sentence_encoder import load_sentence_encoder
from realtime.nets.text_encoder import (EMBED_DIM, TEXT_FEATURE_DIM, WEIGHTS_PATH, TextEncoder, contexts, encode_batch,
                                        load_text_encoder, word_bigrams)
from realtime.offline.text_encoder import Batch, _sparse_bags, meld_split, read_emorynlp, read_meld, read_mosi, read_written

DATA = SHARED_DATA / "text"
needs_data = pytest.mark.needs_data("text/meld")
# MELD test, words only. The TF-IDF + logistic regression baseline (bench/baselines_text.py) gets
# 0.474 weighted / 0.290 macro F1 on the same words; with punctuation it gets 0.554 / 0.336.
MIN_TEST_WEIGHTED_F1 = 0.48
MIN_TEST_MACRO_F1 = 0.33
SENTENCE = "i cant believe you did that to me you know how much i loved that"


@pytest.fixture(scope="module")
def encoder() -> TextEncoder:
    return load_text_encoder()


_SENTENCES = load_sentence_encoder()


def context(utterances: list[list[str]]) -> torch.Tensor:
    """(B, CONTEXT_DIM) the utterances' contexts, as the text front-end computes them."""
    return contexts(_SENTENCES, utterances)


def test_shipped_encoder_loads_and_is_small(encoder):
    assert WEIGHTS_PATH.stat().st_size < 4_000_000
    meta = json.loads(WEIGHTS_PATH.with_suffix(".json").read_text())
    assert meta["labels"] == list(LABELS) and meta["text_feature_dim"] == TEXT_FEATURE_DIM
    assert not encoder.training


def test_output_shapes_and_ranges(encoder):
    utterances = [tokenize("I love you"), tokenize(SENTENCE)]
    ids, ctx = encode_batch(utterances, max_words=24), context(utterances)
    assert ids.shape == (2, 24, PIECES_PER_WORD) and ids.dtype == torch.int64
    with torch.inference_mode():
        feats = encoder(ids, ctx)
        pred = encoder.predict(ids, ctx)
    assert feats.shape == (2, 24, TEXT_FEATURE_DIM) and feats.dtype == torch.float32
    log_probs = feats[..., EMBED_DIM:EMBED_DIM + len(LABELS)]
    torch.testing.assert_close(log_probs.exp().sum(-1), torch.ones(2, 24))
    assert pred.probs.shape == (2, len(LABELS)) and pred.valence.shape == (2,)
    assert feats[..., -1].abs().max() <= 1.0
    torch.testing.assert_close(pred.probs, log_probs[:, -1].exp())


def test_streaming_equals_offline(encoder):
    ids = torch.from_numpy(encode_words(SENTENCE.split()))[None]  # (1, T, P)
    ctx = context([SENTENCE.split()])  # one context for the utterance: the bag streams beside it
    with torch.inference_mode():
        full = encoder(ids, ctx)
        for t in (1, 4, ids.shape[1] - 1):
            torch.testing.assert_close(encoder(ids[:, :t], ctx), full[:, :t])  # slot t's bag never sees later words
        changed = ids.clone()
        changed[:, 5:] = torch.from_numpy(encode_words(["furious"] * (ids.shape[1] - 5)))
        torch.testing.assert_close(encoder(changed, ctx)[:, :5], full[:, :5])


def test_padding_slots_change_nothing(encoder):
    words = tokenize("Oh my God, what happened?")
    ids, ctx = torch.from_numpy(encode_words(words))[None], context([words])
    padded = encode_batch([words], max_words=20)  # left padding: the last word sits in the last slot
    assert (padded[0, :-len(words)] == 0).all()
    with torch.inference_mode():
        torch.testing.assert_close(encoder(padded, ctx)[:, -len(words):], encoder(ids, ctx))
        torch.testing.assert_close(encoder.predict(padded, ctx).probs, encoder.predict(ids, ctx).probs)


def test_bigrams_need_two_real_words():
    ids = encode_batch([["so", "happy"]], max_words=3)  # (1, 3, P): pad, so, happy
    bigram = word_bigrams(ids)[0]
    assert bigram[0] == 0 and bigram[1] == 0 and bigram[2] > 0
    assert word_bigrams(encode_batch([["happy", "so"]]))[0, 1] != bigram[2]  # order matters


def test_training_rows_are_what_forward_sees_at_the_last_word():
    torch.manual_seed(0)
    model = TextEncoder()
    with torch.no_grad():
        for t in (model.head_table, model.head_bias, model.idf, model.context_head):
            t.uniform_(0.5, 2.0)
    utterances = [tokenize("I love you, I love you"), tokenize("What?"), tokenize(SENTENCE), []]
    ctx = context(utterances)
    with torch.no_grad():
        rows = (torch.sparse.mm(_sparse_bags(model, utterances), model.head_table) + model.head_bias
                + model.context_logits(ctx))
        head = model(encode_batch(utterances), ctx)[:, -1, EMBED_DIM:EMBED_DIM + len(LABELS)]
    torch.testing.assert_close(rows[:, :len(LABELS)].log_softmax(-1), head)


def test_missing_weights_and_mismatched_sidecar_raise(tmp_path):
    with pytest.raises(FileNotFoundError, match="realtime.text_encoder train"):
        load_text_encoder(tmp_path / "absent.safetensors")
    shutil.copy(WEIGHTS_PATH, tmp_path / "w.safetensors")
    meta = json.loads(WEIGHTS_PATH.with_suffix(".json").read_text())
    (tmp_path / "w.json").write_text(json.dumps({**meta, "labels": list(reversed(LABELS))}))
    with pytest.raises(ValueError, match="labels"):
        load_text_encoder(tmp_path / "w.safetensors")


def test_readers_map_labels_and_name_missing_columns(tmp_path):
    meld = tmp_path / "meld.csv"
    meld.write_text("Sr No.,Utterance,Speaker,Emotion,Sentiment\n1,I'm so happy!,Ross,joy,positive\n"
                    "2,Get out.,Joey,anger,negative\n")
    m = read_meld(meld)
    assert m.words[0] == ["im", "so", "happy!"] and [LABELS[i] for i in m.emotion] == ["happy", "angry"]
    bare = m.without_marks()
    assert bare.words == [["im", "so", "happy"], ["get", "out"]] and m.words[0] == ["im", "so", "happy!"]
    assert bare.emotion is m.emotion and bare.valence is m.valence
    np.testing.assert_array_equal(m.valence, [1.0, -1.0])
    emory = tmp_path / "emory.csv"
    emory.write_text("Utterance,Speaker,Emotion\nHi.,['Ross'],Scared\nOk.,['Joey'],Peaceful\nNo!,['Rachel'],Mad\n")
    e = read_emorynlp(emory)
    assert [LABELS[i] for i in e.emotion] == ["fearful", "angry"] and np.isnan(e.valence).all()
    mosi = tmp_path / "mosi.csv"
    mosi.write_text("id,text,label,mode\na,it was really good,2.4,train\nb,bad,-3.0,test\n")
    s = read_mosi(mosi, ("train",))
    assert s.words == [["it", "was", "really", "good"]] and (s.emotion == -1).all()
    np.testing.assert_allclose(s.valence, [0.8])
    meld.write_text("Utterance,Speaker,Sentiment\nHi,Ross,neutral\n")
    with pytest.raises(ValueError, match="Emotion"):
        read_meld(meld)


@needs_data
def test_clear_meld_test_utterances(encoder):
    clear = {"I love you too.": "happy", "That’s so great for you guys!": "happy",
             "I don’t care!  I don’t care!!": "angry", "That’s my wife!!! Get out!": "angry",
             "I'm sorry, man.": "sad", "Oh my God, what happened?": "surprised"}
    test = meld_split(DATA, "test")
    for text, label in clear.items():
        i = test.words.index(tokenize(text))
        assert LABELS[test.emotion[i]] == label, text  # the MELD annotation agrees
    with torch.inference_mode():
        utterances = [tokenize(t) for t in clear]
        pred = encoder.predict(encode_batch(utterances), context(utterances))
    assert [LABELS[i] for i in pred.probs.argmax(-1)] == list(clear.values())
    assert pred.valence[0] > 0.3 and pred.valence[2] < -0.3


@needs_data
def test_meld_test_scores(encoder):
    from dmd_lite.metrics import classification_metrics

    test = meld_split(DATA, "test")
    with torch.inference_mode():
        pred = encoder.predict(encode_batch(test.words), context(test.words))
    m = classification_metrics(pred.probs.argmax(-1), test.emotion, len(LABELS))
    assert m["weighted_f1"] >= MIN_TEST_WEIGHTED_F1 and m["macro_f1"] >= MIN_TEST_MACRO_F1, m
    assert np.mean(np.abs(pred.valence.numpy() - test.valence)) < np.mean(np.abs(test.valence))  # beats "always 0"


def test_written_corpora_keep_mapped_rows_split_as_given_and_allow_their_own_classes(tmp_path):
    (tmp_path / "carer").mkdir()
    (tmp_path / "carer/dair_emotion_7class.csv").write_text(
        "split,text,label_orig,label7\ntrain,i feel so alone,sadness,sad\ntrain,i adore him,love,\n"
        "test,what a surprise!,surprise,surprised\ntrain,yay,joy,happy\n")
    train = read_written(tmp_path, "carer", "train")
    assert train.words == [["i", "feel", "so", "alone"], ["yay"]] and [LABELS[i] for i in train.emotion] == ["sad", "happy"]
    own = [lab for lab, ok in zip(LABELS, train.allowed[0]) if ok]
    assert own == ["happy", "sad", "surprised"]  # the corpus's classes in any split, not only train's
    assert np.isnan(train.valence).all() and read_written(tmp_path, "carer", "test").words == [["what", "a", "surprise!"]]
    (tmp_path / "isear").mkdir()
    (tmp_path / "isear/isear_7class.csv").write_text(
        "respondent_id,country_code,sex,age,text,label_orig,label7\n11000,1,1,30,a,joy,happy\n11001,1,1,30,b,fear,fearful\n"
        "11002,1,1,30,c,shame,\n11003,1,1,30,d,anger,angry\n")
    assert [read_written(tmp_path, "isear", s).words for s in ("train", "dev", "test")] == [[["d"]], [["b"]], [["a"]]]
    (tmp_path / "carer/dair_emotion_7class.csv").write_text("split,text,label_orig,label7\ntrain,x,love,loved\n")
    with pytest.raises(ValueError, match="loved"):
        read_written(tmp_path, "carer", "train")


def test_a_class_the_corpus_lacks_takes_no_loss():
    """A CARER-like row (no neutral): its loss ignores the neutral logit, however large."""
    allowed = torch.tensor([[lab != "neutral" for lab in LABELS]])
    batch = Batch(None, None, torch.tensor([LABELS.index("sad")]), allowed, torch.zeros(1, 3), torch.ones(1), torch.zeros(1))
    logits = torch.zeros(1, len(LABELS))
    loud_neutral = logits.clone()
    loud_neutral[0, LABELS.index("neutral")] = 50.0
    sentiment = torch.zeros(1, 3)
    assert float(batch.loss(loud_neutral, sentiment)) == pytest.approx(float(batch.loss(logits, sentiment)))
    everything = Batch(None, None, batch.emotion, torch.ones_like(allowed), torch.zeros(1, 3), torch.ones(1), torch.zeros(1))
    assert float(everything.loss(loud_neutral, sentiment)) > 40
