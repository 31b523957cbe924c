"""The demo's summary, read back from the ledger it wrote: cost vs always-gpt-4, savings, quality kept
(recorded outcomes of the routed answers vs gpt-4's on the same prompts) and the model mix."""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from rich.console import Console
from rich.table import Table

from ..providers.replay import ReplayBook
from ..reports.plane import LabFrontier, PlanePoint
from ..reports.tables import Layout, fit
from .config import BASELINE
from .traffic import Sent


@dataclass(frozen=True)
class Summary:
    """What the demo's traffic cost and kept, against always sending it to the baseline."""

    requests: int
    errors: int
    cost_usd: Decimal
    baseline_cost_usd: Decimal
    quality: float
    baseline_quality: float
    recorded_cost_usd: float
    recorded_baseline_cost_usd: float
    model_mix: dict[str, int] = field(default_factory=dict)
    #: Why requests failed: error kind (`traffic.error_kind`) → count; "not in the ledger" for
    #: answered requests whose entry is missing.
    failures: dict[str, int] = field(default_factory=dict)

    @property
    def savings_pct(self) -> float:
        """Share of the baseline's cost saved, in percent."""
        if not self.baseline_cost_usd:
            return 0.0
        return float(1 - self.cost_usd / self.baseline_cost_usd) * 100

    @property
    def quality_kept_pct(self) -> float:
        """Routed quality as a percentage of the baseline's."""
        return self.quality / self.baseline_quality * 100 if self.baseline_quality else 0.0


def ledger_rows(db: Path) -> list[tuple[str, str | None, str | None, str | None, str]]:
    """(request_id, model, cost_usd, baseline_cost_usd, status) of every ledger entry."""
    with sqlite3.connect(db) as conn:
        return list(conn.execute("SELECT request_id, model, cost_usd, baseline_cost_usd, status "
                                 "FROM llmroute_requests"))


def summarize(db: Path, sent: Sequence[Sent], book: ReplayBook) -> Summary:
    """The summary of the ledger at `db` for the requests `sent`."""
    ours = {s.request_id: s for s in sent if s.request_id}
    rows = [r for r in ledger_rows(db) if r[0] in ours and r[4] == "ok"]
    failures = Counter(s.error_kind or "other" for s in sent if s.error is not None)
    if (missing := len(sent) - len(rows) - sum(failures.values())) > 0:
        failures["answered, not in the ledger"] = missing
    answered = [ours[r[0]] for r in rows]
    baseline = [book.find(s.prompt, BASELINE) for s in answered]
    outcomes = [s.outcome or 0.0 for s in answered]
    base_outcomes = [b.outcome or 0.0 for b in baseline if b is not None]
    return Summary(
        requests=len(rows), errors=len(sent) - len(rows),
        cost_usd=sum((Decimal(r[2]) for r in rows if r[2]), Decimal(0)),
        baseline_cost_usd=sum((Decimal(r[3]) for r in rows if r[3]), Decimal(0)),
        quality=sum(outcomes) / len(outcomes) if outcomes else 0.0,
        baseline_quality=sum(base_outcomes) / len(base_outcomes) if base_outcomes else 0.0,
        recorded_cost_usd=sum(s.recorded_cost_usd or 0.0 for s in answered),
        recorded_baseline_cost_usd=sum(b.cost_usd or 0.0 for b in baseline if b is not None),
        model_mix=dict(Counter(str(r[1]) for r in rows).most_common()),
        failures=dict(failures.most_common()))


#: The costs the demo prints, told apart.
COSTS_NOTE = ("ledger: the gateway's own price (tokens × the demo catalog's per-token prices, "
              "fitted to RouterBench); recorded: what RouterBench measured for the same answers.")


def failures_text(failures: dict[str, int]) -> str:
    """`6 × HTTP 502 all_upstreams_failed (attempts: not_found; no recorded answer: …)`, one
    per kind (`traffic.error_kind`)."""
    return "; ".join(f"{count} × {kind}" for kind, count in failures.items())


#: The demo's tables of facts: a label (folds when narrow) and its value (wraps at words; numbers
#: stay whole), laid out by the shared `fit` so that they fit the terminal like every table.
FACTS = Layout(("fact", "value"), wrap=("value",), left=("value",))
#: The model mix: a model's name folds when narrow, the counts and shares stay whole.
MIX = Layout(("model", "requests", "share"))


def facts(title: str, rows: Sequence[tuple[str, str]], width: int | None) -> Table:
    """`rows` (label, value) as a headerless table within `width` terminal columns."""
    table = fit(FACTS, title, [{"fact": k, "value": v} for k, v in rows], False, width)
    table.show_header = False
    return table


def headline(summary: Summary) -> list[tuple[str, str]]:
    """The headline's rows: requests, why they failed, the costs, savings and quality kept."""
    rows = [("requests", f"{summary.requests} ok, {summary.errors} failed")]
    if summary.failures:
        rows.append(("why they failed", failures_text(summary.failures) + ". The demo's "
                     "upstream replays recorded answers: it injects no failures on purpose."))
    return [*rows,
            ("cost (ledger)", f"${summary.cost_usd:.6f}"),
            (f"always {BASELINE} (ledger)", f"${summary.baseline_cost_usd:.6f}"),
            ("savings", f"{summary.savings_pct:.1f}%"),
            ("recorded cost (routed / always-baseline)",
             f"${summary.recorded_cost_usd:.6f} / ${summary.recorded_baseline_cost_usd:.6f}"),
            ("quality (routed / always-baseline)",
             f"{summary.quality:.3f} / {summary.baseline_quality:.3f}"),
            ("quality kept", f"{summary.quality_kept_pct:.1f}%")]


def render(summary: Summary, console: Console) -> None:
    """Print the summary: a headline table (the two costs told apart under it), then the model
    mix, each within the console's width."""
    console.print(facts("llmroute demo: routed vs always-" + BASELINE, headline(summary),
                        console.width))
    console.print(COSTS_NOTE)
    share = 100 / max(1, summary.requests)
    rows = [{"model": model, "requests": str(count), "share": f"{count * share:.1f}%"}
            for model, count in summary.model_mix.items()]
    console.print(fit(MIX, "model mix", rows, False, console.width))


def routed_point(summary: Summary, policy: str) -> PlanePoint:
    """The demo's routed traffic as a point: recorded USD per answered request (the lab's cost
    scale) and the mean recorded outcome, which is the feedback it posted."""
    n = max(1, summary.requests)
    return PlanePoint(f"{policy} (ledger)", "ledger-routed", summary.recorded_cost_usd / n,
                      summary.quality, summary.requests,
                      "the demo's requests: recorded cost of the answering model, feedback quality",
                      (summary.recorded_baseline_cost_usd / n, summary.baseline_quality))


#: The operating point's table: what each point is (folds at words when narrow), its quality and
#: cost as shares of always-baseline's (numbers, whole).
POINTS = Layout(("point", "quality", "cost"))


def _point(label: str, quality: float | None, cost: float | None) -> dict[str, str]:
    return {"point": label, "quality": "—" if quality is None else f"{quality:.1%}",
            "cost": "—" if cost is None else f"{cost:.1%}"}


def _relative(label: str, point: PlanePoint) -> dict[str, str]:
    shares = point.relative()
    return _point(label, *((shares[1], shares[0]) if shares else (None, None)))


def plane_rows(summary: Summary, frontier: LabFrontier, policy: str) -> list[dict[str, str]]:
    """The operating point's rows: this run against always-baseline on the same requests (ledger),
    the policy replayed offline (all prompts, and the half its knob was not tuned on), the
    classifier's curve and the best single model at that cost (lab)."""
    from .frontier import best_single_within, curve_quality_at

    rows = []
    if summary.recorded_baseline_cost_usd and summary.baseline_quality:
        rows.append(_relative(f"{policy}, this run (ledger, {summary.requests} requests)",
                              routed_point(summary, policy)))
    lab_ref = next((p for p in frontier.of_kind("lab-model") if p.label == frontier.reference), None)
    points = frontier.of_kind("lab-policy")
    if lab_ref is None or not points:
        return rows
    rows += [_relative(f"{p.label}, replayed offline ({p.requests} prompts)", p) for p in points]
    at = points[0].cost_usd
    curve = curve_quality_at(frontier, at)
    if curve is not None:
        rows.append(_point("classifier's curve at that cost (every knob; hindsight)",
                           curve / lab_ref.quality, at / lab_ref.cost_usd))
    single = best_single_within(frontier, at)
    if single is not None:
        rows.append(_point(f"best single model at that cost: {single.label}",
                           single.quality / lab_ref.quality, single.cost_usd / lab_ref.cost_usd))
    return rows


def render_plane(summary: Summary, frontier: LabFrontier, policy: str, console: Console) -> None:
    """Where the routed traffic sits on the cost–quality plane (`plane_rows`), within the
    console's width."""
    console.print(fit(POINTS, f"operating point: cost–quality vs always-{frontier.reference}",
                      plane_rows(summary, frontier, policy), False, console.width))


def render_budget(db: Path, sent: Sequence[Sent], budget_usd: str, console: Console) -> None:
    """What the budget did to the budget user's requests: served under it, downgraded past it,
    and what was spent (from the ledger) against the limit."""
    action = {s.request_id: s.limit_action for s in sent if s.request_id}
    costs = [(action[r[0]], Decimal(r[2])) for r in ledger_rows(db) if r[0] in action and r[2]]
    under = sum((c for a, c in costs if a != "downgraded"), Decimal(0))
    after = sum((c for a, c in costs if a == "downgraded"), Decimal(0))
    downgraded = sum(s.limit_action == "downgraded" for s in sent)
    rows = [("limit (budget-demo, per day)", f"${Decimal(budget_usd):.6f}"),
            ("requests", f"{len(sent)}: {len(sent) - downgraded} under the budget, "
                         f"{downgraded} downgraded to `frugal` (the simple tier)"),
            ("spent under the budget (ledger)", f"${under:.6f}"),
            ("spent by downgraded requests", f"${after:.6f}")]
    console.print(facts("budget: a daily $ limit for one user, downgrading to `frugal`", rows,
                        console.width))
