"""The one typed, frozen Settings object (config_text.py turns YAML text plus env overrides into
the mapping it is validated from).

Semantic checks that need the catalog or the router registry (unknown models, unknown tiers, router
parameters) live in `config.py`, which is what applications call to load a configuration.
"""

from __future__ import annotations

import itertools
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .cache.config import CacheConfig
from .control.alerts_config import AlertsConfig
from .control.experiments import ExperimentConfig
from .embeddings_config import EmbeddingsConfig
from .telemetry.config import TelemetryConfig

Capability = Literal["tools", "vision", "json"]
Window = Literal["minute", "hour", "day", "week", "month"]
Scope = Literal["global", "key", "team", "user", "model", "policy"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ModelConfig(_Frozen):
    """A model entry in config: overrides or extends the bundled price snapshot."""

    provider: str | None = None
    input_per_m: Decimal | None = Field(None, ge=0, description="USD per 1M input tokens")
    output_per_m: Decimal | None = Field(None, ge=0, description="USD per 1M output tokens")
    cached_input_per_m: Decimal | None = Field(None, ge=0, description="USD per 1M cached tokens")
    cache_write_per_m: Decimal | None = Field(
        None, ge=0, description="USD per 1M tokens written to the provider's prompt cache")
    cache_write_1h_per_m: Decimal | None = Field(
        None, ge=0, description="USD per 1M tokens written to Anthropic's 1-hour prompt cache")
    cache_min_tokens: int | None = Field(
        None, gt=0, description="the shortest prefix the provider caches at a breakpoint")
    context_window: int | None = Field(None, gt=0)
    max_output_tokens: int | None = Field(None, gt=0)
    tier: str | None = None
    capabilities: tuple[Capability, ...] | None = None
    deployment: str | None = Field(
        None, description="the `providers:` entry that serves it (default: its provider's name)")
    upstream_name: str | None = Field(
        None, description="the model name sent upstream (default: the name without `provider/`)")
    like: str | None = Field(
        None, description="the learned router uses this known model's profile (e.g. "
        "claude-3-haiku-20240307) instead of a prior from the catalog")


class TierConfig(_Frozen):
    """One rung of the ladder: a primary model and its ordered fallbacks."""

    model: str
    fallbacks: tuple[str, ...] = ()


class RuleConfig(_Frozen):
    """One row of the rules decision table. All conditions given must hold; first match wins."""

    name: str
    tier: str
    keywords: tuple[str, ...] = ()
    all_keywords: tuple[str, ...] = ()
    regex: tuple[str, ...] = ()
    min_tokens: int | None = Field(None, ge=0)
    max_tokens: int | None = Field(None, ge=0)
    min_words: int | None = Field(None, ge=0)
    max_words: int | None = Field(None, ge=0)
    has_code: bool | None = None
    has_tools: bool | None = None
    has_images: bool | None = None
    has_attachments: bool | None = None
    scope: Literal["last_user", "user"] = "last_user"
    confidence: float = Field(0.8, ge=0.0, le=1.0)


class PolicySpec(BaseModel):
    """A named policy: `router` names a registered router type; other keys are its parameters."""

    model_config = ConfigDict(frozen=True, extra="allow")
    router: str

    @property
    def params(self) -> dict[str, Any]:
        """The router's parameters: every key but `router`."""
        return dict(self.model_extra or {})


class RoutingConfig(_Frozen):
    """Settings of the routing step as a whole."""

    default_policy: str = "default"
    baseline_model: str | None = Field(
        None, description="model costs are compared against; default: the top tier's primary"
    )
    expected_output_tokens: int = Field(
        256, gt=0, description="output tokens assumed when estimating a decision's cost"
    )


class CatalogConfig(_Frozen):
    """Where prices come from."""

    bundled_prices: bool = True


class TimeoutConfig(_Frozen):
    """Per-provider timeouts, in seconds."""

    connect_s: float = Field(5.0, gt=0)
    first_byte_s: float = Field(60.0, gt=0, description="until the response (or first chunk) starts")
    total_s: float = Field(300.0, gt=0, description="the whole call, streaming included")


class AzureConfig(_Frozen):
    """Azure OpenAI: `api_version` (or "v1" for the /openai/v1 API), model -> deployment names,
    and the auth: an `api-key` from `api_key_env` (key), or Entra ID (entra): a static token
    from `api_key_env`, else refreshing tokens from azure-identity (the `azure` extra), with a
    client secret (`tenant_id`, `client_id`, `client_secret_env`) or DefaultAzureCredential."""

    api_version: str = "2024-10-21"
    deployments: dict[str, str] = Field(default_factory=dict)
    auth: Literal["key", "entra"] = "key"
    tenant_id: str | None = Field(None, description="entra with a client secret: the tenant")
    client_id: str | None = Field(None, description="entra with a client secret: the app")
    client_secret_env: str | None = Field(None, description="entra: env var holding the app's "
                                          "client secret (never the secret)")
    authority_host: str | None = Field(None, description="entra: the Entra authority (default "
                                       "login.microsoftonline.com; sovereign clouds differ)")

    @model_validator(mode="after")
    def _client_secret_names_its_app(self) -> AzureConfig:
        if self.client_secret_env and not (self.tenant_id and self.client_id):
            raise ValueError("`client_secret_env` needs `tenant_id` and `client_id`")
        return self


class ProviderConfig(_Frozen):
    """An upstream deployment: a wire protocol, a base URL and where its API key comes from."""

    type: Literal["openai", "anthropic", "replay", "bedrock", "azure", "gemini",
                  "vertex"] = "openai"
    base_url: str = Field("", description="required, but for bedrock (default: "
                                          "https://bedrock-runtime.{region}.amazonaws.com)")
    region: str | None = Field(None, description="bedrock: the AWS region requests are signed "
                                                  "for (default: from base_url, AWS_REGION, "
                                                  "AWS_DEFAULT_REGION or the profile)")
    profile: str | None = Field(None, description="bedrock: the AWS profile of the shared "
                                                   "config/credentials files (default: "
                                                   "AWS_PROFILE, else default)")
    api_key_env: str | None = Field(None, description="env var holding the key (never the key)")
    headers: dict[str, str] = Field(default_factory=dict)
    timeout: TimeoutConfig = TimeoutConfig()
    max_connections: int = Field(200, gt=0)
    cache_control: Literal["auto", "strip", "pass"] = Field(
        "auto", description="OpenAI-compatible upstreams: forward Anthropic-style `cache_control` "
                            "marks (pass), or remove them (strip); auto passes them to OpenRouter "
                            "only. Anthropic deployments always translate them.")
    azure: AzureConfig = Field(default_factory=AzureConfig,
                               description="`type: azure` only: api-version, deployment names, "
                                           "key or Entra token")

    @model_validator(mode="after")
    def _base_url_needed(self) -> ProviderConfig:
        if not self.base_url and self.type != "bedrock":
            raise ValueError("`base_url` is required (only bedrock has a default)")
        return self


class RetryConfig(_Frozen):
    """Retries of one model before falling back to the next."""

    max_attempts: int = Field(2, ge=1)
    backoff_base_s: float = Field(0.25, ge=0)
    backoff_max_s: float = Field(4.0, ge=0)
    jitter: float = Field(0.5, ge=0, le=1)
    max_retry_after_s: float = Field(10.0, ge=0)


class CooldownConfig(_Frozen):
    """When a deployment leaves rotation (circuit breaker) and for how long."""

    failures: int = Field(3, ge=1)
    cooldown_s: float = Field(30.0, ge=0)


class ResilienceConfig(_Frozen):
    """Fallbacks, retries and cooldowns of the call path."""

    deadline_s: float = Field(120.0, gt=0, description="total budget of one request, all attempts")
    retry: RetryConfig = RetryConfig()
    cooldown: CooldownConfig = CooldownConfig()
    content_policy_fallbacks: tuple[str, ...] = ()


class Allowance(_Frozen):
    """How much of one unit a window allows: exactly one of `usd`, `requests` or `tokens`."""

    window: Window = "day"
    usd: Decimal | None = Field(None, gt=0, description="spend in USD")
    requests: int | None = Field(None, gt=0)
    tokens: int | None = Field(None, gt=0, description="input + output tokens")
    hard: bool = Field(True, description="refuse (or downgrade) past it; soft limits only alert")
    on_exceed: Literal["reject", "downgrade"] = "reject"
    downgrade_to: str | None = Field(None, description="the policy served instead (downgrade)")
    alert_at: tuple[float, ...] = Field((0.5, 0.8, 1.0), description="shares of the limit that "
                                        "raise an alert when spend crosses them")

    @model_validator(mode="after")
    def _one_unit(self) -> Allowance:
        if sum(v is not None for v in (self.usd, self.requests, self.tokens)) != 1:
            raise ValueError("give exactly one of `usd`, `requests` or `tokens`")
        if self.on_exceed == "downgrade" and not self.downgrade_to:
            raise ValueError("`on_exceed: downgrade` needs `downgrade_to` (a policy name)")
        if any(not 0 < share <= 10 for share in self.alert_at):
            raise ValueError("`alert_at` shares must be in (0, 10]")
        return self

    @property
    def unit(self) -> Literal["usd", "requests", "tokens"]:
        """What the limit counts."""
        return "usd" if self.usd is not None else "requests" if self.requests is not None else "tokens"


class LimitConfig(Allowance):
    """A spend or rate limit: on what scope it counts (one counter per key, team, user, model or
    policy, or one for everything), optionally only for some of them (`match`, wildcards)."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:/\-]*$")
    scope: Scope = "global"
    match: tuple[str, ...] | None = Field(None, description="only these keys/teams/users/... "
                                          "(wildcards); default: each one of the scope")


class KeyConfig(_Frozen):
    """A gateway key: its SHA-256 (`sha256:<hex>`) or an env var holding it, and what it may use."""

    name: str
    hash: str | None = Field(None, pattern=r"^sha256:[0-9a-f]{64}$")
    key_env: str | None = None
    models: tuple[str, ...] | None = Field(None, description="allowed model patterns")
    policies: tuple[str, ...] | None = Field(None, description="allowed policies")
    team: str | None = Field(None, description="the team whose limits also apply to this key")
    limits: tuple[Allowance, ...] = Field((), description="this key's own spend and rate limits")
    role: Literal["admin", "app"] = Field(
        "app", description="admin: /metrics and every key's numbers; app: only its own")

    @model_validator(mode="after")
    def _one_secret(self) -> KeyConfig:
        if (self.hash is None) == (self.key_env is None):
            raise ValueError("give exactly one of `hash` (sha256:<hex>) or `key_env`")
        return self


class MetricsAccess(_Frozen):
    """Who may scrape /metrics: admin keys (the default), anyone (`public`), or anyone reaching a
    second listener on `port` (and `host`, default the server's), where the main port has none."""

    public: bool = False
    host: str | None = None
    port: int | None = Field(None, ge=0, le=65535)


class ServerConfig(_Frozen):
    """The HTTP server."""

    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    workers: int = Field(1, ge=1)
    max_body_bytes: int = Field(8 * 1024 * 1024, gt=0)
    # Input limits (issue 14): what a request may hold, and how long it may take to arrive.
    max_messages: int = Field(2048, gt=0, description="messages per chat request (400 over it)")
    max_header_bytes: int = Field(32 * 1024, ge=1024,
                                  description="request line + headers (431 over it)")
    header_timeout_s: float = Field(10.0, gt=0, description="for a request's headers to arrive "
                                    "(408 and closed after; an idle new connection is closed)")
    body_timeout_s: float = Field(60.0, gt=0,
                                  description="for its body to arrive after them (408 after)")
    graceful_shutdown_s: float = Field(30.0, ge=0)
    access_log: bool = Field(False, description="a log line per request (the ledger has them all)")
    forwarded_allow_ips: str | None = Field(
        None, description="trust X-Forwarded-* from these proxy IPs (comma-separated, or *)")
    allow_open: bool = Field(False, description="serve with no `keys:` on a non-loopback address")
    metrics: MetricsAccess = MetricsAccess()
    session_ttl_s: float = Field(3600.0, gt=0, description="a dashboard login's lifetime")
    session_secret_env: str = Field(
        "LLMROUTE_SESSION_SECRET", description="env var with the secret that signs dashboard "
        "sessions (share it across replicas; unset: a random one per process)")


def _forever(days: int | None) -> float:
    return float("inf") if days is None else float(days)


class RetentionConfig(_Frozen):
    """How long the ledger keeps each kind of data, in days (null: forever, the default: nothing
    is deleted unless configured; text_days null: text goes with its row). Reports read rollups
    for whole hours and days, so rollups must outlive the raw rows they summarise: text_days <=
    raw_days <= hour_rollup_days <= day_rollup_days."""

    raw_days: int | None = Field(None, gt=0, description="raw rows (one per request)")
    text_days: int | None = Field(None, gt=0, description="prompt and response text of raw rows")
    hour_rollup_days: int | None = Field(None, gt=0, description="hour rollups")
    day_rollup_days: int | None = Field(None, gt=0, description="day rollups")
    interval_s: float = Field(3600.0, gt=0, description="how often the gateway prunes")

    @model_validator(mode="after")
    def _ordered(self) -> RetentionConfig:
        clocks = (("text_days", self.text_days or self.raw_days), ("raw_days", self.raw_days),
                  ("hour_rollup_days", self.hour_rollup_days),
                  ("day_rollup_days", self.day_rollup_days))
        for (short, short_days), (long, long_days) in itertools.pairwise(clocks):
            if _forever(short_days) > _forever(long_days):
                kept = "forever" if short_days is None else f"{short_days} days"
                raise ValueError(
                    f"{short} ({kept}) must not exceed {long} ({long_days} days): "
                    + ("text is kept on raw rows, so it cannot outlive them" if short == "text_days"
                       else "reports read rollups, so they must outlive what they summarise"))
        return self

    @property
    def configured(self) -> bool:
        """True when anything is ever deleted."""
        return any(days is not None for days in (self.raw_days, self.text_days,
                                                  self.hour_rollup_days, self.day_rollup_days))


class WalConfig(_Frozen):
    """The ledger's write-ahead log (docs/ledger.md): each entry is appended to a local log before
    its answer completes, so a crash of the process loses none; `fsync` says whether a crash of
    the machine may lose the last `fsync_interval_ms` (interval), nothing (always: each answer
    waits for an fsync, shared by the requests of that moment) or what the kernel had not yet
    written back (never)."""

    enabled: bool = True
    fsync: Literal["never", "interval", "always"] = "interval"
    fsync_interval_ms: int = Field(1000, ge=1, le=60_000)


class LedgerConfig(_Frozen):
    """The request ledger: where entries go and how they are written."""

    enabled: bool = True
    url: str = Field("sqlite:///llmroute-ledger.db",
                     description="sqlite:///path.db, sqlite:///:memory: or postgresql://…")
    spool_path: str = "llmroute-ledger.spool.jsonl"
    batch_size: int = Field(256, ge=1)
    flush_interval_s: float = Field(0.5, ge=0)
    max_queue: int = Field(10_000, ge=1)
    close_timeout_s: float = Field(10.0, ge=0)
    store_text: bool = Field(False, description="keep prompt and response text")
    redact: str | None = Field(None, description="`module:function` applied to stored text")
    retention: RetentionConfig = RetentionConfig()
    reads: Literal["process", "inline"] = Field(
        "process", description="where the dashboard's windows and the alert evaluator's ledger "
                               "reads run: a child process at the lowest CPU priority, so they never "
                               "hold up requests (an in-memory ledger is always read inline), or "
                               "inline in the gateway's process")
    writes: Literal["inline", "process"] = Field(
        "inline", description="where the writer's batches are written to the store: inline (this "
                              "process: the store's thread and the writer's task, sharing the GIL "
                              "with requests) or process (a child process of its own; a prototype, "
                              "issue 17; an in-memory ledger always writes inline)")
    wal: WalConfig = WalConfig()


class StateConfig(_Frozen):
    """Where the state replicas share lives (budget spend, rate windows, cooldowns, experiment
    assignment, alert dedup): `memory://` (this process only) or `redis://host:port/db`."""

    url: str = Field("memory://", pattern=r"^(memory://|rediss?://).*")
    prefix: str = "llmroute:"
    timeout_s: float = Field(0.5, gt=0, description="per Redis call; past it the state is down")
    budgets_when_down: Literal["closed", "open"] = Field(
        "closed", description="hard spend limits while the state is unreachable: refuse (closed) "
                              "or serve uncounted (open); routing state always fails open")


class ControlConfig(_Frozen):
    """Settings of the control plane as a whole."""

    timezone: str = Field("UTC", description="calendar windows (day, week, month) start at "
                                             "midnight in this time zone")
    user_header: str = Field("x-llmroute-user", description="end-user id when the body has no `user`")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (use an IANA name, e.g. Europe/Paris)") from None
        return value


class LearningConfig(_Frozen):
    """Learning online (issue 13): feedback updates the classifier's model profiles as it arrives,
    and a small share of requests may explore. Off by default; `online` needs the ledger (feedback
    and each request's prompt latent live there)."""

    online: bool = Field(False, description="update the classifier from feedback as it arrives")
    explore: float = Field(0.0, ge=0.0, le=0.05,
                           description="share of routed requests sent to the Thompson choice "
                                       "(at most 0.05; 0 = never)")
    rater_cap: float = Field(10.0, gt=0, description="most feedback weight one rater (user, else "
                                                     "key) may carry per model")
    prior_scale: float = Field(1.0, gt=0, description="scale of the prior covariance: how far a "
                                                      "model's profile may move")
    reload_s: float = Field(2.0, gt=0, le=3600, description="how often a replica applies new "
                                                            "feedback (the learner) or reloads "
                                                            "the learner's state (the others)")
    forget: float = Field(0.0, ge=0.0, le=0.1,
                          description="per feedback, every model's covariance relaxes this much "
                                      "towards the prior (0 = never forget)")
    seed: int | None = Field(None, description="seed of the exploration draws (tests)")


class Settings(_Frozen):
    """Everything llmroute is configured with. Built once, passed down, never global."""

    models: dict[str, ModelConfig] = Field(default_factory=dict)
    #: Names clients send -> auto, auto/<policy>, a model or a tier (exact names or globs;
    #: llmroute.aliases).
    model_aliases: dict[str, str] = Field(default_factory=dict)
    tiers: dict[str, TierConfig]
    rules: tuple[RuleConfig, ...] = ()
    policies: dict[str, PolicySpec]
    routing: RoutingConfig = RoutingConfig()
    catalog: CatalogConfig = CatalogConfig()
    providers: dict[str, ProviderConfig] = Field(default_factory=dict)
    resilience: ResilienceConfig = ResilienceConfig()
    server: ServerConfig = ServerConfig()
    keys: tuple[KeyConfig, ...] = ()
    ledger: LedgerConfig = LedgerConfig()
    state: StateConfig = StateConfig()
    control: ControlConfig = ControlConfig()
    limits: tuple[LimitConfig, ...] = ()
    experiments: tuple[ExperimentConfig, ...] = ()
    alerts: AlertsConfig = AlertsConfig()
    learning: LearningConfig = LearningConfig()
    cache: CacheConfig = CacheConfig()
    embeddings: EmbeddingsConfig = EmbeddingsConfig()
    telemetry: TelemetryConfig = TelemetryConfig()

    @field_validator("tiers")
    @classmethod
    def _at_least_one_tier(cls, value: dict[str, TierConfig]) -> dict[str, TierConfig]:
        if not value:
            raise ValueError("at least one tier is required")
        return value

    @property
    def tier_names(self) -> tuple[str, ...]:
        """The ladder, cheapest tier first."""
        return tuple(self.tiers)

    def tier_models(self, tier: str) -> tuple[str, ...]:
        """A tier's primary model, then its fallbacks."""
        table = self.tiers[tier]
        return (table.model, *table.fallbacks)
