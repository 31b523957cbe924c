"""The replay adapter answers recorded prompts with recorded answers, and nothing else."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from llmroute.errors import UpstreamError
from llmroute.providers import ADAPTERS, build_provider
from llmroute.providers.replay import ReplayBook, ReplayProvider, approx_tokens, load_records
from llmroute.settings import ProviderConfig

RECORD = {"id": "t.1", "prompt": "What is 2+2?", "outcomes": {"m1": 1.0, "m2": 0.0},
          "cost_usd": {"m1": 0.002}, "responses": {"m1": "The answer is 4, of course.", "m2": "5"}}
CONFIG = ProviderConfig(type="replay", base_url="replay:test")


def provider() -> ReplayProvider:
    return ReplayProvider("replay", CONFIG, None, book=ReplayBook([_slim(RECORD)]))


def _slim(record: dict[str, Any]) -> dict[str, Any]:
    from llmroute.providers.replay import slim_record
    return slim_record(record)


def body(text: str, **extra: Any) -> dict[str, Any]:
    return {"messages": [{"role": "system", "content": "be brief"},
                         {"role": "user", "content": text}], **extra}


def test_registered_as_an_adapter() -> None:
    assert ADAPTERS["replay"] is ReplayProvider


def test_complete_returns_the_recorded_answer_with_usage_and_cost() -> None:
    answer = asyncio.run(provider().complete(body("What is 2+2?"), "m1"))
    assert answer["object"] == "chat.completion"
    assert answer["choices"][0]["message"]["content"] == "The answer is 4, of course."
    usage = answer["usage"]
    assert usage["prompt_tokens"] == approx_tokens(len("What is 2+2?")) == 3
    assert usage["completion_tokens"] == approx_tokens(27) == 7
    assert usage["total_tokens"] == 10 and usage["cost"] == 0.002
    no_cost = asyncio.run(provider().complete(body("What is 2+2?"), "m2"))
    assert "cost" not in no_cost["usage"]


def test_stream_splits_the_answer_and_ends_with_usage() -> None:
    async def collect(**extra: Any) -> list[dict[str, Any]]:
        return [c async for c in provider().stream(body("What is 2+2?", **extra), "m1")]

    chunks = asyncio.run(collect(stream_options={"include_usage": True}))
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert text == "The answer is 4, of course."
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 7
    assert "usage" not in asyncio.run(collect())[-1]


def test_unknown_prompt_is_a_bad_request_never_an_answer() -> None:
    with pytest.raises(UpstreamError) as info:
        asyncio.run(provider().complete(body("What is 3+3?"), "m1"))
    assert info.value.kind == "bad_request" and "not recorded" in info.value.message
    assert info.value.status == 400 and not info.value.falls_back


def test_unrecorded_model_is_not_found_so_the_gateway_falls_back() -> None:
    async def first() -> Any:
        return await anext(aiter(provider().stream(body("What is 2+2?"), "m3")))

    with pytest.raises(UpstreamError) as info:
        asyncio.run(first())
    assert info.value.kind == "not_found" and info.value.falls_back


def test_text_parts_and_the_last_user_message_are_what_is_looked_up() -> None:
    parts = {"messages": [{"role": "user", "content": "earlier"}, {"role": "assistant", "content": "x"},
                          {"role": "user", "content": [{"type": "text", "text": "What is 2+2?"}]}]}
    assert asyncio.run(provider().complete(parts, "m2"))["choices"][0]["message"]["content"] == "5"


def test_bundled_data_loads_and_answers_every_model() -> None:
    records = load_records()
    assert len(records) == 952
    replay = build_provider("replay", CONFIG, {})
    record = records[0]
    for model, entry in record["models"].items():
        answer = asyncio.run(replay.complete(body(record["prompt"]), model))
        assert answer["choices"][0]["message"]["content"] == entry["response"]


def test_a_file_of_outcome_records_can_be_replayed(tmp_path: Any) -> None:
    import json

    path = tmp_path / "records.jsonl"
    path.write_text(json.dumps(RECORD) + "\n", encoding="utf-8")
    replay = ReplayProvider("r", ProviderConfig(type="replay", base_url=str(path)), None)
    answer = asyncio.run(replay.complete(body("What is 2+2?"), "m2"))
    assert answer["choices"][0]["message"]["content"] == "5"
