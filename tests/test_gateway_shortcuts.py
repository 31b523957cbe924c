"""The gateway's shortcuts around its stages (issue 17, orch17) rest on what each stage answers when
it has nothing to do: a disabled response cache probes as `OFF`, admission without experiments
assigns no arm. If a stage changed that answer, these fail before the shortcut hides it."""

from __future__ import annotations

import asyncio

from helpers import default_settings
from llmroute.cache.response import OFF, ResponseCache
from llmroute.chat import chat_request
from llmroute.control.admission import Admission
from llmroute.control.state_memory import MemoryState
from llmroute.engine import Engine
from llmroute.gateway import Gateway
from llmroute.outcome import OPEN


def _req():  # type: ignore[no-untyped-def]
    return chat_request({"model": "auto", "messages": [{"role": "user", "content": "hi"}]})


def test_a_disabled_cache_probes_as_off() -> None:
    settings = default_settings()
    cache = ResponseCache.from_settings(settings)
    assert not cache.config.enabled
    assert asyncio.run(cache.probe(_req(), OPEN)) is OFF


def test_no_experiment_assigns_no_arm() -> None:
    settings = default_settings()
    admission = Admission(settings, Engine(settings).catalog, MemoryState())
    assert not admission.experiments
    for policy in (None, settings.routing.default_policy):
        assert asyncio.run(admission.assign(_req(), OPEN, policy)) is None


def test_the_gateway_reads_the_stages_it_skips() -> None:
    gw = Gateway(default_settings())
    assert gw.cache.config.enabled is False and gw.admission.experiments == ()


def test_off_serves_nothing_and_marks_nothing() -> None:
    """cut17e: the gateway neither asks `servable` nor calls `mark` for `OFF`: what they would
    do with it is nothing (no answer to serve; the outcome's cache state and headers as they
    were, the admitted outcome's None and {})."""
    gw = Gateway(default_settings())
    req = _req()
    outcome, _ = asyncio.run(gw.admit(req, OPEN, "r"))
    before = (outcome.cache, dict(outcome.extra_headers))
    assert before == (None, {})
    assert gw.hits.servable(req, OPEN, OFF) is False
    OFF.mark(outcome)
    assert (outcome.cache, outcome.extra_headers) == before
    assert OFF.state is None and OFF.answer is None and OFF.headers() == {}
