"""Issue 17's verdict as rich tables (`run.py --targets [--profile FILE] [--aigw FILE]`): the targets
(`targets.py`), what the floor and llmroute's own work are in each miss, and, with a parts profile
(`profile_parts.py`), which parts that own work is made of and which of them a miss would need gone.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import aigw_core
from profile_parts import Profile, needed_parts
from report import GatewayInfo, Row
from rich.console import Console
from rich.table import Table
from targets import Split, Verdict, verdicts

STYLE = {"met": "[bold green]met[/]", "not met": "[bold red]NOT met[/]", "n/a": "[dim]n/a[/]",
         "recorded": "[cyan]recorded[/]", "not measurable": "[yellow]not measurable[/]"}


def _v(value: float | None, unit: str) -> str:
    if value is None:
        return "–"
    if unit == "req/s":
        return f"{value:,.0f} req/s"
    if unit == "×":
        return f"{value:.2f}×"
    return f"{value:.3f} {unit}"


def split_text(split: Split, unit: str) -> str:
    """The miss in words: floor, own work, what own work would have to fall to."""
    u = "ms CPU" if unit in ("req/s", "ms/req") else "ms"
    parts = []
    if split.floor_canned is not None:
        parts.append(f"server+JSON (floor-canned) {split.floor_canned:.3f}")
    if split.floor is not None:
        parts.append(f"floor (+ upstream client) {split.floor:.3f}")
    if split.own is not None:
        parts.append(f"llmroute's own {split.own:.3f} {u}")
    text = ", ".join(parts)
    if split.own_goal is not None and not split.floor_alone_misses and split.factor is not None:
        text += f"; own work must fall to {split.own_goal:.3f} {u} ({split.factor:.2f}× today's)"
    if split.note:  # says so when the floor alone misses
        text += f" [{split.note}]"
    return text


def closing_text(verdict: Verdict, profile: Profile) -> str:
    """Which parts of the own work (instruction shares) a CPU miss would need gone."""
    split = verdict.split
    if split is None or split.factor is None:
        return ""
    if split.floor_alone_misses:
        return "no part of llmroute's own work: the floor alone is over the goal"
    cut, chosen = needed_parts(profile, split.factor)
    head = f"by instruction share, own work must lose {cut:.0%}: "
    if len(chosen) == 1:
        return head + f"{chosen[0][0]} alone is {chosen[0][1]:.0%}"
    names = " + ".join(f"{name} {share:.0%}" for name, share in chosen)
    reached = sum(share for _, share in chosen)
    if reached < cut:
        return head + f"more than all the parts counted ({reached:.0%})"
    return head + f"no single part is that large; the fewest that add up to it: {names} = {reached:.0%}"


def verdict_table(items: list[Verdict], profile: Profile | None) -> Table:
    t = Table(title="Issue 17 targets on this run (goals in absolute terms of this run)", header_style="bold",
              show_lines=True)
    for col in ("target", "source", "measured", "goal in this run", "verdict",
                "why not / what would close it"):
        t.add_column(col)
    for v in items:
        why = v.why
        if v.split is not None:
            why = split_text(v.split, v.unit + ("/req" if v.unit == "ms" and v.own_cpu else ""))
            if profile is not None and v.own_cpu:
                closing = closing_text(v, profile)
                why = f"{why}\n{closing}" if closing else why
        t.add_row(v.target, v.source, _v(v.measured, v.unit), v.goal_text, STYLE.get(v.status, v.status),
                  why)
    return t


def parts_table(profile: Profile, own_ms: float | None) -> Table:
    t = Table(title="llmroute's own work by part (callgrind instructions per request, not CPU time)",
              header_style="bold")
    for col, justify in (("part", "left"), ("k instructions", "right"), ("share of own", "right"),
                         ("≈ ms of own CPU in this run", "right")):
        t.add_column(col, justify=justify)  # type: ignore[arg-type]
    for name, value, share in profile.shares():
        t.add_row(name, f"{value / 1e3:,.1f}", f"{share:.1%}",
                  "–" if own_ms is None else f"{share * own_ms:.3f}")
    t.add_row("[bold]own (path + ledger)[/]", f"{profile.own / 1e3:,.1f}", "100%",
              "–" if own_ms is None else f"{own_ms:.3f}")
    meta = profile.meta
    t.caption = (f"`profile_parts.py` of {meta.get('tree', 'a tree')} at {meta.get('date', '?')}. The ms "
                 "column "
                 "spreads this run's own CPU (llmroute − floor, 64 clients) by instruction share, an "
                 "approximation. orchestration/other holds the upstream client and `record` (see "
                 "profile_parts.py)")
    return t


def aigw_verdicts(data: dict[str, object]) -> list[Verdict]:
    """aigw.py's own targets, from its `--json`, as rows of the same table (no floor split there)."""
    fields = set(aigw_core.Point.__dataclass_fields__)
    tfields = set(aigw_core.TtftPoint.__dataclass_fields__)
    raw, rawt = data.get("points"), data.get("ttft")
    points = aigw_core.with_added([aigw_core.Point(**{k: v for k, v in p.items() if k in fields})
                                   for p in (raw if isinstance(raw, list) else [])])
    ttft = aigw_core.ttft_with_added([aigw_core.TtftPoint(**{k: v for k, v in p.items() if k in tfields})
                                      for p in (rawt if isinstance(rawt, list) else [])])
    out = []
    for t in aigw_core.targets(points, ttft):
        status = "n/a" if t.met is None else ("met" if t.met else "not met")
        out.append(Verdict(t.name, "aigw.py", "", t.value, None, t.goal, status, why=t.detail))
    return out


def own_cpu_ms(rows: list[Row]) -> float | None:
    by = {(r.gateway, r.scenario): r for r in rows if r.requests > 0}
    for scenario in ("0ms c=64", "0ms c=16"):
        s, f = by.get(("llmroute", scenario)), by.get(("floor", scenario))
        if s is not None and f is not None:
            return s.cpu_ms_per_req - f.cpu_ms_per_req
    return None


def add_verdict_arguments(p: argparse.ArgumentParser) -> None:
    """run.py's `--targets`, `--profile FILE`, `--aigw FILE` (either file implies `--targets`)."""
    p.add_argument("--targets", action="store_true",
                   help="after the tables, issue 17's verdict: each target met or why not (targets.py)")
    p.add_argument("--profile", type=Path, default=None, metavar="FILE",
                   help="with --targets: a parts profile (profile_parts.py --out FILE) to name the parts")
    p.add_argument("--aigw", type=Path, default=None, metavar="FILE",
                   help="with --targets: also aigw.py's targets from its --json FILE")


def print_verdict(console: Console, rows: list[Row], infos: dict[str, GatewayInfo], cores: int,
                  profile_path: Path | None = None, aigw_path: Path | None = None) -> list[Verdict]:
    """The verdict tables after run.py's own (rows already through `report.compare`)."""
    items = verdicts(rows, infos, cores)
    if aigw_path is not None:
        items += aigw_verdicts(json.loads(aigw_path.read_text()))
    profile = None
    if profile_path is not None:
        from profile_parts import load
        profile = load(profile_path)
    console.print(verdict_table(items, profile))
    if profile is not None:
        console.print(parts_table(profile, own_cpu_ms(rows)))
    used = [r for r in rows if r.gateway in ("llmroute", "litellm", "upstream", "floor", "floor-canned")]
    noisy = [r for r in used if r.disturbed]
    if noisy:
        console.print(f"[bold yellow]The verdict uses {len(noisy)} DISTURBED row(s) of {len(used)} "
                      f"(foreign load up to {max(r.foreign_cores for r in noisy):.2f} cores): indicative "
                      "only; rerun on a quiet machine.[/]")
    return items
