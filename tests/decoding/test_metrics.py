"""Corpus WER/CER from summed edit counts, checked by hand and against jiwer."""

from __future__ import annotations

import jiwer
import pytest

from speechprune.decoding import ErrorCounts, utterance_errors

REFERENCES = ["the cat sat on the mat", "hello world", "a b c d e", "speech recognition"]
HYPOTHESES = ["the cat sit on mat", "hello world", "a x c d e f", "speech wreck a nice beach"]


def counts_of(references: list[str], hypotheses: list[str]) -> ErrorCounts:
    counts = ErrorCounts()
    for reference, hypothesis in zip(references, hypotheses):
        counts.add(reference, hypothesis)
    return counts


def test_hand_counted_corpus_wer():
    counts = counts_of(["the cat sat", "hello world"], ["the cat sit down", "hello"])
    # sat->sit and +down in the first, -world in the second: 3 edits over 5 reference words.
    assert (counts.word_edits, counts.words) == (3, 5)
    assert counts.wer == pytest.approx(60.0)


def test_hand_counted_corpus_cer():
    counts = counts_of(["abc", "de"], ["abd", "de f"])
    # c->d in the first; " f" inserted in the second: 3 edits over 5 reference characters.
    assert (counts.char_edits, counts.chars) == (3, 5)
    assert counts.cer == pytest.approx(60.0)


def test_corpus_rates_equal_jiwer_corpus_rates():
    counts = counts_of(REFERENCES, HYPOTHESES)
    assert counts.wer == pytest.approx(100 * jiwer.wer(REFERENCES, HYPOTHESES))
    assert counts.cer == pytest.approx(100 * jiwer.cer(REFERENCES, HYPOTHESES))
    assert counts.words == sum(len(r.split()) for r in REFERENCES)
    assert counts.chars == sum(len(r) for r in REFERENCES)


def test_corpus_wer_weights_utterances_by_length_not_equally():
    references, hypotheses = ["a", "b c d e"], ["x", "b c d e"]
    counts = counts_of(references, hypotheses)
    per_utterance = [utterance_errors(r, h)["wer"] for r, h in zip(references, hypotheses)]
    assert sum(per_utterance) / len(per_utterance) == pytest.approx(50.0)
    assert counts.wer == pytest.approx(20.0)


def test_empty_hypothesis_counts_every_reference_word_as_an_error():
    errors = utterance_errors("one two three", "")
    assert (errors["word_edits"], errors["words"], errors["wer"]) == (3, 3, 100.0)
    assert (errors["char_edits"], errors["chars"], errors["cer"]) == (13, 13, 100.0)


def test_empty_reference_counts_inserted_words_without_dividing_by_zero():
    errors = utterance_errors("", "uh oh")
    assert (errors["word_edits"], errors["words"]) == (2, 0)
    assert errors["wer"] == pytest.approx(200.0)
    both_empty = utterance_errors("", "")
    assert both_empty["word_edits"] == both_empty["char_edits"] == 0
    assert both_empty["wer"] == both_empty["cer"] == 0.0
    assert ErrorCounts().wer == ErrorCounts().cer == 0.0


def test_empty_utterances_add_to_a_corpus_like_any_other():
    counts = counts_of(["one two three", "", "four"], ["", "uh", "four"])
    assert (counts.word_edits, counts.words) == (4, 4)
    assert counts.wer == pytest.approx(100.0)


def test_merged_counts_equal_the_counts_of_the_union():
    first = counts_of(REFERENCES[:2], HYPOTHESES[:2])
    second = counts_of(REFERENCES[2:], HYPOTHESES[2:])
    merged = first.merge(second)
    assert merged == counts_of(REFERENCES, HYPOTHESES)
    assert merged.wer == pytest.approx(100 * jiwer.wer(REFERENCES, HYPOTHESES))
    # merge leaves its operands alone
    assert first == counts_of(REFERENCES[:2], HYPOTHESES[:2])


def test_tensor_round_trip_sums_like_an_all_reduce():
    first = counts_of(REFERENCES[:1], HYPOTHESES[:1])
    second = counts_of(REFERENCES[1:], HYPOTHESES[1:])
    reduced = first.to_tensor() + second.to_tensor()  # what all_reduce(SUM) computes
    assert ErrorCounts.from_tensor(reduced) == first.merge(second)
    assert ErrorCounts.from_tensor(first.to_tensor()) == first


def test_utterance_errors_report_counts_and_rates():
    errors = utterance_errors("the cat sat on the mat", "the cat sit on mat")
    assert errors["word_edits"] == 2 and errors["words"] == 6
    assert errors["wer"] == pytest.approx(100 * 2 / 6)
    assert errors["cer"] == pytest.approx(100 * jiwer.cer("the cat sat on the mat",
                                                          "the cat sit on mat"))
