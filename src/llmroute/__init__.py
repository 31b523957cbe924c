"""llmroute: send every LLM request to the cheapest model that can handle it.

In-process use::

    import llmroute
    router = llmroute.load()              # llmroute.yaml, $LLMROUTE_CONFIG, or the defaults
    decision = router.decide("What's 2+2?")
    print(decision.model, decision.tier, decision.reason)

Async code uses `engine = llmroute.Engine.from_config(...)` and `await engine.decide(...)`.
"""

from __future__ import annotations

from pathlib import Path

from .catalog import Catalog, ModelSpec
from .config import check as check_config
from .engine import Caller, Engine, SyncEngine
from .errors import (
    ConfigError,
    ConfigProblem,
    LLMRouteError,
    NoEligibleModelError,
    UnknownModelError,
)
from .routers.base import LLMCall, Registry, Router, RouterType, Verdict
from .settings import Settings
from .types import Decision, RouteRequest, Usage

__version__ = "0.1.0"


def load(config: str | Path | Settings | None = None, *, caller: Caller | None = None,
         registry: Registry | None = None) -> SyncEngine:
    """A synchronous router over a configuration file, a Settings object, or the defaults."""
    if isinstance(config, Settings):
        return SyncEngine(Engine(config, caller=caller, registry=registry))
    return SyncEngine(Engine.from_config(config, caller=caller, registry=registry))


__all__ = [
    "Caller",
    "Catalog",
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
    "load",
]
