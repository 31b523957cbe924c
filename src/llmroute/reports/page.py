"""The self-contained HTML report: headline, table and plots embedded as base64 PNGs.

matplotlib is optional (`llmroute[report]`): it is imported lazily, with the Agg backend, and when it
is missing the page says so instead of showing plots.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from typing import Any

from .aggregate import Report, Summary
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


def _cost_vs_quality(plt: Any, models: Sequence[Summary]) -> bytes | None:
    points = [(m.label, float(m.cost_usd) / m.priced, m.mean_rating) for m in models
              if m.priced and m.mean_rating is not None]
    if not points:
        return None
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=100)
    for label, cost, rating in points:
        ax.scatter(cost * 1000, rating, s=30, zorder=3)
        ax.annotate(label, (cost * 1000, rating), fontsize=7, xytext=(4, 3),
                    textcoords="offset points")
    ax.set_xlabel("mean cost, USD per 1,000 priced requests")
    ax.set_ylabel("mean user rating (1-5)")
    ax.set_title("Cost vs quality per model")
    ax.grid(alpha=0.3)
    return _png(plt, fig)


def plots(days: Sequence[Summary], models: Sequence[Summary], total: Summary
          ) -> list[tuple[str, bytes]] | None:
    """(title, PNG) for each plot there is data for (`days`: the report's groups by day, `models`:
    by model); None when matplotlib is not installed."""
    plt = _pyplot()
    if plt is None:
        return None
    found = [("cost over time by day", _cost_by_day(plt, days)),
             ("model mix", _model_mix(plt, total))]
    quality = _cost_vs_quality(plt, models)
    if quality is not None:
        found.append(("cost vs mean quality per model", quality))
    return found


def _images(found: list[tuple[str, bytes]] | None) -> str:
    if found is None:
        return f"<p class=note><em>{html.escape(NO_MATPLOTLIB)}</em></p>"
    return "\n".join(f'<h3>{html.escape(title)}</h3><img alt="{html.escape(title)}" '
                     f'src="data:image/png;base64,{base64.b64encode(png).decode()}">'
                     for title, png in found)


def _table(report: Report) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in (report.by, *COLUMNS))
    body = [f"<tr><td>{html.escape(s.label)}</td>"
            + "".join(f"<td>{html.escape(cell)}</td>" for cell in row(s)) + "</tr>"
            for s in report.groups]
    total = ("<tr class=total><td>total</td>"
             + "".join(f"<td>{html.escape(cell)}</td>" for cell in row(report.total)) + "</tr>")
    return f"<table><tr>{head}</tr>\n" + "\n".join(body) + f"\n{total}</table>"


def render_html(report: Report, window: str, found: list[tuple[str, bytes]] | None) -> str:
    """The whole page (no external resources)."""
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
<h2>Plots</h2>
{_images(found)}
</body></html>
"""
