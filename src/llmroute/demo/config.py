"""The demo's Settings, built in memory: a `replay` deployment, the routerbench models with prices
fitted to their recorded costs, tiers by cost (gpt-4 the complex primary and the baseline), the
default policy, and a SQLite ledger that keeps text."""

from __future__ import annotations

import json
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from ..config import semantic_problems
from ..config_text import default_config_text, merge_over_defaults, parse_yaml
from ..errors import ConfigError
from ..routers import default_registry
from ..settings import Settings

BASELINE = "gpt-4-1106-preview"
DEPLOYMENT = "replay"
#: Recorded USD per test prompt below which a model is `simple`, then `medium`; above, `complex`.
TIER_BOUNDS = (("simple", 0.00025), ("medium", 0.001))


def replay_prices() -> dict[str, dict[str, Any]]:
    """Per model: fitted input/output USD per 1M tokens and recorded totals (models.json)."""
    text = resources.files("llmroute").joinpath("data/replay/models.json").read_text("utf-8")
    models: dict[str, dict[str, Any]] = json.loads(text)["models"]
    return models


def tier_of(price: Mapping[str, Any]) -> str:
    """A model's tier from its recorded cost per prompt."""
    per_prompt = float(price["recorded_cost_usd"]) / max(1, int(price["records"]))
    for tier, bound in TIER_BOUNDS:
        if per_prompt < bound:
            return tier
    return "complex"


def tier_table(prices: Mapping[str, Mapping[str, Any]], quality: Mapping[str, float]
               ) -> dict[str, dict[str, Any]]:
    """Tiers: in each, the best recorded model first (gpt-4 in complex), the others as fallbacks."""
    table: dict[str, dict[str, Any]] = {}
    for tier in ("simple", "medium", "complex"):
        members = sorted((m for m in prices if tier_of(prices[m]) == tier),
                         key=lambda m: (m != BASELINE, -quality.get(m, 0.0), m))
        table[tier] = {"model": members[0], "fallbacks": members[1:]}
    return table


#: The control demo's experiment: the default policy against the learned classifier, 50/50 by
#: session, with the `cheap` rules policy deciding in the shadow.
EXPERIMENT: dict[str, Any] = {
    "name": "demo-ab", "control": "default", "sticky_by": "session",
    "arms": {"default": {"policy": "default"}, "learned": {"policy": "learned"},
             "cheap-shadow": {"policy": "cheap", "shadow": True}},
}
#: The end user whose daily budget the control demo exhausts.
BUDGET_USER = "budget-demo"


def control_section(budget_usd: str) -> dict[str, Any]:
    """The control demo's experiment, and a daily budget for `BUDGET_USER` that downgrades to
    `frugal` (the `simple` tier, whatever the prompt) once spent."""
    policies = parse_yaml(default_config_text(), "embedded defaults")["policies"]
    return {"experiments": [EXPERIMENT],
            "policies": {**policies, "frugal": {"router": "fixed", "tier": "simple"}},
            "limits": [{"name": "budget-demo-day", "scope": "user", "match": [BUDGET_USER],
                        "window": "day", "usd": budget_usd, "on_exceed": "downgrade",
                        "downgrade_to": "frugal"}]}


def demo_settings(ledger_dir: Path, quality: Mapping[str, float], port: int = 0,
                  extra: Mapping[str, Any] | None = None,
                  over: Mapping[str, Any] | None = None) -> Settings:
    """Validated Settings for the demo gateway; `quality` is each model's mean recorded outcome,
    `extra` more sections (the control demo's), `over` a user's config (`llmroute demo -c`) laid
    over the demo's as over the defaults (tables such as tiers and policies replace, settings
    sections merge by key)."""
    prices = replay_prices()
    models = {name: {"provider": DEPLOYMENT, "deployment": DEPLOYMENT, "upstream_name": name,
                     "input_per_m": p["input_per_m"], "output_per_m": p["output_per_m"],
                     "context_window": 32_000, "tier": tier_of(p)}
              for name, p in prices.items()}
    user = {
        "models": models, "tiers": tier_table(prices, quality),
        "catalog": {"bundled_prices": False},
        "routing": {"baseline_model": BASELINE},
        "providers": {DEPLOYMENT: {"type": "replay", "base_url": "replay:routerbench-test"}},
        "resilience": {"cooldown": {"failures": 1_000_000, "cooldown_s": 0}},
        "server": {"host": "127.0.0.1", "port": port},
        "ledger": {"url": f"sqlite:///{ledger_dir / 'ledger.db'}", "store_text": True,
                   "spool_path": str(ledger_dir / "ledger.spool.jsonl"), "flush_interval_s": 0.05},
        **(extra or {}),
    }
    raw = merge_over_defaults(parse_yaml(default_config_text(), "embedded defaults"), user)
    raw = merge_over_defaults(raw, over or {})
    settings = Settings.model_validate(raw)
    problems = [p for p in semantic_problems(settings, default_registry(), {})
                if p.severity == "error"]
    if problems:
        raise ConfigError(problems, "demo settings")
    return settings
