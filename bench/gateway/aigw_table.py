"""Markdown and JSON for the ai-gateway-bench-style run (issue 17), with the published numbers beside it.

The published numbers are BerriAI/ai-gateway-bench's ``results/latency_vs_concurrency.csv`` and
``results/ttft_overhead.json`` (the copy at commit ff372fc of the repository's history, as mirrored in
Sanjeevlabs/ai-gateway-bench): Anthropic ``/v1/messages``, Rust reqwest driver, one host, other
hardware than ours. They are data for the side-by-side table, never inputs to our arithmetic.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import NamedTuple

from aigw_core import DIRECT, Point, Target, TtftPoint, unexpected_calls


class Published(NamedTuple):
    gateway: str
    clients: int
    direct_p99_ms: float
    gateway_p99_ms: float
    added_p99_ms: float
    direct_rps: float
    gateway_rps: float


PUBLISHED: tuple[Published, ...] = (
    Published("litellm-rust", 1, 21.98, 22.87, 0.89, 46.2, 45.2),
    Published("bifrost", 1, 21.98, 22.73, 0.75, 46.2, 44.8),
    Published("portkey", 1, 21.98, 24.76, 2.78, 46.2, 43.2),
    Published("litellm-python", 1, 21.98, 31.77, 9.79, 46.2, 34.4),
    Published("litellm-rust", 4, 22.42, 23.03, 0.61, 184.5, 181.2),
    Published("bifrost", 4, 22.42, 23.05, 0.63, 184.5, 180.2),
    Published("portkey", 4, 22.42, 25.20, 2.78, 184.5, 174.0),
    Published("litellm-python", 4, 22.42, 49.37, 26.95, 184.5, 92.7),
    Published("litellm-rust", 16, 22.67, 23.00, 0.33, 735.6, 721.8),
    Published("bifrost", 16, 22.67, 23.56, 0.89, 735.6, 722.7),
    Published("portkey", 16, 22.67, 30.91, 8.24, 735.6, 673.6),
    Published("litellm-python", 16, 22.67, 274.02, 251.34, 735.6, 158.4),
    Published("litellm-rust", 64, 24.02, 64.30, 40.28, 2855.7, 2722.2),
    Published("bifrost", 64, 24.02, 52.70, 28.68, 2855.7, 2719.1),
    Published("portkey", 64, 24.02, 132.43, 108.42, 2855.7, 1360.3),
    Published("litellm-python", 64, 24.02, 570.06, 546.04, 2855.7, 179.8),
)

#: Streaming, 16 clients: (gateway, TTFT p50, TTFT p99, added p50, added p99); None: no streaming route.
PUBLISHED_TTFT: tuple[tuple[str, float | None, float | None, float | None, float | None], ...] = (
    ("direct", 2.187, 7.944, None, None),
    ("bifrost", 2.658, 8.294, 0.471, 0.350),
    ("litellm-python", 74.284, 286.491, 72.097, 278.547),
    ("litellm-rust", None, None, None, None),
    ("portkey", None, None, None, None),
)


def _f(value: float | None, fmt: str = "{:.2f}") -> str:
    return "n/a" if value is None else fmt.format(value)


def _signed(value: float | None) -> str:
    return _f(value, "{:+.2f}")


def _note(p: Point, floor: float | None) -> str:
    notes = []
    if p.requests == 0:
        notes.append("no request completed within the run")
    if p.discarded:
        notes.append(f"DISCARDED: direct p99 > 2 × its 1-client floor ({_f(floor)} ms)")
    if p.errors:
        notes.append(f"{p.errors} errors")
    if p.gateway != DIRECT and unexpected_calls(p):
        notes.append(f"{p.upstream_calls_per_req:.2f} upstream calls per request")
    return "; ".join(notes)


def points_table(points: list[Point], floor: float | None) -> str:
    head = ("| gateway | clients | requests | req/s | p50 ms | p99 ms | added p50 ms | added p99 ms "
            "| CPU ms/req | foreign cores | note |\n|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|\n")
    lines = []
    for p in sorted(points, key=lambda q: (q.clients, q.gateway != DIRECT, q.gateway)):
        lines.append(f"| {p.gateway} | {p.clients} | {p.requests:,} | {p.rps:,.0f} | {p.p50_ms:.2f} "
                     f"| {p.p99_ms:.2f} | {_signed(p.added_p50_ms)} | {_signed(p.added_p99_ms)} "
                     f"| {_f(p.cpu_ms_per_req, '{:.3f}')} | {p.foreign_cores:.2f} | {_note(p, floor)} |")
    return head + "\n".join(lines) + "\n"


def ttft_table(points: list[TtftPoint]) -> str:
    head = ("| gateway | clients | streams | errors | TTFT p50 ms | TTFT p99 ms | added p50 ms "
            "| added p99 ms | first token p50 ms | CPU ms/stream | note |\n"
            "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|\n")
    lines = [f"| {t.gateway} | {t.clients} | {t.streams} | {t.errors} | {t.ttft_p50_ms:.2f} "
             f"| {t.ttft_p99_ms:.2f} | {_signed(t.added_p50_ms)} | {_signed(t.added_p99_ms)} "
             f"| {t.first_token_p50_ms:.2f} | {_f(t.cpu_ms_per_stream, '{:.3f}')} | {t.note} |"
             for t in points]
    return head + "\n".join(lines) + "\n"


def targets_table(targets: list[Target]) -> str:
    head = "| target | goal | this run | met | detail |\n|---|---|--:|---|---|\n"
    verdict = {True: "yes", False: "**no**", None: "n/a"}
    lines = [f"| {t.name} | {t.goal} | {_f(t.value, '{:.3g}')} | {verdict[t.met]} | {t.detail} |"
             for t in targets]
    return head + "\n".join(lines) + "\n"


def published_table() -> str:
    head = ("| gateway | clients | direct p99 ms | gateway p99 ms | added p99 ms | direct req/s "
            "| gateway req/s |\n|---|--:|--:|--:|--:|--:|--:|\n")
    lines = [f"| {p.gateway} | {p.clients} | {p.direct_p99_ms:.2f} | {p.gateway_p99_ms:.2f} "
             f"| {p.added_p99_ms:+.2f} | {p.direct_rps:,.0f} | {p.gateway_rps:,.0f} |" for p in PUBLISHED]
    ttft = ["| gateway (streaming, 16 clients) | TTFT p50 ms | TTFT p99 ms | added p50 ms | added p99 ms |",
            "|---|--:|--:|--:|--:|"]
    ttft += [f"| {g} | {_f(a)} | {_f(b)} | {_signed(c)} | {_signed(d)} |" if a is not None
             else f"| {g} | no streaming route (HTTP 5xx) | | | |" for g, a, b, c, d in PUBLISHED_TTFT]
    return head + "\n".join(lines) + "\n\n" + "\n".join(ttft) + "\n"


def markdown(points: list[Point], ttft: list[TtftPoint], targets: list[Target], floor: float | None,
             meta: dict[str, object]) -> str:
    """The whole report: this run's tables, the targets, then the published numbers."""
    head = "\n".join(f"- {k}: {v}" for k, v in meta.items())
    return (f"{head}\n\n#### This run: non-streaming, closed loop\n\n{points_table(points, floor)}\n"
            f"#### This run: streaming time to first SSE event\n\n{ttft_table(ttft)}\n"
            f"#### Issue 17's targets on this run (ratios against LiteLLM measured in it)\n\n"
            f"{targets_table(targets)}\n"
            f"#### Published (BerriAI/ai-gateway-bench, other hardware: only a guide)\n\n"
            f"{published_table()}")


def to_json(points: list[Point], ttft: list[TtftPoint], targets: list[Target], floor: float | None,
            meta: dict[str, object]) -> dict[str, object]:
    return {"meta": meta, "direct_p99_floor_ms": floor, "points": [asdict(p) for p in points],
            "ttft": [asdict(t) for t in ttft], "targets": [asdict(t) for t in targets],
            "published": [p._asdict() for p in PUBLISHED]}
