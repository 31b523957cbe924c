"""A/B experiments as configured: arms (routing policies with traffic weights), sticky assignment of
a unit (a key, user or session id) to an arm by a stable hash, the kill switch and the end date, and
the `experiment:arm` label the ledger keeps in `experiment_arm`.

Assignment hashes `"{experiment}:{unit}"` with SHA-256 and maps its first 8 bytes, read as a
fraction of 2**64, onto the cumulative weights of the served (non-shadow) arms in their configured
order. The same unit gets the same arm in every process and after every restart, as long as the arms,
their order and their weights stay the same (changing a weight moves only the units near the
boundaries it shifts). Shadow arms are never assigned.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Collection, Mapping
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..errors import ConfigProblem

#: Experiment and arm names: no ':' (the ledger label joins them with one).
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$"
_HASH_SPAN = 2**64


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ArmConfig(_Frozen):
    """One arm: the routing policy it serves and its share of the traffic (relative weight)."""

    policy: str
    weight: float = Field(1.0, gt=0, description="relative share of the experiment's traffic")
    shadow: bool = Field(False, description="evaluated alongside, never assigned traffic")


class GuardrailConfig(_Frozen):
    """When an arm is stopped: its error rate, success rate or mean rating is significantly worse
    than the control's (the always-valid interval of the difference excludes 0 at `alpha`)."""

    enabled: bool = True
    min_requests: int = Field(100, ge=1, description="fewest observations of a metric per arm "
                                                     "before it can stop the arm")
    alpha: float = Field(0.01, gt=0, lt=0.5)


class ExperimentConfig(_Frozen):
    """One experiment: its arms, which arm the others are compared to, how units stick to arms,
    the kill switch (`enabled`), the end date and the analysis settings."""

    name: str = Field(pattern=NAME_PATTERN)
    arms: dict[str, ArmConfig]
    control: str = Field(description="the arm every other arm is compared to")
    sticky_by: Literal["key", "user", "session"] = "user"
    enabled: bool = Field(True, description="kill switch: false sends all traffic back to normal")
    ends: datetime | None = Field(None, description="no assignment from this time on (UTC)")
    alpha: float = Field(0.05, gt=0, lt=0.5, description="error rate of the verdicts")
    horizon: int = Field(1000, ge=1, description="observations (two arms together) at which the "
                                                 "intervals are tuned to be tightest")
    min_samples: int = Field(30, ge=2, description="fewest observations of a metric per arm "
                                                   "before a verdict is given")
    non_inferiority_margin: float = Field(0.02, ge=0, lt=1, description="how much lower a success "
                                          "rate may be and still count as no worse (absolute)")
    rating_margin: float = Field(0.1, ge=0, description="the same for the mean rating (points)")
    cost_margin: float = Field(0.05, ge=0, description="cost per request differences smaller than "
                                                       "this share of the control's count as none")
    guardrails: GuardrailConfig = GuardrailConfig()

    @field_validator("arms")
    @classmethod
    def _arm_names(cls, arms: dict[str, ArmConfig]) -> dict[str, ArmConfig]:
        if len(arms) < 2:
            raise ValueError("an experiment needs at least two arms")
        bad = [name for name in arms if not _is_name(name)]
        if bad:
            raise ValueError(f"arm names must match {NAME_PATTERN} (no ':'), got {bad}")
        return arms

    @field_validator("ends")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    @model_validator(mode="after")
    def _control_is_served(self) -> ExperimentConfig:
        if self.control not in self.arms:
            raise ValueError(f"control {self.control!r} is not one of the arms {sorted(self.arms)}")
        if self.arms[self.control].shadow:
            raise ValueError(f"control {self.control!r} must not be a shadow arm")
        return self

    @property
    def served_arms(self) -> tuple[str, ...]:
        """The arms that receive traffic, in configured order."""
        return tuple(name for name, arm in self.arms.items() if not arm.shadow)

    def share(self, arm: str) -> float:
        """The fraction of the experiment's traffic `arm` is assigned (0 for shadow arms)."""
        served = self.served_arms
        if arm not in served:
            return 0.0
        return self.arms[arm].weight / sum(self.arms[a].weight for a in served)


def _is_name(text: str) -> bool:
    return re.fullmatch(NAME_PATTERN, text) is not None


def unit_fraction(experiment: str, unit_id: str) -> float:
    """Where a unit falls in [0, 1) for an experiment: SHA-256 of "{experiment}:{unit_id}", first
    8 bytes big-endian over 2**64. Independent across experiments."""
    digest = hashlib.sha256(f"{experiment}:{unit_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / _HASH_SPAN


def assign(experiment: ExperimentConfig, unit_id: str) -> str:
    """The arm a unit (key, user or session id) is assigned: stable across processes."""
    served = experiment.served_arms
    point = unit_fraction(experiment.name, unit_id) * sum(experiment.arms[a].weight for a in served)
    edge = 0.0
    for name in served:
        edge += experiment.arms[name].weight
        if point < edge:
            return name
    return served[-1]  # float rounding at the very top of the range


def is_active(experiment: ExperimentConfig, now: datetime) -> bool:
    """Whether the experiment assigns traffic at `now`: not killed and not past its end."""
    return experiment.enabled and (experiment.ends is None or now < experiment.ends)


def arm_label(experiment: str, arm: str) -> str:
    """The ledger's `experiment_arm` value: "{experiment}:{arm}"."""
    return f"{experiment}:{arm}"


def parse_arm_label(label: str | None) -> tuple[str, str] | None:
    """(experiment, arm) from a ledger `experiment_arm` value; None when empty or malformed."""
    if not label or ":" not in label:
        return None
    experiment, _, arm = label.partition(":")
    return (experiment, arm) if experiment and arm else None


def validate(experiment: ExperimentConfig, policies: Collection[str],
             path: str = "experiments") -> list[ConfigProblem]:
    """Problems the schema cannot see: arms naming a policy that is not configured."""
    known = ", ".join(sorted(policies)) or "none"
    return [ConfigProblem(f"{path}.{experiment.name}.arms.{name}.policy",
                          f"unknown policy {arm.policy!r}", f"configured policies: {known}")
            for name, arm in experiment.arms.items() if arm.policy not in policies]


def experiments_of(settings: object) -> dict[str, ExperimentConfig]:
    """The experiments configured in `settings.experiments`, by name: a mapping of name to config
    (or to its fields) or a list of configs; nothing when the settings have no such section.
    Raises ValueError when an entry is not a valid experiment."""
    section = getattr(settings, "experiments", None)
    if not section:
        return {}
    items = list(section.items()) if isinstance(section, Mapping) else [(None, v) for v in section]
    found: dict[str, ExperimentConfig] = {}
    for key, value in items:
        experiment = _as_experiment(key, value)
        found[experiment.name] = experiment
    return found


def _as_experiment(key: object, value: object) -> ExperimentConfig:
    if isinstance(value, ExperimentConfig):
        return value
    data = value.model_dump() if isinstance(value, BaseModel) else value
    if not isinstance(data, Mapping):
        raise ValueError(f"experiment {key!r}: expected a mapping, got {type(data).__name__}")
    fields = dict(data)
    if key is not None:
        fields.setdefault("name", key)
    try:
        return ExperimentConfig.model_validate(fields)
    except ValidationError as exc:
        raise ValueError(f"experiment {key or fields.get('name')!r} is invalid: {exc}") from exc
