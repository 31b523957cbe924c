"""What an alert is (`Alert`) and the rules that raise them, as pure functions over data gathered
elsewhere (limit usage, ledger tallies, hourly spend, cooldowns): no I/O, no clock, so each rule is
tested on crafted numbers. `AlertEvaluator` (in `alert_evaluator`) gathers the data, dedups,
delivers and records.

Every alert carries a dedup key naming its rule, subject and window; the evaluator claims it in the
shared state for `dedup_ttl_s`, so each is raised once per window however many replicas evaluate.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from fnmatch import fnmatchcase

from ..settings import Settings
from .alert_tallies import (
    EVERYTHING,
    FeedbackTally,
    Tally,
)
from .alerts_config import (
    CooldownRule,
    ErrorRateRule,
    FallbackRateRule,
    LimitRule,
    QualityRule,
    Severity,
    SpendAnomalyRule,
)
from .limits import LimitUsage, Subject, limits_of
from .state import NANO_USD


@dataclass(frozen=True)
class Alert:
    """One alert: which rule raised it about what, how bad, in words and as data (JSON-ready)."""

    rule: str
    kind: str
    severity: Severity
    subject: str
    message: str
    data: Mapping[str, object]
    ts: datetime
    dedup_key: str
    dedup_ttl_s: float = 3600.0
    id: str = field(default_factory=lambda: uuid.uuid4().hex)

    def to_dict(self) -> dict[str, object]:
        """The generic webhook body and the history's JSON view."""
        return {"id": self.id, "rule": self.rule, "kind": self.kind, "severity": self.severity,
                "subject": self.subject, "message": self.message, "data": dict(self.data),
                "ts": self.ts.isoformat(), "dedup_key": self.dedup_key}


def window_key(rule: str, subject: str, now: datetime, window_s: float) -> str:
    """The dedup key of `rule` about `subject` in the `window_s`-long window holding `now`."""
    return f"alert:{rule}:{subject}:{int(now.timestamp() // window_s)}"


# -- rules --------------------------------------------------------------------------------------
def _about(subject: str) -> str:
    return "all traffic" if subject == EVERYTHING else subject.replace(":", " ", 1)


def _duration(seconds: float) -> str:
    if seconds % 3600 == 0:
        return f"{seconds / 3600:g} h"
    return f"{seconds / 60:g} min" if seconds % 60 == 0 else f"{seconds:g} s"


def rate_alerts(rule: ErrorRateRule | FallbackRateRule, tallies: Mapping[str, Tally],
                now: datetime) -> list[Alert]:
    """Error (or fallback) share of each subject's requests over the rule's window above its
    threshold, with at least `min_requests` requests (fallbacks: requests that reached a model)."""
    error = isinstance(rule, ErrorRateRule)
    what = "error rate" if error else "fallback rate"
    out = []
    for subject, t in sorted(tallies.items()):
        hits, total = (t.errors, t.requests) if error else (t.fallbacks, t.upstream)
        if total < rule.min_requests or hits / total <= rule.threshold:
            continue
        share = hits / total
        message = (f"{what} {share:.0%} over the last {_duration(rule.window_s)} for "
                   f"{_about(subject)} ({hits} of {total} requests; threshold {rule.threshold:.0%})")
        data = {"share": round(share, 6), "count": hits, "requests": total,
                "threshold": rule.threshold, "window_s": rule.window_s}
        out.append(Alert(rule.name, rule.kind, rule.severity, subject, message, data, now,
                         window_key(rule.name, subject, now, rule.window_s), rule.window_s))
    return out


def quality_alerts(rule: QualityRule, tallies: Mapping[str, Tally | FeedbackTally],
                   now: datetime) -> list[Alert]:
    """Each policy (tallied by policy) whose mean rating or success rate over the window is below
    the threshold, with at least `min_samples` requests carrying that feedback."""
    out = []
    for subject, t in sorted(tallies.items()):
        policy = subject.removeprefix("policy:")
        if policy == "-" or (rule.policy is not None and not fnmatchcase(policy, rule.policy)):
            continue
        n, total = (t.rated, t.rating_sum) if rule.metric == "rating" else (t.judged, t.successes)
        if n < rule.min_samples or total / n >= rule.threshold:
            continue
        value = total / n
        shown = (f"mean rating {value:.2f}" if rule.metric == "rating"
                 else f"task success rate {value:.0%}")
        message = (f"policy {policy!r}: {shown} over the last {_duration(rule.window_s)} "
                   f"({n} requests with feedback) is below {rule.threshold:g}")
        data = {"policy": policy, "metric": rule.metric, "value": round(value, 6), "samples": n,
                "threshold": rule.threshold, "window_s": rule.window_s}
        out.append(Alert(rule.name, rule.kind, rule.severity, subject, message, data, now,
                         window_key(rule.name, subject, now, rule.window_s), rule.window_s))
    return out


def trailing_average(past: Sequence[Decimal | None]) -> Decimal | None:
    """The mean over the past hours that had traffic (None entries had none); None if none did."""
    seen = [value for value in past if value is not None]
    return sum(seen, Decimal(0)) / len(seen) if seen else None


def spend_anomaly_alerts(rule: SpendAnomalyRule, last: Mapping[str, Decimal],
                         past: Sequence[Mapping[str, Decimal]], now: datetime) -> list[Alert]:
    """Subjects whose spend over the last hour (`last`) is at least `min_usd` and above `factor`
    times their average over the same hour of the previous days (`past`, one mapping per day; a
    subject missing from a day had no traffic that hour, and that day is left out of its average)."""
    out = []
    for subject, spent in sorted(last.items()):
        baseline = trailing_average([day.get(subject) for day in past])
        if spent < rule.min_usd or baseline is None or spent <= baseline * Decimal(str(rule.factor)):
            continue
        ratio = spent / baseline if baseline else None
        times = f"{ratio:.1f}× the" if ratio is not None else "above the"
        days = sum(1 for day in past if subject in day)
        message = (f"spend over the last hour ${spent:.2f} for {_about(subject)} is {times} "
                   f"same hour's average over the previous {days} day(s) (${baseline:.2f}); "
                   f"threshold {rule.factor:g}×")
        data = {"last_hour_usd": str(spent), "baseline_usd": str(baseline), "days": days,
                "ratio": None if ratio is None else float(round(ratio, 4)), "factor": rule.factor}
        out.append(Alert(rule.name, rule.kind, rule.severity, subject, message, data, now,
                         window_key(rule.name, subject, now, 3600.0), 3600.0))
    return out


def cooldown_alerts(rule: CooldownRule, cooldowns: Mapping[str, float], now: datetime) -> list[Alert]:
    """Each deployment in cooldown (model -> seconds left) that the rule watches."""
    out = []
    for model, left in sorted(cooldowns.items()):
        if rule.models is not None and not any(fnmatchcase(model, p) for p in rule.models):
            continue
        subject = f"model:{model}"
        message = f"deployment {model!r} is in cooldown (out of rotation for {left:.0f} s more)"
        data = {"model": model, "seconds_left": round(left, 3),
                "until": (now + timedelta(seconds=left)).isoformat()}
        out.append(Alert(rule.name, rule.kind, rule.severity, subject, message, data, now,
                         window_key(rule.name, subject, now, rule.window_s), rule.window_s))
    return out


def _limit_amounts(usage: LimitUsage) -> str:
    """`$8.59 of $10.00` or `2 of 5 requests`."""
    unit = usage.limit.allowance.unit
    if unit == "usd":
        return f"${Decimal(usage.used) / NANO_USD:.2f} of ${Decimal(usage.limit.cap) / NANO_USD:.2f}"
    return f"{usage.used} of {usage.limit.cap} {unit}"


def limit_alerts(rule: LimitRule, usages: Iterable[LimitUsage], now: datetime) -> list[Alert]:
    """For each limit's subject, the highest `alert_at` share its use has crossed in the current
    window (critical from 100%); the dedup key names the share, so each share fires once."""
    out = []
    for usage in usages:
        limit, a = usage.limit, usage.limit.allowance
        if rule.limits is not None and not any(fnmatchcase(limit.name, p) for p in rule.limits):
            continue
        crossed = [share for share in a.alert_at if limit.cap and usage.used >= share * limit.cap]
        if not crossed:
            continue
        share = max(crossed)
        subject = limit.name if usage.subject == EVERYTHING else f"{limit.name}:{usage.subject}"
        who = "" if usage.subject == EVERYTHING else f" ({limit.scope} {usage.subject})"
        effect = (" — requests are refused or downgraded" if a.hard else "") if share >= 1 else ""
        message = (f"limit {limit.name!r}{who} at {share:.0%}: {_limit_amounts(usage)} used this "
                   f"{a.window}{effect}")
        data = {**usage.to_dict(), "share": share, "fraction_used": round(usage.used / limit.cap, 6)}
        key = f"alert:{rule.name}:{subject}:{usage.resets_at.timestamp():.0f}:{share:g}"
        ttl = max(60.0, (usage.resets_at - now).total_seconds() + 60.0)
        severity: Severity = "critical" if share >= 1 else rule.severity
        out.append(Alert(rule.name, rule.kind, severity, subject, message, data, now, key, ttl))
    return out


# -- which limit subjects exist -----------------------------------------------------------------
def limit_subjects(settings: Settings) -> tuple[Subject, ...]:
    """Every subject whose limit use can be enumerated: everything (global limits), each configured
    key and team, each configured model and policy, and every `match` entry without wildcards."""
    found: set[tuple[str, str]] = set()
    for key in settings.keys:
        found.add(("key", key.name))
        if key.team:
            found.add(("team", key.team))
    found.update(("policy", name) for name in settings.policies)
    found.update(("model", name) for name in settings.models)
    for tier in settings.tier_names:
        found.update(("model", name) for name in settings.tier_models(tier))
    for limit in limits_of(settings):
        found.update((limit.scope, m) for m in limit.match or () if not any(c in m for c in "*?["))
    subjects = [Subject()]
    subjects += [Subject(**{scope: value}) for scope, value in sorted(found) if scope != "global"]
    return tuple(subjects)
