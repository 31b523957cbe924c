"""Turn what happened to a request into its ledger entry (successes, failures, every attempt), with
text stored only when the config says so and passed through the redaction hook first."""

from __future__ import annotations

import importlib
import operator
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from types import MappingProxyType
from typing import Any

from .catalog import Catalog
from .control.admission import shadow_json
from .errors import LLMRouteError
from .ledger.entry import AttemptRecord, LedgerEntry, blank_fields
from .outcome import Outcome
from .resilience import Attempt, attempt_log
from .settings import LedgerConfig
from .types import Usage

Redactor = Callable[[str], str]
_LATENCY = operator.attrgetter("latency_s")
_NO_METADATA: Mapping[str, Any] = MappingProxyType({})


def load_redactor(path: str | None) -> Redactor | None:
    """The `module:function` redaction hook named in config (None: store text as is)."""
    if not path:
        return None
    module, _, name = path.partition(":")
    function = getattr(importlib.import_module(module), name)
    if not callable(function):
        raise TypeError(f"ledger.redact {path!r} is not callable")
    return function  # type: ignore[no-any-return]


def attempts_of(outcome: Outcome | None, error: LLMRouteError | None) -> list[Attempt]:
    """Every attempt of a request: the LLM router's, then the answer's (from the error when the
    call failed before the outcome knew them)."""
    attempts: list[Attempt] = list(outcome.attempts) if outcome is not None else []
    if error is not None and not attempts:
        attempts = attempt_log(error)
    plan = outcome.plan if outcome is not None else None
    return [*(plan.router_attempts if plan is not None else ()), *attempts]


def prompt_text(body: Mapping[str, Any]) -> str:
    """The conversation as plain text (role: content per message) for the ledger."""
    lines = []
    for message in body.get("messages") or []:
        content = message.get("content") if isinstance(message, Mapping) else None
        if isinstance(content, list):
            content = "\n".join(p["text"] for p in content
                                if isinstance(p, Mapping) and isinstance(p.get("text"), str))
        lines.append(f"{message.get('role', '?')}: {content or ''}")
    return "\n".join(lines)


class Accountant:
    """Builds ledger entries for one gateway: knows the catalog (for costs) and the text policy."""

    def __init__(self, catalog: Catalog, baseline_model: str, config: LedgerConfig):
        self.catalog = catalog
        self.baseline_model = baseline_model
        self.store_text = config.store_text
        self.redact = load_redactor(config.redact) if config.store_text else None

    def _text(self, text: str | None) -> str | None:
        if not self.store_text or text is None:
            return None
        return self.redact(text) if self.redact else text

    def baseline_cost(self, usage: Usage | None) -> Decimal | None:
        """What the baseline model would have cost for the same usage."""
        return None if usage is None else self.catalog.cost(self.baseline_model, usage)

    def entry(self, *, request_id: str, started: float, now: float, outcome: Outcome | None,
             error: LLMRouteError | None, body: Mapping[str, Any], key_name: str | None,
             stream: bool, ttft_s: float | None = None, response: str | None = None
             ) -> LedgerEntry:
        """One ledger entry, of any request, failed or planned or not. `outcome` is the gateway's
        Outcome (None if planning failed)."""
        attempts = attempts_of(outcome, error)
        plan = outcome.plan if outcome is not None else None
        routing = plan.routing_cost_usd if plan is not None else None
        usage = outcome.usage if outcome is not None else None
        user = body.get("user")
        if user is not None and not isinstance(user, str):
            user = None
        raw_metadata = body.get("metadata")  # None or a dict, mostly: no ABC check for those
        metadata: Mapping[str, Any] = (
            raw_metadata if raw_metadata.__class__ is dict or isinstance(raw_metadata, Mapping)
            else _NO_METADATA) if raw_metadata is not None else _NO_METADATA
        # every field in declaration order: a copy of the blank entry, filled in (a 46-key dict
        # display is built in chunks merged one into another: ~14 k instructions more, issue 17);
        # the feedback fields stay None
        values = blank_fields()
        values["request_id"] = request_id
        values["ts"] = datetime.now(UTC)
        values["status"] = "error" if error else "ok"
        values["http_status"] = error.status if error else 200
        values["key_name"] = key_name
        values["user"] = user
        values["session"] = str(metadata.get("session_id")) if metadata.get("session_id") else None
        values["policy"] = plan.policy if plan else None
        values["router"] = plan.router if plan else None
        values["tier"] = plan.tier if plan else None
        values["confidence"] = plan.confidence if plan else None
        values["reason"] = plan.reason if plan else None
        values["experiment_arm"] = outcome.experiment_arm if outcome else None
        values["model"] = (outcome.model or None) if outcome else None
        values["attempts"] = tuple(map(AttemptRecord.from_attempt, attempts))
        values["error_type"] = error.type if error else None
        values["error_code"] = error.code if error else None
        values["stream"] = stream
        values["latency_s"] = now - started
        values["ttft_s"] = ttft_s
        values["upstream_latency_s"] = sum(map(_LATENCY, attempts)) or None
        values["input_tokens"] = usage.input_tokens if usage else None
        values["output_tokens"] = usage.output_tokens if usage else None
        values["cached_tokens"] = usage.cached_input_tokens if usage else None
        values["usage_estimated"] = bool(outcome and outcome.usage_estimated)
        values["cost_usd"] = (outcome.cost_usd if outcome.finished else routing) if outcome else None
        values["baseline_cost_usd"] = self.baseline_cost(usage)
        values["baseline_model"] = self.baseline_model
        values["prompt_text"] = self._text(prompt_text(body)) if self.store_text else None
        values["response_text"] = self._text(response)
        values["shadow"] = shadow_json(outcome.shadow) if outcome and outcome.shadow else None
        values["explored"] = bool(plan and plan.explored)
        values["latent"] = plan.latent if plan else None
        values["routing_cost_usd"] = routing
        values["cache_write_tokens"] = usage.cache_write_tokens if usage else None
        values["prompt_cache_saved_usd"] = self.prompt_cache_saved(outcome)
        values["cache"] = outcome.cache if outcome else None
        values["cache_saved_usd"] = outcome.cache_saved_usd if outcome else None
        values["cached_from"] = outcome.cached_from if outcome else None
        values["cache_similarity"] = outcome.cache_similarity if outcome else None
        return LedgerEntry.of_ordered(values)

    def prompt_cache_saved(self, outcome: Outcome | None) -> Decimal | None:
        """What the provider's prompt cache saved on the answering model's call (None when the
        call read and wrote nothing from the cache, or the model is unpriced)."""
        usage = outcome.usage if outcome is not None else None
        if usage is None or not (usage.cached_input_tokens or usage.cache_write_tokens):
            return None
        spec = self.catalog.get(outcome.model) if outcome is not None else None
        return spec.prompt_cache_savings(usage) if spec is not None else None
