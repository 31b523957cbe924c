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
