"""llmroute: send every LLM request to the cheapest model that can handle it.

In-process use::

    import llmroute
    router = llmroute.load()              # llmroute.yaml, $LLMROUTE_CONFIG, or the defaults
    decision = router.decide("What's 2+2?")
    print(decision.model, decision.tier, decision.reason)

Async code uses `engine = llmroute.Engine.from_config(...)` and `await engine.decide(...)`.

In-process gateway (routing and upstream calls, no proxy), a drop-in for the OpenAI SDK's client::

    client = llmroute.Client()
    reply = client.chat.completions.create(model="auto", messages=[{"role": "user", "content": "hi"}])
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from .lazy import lazy_exports

if TYPE_CHECKING:
    from .catalog import Catalog, ModelSpec
    from .client import AsyncClient, Client
    from .config import check as check_config
    from .engine import Caller, Engine, SyncEngine
    from .errors import (
        ConfigError,
        ConfigProblem,
        LLMRouteError,
        NoEligibleModelError,
        UnknownModelError,
    )
    from .feedback import feedback, send_feedback
    from .routers.base import LLMCall, Registry, Router, RouterType, Verdict
    from .settings import Settings
    from .types import Decision, RouteRequest, Usage

__version__ = "0.1.0"

#: Where each public name lives. They are imported on first use (PEP 562), so that importing one
#: module of the package (the ledger reader process imports only the ledger) stays light.
_EXPORTS: dict[str, tuple[str, str]] = {
    "Catalog": ("catalog", "Catalog"), "ModelSpec": ("catalog", "ModelSpec"),
    "AsyncClient": ("client", "AsyncClient"), "Client": ("client", "Client"),
    "check_config": ("config", "check"),
    "Caller": ("engine", "Caller"), "Engine": ("engine", "Engine"),
    "SyncEngine": ("engine", "SyncEngine"),
    "ConfigError": ("errors", "ConfigError"), "ConfigProblem": ("errors", "ConfigProblem"),
    "LLMRouteError": ("errors", "LLMRouteError"),
    "NoEligibleModelError": ("errors", "NoEligibleModelError"),
    "UnknownModelError": ("errors", "UnknownModelError"),
    "feedback": ("feedback", "feedback"), "send_feedback": ("feedback", "send_feedback"),
    "LLMCall": ("routers.base", "LLMCall"), "Registry": ("routers.base", "Registry"),
    "Router": ("routers.base", "Router"), "RouterType": ("routers.base", "RouterType"),
    "Verdict": ("routers.base", "Verdict"),
    "Settings": ("settings", "Settings"),
    "Decision": ("types", "Decision"), "RouteRequest": ("types", "RouteRequest"),
    "Usage": ("types", "Usage"),
}


__getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)


def load(config: str | Path | Settings | None = None, *, caller: Caller | None = None,
         registry: Registry | None = None, environ: Mapping[str, str] | None = None) -> SyncEngine:
    """A synchronous router over a configuration file, a Settings object, or the defaults.
    `environ` replaces os.environ for $LLMROUTE_CONFIG and LLMROUTE__* overrides."""
    from .engine import Engine, SyncEngine
    from .settings import Settings

    if isinstance(config, Settings):
        return SyncEngine(Engine(config, caller=caller, registry=registry))
    return SyncEngine(Engine.from_config(config, caller=caller, registry=registry, environ=environ))


__all__ = [
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
