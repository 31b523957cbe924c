"""The `alerts:` section of the configuration: where alerts go (webhooks, the log), how delivery is
retried, and the rules (one typed model per kind, chosen by `kind`).

With no `alerts:` section the default rules run: limit crossings, a 3× hourly spend anomaly, an
error rate above 20% over 5 minutes (20 requests at least) and deployments in cooldown. Rules the
user lists are added to them; a user rule with a default rule's name replaces it (`enabled: false`
turns it off), and `default_rules: false` drops the defaults altogether.

This module imports nothing else of llmroute's, so `settings.py` can import it.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

AlertKind = Literal["limit", "spend_anomaly", "error_rate", "fallback_rate", "cooldown", "quality"]
Severity = Literal["info", "warning", "critical"]
#: How ledger-based rules split traffic: one figure for everything, or one per model/policy/key.
GroupBy = Literal["global", "model", "policy", "key"]
_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.:\-]*$"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class WebhookConfig(_Frozen):
    """One webhook: a URL (or the env var holding it, since Slack URLs are secrets), its body's
    format, and headers whose values come from env vars (`{Authorization: ALERTS_TOKEN}`)."""

    url: str | None = Field(None, pattern=r"^https?://")
    url_env: str | None = None
    format: Literal["json", "slack"] = "json"
    headers_env: dict[str, str] = Field(default_factory=dict,
                                        description="header name -> env var holding its value")
    timeout_s: float = Field(10.0, gt=0)

    @model_validator(mode="after")
    def _one_url(self) -> WebhookConfig:
        if (self.url is None) == (self.url_env is None):
            raise ValueError("give exactly one of `url` or `url_env`")
        return self


class DeliveryRetry(_Frozen):
    """Tries per webhook and alert; the wait doubles after each failure, up to `max_backoff_s`
    (a longer `Retry-After` from the webhook is honoured up to that cap)."""

    attempts: int = Field(4, ge=1, le=20)
    backoff_s: float = Field(1.0, ge=0)
    max_backoff_s: float = Field(30.0, ge=0)


class _Rule(_Frozen):
    name: str = Field(pattern=_NAME)
    enabled: bool = True
    severity: Severity = "warning"


class LimitRule(_Rule):
    """A limit's use crossing one of its `alert_at` shares (once per limit, subject, window and
    share; a crossing of 100% or more is critical)."""

    kind: Literal["limit"] = "limit"
    limits: tuple[str, ...] | None = Field(None, description="limit name patterns; default: all")


class SpendAnomalyRule(_Rule):
    """The last hour's spend above `factor` times the average of the same hour on the previous
    `days` days (the days with traffic in that hour; no history, no anomaly)."""

    kind: Literal["spend_anomaly"] = "spend_anomaly"
    factor: float = Field(3.0, gt=1)
    days: int = Field(7, ge=1, le=28)
    min_usd: Decimal = Field(Decimal("1"), ge=0, description="ignore hours that cost less")
    by: GroupBy = "global"


class _RateRule(_Rule):
    threshold: float = Field(gt=0, le=1, description="share of requests, 0-1")
    window_s: float = Field(300.0, ge=10)
    min_requests: int = Field(20, ge=1)
    by: GroupBy = "global"


class ErrorRateRule(_RateRule):
    """The share of requests that failed on the gateway's or the upstreams' side (5xx, or an
    upstream's 429 after every fallback) above `threshold` over the last `window_s`."""

    kind: Literal["error_rate"] = "error_rate"


class FallbackRateRule(_RateRule):
    """The share of requests answered by a model other than the first one tried above
    `threshold` over the last `window_s`."""

    kind: Literal["fallback_rate"] = "fallback_rate"


class CooldownRule(_Rule):
    """A deployment out of rotation (at most one alert per model per `window_s`)."""

    kind: Literal["cooldown"] = "cooldown"
    models: tuple[str, ...] | None = Field(None, description="model patterns; default: all")
    window_s: float = Field(3600.0, ge=10)


class QualityRule(_Rule):
    """A policy's mean user rating (1-5) or task success rate (0-1) below `threshold` over the
    requests of the last `window_s` that have that feedback (`min_samples` at least)."""

    kind: Literal["quality"] = "quality"
    metric: Literal["rating", "success"] = "rating"
    threshold: float = Field(ge=0, le=5)
    window_s: float = Field(86_400.0, ge=60)
    min_samples: int = Field(20, ge=1)
    policy: str | None = Field(None, description="a policy name pattern; default: each policy")

    @model_validator(mode="after")
    def _in_range(self) -> QualityRule:
        if self.metric == "success" and self.threshold > 1:
            raise ValueError("a success-rate `threshold` is a share in [0, 1]")
        return self


AlertRule = Annotated[
    LimitRule | SpendAnomalyRule | ErrorRateRule | FallbackRateRule | CooldownRule | QualityRule,
    Field(discriminator="kind"),
]

DEFAULT_RULES: tuple[AlertRule, ...] = (
    LimitRule(name="limits"),
    SpendAnomalyRule(name="spend-anomaly"),
    ErrorRateRule(name="error-rate", threshold=0.2, severity="critical"),
    CooldownRule(name="cooldown"),
)


class AlertsConfig(_Frozen):
    """Alert rules, evaluated off the request path by one replica, and where alerts go."""

    enabled: bool = True
    interval_s: float = Field(60.0, ge=1, description="seconds between evaluations")
    log: bool = Field(True, description="log each alert (logger llmroute.alerts, WARNING)")
    history: bool = Field(True, description="keep alerts in the ledger database")
    webhooks: tuple[WebhookConfig, ...] = ()
    retry: DeliveryRetry = DeliveryRetry()
    default_rules: bool = Field(True, description="run the default rules besides `rules`")
    rules: tuple[AlertRule, ...] = ()

    @model_validator(mode="after")
    def _unique_names(self) -> AlertsConfig:
        names = [rule.name for rule in self.rules]
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise ValueError(f"alert rule names must be unique: {', '.join(twice)}")
        return self

    @property
    def active_rules(self) -> tuple[AlertRule, ...]:
        """The rules that run: the defaults not replaced by name, then the user's, enabled only."""
        mine = {rule.name for rule in self.rules}
        defaults = [r for r in DEFAULT_RULES if r.name not in mine] if self.default_rules else []
        return tuple(rule for rule in (*defaults, *self.rules) if rule.enabled)
