"""The hashing featurizer: deterministic, normalised, fast enough, and stable across versions."""

from __future__ import annotations

import numpy as np
import pytest

from llmroute.learn.features import (
    DENSE_NAMES,
    HashingFeaturizer,
    Powers,
    clip_text,
    featurizer_from,
    last_block,
    word_hashes,
)

TEXT = "Example:\nA) one\nB) two\n\nWhich is larger, 3 or 5?\nA) 3\nB) 5\nAnswer:"


def test_same_text_same_features_across_instances() -> None:
    a, b = HashingFeaturizer(bits=12), HashingFeaturizer(bits=12)
    ra, rb = a.transform(TEXT), b.transform(TEXT)
    assert np.array_equal(ra.indices, rb.indices) and np.array_equal(ra.values, rb.values)
    assert np.array_equal(ra.dense, rb.dense)
    assert not np.array_equal(ra.indices, a.transform("Something else entirely").indices)


def test_hash_values_are_pinned() -> None:
    """Changing the hash silently would invalidate every artifact: bump HASHING_VERSION instead."""
    powers = Powers.make(32)
    codes = np.frombuffer("ab cd".encode("utf-32-le"), dtype="<u4").astype(np.uint64)
    hashes = word_hashes(codes, powers)
    assert len(hashes) == 3                                      # two words, one bigram
    row = HashingFeaturizer(bits=16).transform("Hello world")
    assert row.indices.tolist()[:3] == [5510, 13408, 62474]


def test_a_whole_row_is_pinned() -> None:
    """Word boundaries (underscores, digits, non-ASCII), n-grams and the structural block, as the
    bundled artifact was trained on them (values from the implementation it was built with)."""
    text = "snake_case x2 = naïve(東京) + 3;\n\nWhy? A) İ_1 B) _b\nAnswer:"
    row = HashingFeaturizer(bits=16).transform(text)
    assert (len(row.indices), int(row.indices.sum())) == (101, 2967406)
    assert row.dense.tolist() == pytest.approx(
        [4.060443, 2.484907, 1.386294, 0.693147, 3.295837, 0.052632, 0.070175, 0.070175, 0.122807,
         0.0, 0.693147, 0.693147, 0.0, 1.0,
         # version 2: numbers, tail numbers, constraints, steps, list items, reasoning asks ("why"),
         # recall asks, math words, code lines (";\n"), stopword share, log(1 + chars per word)
         0.693147, 0.0, 0.0, 0.0, 0.0, 0.693147, 0.0, 0.0, 0.693147, 0.0, 1.821612], abs=1e-6)




def enc(text: str) -> np.ndarray:
    return np.frombuffer(text.encode("utf-32-le"), dtype="<u4").astype(np.uint64)


def test_word_hash_is_a_function_of_the_word_only() -> None:
    powers = Powers.make(64)
    one, two = word_hashes(enc("cat dog"), powers), word_hashes(enc("a cat, the dog"), powers)
    assert one[0] == two[1] and one[1] == two[3]


def test_namespaces_are_l2_normalised_and_dense_has_its_names() -> None:
    row = HashingFeaturizer(bits=16).transform(TEXT)
    assert row.dense.shape == (len(DENSE_NAMES),)
    assert np.isclose(float(np.sum(row.values ** 2)), 3.0, atol=1e-4)   # three non-empty namespaces
    assert row.indices.min() >= 0 and row.indices.max() < 1 << 16


def test_empty_unicode_and_long_texts() -> None:
    feat = HashingFeaturizer(bits=12, max_chars=1000)
    assert feat.transform("").values.shape == (0,)
    assert len(feat.transform("naïve café — 東京 🙂").indices) > 0
    long = "word " * 5000
    assert len(clip_text(long, 1000)) == 1000
    assert feat.transform(long).dense.shape == (feat.dense_dim,)


def test_last_block_is_the_question() -> None:
    assert last_block(TEXT).startswith("Which is larger")
    assert last_block("no blank lines") == "no blank lines"


def test_fit_sets_idf_and_scaling_and_config_round_trips() -> None:
    feat = HashingFeaturizer(bits=12).fit([TEXT, "Another prompt?", "def f(x): return x"])
    assert feat.idf is not None and feat.idf.shape == (1 << 12,)
    rebuilt = featurizer_from(feat.name, feat.config(), feat.state())
    assert np.array_equal(rebuilt.transform(TEXT).values, feat.transform(TEXT).values)
    with pytest.raises(ValueError, match="unknown featurizer"):
        featurizer_from("no-such-featurizer", feat.config(), {})
    with pytest.raises(ValueError, match="version"):
        featurizer_from(feat.name, {**feat.config(), "version": 99}, {})
    with pytest.raises(ValueError, match="config mismatch"):
        featurizer_from(feat.name, {**feat.config(), "dense": ["other"]}, {})


def test_unicode_that_lengthens_when_lower_cased() -> None:
    feat = HashingFeaturizer(bits=12, max_chars=500)
    row = feat.transform("İ" * 2000)                     # "İ".lower() is two code points
    assert len(row.indices) > 0 and np.isfinite(row.values).all()


def _dense(text: str) -> dict[str, float]:
    return dict(zip(DENSE_NAMES, HashingFeaturizer(bits=12).transform(text).dense.tolist(), strict=True))


def test_transferable_structure_features_on_crafted_prompts() -> None:
    """What makes a prompt hard in any domain: quantities, constraints, steps, reasoning vs recall
    asks, math words, code lines, and how English the text is (raw values: unfitted featurizer)."""
    word_problem = _dense("Tom buys 3 apples at 2 dollars each and 4 pears. What is the total cost? "
                          "Explain step by step.")
    recall = _dense("What is the capital of France?")
    assert word_problem["log_numbers"] == pytest.approx(np.log1p(3))        # 3, 2, 4
    assert word_problem["log_tail_numbers"] == pytest.approx(np.log1p(3))
    assert word_problem["log_math_words"] == pytest.approx(np.log1p(2))     # total, cost
    assert word_problem["log_reasoning_asks"] == pytest.approx(np.log1p(1))  # explain
    assert word_problem["log_steps"] == pytest.approx(np.log1p(2))          # step, step
    assert recall["log_recall_asks"] == pytest.approx(np.log1p(2))          # "what is", capital
    assert recall["log_numbers"] == recall["log_reasoning_asks"] == 0.0
    assert recall["stopword_frac"] == pytest.approx(3 / 6)                  # is, the, of
    constrained = _dense("Write exactly 3 sentences. You must not use the letter e, and do not "
                         "repeat words.\n1. first\n2. second\n- third")
    # exactly, sentences, must, do not, words
    assert constrained["log_constraints"] == pytest.approx(np.log1p(5))
    assert constrained["log_list_items"] == pytest.approx(np.log1p(3))
    code = _dense("def f(x):\n    return x + 1;\n")
    assert code["log_code_lines"] == pytest.approx(np.log1p(3))             # ":\n", "\n    ", ";\n"
    german = _dense("Wie viele Äpfel hat Tom, wenn er drei kauft?")
    assert german["stopword_frac"] == 0.0 < recall["stopword_frac"]
