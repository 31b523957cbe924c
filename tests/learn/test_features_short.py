"""The hashing featurizer's short-text path (`features_short`) gives the numpy path's features bit
for bit, and so the same P(good), costs and routing decisions, on several hundred varied texts:
prompts of the shared datasets (cut to many lengths), code, math, multilingual text, emoji, empty and
whitespace-only texts, few-shot blocks with trailing whitespace, and text whose lower case is longer."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from llmroute.learn import artifact
from llmroute.learn.data import json_lines, prompt_of
from llmroute.learn.features import FeatureRow, HashingFeaturizer
from llmroute.learn.features_short import SHORT_CHARS
from llmroute.learn.model import RouterModel
from llmroute.learn.policy import by_target

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
FILES = ("llmrouter/test.jsonl", "mmlu-pro/test.jsonl", "routerbench/test.jsonl",
         "routeprofile/test.jsonl", "zeroeval/crux.jsonl", "zeroeval/math-l5.jsonl")
HANDMADE = [
    "", " ", "\n\n", "?", "a", "ab", "1.", "\n1.", "\n-x", "\n-", "hi\n\n", "x\n\n  \n",
    "Translate 'good morning' into French, please.",
    "What is the capital of France?", "2+2=?", "Compute $\\frac{3}{4} + \\sqrt{2}^2$ exactly.",
    "def f(x):\n    return x**2\n\nprint(f(3));", "```python\nimport os\n{a: b};\n```",
    "Question: which is right?\na) one\nb) two\n(c) three\nd. four",
    "Steps:\n1. first\n2) then\n- next\n* finally\n• afterwards",
    "You must answer in exactly 3 sentences, at least 2 words each, do not use lists.",
    "Why? Explain, prove and derive: how many integers are divisible by 7? Don't guess.",
    "Übersetze bitte: Straße, Größe, Maß.", "東京の人口は何人ですか？", "ما هي عاصمة مصر؟",
    "Привет, как дела? Объясни теорему Пифагора.", "İstanbul İİİ ﬁ ﬂ ß", "😀 emoji 🚀🚀 test 👍🏽",
    "Few-shot:\nQ: 1+1\nA: 2\n\nQ: 2+3\nA: 5\n\nQ: 7*6\nA:   \n\t",
    "tab\tseparated\tvalues\r\nwindows\r\n\r\nline", "x" * SHORT_CHARS, "y " * (SHORT_CHARS // 2),
    "z" * (SHORT_CHARS + 1), "İ" * (SHORT_CHARS - 1), "ab\n\ncd  ", "123 4.5 6e7 0x1F _9 a1",
]


def _data_prompts(per_file: int) -> Iterator[str]:
    for name in FILES:
        path = DATA / name
        if not path.exists():
            continue
        for i, (_, obj) in enumerate(json_lines(path)):
            if i >= per_file:
                break
            yield prompt_of(obj)


def corpus() -> list[str]:
    """Hand-made texts, then dataset prompts whole and cut to lengths on both sides of the cutoff."""
    rng = random.Random(17)
    texts = list(HANDMADE)
    for prompt in _data_prompts(60):
        texts.append(prompt)
        for _ in range(2):
            n = rng.randint(1, SHORT_CHARS + 20)
            texts += [prompt[:n], prompt[-n:]]
    return texts


@pytest.fixture(scope="module")
def bundled() -> RouterModel:
    return artifact.load_default()


def _same(a: FeatureRow, b: FeatureRow) -> bool:
    return (a.indices.dtype == b.indices.dtype and a.values.dtype == b.values.dtype
            and a.dense.dtype == b.dense.dtype and np.array_equal(a.indices, b.indices)
            and a.values.tobytes() == b.values.tobytes() and a.dense.tobytes() == b.dense.tobytes())


def test_the_corpus_is_varied_and_mostly_short() -> None:
    texts = corpus()
    short = [t for t in texts if len(t) <= SHORT_CHARS]
    assert len(texts) >= 500 and len(short) >= 400 and len(texts) - len(short) >= 50
    assert any(not t.isascii() for t in short) and "" in texts


@pytest.mark.parametrize("fitted", [False, True])
def test_short_path_features_are_bit_identical(bundled: RouterModel, fitted: bool) -> None:
    featurizer = bundled.featurizer
    assert isinstance(featurizer, HashingFeaturizer)
    if not fitted:
        featurizer = HashingFeaturizer(featurizer.bits, featurizer.char_sizes, featurizer.max_chars)
    took_short = 0
    for text in corpus():
        short = featurizer._short.row(text)
        took_short += short is not None
        assert _same(featurizer.transform(text), featurizer.transform_numpy(text)), repr(text[:80])
        assert _same(featurizer.transform_pure(text), featurizer.transform_numpy(text)), repr(text[:80])
        if short is not None:
            assert _same(short, featurizer.transform_numpy(text))
    assert took_short >= 400


def test_predictions_and_decisions_are_bit_identical(bundled: RouterModel) -> None:
    assert isinstance(bundled.featurizer, HashingFeaturizer)
    pool = list(bundled.models[:7])
    for text in corpus():
        # the pure path's latent (`predict` takes the compiled kernel's when it is built: see
        # test_features_kernel.py)
        got_p, got_cost, got_out = bundled.predict_latent(bundled.latent(text), len(text), pool)
        z = bundled._latent_of(bundled.featurizer.transform_numpy(text))
        p, cost, out = bundled.predict_latent(z, len(text), pool)
        assert got_p.tobytes() == p.tobytes() and got_cost.tobytes() == cost.tobytes()
        assert got_out.tobytes() == out.tobytes()
        assert by_target(got_p, got_cost, 0.7) == by_target(p, cost, 0.7)


def test_texts_the_numpy_path_rejects_are_rejected_alike(bundled: RouterModel) -> None:
    featurizer = bundled.featurizer
    assert isinstance(featurizer, HashingFeaturizer)
    lone = "bad \ud800 surrogate"
    assert featurizer._short.row(lone) is None
    with pytest.raises(UnicodeEncodeError):
        featurizer.transform(lone)
    with pytest.raises(UnicodeEncodeError):
        featurizer.transform_numpy(lone)


def test_the_word_cache_stays_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    from llmroute.learn import features_short

    monkeypatch.setattr(features_short, "_KNOWN_WORDS", 8)
    featurizer = HashingFeaturizer()
    text = " ".join(f"w{i}" for i in range(30))
    assert _same(featurizer.transform_pure(text), featurizer.transform_numpy(text))
    assert 0 < len(featurizer._short.known) <= 8
    assert _same(featurizer.transform_pure(text), featurizer.transform_numpy(text))


def test_gated_marker_counts_are_the_plain_counts() -> None:
    from llmroute.learn.structure import (
        _CODE_LINE_ENDS,
        _CODE_MARKERS,
        _MATH_MARKERS,
        _OPTION_MARKERS,
        _count,
        _rare_chars,
    )

    texts = [*corpus(), "```x```` {a};\n f();\n => \\frac{1}{2} $x^2$ = \\( \na) \n(b) \nb. :\n\n    \n\t"]
    gated = 0
    for text in texts:
        present = _rare_chars(text)
        for markers in (_CODE_MARKERS, _MATH_MARKERS, _OPTION_MARKERS, _CODE_LINE_ENDS):
            assert _count(text, markers, present) == sum(map(text.count, markers))
        gated += len(present) < 5
    assert gated > 100


def test_long_words_are_hashed_but_not_remembered() -> None:
    featurizer = HashingFeaturizer()
    long_word = "q" * 200
    text = f"short {long_word} words"
    assert _same(featurizer.transform_pure(text), featurizer.transform_numpy(text))
    assert long_word not in featurizer._short.known and "short" in featurizer._short.known
