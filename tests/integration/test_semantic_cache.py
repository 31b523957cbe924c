"""The semantic cache through a served gateway: a prompt that embeds above the threshold to a
cached one is served its answer (marked hit, with its similarity; `semantic` in the ledger), one
below is a miss, and another scope or parameters never match. The encoder is a small static
model built here (tokenizer + word vectors, what `embed-static` serves); it needs `tokenizers`
(the `embed-static` or `embed` extra), else the tests skip. `config check` names the extra."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from llmroute.cache.config import SemanticCacheConfig
from llmroute.cache.semantic import build_encoder
from llmroute.server.auth import hash_key
from llmroute.testing.upstream import FakeUpstream

from .support import Serve, user

WORDS = ["what", "is", "the", "capital", "city", "of", "peru", "france", "please", "write",
         "a", "sorting", "function", "in", "python", "tell", "me", "?", "."]
VOCAB = ["[UNK]", *WORDS]
PERU = "what is the capital city of peru ?"
PERU_PLEASE = "please tell me what is the capital city of peru ?"
PYTHON = "write a sorting function in python ."
THRESHOLD = 0.85


@pytest.fixture
def static_model(tmp_path: Path) -> Path:
    tokenizers = pytest.importorskip("tokenizers")
    from tokenizers import normalizers, pre_tokenizers
    from tokenizers.models import WordLevel

    tok = tokenizers.Tokenizer(WordLevel({w: i for i, w in enumerate(VOCAB)}, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    folder = tmp_path / "static"
    folder.mkdir()
    (folder / "tokenizer.json").write_text(tok.to_str(), encoding="utf-8")
    vectors = np.random.default_rng(7).normal(size=(len(VOCAB), 24)).astype(np.float32)
    np.save(folder / "vectors.npy", vectors)
    return folder


def similarity(folder: Path, a: str, b: str) -> float:
    encoder = build_encoder(SemanticCacheConfig(encoder="static", static_path=str(folder)))
    x, y = encoder.encode([f"user: {a}", f"user: {b}"])
    return float(x @ y)


def config(folder: Path, tmp_path: Path, **extra: Any) -> dict[str, Any]:
    return {"cache": {"response": {"enabled": True},
                      "semantic": {"enabled": True, "encoder": "static", "threshold": THRESHOLD,
                                   "static_path": str(folder), **extra}},
            "ledger": {"enabled": True, "url": f"sqlite:///{tmp_path / 'ledger.db'}",
                       "spool_path": str(tmp_path / "spool.jsonl"), "flush_interval_s": 0.05}}


def test_a_similar_prompt_is_served_the_cached_answer(serve: Serve, up: FakeUpstream,
                                                      static_model: Path, tmp_path: Path) -> None:
    near, far = similarity(static_model, PERU, PERU_PLEASE), similarity(static_model, PERU, PYTHON)
    assert near >= THRESHOLD > far  # the fixture's premise
    gw = serve(config(static_model, tmp_path))
    with gw.client() as client:
        def ask(text: str) -> tuple[Any, Any]:
            raw = client.chat.completions.with_raw_response.create(
                model="fake/mid", messages=user(text), temperature=0)
            return raw.headers, raw.parse()

        first_headers, first = ask(PERU)
        near_headers, served = ask(PERU_PLEASE)
        far_headers, _ = ask(PYTHON)
    assert first_headers["x-llmroute-cache"] == "miss"
    assert near_headers["x-llmroute-cache"] == "hit"
    assert float(near_headers["x-llmroute-cache-similarity"]) == pytest.approx(near, abs=1e-3)
    assert served.choices[0].message.content == first.choices[0].message.content
    assert far_headers["x-llmroute-cache"] == "miss"
    assert up.call_count() == 2
    deadline = time.monotonic() + 5
    while True:
        with sqlite3.connect(tmp_path / "ledger.db") as db:
            rows = db.execute("SELECT request_id, cache, cache_similarity, cached_from, cost_usd "
                              "FROM llmroute_requests").fetchall()
        if len(rows) >= 3 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    by_id = {r[0]: r for r in rows}
    hit = by_id[near_headers["x-llmroute-request-id"]]
    assert hit[1:4] == ("semantic", pytest.approx(near, abs=1e-3),
                        first_headers["x-llmroute-request-id"])
    assert float(hit[4]) == 0


def test_other_scopes_and_parameters_never_match(serve: Serve, up: FakeUpstream,
                                                static_model: Path, tmp_path: Path) -> None:
    keys = {"keys": [{"name": "a", "hash": hash_key("lr-key-a")},
                     {"name": "b", "hash": hash_key("lr-key-b")}]}
    gw = serve({**config(static_model, tmp_path), **keys})
    with gw.client("lr-key-a") as a, gw.client("lr-key-b") as b:
        a.chat.completions.create(model="fake/mid", messages=user(PERU), temperature=0)
        for client, params in ((b, {}), (a, {"max_tokens": 9}), (a, {"model": "fake/mini"})):
            raw = client.chat.completions.with_raw_response.create(
                **{"model": "fake/mid", "messages": user(PERU_PLEASE), "temperature": 0, **params})
            assert raw.headers["x-llmroute-cache"] == "miss"
    assert up.call_count() == 4


def test_config_check_names_what_the_encoder_needs(tmp_path: Path) -> None:
    from llmroute.cache.semantic import missing_packages

    lacking = missing_packages(SemanticCacheConfig(encoder="minilm"))
    assert lacking is None or "'embed' extra" in lacking
    settings_problems = _problems(tmp_path, {"enabled": True, "encoder": "static",
                                             "static_path": str(tmp_path / "nowhere")})
    assert any(p.path == "cache.semantic.static_path" for p in settings_problems)
    assert any(p.path == "cache.semantic.enabled" for p in settings_problems)


def _problems(tmp_path: Path, semantic: dict[str, Any]) -> list[Any]:
    from helpers import default_settings
    from llmroute.cache.problems import response_cache_problems
    from llmroute.settings import Settings

    data = default_settings().model_dump()
    data["cache"] = {"semantic": semantic}
    return response_cache_problems(Settings.model_validate(data))


#: Real all-MiniLM-L6-v2 similarities (the default encoder), measured 2026-12-06: paraphrases
#: above the default threshold of 0.95, near misses that need another answer below it.
PARAPHRASES = [("What is the capital of Peru?", "What's the capital of Peru?"),       # 0.997
               ("How do I reverse a list in Python?", "How can I reverse a Python list?")]  # 0.987
NEAR_MISSES = [("What is 2+2?", "What is 2+3?"),                                        # 0.905
               ("Summarise this article in 3 bullet points",
                "Summarise this article in 5 bullet points"),                           # 0.926
               ("Translate 'good morning' to French",
                "Translate 'good morning' to Spanish")]                                 # 0.878


def test_the_default_encoder_and_threshold_tell_paraphrases_from_near_misses(
        serve: Serve, up: FakeUpstream, tmp_path: Path) -> None:
    from llmroute.cache.semantic import missing_packages

    default = SemanticCacheConfig(enabled=True)
    lacking = missing_packages(default)
    if lacking is not None:
        pytest.skip(lacking)
    gw = serve({"cache": {"response": {"enabled": True}, "semantic": {"enabled": True}}})
    with gw.client() as client:
        def mark(text: str) -> str:
            raw = client.chat.completions.with_raw_response.create(
                model="fake/mid", messages=user(text), temperature=0)
            return raw.headers["x-llmroute-cache"]

        for first, second in PARAPHRASES:
            assert (mark(first), mark(second)) == ("miss", "hit"), (first, second)
        for first, second in NEAR_MISSES:
            assert (mark(first), mark(second)) == ("miss", "miss"), (first, second)
    assert up.call_count() == len(PARAPHRASES) + 2 * len(NEAR_MISSES)
