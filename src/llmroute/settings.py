"""The one typed, frozen Settings object (config_text.py turns YAML text plus env overrides into
the mapping it is validated from).

Semantic checks that need the catalog or the router registry (unknown models, unknown tiers, router
parameters) live in `config.py`, which is what applications call to load a configuration.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

from .cache.config import CacheConfig
from .control.alerts_config import AlertsConfig
from .control.experiments import ExperimentConfig
from .embeddings_config import EmbeddingsConfig
from .settings_base import Frozen as _Frozen
from .settings_ledger import LedgerConfig as LedgerConfig
from .settings_ledger import RetentionConfig as RetentionConfig
from .settings_ledger import WalConfig as WalConfig
from .settings_upstream import AzureConfig as AzureConfig
from .settings_upstream import CooldownConfig as CooldownConfig
from .settings_upstream import ProviderConfig as ProviderConfig
from .settings_upstream import ResilienceConfig as ResilienceConfig
from .settings_upstream import RetryConfig as RetryConfig
from .settings_upstream import TimeoutConfig as TimeoutConfig
from .telemetry.config import TelemetryConfig

Capability = Literal["tools", "vision", "json"]
Window = Literal["minute", "hour", "day", "week", "month"]
Scope = Literal["global", "key", "team", "user", "model", "policy"]


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


#: Who counts as one rater for learning online's budgets (`learning.raters`).
Raters = Literal["user", "key"]


class LearningConfig(_Frozen):
    """Learning online (issue 13): feedback updates the classifier's model profiles as it arrives,
    and a small share of requests may explore. Off by default; `online` needs the ledger (feedback
    and each request's prompt latent live there)."""

    online: bool = Field(False, description="update the classifier from feedback as it arrives")
    explore: float = Field(0.0, ge=0.0, le=0.05,
                           description="share of routed requests sent to the Thompson choice "
                                       "(at most 0.05; 0 = never)")
    explore_strategy: Literal["challenger", "thompson"] = Field(
        "challenger", description="how an explored request chooses: `challenger` draws among the "
                                  "candidates other than the posterior mean's choice (top-two "
                                  "Thompson), `thompson` among all of them")
    explore_pending: int = Field(0, ge=0, le=1000, description="most explorations of one model "
                                 "in flight (made, feedback not yet learnt) before exploring "
                                 "leaves it out until a feedback on it arrives or one times out "
                                 "(0 = no cap)")
    explore_pending_s: float = Field(30.0, gt=0, le=86400, description="how long an exploration "
                                     "counts as in flight without feedback (most are never rated)")
    explore_gap: float = Field(1.0, gt=0, le=1, description="an explored request never goes to a "
                               "model whose P(good) at the prompt is more than this below the "
                               "posterior mean's choice (1 = no bound)")
    explore_beat: float = Field(0.1, ge=0, lt=1, description="an explored request only goes to a "
                                "model whose posterior probability of beating the mean's choice at "
                                "the prompt is at least this; when none is, the request is routed "
                                "by the means and not marked explored (0 = no bound; default 0.1: "
                                "measured to keep 5% exploration's cost under a point over HTTP)")
    explore_regret: float = Field(0.0, ge=0, le=1, description="conservative exploration: the "
                                  "most expected P(good) exploring may give up per routed request, "
                                  "cumulatively (a challenger the running allowance cannot pay for "
                                  "is not explored; 0 = no budget)")
    explore_at: Literal["prompt", "traffic"] = Field(
        "prompt", description="where an explored request's challenger is drawn and bounded: at the "
                              "request's own prompt, or at the pool's typical prompt (a running "
                              "mean of its traffic's latents), so each model is explored on a "
                              "random sample of the traffic")
    explore_decay: float = Field(0.0, ge=0, description="exploration fades with learnt feedback: "
                                 "the share times decay / (decay + learnt feedbacks) (0 = never)")
    raters: Raters = Field(
        "user", description="who counts as one rater for the budgets below: `user` (the request's "
        "`user`, else its gateway key's name) or `key` (the key's name, whatever `user` it sends: "
        "a key cannot mint raters by naming new users)")
    rater_cap: float = Field(10.0, gt=0, description="most feedback weight one rater may carry "
                                                     "per model")
    rater_floor: float = Field(0.25, gt=0, le=1000, description="feedback weight one rater may "
                               "give a model before anyone else has rated it")
    rater_share: float = Field(0.1, ge=0, le=1, description="share of the other raters' weight on "
                               "a model that one rater may add to its floor (so one rater stays a "
                               "minority voice however much it sends)")
    trusted_raters: tuple[Annotated[str, StringConstraints(min_length=1, max_length=256)], ...] = Field(
        (), max_length=1000, description="raters (users or key names) whose feedback is not "
        "capped, e.g. the one key of an application that sends no `user`")
    optimism: float = Field(0.0, ge=0, le=3, description="the greedy choice is made on each "
                            "model's P(good) at its logit's mean plus this many times the excess "
                            "of its own posterior sd over the best-known candidate's: a model "
                            "with fewer feedbacks whose mean is close is tried again (0 = the "
                            "means; on day one nobody gets a bonus)")
    prior_scale: float = Field(1.0, gt=0, description="scale of the prior covariance: how far a "
                                                      "model's profile may move")
    ability_var: float = Field(0.0, ge=0, le=1, description="prior variance added to each "
                               "ability coordinate, so a model fed back only on the prompts it is "
                               "routed to learns it is worse *there*, not everywhere (0 = the "
                               "spread between models alone)")
    shared: float | None = Field(None, ge=0, lt=1, description="share of the prior covariance on a "
                                 "term every model of a pool shares, so what the prompts a model "
                                 "is routed have in common (hard, easy) is not taken for that "
                                 "model's own level (0 = none; unset: 0.25 when exploring, else 0)")
    shared_ability: float = Field(0.0, ge=0, le=10, description="prior variance of a term every "
                                  "model of a pool shares on the prompts' latent directions, in "
                                  "units of the pool's mean ability second moment: what makes a "
                                  "prompt hard for all models is learnt from every model's "
                                  "feedback, so a model fed only hard prompts is not taken for a "
                                  "weak one (0 = none)")
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
