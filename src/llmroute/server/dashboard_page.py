"""The dashboard's page (`GET /dashboard`): one self-contained HTML document, inline CSS and
vanilla JS, no external resources. The script polls `GET /dashboard/data` (`dashboard.data`) and
shows its numbers as `llmroute report` prints them (the data carries the report's own text cells,
so the page never formats a number itself)."""

from __future__ import annotations

from ..reports.caching import CACHE_COLUMNS
from .dashboard_panels import panels_html, panels_js

#: The windows the page offers (the data endpoint accepts any `llmroute report --since` value).
WINDOWS = ("1h", "24h", "7d")
DEFAULT_WINDOW = "24h"
#: How often the page polls for fresh numbers.
REFRESH_MS = 3000

_CSS = """
body{font-family:system-ui,sans-serif;max-width:1150px;margin:1.5em auto;padding:0 1em;color:#222}
header{display:flex;align-items:center;gap:1em;flex-wrap:wrap}h1{margin:0;font-size:1.5em}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(160px,1fr));gap:.7em;margin:1em 0}
.card{border:1px solid #ddd;border-radius:8px;padding:.6em .8em;background:#fafafa}
.card .v{font-size:1.5em;font-weight:600}.card .k{color:#666;font-size:.85em}
table{border-collapse:collapse;font-size:90%;width:100%}td,th{border:1px solid #ccc;padding:4px 8px;
text-align:right}td:first-child,th:first-child{text-align:left}th{background:#f4f4f4}
#headline{font-weight:600}#status{color:#666;font-size:.85em}.err{color:#b00020}
svg text{font-size:12px;fill:#222}
.chart{margin:.3em 0}.chart .k{color:#666;font-size:.85em}
"""

_JS = """
(function(){
  var sel = document.getElementById('since'), timer = null;
  function $(id){ return document.getElementById(id); }
  function text(id, v){ $(id).textContent = (v === null || v === undefined) ? '\\u2014' : v; }
  function cell(tr, v){ var td = document.createElement('td'); td.textContent = v; tr.appendChild(td); }
  function row(body, c, label){
    var tr = document.createElement('tr');
    [label, c.requests, c.errors, c.success, c.cost, c.baseline, c.saved, c['p50 s'], c['p95 s'],
     c.rating].forEach(function(v){ cell(tr, v); });
    body.appendChild(tr);
    return tr;
  }
  function lines(id, items, cells){
    var body = $(id);
    while (body.firstChild) body.removeChild(body.firstChild);
    (items || []).forEach(function(item){
      cells(item).forEach(function(values){
        var tr = document.createElement('tr');
        values.forEach(function(v){ cell(tr, v === null || v === undefined ? '\u2014' : v); });
        body.appendChild(tr);
      });
    });
  }
  function chart(mix){
    var ns = 'http://www.w3.org/2000/svg', svg = $('mix');
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    var bar = 22, left = 190, width = 520;
    svg.setAttribute('height', Math.max(bar, mix.length * (bar + 6)));
    mix.forEach(function(m, i){
      var y = i * (bar + 6);
      var label = document.createElementNS(ns, 'text');
      label.setAttribute('x', 0); label.setAttribute('y', y + 15); label.textContent = m.model;
      var rect = document.createElementNS(ns, 'rect');
      rect.setAttribute('x', left); rect.setAttribute('y', y);
      rect.setAttribute('width', Math.max(1, m.share * width)); rect.setAttribute('height', bar);
      rect.setAttribute('fill', ['#4c72b0', '#55a868', '#c44e52', '#8172b2', '#ccb974'][i % 5]);
      var value = document.createElementNS(ns, 'text');
      value.setAttribute('x', left + m.share * width + 6); value.setAttribute('y', y + 15);
      value.textContent = m.requests + ' (' + (m.share * 100).toFixed(0) + '%)';
      svg.appendChild(label); svg.appendChild(rect); svg.appendChild(value);
    });
  }
  var KIND_STYLE = {'ledger-model': ['#4c72b0', 5], 'ledger-routed': ['#dd8452', 7],
                    'lab-model': ['#8c8c8c', 4], 'lab-curve': ['#55a868', 0],
                    'lab-policy': ['#8172b2', 7]};
  function el(name, attrs, parent){
    var node = document.createElementNS('http://www.w3.org/2000/svg', name);
    Object.keys(attrs).forEach(function(k){ node.setAttribute(k, attrs[k]); });
    if (parent) parent.appendChild(node);
    return node;
  }
  function plane(p){
    var svg = $('plane'), W = 800, H = 440, L = 56, R = 24, T = 12, B = 130;
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    var pts = (p && p.points || []).filter(function(q){ return q.cost_usd > 0; });
    $('plane-note').textContent = p && p.measured_on ? 'Lab points: ' + p.measured_on + '.' : '';
    if (!pts.length) { el('text', {x: L, y: 30}, svg).textContent =
      'no point yet: needs priced requests with feedback'; return; }
    var xs = pts.map(function(q){ return Math.log10(q.cost_usd * 1000); });
    var ys = pts.map(function(q){ return q.quality; });
    var x0 = Math.min.apply(null, xs) - 0.1, x1 = Math.max.apply(null, xs) + 0.1;
    var y0 = Math.max(0, Math.min.apply(null, ys) - 0.03), y1 = Math.min(1, Math.max.apply(null, ys) + 0.03);
    if (y1 - y0 < 0.05) { y0 = Math.max(0, y0 - 0.05); y1 = Math.min(1, y1 + 0.05); }
    function X(v){ return L + (v - x0) / (x1 - x0) * (W - L - R); }
    function Y(v){ return H - B - (v - y0) / (y1 - y0) * (H - T - B); }
    el('line', {x1: L, y1: H - B, x2: W - R, y2: H - B, stroke: '#999'}, svg);
    el('line', {x1: L, y1: T, x2: L, y2: H - B, stroke: '#999'}, svg);
    for (var e = Math.ceil(x0); e <= Math.floor(x1); e++) {
      el('text', {x: X(e) - 12, y: H - B + 16}, svg).textContent = '$' + Math.pow(10, e);
    }
    for (var k = 0; k <= 4; k++) {
      var yv = y0 + (y1 - y0) * k / 4;
      el('text', {x: 8, y: Y(yv) + 4}, svg).textContent = yv.toFixed(2);
    }
    el('text', {x: L + 200, y: H - B + 34}, svg).textContent = 'mean cost per 1,000 requests (log)';
    var curve = pts.filter(function(q){ return q.kind === 'lab-curve'; })
      .sort(function(a, b){ return a.cost_usd - b.cost_usd; });
    if (curve.length) {
      el('path', {d: curve.map(function(q, i){ return (i ? 'L' : 'M') + X(Math.log10(q.cost_usd * 1000)) +
        ' ' + Y(q.quality); }).join(' '), fill: 'none', stroke: KIND_STYLE['lab-curve'][0],
        'stroke-width': 2, 'class': 'curve'}, svg);
    }
    var order = ['lab-model', 'ledger-model', 'lab-policy', 'ledger-routed'], nth = {};
    pts.slice().sort(function(a, b){ return order.indexOf(a.kind) - order.indexOf(b.kind); })
       .forEach(function(q){
      if (q.kind === 'lab-curve') return;
      nth[q.kind] = (nth[q.kind] || 0) + 1;
      var st = KIND_STYLE[q.kind] || ['#000', 4], cx = X(Math.log10(q.cost_usd * 1000)), cy = Y(q.quality);
      var mark = q.kind === 'ledger-routed' || q.kind === 'lab-policy'
        ? el('polygon', {points: [cx, cy - st[1], cx + st[1], cy, cx, cy + st[1], cx - st[1], cy].join(' '),
                         fill: st[0], 'class': 'pt ' + q.kind}, svg)
        : el('circle', {cx: cx, cy: cy, r: st[1], fill: st[0], 'class': 'pt ' + q.kind}, svg);
      el('title', {}, mark).textContent = q.label + ' (' + p.kinds[q.kind] + '): $' +
        (q.cost_usd * 1000).toPrecision(3) + ' per 1k, quality ' + q.quality.toFixed(3) + ', n ' +
        q.requests + (q.note ? '; ' + q.note : '');
      if (q.kind !== 'lab-model') {
        var dy = q.kind === 'lab-policy' ? 2 + 12 * nth[q.kind] : -6;
        el('text', {x: cx + 6, y: cy + dy, fill: st[0], 'font-size': 10}, svg).textContent = q.label;
      }
    });
    var row = 0;
    Object.keys(KIND_STYLE).forEach(function(kind){
      if (!pts.some(function(q){ return q.kind === kind; })) return;
      var ly = H - B + 52 + row * 15;
      row += 1;
      el('circle', {cx: L + 6, cy: ly - 4, r: 5, fill: KIND_STYLE[kind][0]}, svg);
      el('text', {x: L + 16, y: ly, 'font-size': 11}, svg).textContent = p.kinds[kind];
    });
  }
PANELS
  function show(d){
    var t = d.total, c = d.text.total;
    text('headline', d.headline);
    text('cost', c.cost); text('baseline', c.baseline); text('savings', c.saved);
    text('requests', c.requests); text('errors', c.errors); text('success', c.success);
    text('p50', t.latency_p50_s === null ? null : c['p50 s'] + ' s');
    text('p95', t.latency_p95_s === null ? null : c['p95 s'] + ' s');
    text('rating', c.rating);
    var k = d.caching;
    text('routing-saved', k.routing_saved); text('caching-saved', k.caching_saved);
    text('hit-rate', k.hit_rate); text('exact-rate', k.exact_hit_rate);
    text('semantic-rate', k.semantic_hit_rate); text('cached-tokens', k.cached_tokens);
    text('written-tokens', k.written_tokens);
    text('cache-savings', k.sentence || 'No cache activity in this window: the response cache '
         + 'and provider prompt caching saved nothing.');
    lines('cache-rows', k.rows, function(r){ return [r]; });
    var body = $('rows');
    while (body.firstChild) body.removeChild(body.firstChild);
    d.groups.forEach(function(s, i){ row(body, d.text.groups[i], s.label); });
    row(body, c, 'total').style.fontWeight = 'bold';
    chart(t.model_mix);
    plane(d.plane);
    lines('experiments', d.experiments, function(e){
      return e.arms.map(function(a){
        var v = a.success_rate ? (a.success_rate.value * 100).toFixed(1) + '%' : null;
        var c = a.cost_per_request ? '$' + a.cost_per_request.value.toPrecision(3) : null;
        var p = a.latency_p95 ? a.latency_p95.value.toFixed(3) : null;
        var verdicts = Object.keys(a.verdicts).map(function(k){ return k + ': ' + a.verdicts[k]; });
        return [e.name + ' (' + e.status + ')', a.arm, a.policy, a.requests, v, c, p,
                a.arm === e.control ? 'control' : verdicts.join('; ')];
      });
    });
    lines('alerts', d.alerts, function(a){ return [[when(a.ts), a.severity, a.rule, a.message]]; });
    lines('budgets', d.budgets, function(b){
      return [[b.name, b.scope, b.subject, b.window, b.used, b.limit, b.remaining, when(b.resets_at)]];
    });
    if (d.series) series(d.series);
    $('f-key-label').style.display = d.role === 'admin' ? '' : 'none';
    $('status').className = '';
    text('status', 'Updated ' + new Date().toLocaleTimeString() + ' \\u00b7 ' + when(d.since) +
         ' to ' + when(d.until));
  }
  function refresh(){
    fetch('dashboard/data?since=' + encodeURIComponent(sel.value),
          {credentials: 'same-origin', cache: 'no-store'})
      .then(function(r){ return r.json().then(function(b){ return [r.ok, b]; }); })
      .then(function(p){
        if (p[0]) { show(p[1]); return; }
        $('status').className = 'err'; text('status', (p[1].error || {}).message || 'error');
      })
      .catch(function(e){ $('status').className = 'err'; text('status', String(e)); });
  }
  sel.addEventListener('change', refresh);
  refresh();
  timer = setInterval(refresh, REFRESH_MS);
})();
"""

LOGOUT = ('<form method="post" action="dashboard/logout" style="margin-left:auto">'
          '<button id="logout" type="submit">Log out</button></form>')
_CARDS = (("cost", "cost"), ("baseline", "baseline cost"), ("savings", "saved by routing, %"),
          ("caching-saved", "saved by caching"), ("hit-rate", "cache hit rate"),
          ("requests", "requests"), ("errors", "errors"), ("success", "success rate"),
          ("p50", "p50 latency"), ("p95", "p95 latency"), ("rating", "mean rating"))
_COLUMNS = ("model", "requests", "errors", "success", "cost", "baseline", "saved", "p50 s",
            "p95 s", "rating")


#: The caching section's cards: what each cache and routing saved, and the prompt-cache tokens.
_CACHE_CARDS = (("routing-saved", "saved by routing"), ("exact-rate", "exact hits / lookups"),
                ("semantic-rate", "semantic hits / lookups"),
                ("cached-tokens", "cached tokens read"), ("written-tokens", "cache tokens written"))


def _cards(cards: tuple[tuple[str, str], ...]) -> str:
    return "".join(f'<div class=card><div class=v id="{i}">\u2014</div><div class=k>{label}</div>'
                   "</div>" for i, label in cards)


def render_page(ledger_enabled: bool, logged_in: bool = False) -> str:
    """The whole page; without a ledger, a note instead of the numbers and no script; behind
    keys, a logout button."""
    if not ledger_enabled:
        body = ("<p class=err>The ledger is disabled: there are no numbers to show. Enable "
                "<code>ledger:</code> in the gateway config and restart it.</p>")
        return _document(body, "")
    options = "".join(f'<option value="{w}"{" selected" if w == DEFAULT_WINDOW else ""}>last {w}'
                      "</option>" for w in WINDOWS)
    cards = _cards(_CARDS)
    head = "".join(f"<th>{c}</th>" for c in _COLUMNS)
    cache_head = "".join(f"<th>{c}</th>" for c in ("model", *CACHE_COLUMNS))
    body = f"""<header><h1>llmroute dashboard</h1>
<label>window <select id="since">{options}</select></label><span id="status">loading\u2026</span>
{LOGOUT if logged_in else ""}</header>
<p id="headline">\u2014</p>
<div class=cards>{cards}</div>
PANELS_HTML
<h2>By model</h2>
<table><thead><tr>{head}</tr></thead><tbody id="rows"></tbody></table>
<h2>Caching</h2>
<p id="cache-savings">\u2014</p>
<div class=cards>{_cards(_CACHE_CARDS)}</div>
<table><thead><tr>{cache_head}</tr></thead><tbody id="cache-rows"></tbody></table>
<h2>Model mix</h2>
<svg id="mix" width="800" height="22" role="img"
 aria-label="model mix"></svg>
<h2>Cost vs quality</h2>
<svg id="plane" width="800" height="440" role="img" aria-label="cost vs quality"></svg>
<p class=note>Each model's point is the ledger's mean cost and mean feedback quality (task success
rate, else (rating &minus; 1)/4) of the requests it <em>served</em>: routing picks those requests, so
it is not what the model would do on all of them. Routed traffic: one point per policy and
experiment arm. <span id="plane-note"></span></p>
<h2>Experiments</h2>
<table><thead><tr><th>experiment</th><th>arm</th><th>policy</th><th>requests</th><th>success</th>
<th>cost / request</th><th>p95 s</th><th>vs control</th></tr></thead><tbody id="experiments"></tbody></table>
<h2>Alerts</h2>
<table><thead><tr><th>time</th><th>severity</th><th>rule</th><th>message</th></tr></thead>
<tbody id="alerts"></tbody></table>
<h2>Budgets of this key</h2>
<table><thead><tr><th>limit</th><th>scope</th><th>subject</th><th>window</th><th>used</th>
<th>limit</th><th>remaining</th><th>resets at</th></tr></thead><tbody id="budgets"></tbody></table>"""
    script = _JS.replace("REFRESH_MS", str(REFRESH_MS)).replace("PANELS", panels_js())
    return _document(body.replace("PANELS_HTML", panels_html()), f"<script>{script}</script>")


def _document(body: str, script: str) -> str:
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>llmroute dashboard</title>
<meta name="referrer" content="same-origin"><style>{_CSS}</style></head><body>
{body}
{script}
</body></html>
"""
