"""The Grafana dashboard (examples/grafana/llmroute-dashboard.json): an importable dashboard model
with a Prometheus datasource variable, and every PromQL expression names only series (and labels)
that a real gateway's /metrics exports after traffic that exercises them: answers, a stream,
retries and a fallback, a failure, a breaker skipping a model in cooldown, an unpriced model,
response-cache misses and a hit."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from integration.support import Serve, user
from llmroute.testing.behaviours import overloaded, server_error
from llmroute.testing.upstream import FakeUpstream

DASHBOARD = Path(__file__).parents[2] / "examples" / "grafana" / "llmroute-dashboard.json"
SERIES = re.compile(r"\b(llmroute_[a-z_]+)\s*(\{[^}]*\})?")
BY = re.compile(r"\bby\s*\(([^)]*)\)")
MATCHER = re.compile(r"([a-z_]+)\s*(?:=~|!=|!~|=)")
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}


def dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return data


def expressions(data: dict[str, Any]) -> list[str]:
    exprs = [t["expr"] for p in data["panels"] for t in p.get("targets", [])]
    exprs += [v["definition"] for v in data["templating"]["list"] if v["type"] == "query"]
    return exprs


def test_the_dashboard_is_an_importable_model_with_a_prometheus_datasource_variable() -> None:
    data = dashboard()
    assert data["uid"] and data["title"] and isinstance(data["schemaVersion"], int)
    variables = {v["name"]: v for v in data["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    ids = [p["id"] for p in data["panels"]]
    assert len(ids) == len(set(ids))
    for panel in data["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24 and grid["h"] > 0
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}" and target["refId"]
            assert target["expr"].count("(") == target["expr"].count(")")


def traffic(serve: Serve, up: FakeUpstream) -> str:
    """Requests that feed every metric, then the gateway's /metrics text."""
    gw = serve({"cache": {"response": {"enabled": True}},
                "models": {"fake/free": {"deployment": "fake", "upstream_name": "free-up"}},
                "tiers": {"simple": {"fallbacks": ["anthropic-ish/claude", "fake/free"]}},
                "resilience": {"cooldown": {"failures": 2, "cooldown_s": 30}}})
    with gw.client() as client:
        marks = [client.chat.completions.with_raw_response.create(  # a miss, then a hit
            model="fake/mini", messages=user("cache me"), temperature=0).headers["x-llmroute-cache"]
            for _ in range(2)]
        assert marks == ["miss", "hit"]
        list(client.chat.completions.create(model="fake/mid", messages=user("stream"),
                                            stream=True))
        up.script("big-up", server_error(), server_error())  # retried, then a fallback
        client.chat.completions.create(model="auto", messages=user("debug my python code please"))
        up.script("claude-up", overloaded(), overloaded())  # fails; the breaker opens
        with pytest.raises(openai.APIStatusError):
            client.chat.completions.create(model="anthropic-ish/claude", messages=user("hi"))
        client.chat.completions.create(  # claude is skipped (cooldown); the free model answers
            model="anthropic-ish/claude", messages=user("hi"), extra_body={"models": ["fake/free"]})
    response = httpx.get(gw.url + "/metrics", timeout=10)
    assert response.status_code == 200
    return response.text


def test_every_dashboard_query_names_exported_series_and_labels(serve: Serve,
                                                                up: FakeUpstream) -> None:
    exported: dict[str, set[str]] = {}   # series name -> its labels
    for family in text_string_to_metric_families(traffic(serve, up)):
        for suffix in SUFFIXES.get(family.type, ("",)):
            exported.setdefault(family.name + suffix, set())
        for sample in family.samples:
            exported.setdefault(sample.name, set()).update(sample.labels)

    used = 0
    for expr in expressions(dashboard()):
        series = SERIES.findall(expr)
        assert series, expr
        grouped = {label.strip() for group in BY.findall(expr) for label in group.split(",")}
        for name, selector in series:
            assert name in exported, f"{name} is not exported ({expr})"
            labels = exported[name]
            assert labels or not (grouped or selector), f"{name}: no samples after the traffic"
            wanted = set(MATCHER.findall(selector)) | grouped
            assert wanted <= labels, f"{name} has no {wanted - labels} ({expr})"
            used += 1
        for label in re.findall(r"label_values\(\w+,\s*(\w+)\)", expr):
            assert label in exported[series[0][0]], expr
    assert used >= 30
