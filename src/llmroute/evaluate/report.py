"""The evaluation report: per-strategy results as JSON, a PNG of the cost–quality curves, and a
self-contained HTML page (the PNG embedded). matplotlib is optional (`llmroute[report]`)."""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from .metrics import CurvePoint, Saving, TargetSummary


@dataclass(frozen=True)
class PairMetrics:
    """RouteLLM's numbers for one strong/weak pair."""

    strong: str
    weak: str
    apgr: float
    cpt: Mapping[str, float | None]


@dataclass(frozen=True)
class StrategyResult:
    """One routing strategy's curve and its summary numbers."""

    name: str
    points: Sequence[CurvePoint]
    hull: Sequence[CurvePoint]
    aiq: float
    targets: Sequence[TargetSummary]
    savings: Sequence[Saving]
    beats_best_single: bool
    shortfalls: Sequence[float]
    pair: PairMetrics | None = None


@dataclass(frozen=True)
class EvalReport:
    """Everything `llmroute eval` measured."""

    dataset: str
    records: int
    models: Sequence[str]
    reference: CurvePoint
    singles: Mapping[str, CurvePoint]
    strategies: Sequence[StrategyResult]
    notes: Sequence[str] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view."""
        return asdict(self)


def per_thousand(usd: float) -> str:
    """USD per request shown as USD per 1,000 requests."""
    return f"${usd * 1000:.3f}"


def plot_png(report: EvalReport) -> bytes | None:
    """The cost–quality plot as PNG bytes, or None when matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, ax = plt.subplots(figsize=(8, 5), dpi=110)
    for name, point in report.singles.items():
        ax.scatter(point.cost * 1000, point.quality, color="grey", s=18, zorder=3)
        ax.annotate(name.split("/")[-1][:22], (point.cost * 1000, point.quality), fontsize=6,
                    xytext=(3, 2), textcoords="offset points", color="dimgrey")
    for result in report.strategies:
        xs = [p.cost * 1000 for p in result.hull]
        ys = [p.quality for p in result.hull]
        ax.plot(xs, ys, marker="o", markersize=3, label=f"{result.name} (AIQ {result.aiq:.3f})")
    ax.axhline(report.reference.quality, color="black", linestyle=":", linewidth=0.8)
    costs = [p.cost * 1000 for p in report.singles.values()]
    if min(costs) > 0:
        ax.set_xscale("log")
    else:  # a free model: a log axis cannot show it
        ax.set_xscale("symlog", linthresh=max(min(c for c in costs if c > 0) / 2, 1e-6)
                      if any(c > 0 for c in costs) else 1.0)
    ax.set_xlabel("cost, USD per 1,000 requests")
    ax.set_ylabel("mean quality")
    ax.set_title(f"{report.dataset}: {report.records} records, {len(report.models)} models")
    ax.legend(fontsize=7, loc="lower right")
    ax.grid(alpha=0.3)
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


def _cell(value: float | None, percent: bool = False) -> str:
    if value is None:
        return "—"
    return f"{value:.1%}" if percent else f"{value:.3f}"


def _strategy_rows(report: EvalReport) -> str:
    rows = []
    for r in report.strategies:
        targets = " ".join(f"{t.fraction:.0%}: {_cell(t.cost_fraction, True)}" for t in r.targets)
        pair = (f"{r.pair.apgr:.3f}" if r.pair else "—")
        rows.append(
            f"<tr><td>{html.escape(r.name)}</td><td>{r.aiq:.4f}</td><td>{html.escape(targets)}</td>"
            f"<td>{pair}</td><td>{'yes' if r.beats_best_single else 'no'}</td></tr>")
    return "\n".join(rows)


def render_html(report: EvalReport, png: bytes | None) -> str:
    """A self-contained HTML report."""
    image = (f'<img alt="cost-quality curves" src="data:image/png;base64,'
             f'{base64.b64encode(png).decode()}">' if png else
             "<p><em>Install llmroute[report] (matplotlib) for the plot.</em></p>")
    singles = "\n".join(
        f"<tr><td>{html.escape(m)}</td><td>{p.quality:.3f}</td><td>{per_thousand(p.cost)}</td></tr>"
        for m, p in sorted(report.singles.items(), key=lambda kv: kv[1].cost))
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in report.notes)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>llmroute eval: {html.escape(report.dataset)}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:960px;margin:2em auto;color:#222}}
table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #ccc;padding:4px 8px;
text-align:left}}th{{background:#f4f4f4}}img{{max-width:100%}}</style></head><body>
<h1>Routing evaluation: {html.escape(report.dataset)}</h1>
<p>{report.records} records, {len(report.models)} models. Reference:
<b>{html.escape(report.reference.label)}</b> (quality {report.reference.quality:.3f},
{per_thousand(report.reference.cost)} per 1,000 requests).</p>
{image}
<h2>Strategies</h2>
<table><tr><th>strategy</th><th>AIQ</th><th>cost (share of reference) to keep x% of its quality</th>
<th>APGR</th><th>beats best single everywhere</th></tr>
{_strategy_rows(report)}</table>
<h2>Single models</h2>
<table><tr><th>model</th><th>quality</th><th>cost per 1,000</th></tr>{singles}</table>
<ul>{notes}</ul>
</body></html>
"""
