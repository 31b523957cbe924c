"""The dashboard page's newer panels (`dashboard_page` places them): human timestamps, the time
series over the window (one small bar chart per metric) and the spend per key and per team. Inline
vanilla JS and HTML only; `PANELS_JS` defines functions the page's script calls (`when`,
`series`, `spend`)."""

from __future__ import annotations

#: The series' charts: (element id, the point's field, title).
SERIES = (("series-cost", "cost_usd", "spend (USD)"), ("series-requests", "requests", "requests"),
          ("series-errors", "errors", "errors"), ("series-rating", "mean_rating", "mean rating"))

PANELS_JS = """
  function pad(n){ return (n < 10 ? '0' : '') + n; }
  // an ISO timestamp as local time, and how long ago (or until) it is when that is near
  function when(iso){
    if (!iso) return '\\u2014';
    var t = new Date(iso);
    if (isNaN(t.getTime())) return iso;
    var local = t.getFullYear() + '-' + pad(t.getMonth() + 1) + '-' + pad(t.getDate()) + ' ' +
                pad(t.getHours()) + ':' + pad(t.getMinutes());
    var s = Math.round((Date.now() - t.getTime()) / 1000), a = Math.abs(s), rel;
    if (a < 45) rel = 'just now';
    else if (a < 3600) rel = Math.round(a / 60) + ' min';
    else if (a < 48 * 3600) rel = Math.round(a / 3600) + ' h';
    else return local;
    if (rel !== 'just now') rel = s >= 0 ? rel + ' ago' : 'in ' + rel;
    return local + ' (' + rel + ')';
  }
  function bucketLabel(iso, bucket){
    var t = new Date(iso);
    return bucket === 'hour' ? pad(t.getMonth() + 1) + '-' + pad(t.getDate()) + ' ' +
      pad(t.getHours()) + ':00' : t.getFullYear() + '-' + pad(t.getMonth() + 1) + '-' + pad(t.getDate());
  }
  function bars(id, points, field, bucket){
    var svg = $(id), W = 800, H = 110, L = 56, B = 18, n = points.length;
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    var vs = points.map(function(p){ var v = p[field]; return v === null ? null : Number(v); });
    var top = Math.max.apply(null, vs.map(function(v){ return v || 0; }).concat([0]));
    el('text', {x: 0, y: 12}, svg).textContent = top ? String(+top.toPrecision(3)) : '0';
    el('line', {x1: L, y1: H - B, x2: W, y2: H - B, stroke: '#999'}, svg);
    var w = n ? (W - L) / n : 0;
    points.forEach(function(p, i){
      var v = vs[i], h = v && top ? v / top * (H - B - 4) : 0;
      var r = el('rect', {x: L + i * w + 1, y: H - B - h, width: Math.max(1, w - 2), height: h,
                          fill: '#4c72b0', 'class': 'bar'}, svg);
      el('title', {}, r).textContent = bucketLabel(p.start, bucket) + ': ' +
        (v === null ? 'no rating' : String(p[field]));
    });
    if (n) {
      el('text', {x: L, y: H - 4}, svg).textContent = bucketLabel(points[0].start, bucket);
      el('text', {x: W - 110, y: H - 4}, svg).textContent = bucketLabel(points[n - 1].start, bucket);
    }
  }
  function series(s){
    text('series-bucket', 'one bar per ' + s.bucket + ' (local time)');
    SERIES_CHARTS.forEach(function(c){ bars(c[0], s.points, c[1], s.bucket); });
    function spent(k){ return [[k.name, k.requests, k.errors, '$' + k.cost_usd]]; }
    lines('spend-keys', s.keys, spent);
    lines('spend-teams', s.teams || [], spent);
  }
"""


def panels_js() -> str:
    """The panels' functions, with the charts' list."""
    charts = ", ".join(f"['{i}', '{f}']" for i, f, _ in SERIES)
    return PANELS_JS.replace("SERIES_CHARTS", f"[{charts}]")


def panels_html() -> str:
    """The series' charts and the spend tables."""
    charts = "".join(f'<div class=chart><div class=k>{title}</div><svg id="{i}" width="800" '
                     f'height="110" role="img" aria-label="{title} over time"></svg></div>'
                     for i, _, title in SERIES)
    spend_head = "<tr><th>{}</th><th>requests</th><th>errors</th><th>spend</th></tr>"
    return f"""<h2>Over time</h2>
<p class=note id="series-bucket">\u2014</p>
{charts}
<h2>Spend per key</h2>
<table><thead>{spend_head.format("key")}</thead><tbody id="spend-keys"></tbody></table>
<h2>Spend per team</h2>
<table><thead>{spend_head.format("team")}</thead><tbody id="spend-teams"></tbody></table>"""
