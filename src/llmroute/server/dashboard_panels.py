"""The dashboard page's newer panels (`dashboard_page` places them): human timestamps, the time
series over the window (one small bar chart per metric) and the spend per key and per team. Inline
vanilla JS and HTML only; `PANELS_JS` defines functions the page's script calls (`when`,
`series`, `spend`)."""

from __future__ import annotations

#: The series' charts: (element id, the point's field, title).
SERIES = (("series-cost", "cost_usd", "spend (USD)"), ("series-requests", "requests", "requests"),
          ("series-errors", "errors", "errors"), ("series-rating", "mean_rating", "mean rating"),
          ("series-fallbacks", "fallbacks", "answered by a fallback"))

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
    $('teams-panel').style.display = s.teams ? '' : 'none';  // an admin's only
  }
  var nextPage = null;
  function explore(more){
    var q = ['since=' + encodeURIComponent(sel.value)];
    // the key's filter is `key_name`: a `key` parameter is refused (keys never go in URLs)
    [['model', 'model'], ['policy', 'policy'], ['status', 'status'], ['key', 'key_name'],
     ['cache', 'cache']].forEach(function(f){
      var v = $('f-' + f[0]).value;
      if (v) q.push(f[1] + '=' + encodeURIComponent(v));
    });
    if (more && nextPage) q.push('before=' + encodeURIComponent(nextPage));
    fetch('dashboard/requests?' + q.join('&'), {credentials: 'same-origin', cache: 'no-store'})
      .then(function(r){ return r.json().then(function(b){ return [r.ok, b]; }); })
      .then(function(p){
        if (!p[0]) { text('explore-status', (p[1].error || {}).message || 'error'); return; }
        var body = $('explore-rows');
        if (!more) while (body.firstChild) body.removeChild(body.firstChild);
        p[1].data.forEach(function(r){
          var tr = document.createElement('tr'), td = document.createElement('td');
          var b = document.createElement('button');
          b.textContent = r.request_id; b.className = 'open';
          b.addEventListener('click', function(){ detail(r.request_id); });
          td.appendChild(b); tr.appendChild(td);
          [when(r.ts), r.key_name, r.model, r.policy, r.tier, r.status, r.latency_s.toFixed(3),
           r.cost_usd === null ? null : '$' + r.cost_usd, r.cache, r.user_rating].forEach(function(v){
            cell(tr, v === null || v === undefined ? '\u2014' : v); });
          body.appendChild(tr);
        });
        nextPage = p[1].next;
        $('explore-more').disabled = !nextPage;
        text('explore-status', body.childNodes.length + ' requests shown' + (nextPage ? '' : ' (all)'));
      });
  }
  var DETAIL = [['decision', ['policy', 'tier', 'router', 'reason', 'confidence', 'experiment_arm',
                              'explored', 'model']],
                ['request', ['request_id', 'ts', 'key_name', 'user', 'session', 'status',
                             'http_status', 'error_type', 'error_code', 'stream']],
                ['usage and cost', ['input_tokens', 'output_tokens', 'cached_tokens',
                  'cache_write_tokens', 'usage_estimated', 'cost_usd', 'baseline_model',
                  'baseline_cost_usd', 'routing_cost_usd', 'latency_s', 'ttft_s',
                  'upstream_latency_s']],
                ['cache', ['cache', 'cache_saved_usd', 'prompt_cache_saved_usd']],
                ['feedback', ['user_rating', 'task_success', 'feedback_comment', 'feedback_ts']],
                ['text', ['prompt_text', 'response_text']]];
  function detail(id){
    fetch('dashboard/requests/' + encodeURIComponent(id), {credentials: 'same-origin', cache: 'no-store'})
      .then(function(r){ return r.json().then(function(b){ return [r.ok, b]; }); })
      .then(function(p){
        var d = p[1], body = $('detail');
        while (body.firstChild) body.removeChild(body.firstChild);
        if (!p[0]) { text('detail-title', (d.error || {}).message || 'error'); return; }
        text('detail-title', 'Request ' + d.request_id);
        DETAIL.forEach(function(g){
          g[1].forEach(function(f){
            if (g[0] === 'text' && d[f] === null) return;
            var tr = document.createElement('tr');
            cell(tr, g[0]); cell(tr, f);
            var v = d[f];
            cell(tr, v === null || v === undefined ? '\u2014' : (f === 'ts' || f === 'feedback_ts')
                 ? when(v) : String(v));
            tr.setAttribute('data-field', f);
            body.appendChild(tr);
          });
        });
        (d.attempts || []).forEach(function(a, i){
          var tr = document.createElement('tr');
          cell(tr, 'attempt ' + (i + 1)); cell(tr, a.model);
          cell(tr, (a.error_kind ? a.error_kind + ' ' + (a.status || '') + ' ' + a.message : 'ok') +
               ' \u00b7 ' + a.latency_s.toFixed(3) + ' s' + (a.skipped ? ' (skipped)' : ''));
          tr.className = 'attempt';
          body.appendChild(tr);
        });
      });
  }
  ['f-model', 'f-policy', 'f-status', 'f-key', 'f-cache'].forEach(function(id){
    $(id).addEventListener('change', function(){ explore(false); });
  });
  sel.addEventListener('change', function(){ explore(false); });
  $('explore-more').addEventListener('click', function(){ explore(true); });
  explore(false);
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
<div id="teams-panel"><h2>Spend per team</h2>
<table><thead>{spend_head.format("team")}</thead><tbody id="spend-teams"></tbody></table></div>
<h2>Requests</h2>
<div class=filters><label>model <input id="f-model" size=14></label>
<label>policy <input id="f-policy" size=10></label>
<label>status <select id="f-status"><option value="">any</option><option>ok</option>
<option>error</option></select></label>
<label id="f-key-label">key <input id="f-key" size=10></label>
<label>cache <select id="f-cache"><option value="">any</option><option>hit</option>
<option>semantic</option><option>miss</option><option>bypass</option></select></label>
<span id="explore-status" class=note></span></div>
<table><thead><tr><th>request</th><th>time</th><th>key</th><th>model</th><th>policy</th><th>tier</th>
<th>status</th><th>latency s</th><th>cost</th><th>cache</th><th>rating</th></tr></thead>
<tbody id="explore-rows"></tbody></table>
<button id="explore-more" type="button" disabled>Older requests</button>
<h3 id="detail-title">Click a request to see its detail</h3>
<table><tbody id="detail"></tbody></table>"""
