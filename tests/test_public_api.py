"""Pins the public API (`llmroute.__all__`) and checks the sync facade and the async core."""

from __future__ import annotations

import importlib
import os
from decimal import Decimal
from pathlib import Path

import pytest

import llmroute
from helpers import default_settings, load_yaml, write_yaml
from llmroute import config

PUBLIC_NAMES = [
    "AsyncClient",
    "Caller",
    "Catalog",
    "Client",
    "ConfigError",
    "ConfigProblem",
    "Decision",
    "Engine",
    "LLMCall",
    "LLMRouteError",
    "ModelSpec",
    "NoEligibleModelError",
    "Registry",
    "RouteRequest",
    "Router",
    "RouterType",
    "Settings",
    "SyncEngine",
    "UnknownModelError",
    "Usage",
    "Verdict",
    "__version__",
    "check_config",
    "feedback",
    "load",
    "send_feedback",
]


def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """`llmroute.load(path)` reads the process environment: keep the developer's out."""
    for name in [n for n in os.environ if n.startswith("LLMROUTE")]:
        monkeypatch.delenv(name)


def test_all_is_pinned() -> None:
    assert llmroute.__all__ == PUBLIC_NAMES
    assert len(set(llmroute.__all__)) == len(llmroute.__all__)


@pytest.mark.parametrize("name", PUBLIC_NAMES)
def test_each_public_name_is_importable(name: str) -> None:
    module = importlib.import_module("llmroute")
    assert getattr(module, name) is not None
    namespace: dict[str, object] = {}
    exec(f"from llmroute import {name}", namespace)
    assert namespace[name] is getattr(module, name)


def test_star_import_gives_exactly_the_public_names() -> None:
    namespace: dict[str, object] = {}
    exec("from llmroute import *", namespace)
    assert sorted(k for k in namespace if k != "__builtins__") == sorted(PUBLIC_NAMES)


def test_version_and_aliases() -> None:
    assert isinstance(llmroute.__version__, str)
    assert llmroute.check_config is config.check
    assert issubclass(llmroute.ConfigError, llmroute.LLMRouteError)
    assert issubclass(llmroute.NoEligibleModelError, llmroute.LLMRouteError)
    assert issubclass(llmroute.UnknownModelError, llmroute.LLMRouteError)


# --- the sync facade -------------------------------------------------------------------------------

def test_load_settings_and_decide_a_prompt() -> None:
    router = llmroute.load(default_settings())
    assert isinstance(router, llmroute.SyncEngine)
    try:
        decision = router.decide("What's 2+2?")
        assert isinstance(decision, llmroute.Decision)
        assert decision.tier == "simple"
        assert decision.model == "openai/gpt-4o-mini"
        assert isinstance(decision.estimated_cost_usd, Decimal)
        # The default keeps only precise rules (a code fence -> complex); keywords are the
        # `rules` policy's.
        fenced = "Please debug this:\n```python\ndef f(x):\n    return x +\n```"
        assert router.decide([{"role": "user", "content": fenced}]).tier == "complex"
        messages = [{"role": "user", "content": "Please debug this Python function"}]
        assert router.decide(messages, policy="rules").tier == "complex"
        assert router.decide("What's 2+2?", policy="quality").tier == "complex"
    finally:
        router.close()


def test_load_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clean_env(monkeypatch)
    path = write_yaml(tmp_path, "routing: {default_policy: quality}", "custom.yaml")
    with llmroute.load(path) as router:
        assert router.decide("hi").tier == "complex"
    with llmroute.load(str(path)) as router:
        assert router.decide("hi").policy == "quality"


def test_load_with_no_arguments_uses_the_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clean_env(monkeypatch)
    monkeypatch.chdir(tmp_path)
    with llmroute.load() as router:
        assert router.engine.settings == default_settings()
        assert router.decide("hi").policy == "default"


def test_load_refuses_an_invalid_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clean_env(monkeypatch)
    path = write_yaml(tmp_path, "tiers: {simple: {model: zzz-unheard-of}}")
    with pytest.raises(llmroute.ConfigError) as info:
        llmroute.load(path)
    assert any(p.path == "tiers.simple.model" for p in info.value.problems)


def test_load_passes_the_caller_through(tmp_path: Path) -> None:
    calls: list[llmroute.LLMCall] = []

    async def caller(call: llmroute.LLMCall) -> str:
        calls.append(call)
        return "COMPLEX"

    settings = load_yaml(tmp_path, """
        policies:
          default: {router: llm, model: openai/gpt-4o-mini}
    """)
    with llmroute.load(settings, caller=caller) as router:
        decision = router.decide("hello there")
    assert decision.tier == "complex"
    assert len(calls) == 1


# --- the async core --------------------------------------------------------------------------------

@pytest.mark.asyncio
async def test_engine_decide_is_awaitable() -> None:
    engine = llmroute.Engine(default_settings())
    decision = await engine.decide("What's 2+2?")
    assert decision.tier == "simple"
    request = llmroute.RouteRequest.from_prompt("hi", allowed_models=["anthropic/*"])
    decision = await engine.decide(request, policy="cheap")
    assert decision.model == "anthropic/claude-haiku-4-5"


@pytest.mark.asyncio
async def test_engine_from_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clean_env(monkeypatch)
    engine = llmroute.Engine.from_config(write_yaml(tmp_path, "routing: {default_policy: cheap}"))
    decision = await engine.decide(
        "Tell me about the history of the Roman empire, from its founding to its fall, in depth")
    assert decision.policy == "cheap"
    assert decision.tier == "simple"  # no rule matches; the cheap policy defaults to simple
    assert decision.reason.startswith("no rule matched")


def test_feedback_from_python(tmp_path: Path) -> None:
    import asyncio
    from datetime import UTC, datetime

    from llmroute.ledger import open_store
    from llmroute.ledger.entry import LedgerEntry

    db = tmp_path / "ledger.db"
    settings = load_yaml(tmp_path, f"ledger: {{url: 'sqlite:///{db}'}}\n")

    async def seed() -> None:
        store = open_store(f"sqlite:///{db}")
        await store.migrate()
        await store.write([LedgerEntry(request_id="req_py", ts=datetime.now(UTC), status="ok",
                                       http_status=200, model="m")])
        await store.close()

    asyncio.run(seed())
    assert llmroute.feedback("req_py", rating=3, success=False, config=settings) is True
    assert llmroute.feedback("req_unknown", rating=3, config=settings) is False
    with pytest.raises(ValueError):
        llmroute.feedback("req_py", rating=0, config=settings)
    with pytest.raises(ValueError):
        llmroute.feedback("req_py", config=settings)
