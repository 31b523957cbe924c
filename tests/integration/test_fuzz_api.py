"""Schemathesis against the gateway's own `/openapi.json`, served by a real `llmroute serve` process
with a FakeUpstream behind it (OpenAI and Anthropic protocols) and a SQLite ledger: whatever it
sends (valid and invalid bodies, odd headers, every operation), no answer is a 5xx, no body
carries a traceback, the process stays up, and every answered chat request is in the ledger."""

from __future__ import annotations

import sqlite3
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.generation.modes import GenerationMode
from schemathesis.schemas import APIOperation
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from llmroute.testing.behaviours import Ok
from llmroute.testing.upstream import FakeUpstream

from .test_serve_process import serve, stop

ANTHROPIC = "ant/claude"
#: Examples per operation and generation mode (others: 10).
EXAMPLES = {"/v1/chat/completions": 60, "/chat/completions": 20, "/v1/feedback": 30,
            "/v1/messages": 40}
#: The operations whose fuzzed cases are half routed to a real model.
ROUTED = ("/chat/completions", "/v1/messages")


@dataclass
class Gateway:
    url: str
    proc: subprocess.Popen[bytes]
    ledger: Path
    answered: set[str] = field(default_factory=set)
    models: set[str] = field(default_factory=set)  # the models that answered
    paths: set[str] = field(default_factory=set)  # the routed operations answered


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    tmp = tmp_path_factory.mktemp("fuzz")
    with FakeUpstream(record=False) as up:
        up.set_default("*", Ok())
        proc, url, _ = serve(up, tmp, sections=with_anthropic(up))
        try:
            yield Gateway(url, proc, tmp / "ledger.db")
        finally:
            if proc.poll() is None:
                stop(proc)


def with_anthropic(up: FakeUpstream) -> dict[str, Any]:
    """An OpenAI-protocol model that `auto` routes to, and an Anthropic-protocol one asked by
    name (the translation's 400s are part of what is fuzzed)."""
    return {
        "providers": {"fake": {"type": "openai", "base_url": up.openai_base_url},
                      "ant": {"type": "anthropic", "base_url": up.anthropic_base_url}},
        "models": {"fake/a": {"deployment": "fake", "input_per_m": 1, "output_per_m": 2},
                   ANTHROPIC: {"deployment": "ant", "input_per_m": 3, "output_per_m": 15}},
    }


def check(case: schemathesis.Case, gateway: Gateway) -> None:
    """One generated request: no 5xx, no traceback, an answer that conforms to the document."""
    response = case.call(base_url=gateway.url, timeout=10)
    assert response.status_code < 500, response.text
    assert "Traceback" not in response.text
    case.validate_response(response, checks=[not_a_server_error, status_code_conformance,
                                             content_type_conformance,
                                             response_schema_conformance])
    if case.path.endswith(ROUTED) and response.status_code == 200:
        gateway.answered.add(response.headers["x-llmroute-request-id"][0])
        gateway.models.add(response.headers["x-llmroute-model"][0])
        gateway.paths.add(case.path)


def routed(case_and_model: tuple[schemathesis.Case, str]) -> schemathesis.Case:
    """The case asking for `model` with no routing controls (those are tested elsewhere)."""
    case, model = case_and_model
    if isinstance(case.body, dict):
        case.body = {k: v for k, v in case.body.items() if k not in ("models", "plugins")}
        case.body["model"] = model
    return case


def test_the_documented_examples_are_answered(gateway: Gateway) -> None:
    for operation in operations(gateway):
        for strategy in operation.schema.get_strategies_from_examples(operation):
            @settings(max_examples=1, deadline=None, database=None, phases=[Phase.explicit,
                                                                           Phase.generate])
            @given(case=strategy)
            def run(case: schemathesis.Case) -> None:
                check(case, gateway)

            run()
    assert gateway.answered, "the chat example was not answered"


def operations(gateway: Gateway) -> list[APIOperation]:
    """Every operation of the document the gateway serves."""
    schema = schemathesis.openapi.from_url(gateway.url + "/openapi.json")
    return [result.ok() for result in schema.get_all_operations()]


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_5xx_no_traceback(gateway: Gateway, mode: GenerationMode) -> None:
    # (schemathesis.pytest's lazy fixtures do not run under pytest 9: hypothesis drives each
    # operation's strategy directly, bounded so that the whole file takes well under a minute)
    for operation in operations(gateway):
        if mode == GenerationMode.NEGATIVE and operation.method.upper() == "GET":
            continue  # nothing to break: no body, no parameters
        examples = EXAMPLES.get(operation.path, 10)

        cases = operation.as_strategy(generation_mode=mode)
        if operation.path.endswith(ROUTED):  # half of them past `model`, to routing
            cases = cases | st.tuples(cases, st.sampled_from(["auto", ANTHROPIC])).map(routed)

        @settings(max_examples=examples, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(case=cases)
        def run(case: schemathesis.Case) -> None:
            check(case, gateway)

        run()


def test_a_streamed_answer_conforms_to_the_document(gateway: Gateway) -> None:
    # each server-sent event is checked against the document's event schema (one found by the
    # negative fuzzing once, in a full run: keep it checked on every run)
    chat = next(op for op in operations(gateway) if op.path == "/v1/chat/completions")
    case = chat.Case(body={"model": "auto", "stream": True,
                           "messages": [{"role": "user", "content": "hi"}]},
                     media_type="application/json")
    response = case.call(base_url=gateway.url, timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"][0].startswith("text/event-stream")
    check(case, gateway)


def test_the_process_stayed_up_and_the_ledger_has_every_answer(gateway: Gateway) -> None:
    assert gateway.proc.poll() is None, "the gateway died"
    assert httpx.get(gateway.url + "/health").status_code == 200
    assert len(gateway.answered) >= 5, "the fuzzing never got a chat request answered"
    assert gateway.models == {"fake/a", ANTHROPIC}, gateway.models
    assert "/v1/messages" in gateway.paths, gateway.paths
    stop(gateway.proc)  # flushes the ledger
    with sqlite3.connect(gateway.ledger) as db:
        logged = {row[0] for row in db.execute("SELECT request_id FROM llmroute_requests")}
    assert gateway.answered <= logged, gateway.answered - logged

