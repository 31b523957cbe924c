"""The self-contained HTML report: headline, table and plots embedded as base64 PNGs.

matplotlib is optional (`llmroute[report]`): it is imported lazily, with the Agg backend, and when it
is missing the page says so instead of showing plots.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Callable, Sequence
from typing import Any

from .aggregate import Report, Summary
from .caching import CACHE_COLUMNS, cache_row, savings_text
from .plane import KIND_LABELS, KINDS, Kind, LabFrontier, PlanePoint, ledger_points
from .render import COLUMNS, headline, row

NO_MATPLOTLIB = "Plots need matplotlib: pip install 'llmroute[report]'."


def _pyplot() -> Any | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


def _png(plt: Any, fig: Any) -> bytes:
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


def _cost_by_day(plt: Any, days: Sequence[Summary]) -> bytes:
    fig, ax = plt.subplots(figsize=(8, 3.5), dpi=100)
    ax.bar([d.label for d in days], [float(d.cost_usd) for d in days], color="#4c72b0")
    ax.set_ylabel("cost, USD (priced requests)")
    ax.set_title("Cost per day (UTC)")
    ax.tick_params(axis="x", labelrotation=45, labelsize=7)
    ax.grid(axis="y", alpha=0.3)
    return _png(plt, fig)


def _model_mix(plt: Any, total: Summary) -> bytes:
    shares = total.model_shares()
    fig, ax = plt.subplots(figsize=(8, 0.5 + 0.35 * len(shares)), dpi=100)
    names = list(shares)[::-1]
    ax.barh(names, [shares[n] * 100 for n in names], color="#55a868")
    ax.set_xlabel("share of requests, %")
    ax.set_title("Model mix")
    ax.tick_params(axis="y", labelsize=7)
    return _png(plt, fig)


#: Marker, colour and size per kind of point on the cost–quality plane.
_STYLE: dict[Kind, tuple[str, str, int]] = {
    "ledger-model": ("o", "#4c72b0", 36), "ledger-routed": ("D", "#dd8452", 80),
    "lab-model": ("s", "#8c8c8c", 30), "lab-curve": ("", "#55a868", 0),
    "lab-policy": ("*", "#8172b2", 170),
}
#: Where each kind's labels go (points), so the routed traffic and the lab's policy points, which
#: should sit close together, stay readable.
_OFFSET: dict[Kind, tuple[int, int]] = {"ledger-routed": (6, 6), "lab-policy": (6, -11)}


def _cost_quality_plane(plt: Any, points: Sequence[PlanePoint], measured_on: str) -> bytes | None:
    """Every point on one plane, x = USD per 1,000 requests (log), y = quality; the lab's curve as a
    line. The legend says what each kind of point is measured on."""
    if not points:
        return None
    fig, ax = plt.subplots(figsize=(9, 5.5), dpi=100)
    for kind in KINDS:
        group = [p for p in points if p.kind == kind]
        if not group:
            continue
        marker, colour, size = _STYLE[kind]
        xs, ys = [p.cost_usd * 1000 for p in group], [p.quality for p in group]
        if kind == "lab-curve":
            ax.plot(xs, ys, "-", color=colour, lw=1.5, label=KIND_LABELS[kind], zorder=2)
            continue
        ax.scatter(xs, ys, marker=marker, s=size, color=colour, label=KIND_LABELS[kind],
                   zorder=5 if kind == "ledger-routed" else 3, alpha=0.9,
                   edgecolors="white" if kind != "lab-model" else "none")
        for p in group:
            ax.annotate(p.label, (p.cost_usd * 1000, p.quality), fontsize=6.5,
                        xytext=_OFFSET.get(kind, (4, 3)), textcoords="offset points",
                        color=colour if kind != "lab-model" else "#555")
    if all(p.cost_usd > 0 for p in points):
        ax.set_xscale("log")
    ax.set_xlabel("mean cost, USD per 1,000 requests")
    ax.set_ylabel("mean quality (recorded outcome / feedback, 0-1)")
    ax.set_title("Cost vs quality: models, routed traffic" + (" and the lab's frontier"
                                                              if measured_on else ""))
    if measured_on:
        fig.text(0.01, 0.005, "lab: " + measured_on, fontsize=6, color="#555", wrap=True)
    ax.legend(fontsize=7, loc="lower right")
    ax.grid(alpha=0.3)
    return _png(plt, fig)


def plots(days: Sequence[Summary], models: Sequence[Summary], total: Summary,
          routed: Sequence[PlanePoint] = (), frontier: LabFrontier | None = None
          ) -> list[tuple[str, bytes]] | None:
    """(title, PNG) for each plot there is data for (`days`: the report's groups by day, `models`:
    by model; `routed`: the routed traffic's points (per policy / arm); `frontier`: the lab's
    points, e.g. the demo's `frontier.json`); None when matplotlib is not installed."""
    plt = _pyplot()
    if plt is None:
        return None
    found = [("cost over time by day", _cost_by_day(plt, days)),
             ("model mix", _model_mix(plt, total))]
    plane = [*ledger_points(models, ()), *routed, *(frontier.points if frontier else ())]
    quality = _cost_quality_plane(plt, plane, frontier.measured_on if frontier else "")
    if quality is not None:
        found.append(("cost vs quality: each model, the routed traffic"
                      + (" and the lab's frontier" if frontier else ""), quality))
    return found


def _images(found: list[tuple[str, bytes]] | None) -> str:
    if found is None:
        return f"<p class=note><em>{html.escape(NO_MATPLOTLIB)}</em></p>"
    return "\n".join(f'<h3>{html.escape(title)}</h3><img alt="{html.escape(title)}" '
                     f'src="data:image/png;base64,{base64.b64encode(png).decode()}">'
                     for title, png in found)


def _table(report: Report, columns: Sequence[str] = COLUMNS,
           cells: Callable[[Summary], list[str]] = row) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in (report.by, *columns))
    body = [f"<tr><td>{html.escape(s.label)}</td>"
            + "".join(f"<td>{html.escape(cell)}</td>" for cell in cells(s)) + "</tr>"
            for s in report.groups]
    total = ("<tr class=total><td>total</td>"
             + "".join(f"<td>{html.escape(cell)}</td>" for cell in cells(report.total)) + "</tr>")
    return f"<table><tr>{head}</tr>\n" + "\n".join(body) + f"\n{total}</table>"


def _caching(report: Report) -> str:
    """The "Caching" block: the savings sentence and the table (nothing when no cache shows)."""
    savings = savings_text(report)
    if savings is None:
        return ""
    return (f"<h2>Caching</h2>\n<p class=savings>{html.escape(savings)}</p>\n"
            + _table(report, CACHE_COLUMNS, cache_row))


def plane_table(points: Sequence[PlanePoint]) -> str:
    """The cost–quality points as a table: what each is measured on, beside its numbers."""
    if not points:
        return ""
    rows = []
    for p in points:
        shares = p.relative()
        share = "" if shares is None else f"{shares[1]:.1%} at {shares[0]:.1%}"
        cells = (p.label, KIND_LABELS[p.kind], f"{p.cost_usd * 1000:.3f}", f"{p.quality:.3f}",
                 share, str(p.requests), p.note)
        rows.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
    head = "".join(f"<th>{c}</th>" for c in ("point", "what it is", "$ / 1k requests", "quality",
                                             "quality at cost, vs reference", "n", "measured on"))
    return ("<h3>cost–quality points</h3><table class=plane><tr>" + head + "</tr>\n"
            + "\n".join(rows) + "</table>")


def render_html(report: Report, window: str, found: list[tuple[str, bytes]] | None,
                plane: Sequence[PlanePoint] = ()) -> str:
    """The whole page (no external resources); `plane`: the cost–quality points, listed under the
    plots with what each is measured on."""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>llmroute report: {html.escape(window)}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222}}
table{{border-collapse:collapse;margin:1em 0;font-size:90%}}td,th{{border:1px solid #ccc;
padding:4px 8px;text-align:right}}td:first-child,th:first-child{{text-align:left}}
th{{background:#f4f4f4}}tr.total{{font-weight:bold}}img{{max-width:100%}}</style></head><body>
<h1>llmroute report</h1>
<p>{html.escape(window)}</p>
<p class=headline><b>{html.escape(headline(report))}</b></p>
<h2>By {html.escape(report.by)}</h2>
{_table(report)}
{_caching(report)}
<h2>Plots</h2>
{_images(found)}
{plane_table(plane)}
</body></html>
"""
