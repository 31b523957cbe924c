"""Shared test helpers: configs written to a temporary folder, the default settings, candidates."""

from __future__ import annotations

import re
import textwrap
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from llmroute import config
from llmroute import settings as s
from llmroute.catalog import Catalog
from llmroute.config_text import default_config_text, parse_yaml
from llmroute.constraints import Candidates, eligible
from llmroute.engine import Engine
from llmroute.ledger.entry import LedgerEntry
from llmroute.metrics import GatewayMetrics
from llmroute.routers import default_registry
from llmroute.routers.base import BuildContext
from llmroute.types import RouteRequest

LADDER = ("simple", "medium", "complex")


def write_yaml(tmp_path: Path, text: str, name: str = "llmroute.yaml") -> Path:
    """Write dedented YAML text to tmp_path/name and return the path."""
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


#: The environment config tests run in: the default providers' key variables set (so that their
#: "key not set" warnings do not mix into every test), nothing of the developer's.
TEST_ENV = {"OPENAI_API_KEY": "sk-test", "ANTHROPIC_API_KEY": "sk-ant-test"}


def check_yaml(tmp_path: Path, text: str, environ: dict[str, str] | None = None) -> config.Checked:
    """`config.check` of YAML text, isolated from the developer's environment."""
    return config.check(write_yaml(tmp_path, text),
                        environ=TEST_ENV if environ is None else environ)


def load_yaml(tmp_path: Path, text: str, environ: dict[str, str] | None = None) -> s.Settings:
    """`config.load` of YAML text, isolated from the developer's environment."""
    return config.load(write_yaml(tmp_path, text), environ=environ or {})


def default_settings() -> s.Settings:
    """The embedded defaults as Settings (no file, no environment)."""
    return s.Settings.model_validate(parse_yaml(default_config_text(), "embedded defaults"))


def build_context(settings: s.Settings | None = None, name: str = "test") -> BuildContext:
    """A router BuildContext over `settings` (default: the embedded defaults)."""
    settings = settings or default_settings()
    return BuildContext(settings.tier_names, Catalog.from_settings(settings), settings.rules,
                        default_registry(), name)


def no_candidates() -> Candidates:
    """Candidates for routers that do not look at them."""
    return Candidates((), LADDER)


def candidates_for(request: RouteRequest, settings: s.Settings | None = None) -> Candidates:
    """The eligible pool of `settings` (default: the embedded defaults) for `request`."""
    settings = settings or default_settings()
    return eligible(Catalog.from_settings(settings), request, settings.tier_names)


# -- the report fixture worked by hand in tests/reports/test_reports_aggregate.py ---------------
REPORT_BASE = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)


def report_entry(n: int, hours: float, **values: Any) -> LedgerEntry:
    """A ledger entry `hours` after REPORT_BASE: m/small, tier simple, policy default, key team-a."""
    defaults: dict[str, Any] = {"request_id": f"r{n}", "ts": REPORT_BASE + timedelta(hours=hours),
                                "status": "ok", "http_status": 200, "model": "m/small",
                                "tier": "simple", "policy": "default", "key_name": "team-a"}
    return LedgerEntry(**{**defaults, **values})


def hand_worked_report() -> list[LedgerEntry]:
    """Six requests over two UTC days (2025-01-01 and 2025-01-02), whose report numbers are worked
    by hand in tests/reports/test_reports_aggregate.py."""
    D = Decimal
    entry = report_entry
    big = {"model": "m/big", "tier": "complex", "key_name": "team-b"}
    return [
        entry(1, 0, cost_usd=D("0.10"), baseline_cost_usd=D("1.00"), baseline_model="m/big",
              latency_s=0.2, user_rating=4, task_success=True),
        entry(2, 1, cost_usd=D("0.20"), baseline_cost_usd=D("1.00"), baseline_model="m/big",
              latency_s=0.4, user_rating=2, task_success=False),
        entry(3, 12.5, **big, cost_usd=D("0.90"), baseline_cost_usd=D("0.90"),
              baseline_model="m/big", latency_s=1.5, user_rating=5, task_success=True),
        entry(4, 13, **big, cost_usd=None, baseline_cost_usd=D("0.90"), baseline_model="m/big",
              latency_s=2.0, user_rating=3, task_success=True),  # unpriced
        entry(5, 14, status="error", http_status=502, model=None, key_name=None, latency_s=5.0),
        entry(6, 15, cost_usd=D("0.05"), latency_s=0.3),  # priced, no baseline price
    ]


def hand_worked_caching() -> list[LedgerEntry]:
    """Seven requests on 2025-01-01 with the response cache and provider prompt caching, whose
    numbers are worked by hand in tests/ledger/test_ledger_caching.py. The compared ones (r1, r4,
    r5) are the hand-worked report's compared numbers (cost $1.20, baseline $2.90); the hits r2
    and r3 cost $0 and carry a baseline too: they must not count as routing's savings."""
    D = Decimal
    entry = report_entry
    cheap = {"policy": "p-cheap"}
    big = {"model": "m/big", "tier": "complex", "policy": "p-best", "key_name": "team-b"}
    return [
        entry(1, 0, **cheap, cache="miss", cost_usd=D("0.10"), baseline_cost_usd=D("1.00"),
              baseline_model="m/big", cached_tokens=1000, cache_write_tokens=0,
              prompt_cache_saved_usd=D("0.0009"), latency_s=0.2,
              prompt_text="What is 2+2?", response_text="4"),
        entry(2, 1, **cheap, cache="hit", cost_usd=D("0"), baseline_cost_usd=D("1.00"),
              baseline_model="m/big", cache_saved_usd=D("0.10"), cached_from="r1", latency_s=0.001,
              prompt_text="What is 2+2?", response_text="4"),
        entry(3, 2, **big, cache="semantic", cost_usd=D("0"), baseline_cost_usd=D("0.90"),
              baseline_model="m/big", cache_saved_usd=D("0.90"), cached_from="r4",
              cache_similarity=0.97, latency_s=0.01,
              prompt_text="Summarise the treaty of Rome, briefly", response_text="The treaty..."),
        entry(4, 1.5, **big, cache="miss", cost_usd=D("0.90"), baseline_cost_usd=D("0.90"),
              baseline_model="m/big", cache_write_tokens=2048,
              prompt_cache_saved_usd=D("-0.000768"), latency_s=1.5,
              prompt_text="Summarise the treaty of Rome", response_text="The treaty..."),
        entry(5, 3, **cheap, cache="bypass", cost_usd=D("0.20"), baseline_cost_usd=D("1.00"),
              baseline_model="m/big", cached_tokens=512, prompt_cache_saved_usd=D("0.000384"),
              latency_s=0.4),
        entry(6, 4, **cheap, cost_usd=D("0.05"), latency_s=0.3),  # the cache off: None
        entry(7, 5, status="error", http_status=502, model=None, policy=None, key_name=None,
              cache="miss", latency_s=5.0),
    ]


#: The report's savings sentence for `hand_worked_caching` (worked in test_ledger_caching.py).
CACHING_SAVINGS = ("Savings: $1.70 from routing; $1.00 from caching: $1.00 by the response cache "
                   "(hit rate 40.0%: 20.0% exact, 20.0% semantic) and $0.000516 by provider "
                   "prompt caching (1,512 cached tokens read, 2,048 written).")


#: A learned-policy engine over three tiers, for the online-learning tests (issue 13).
LEARNED_CONFIG = """
tiers:
  simple: {model: openai/gpt-4o-mini}
  medium: {model: openai/gpt-4.1-mini}
  complex: {model: anthropic/claude-sonnet-4-5}
policies:
  learned: {router: classifier, quality_target: 0.7}
routing: {default_policy: learned}
ledger: {enabled: true, url: "sqlite:///:memory:"}
"""
PROOF_PROMPT = "Prove that the square root of two is irrational, step by step."


def learned_engine(tmp_path: Path, learning: str = "") -> Engine:
    """The engine of `LEARNED_CONFIG` with a `learning:` block appended."""
    return Engine(load_yaml(tmp_path, LEARNED_CONFIG + learning))


async def route_learned(engine: Engine, prompt: str = PROOF_PROMPT,
                        **options: Any) -> tuple[str, bool, str | None]:
    """The decision's model, whether it explored, and its latent."""
    decision = await engine.decide(RouteRequest.from_prompt(prompt, **options))
    return decision.model, decision.explored, decision.latent


def metrics_text(metrics: GatewayMetrics) -> str:
    """The registry's exposition text, less the `_created` lines (creation times differ between
    two registries)."""
    from prometheus_client import generate_latest

    text = generate_latest(metrics.registry).decode()
    return re.sub(r"(?m)^.*_created.*\n", "", text)
