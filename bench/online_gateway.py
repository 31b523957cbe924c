"""Learning online measured through the gateway (issue 13): 10,000 requests from a source the router
was not trained on, answered by the replay provider, feedback on 20% of them.

    python bench/online_gateway.py [--data ../shared/data] [--source llmrouter] [--requests 10000]
        [--feedback 0.2] [--explore 0.0,0.02,0.05] [--seed 0] [--every 50] [--artifact PATH]
        [--held-out-dir out/held-out] [--refit] [--out out/online_gateway]
        [--png docs/online-learning.png] [--json FILE]
        [--beat B] [--regret R] [--gap G] [--explore-at prompt|traffic] [--shared S]
        [--prior-scale P] [--optimism K] [--shared-ability C] [--lag N] (learning: knobs)
        [--feedback-seed K] (the same traffic, another 20% rated: the learner's path alone)

The offline router (`--artifact`): by default the bundled artifact when it never saw `--source`;
otherwise (the bundled one is trained on every source, llmrouter included) a held-out router,
`held_out_router`: `fit_router` with the bundled artifact's recipe (the joint fit, default
`TrainConfig` with the bundled source weights `sources.source_weights()`, hashing featurizer, each
record's source; RouterBench first, RouterBench test left out) on every source except `--source`,
after removing the training records whose prompt or bare question equals, contains or is
contained in one of the held-out source's (or RouterBench test's)
(`sources.link_contained_questions`, `transfer.honest_train`, as the leave-one-source-out table).
Deterministic: no randomness but the data. Saved as `<--held-out-dir>/router-without-<source>` and
reused while its metadata names the same source, data files and training config and it loads
(`--refit` rebuilds).

What runs is the gateway's own code: `build_runtime` (the factory the server and `Client` use), so
each request goes through `Gateway.complete` (admission, the classifier policy, the replay
deployment, accounting, the ledger writer into SQLite); feedback goes through
`LedgerService.feedback` (what `POST /v1/feedback` calls) and is learned by the runtime's
`OnlineSync` from the ledger (its `tick` called every `--every` requests instead of on its timer,
so a run is reproducible). Only HTTP is left out: a uvicorn round trip per request would
measure the 2-core machine's socket stack, not learning.

* The source's records are split in halves (`online_field.split_source`, seeded): in-domain train and
  field (deduplicated by prompt, so the replay's verbatim lookup is unambiguous).
* Replay: the field records become replay records. Sources such as llmrouter record each model's
  graded outcome but not its answer text, so the replayed text is a placeholder naming the
  outcome; the outcome itself is the recorded one, and it is what feedback reports.
* Models and prices: the source's models, each priced by its size (`billions`: the name's, or
  `SIZES` where the name gives none) at `--usd-per-b` USD per million tokens per billion parameters,
  in and out (default `open_model_rate()`: the median rate of the open models the bundled price
  map lists at DeepInfra, the host `catalog_prior.KNOWN_CATALOG_KEYS` prices them at, ~0.0057;
  an assumption, stated in the report: llmrouter and mmlu-pro record no costs), in two tiers
  (≤ 10 B parameters: small; larger: large). No context window unless `--context-window` gives one
  (the catalog prior then takes the known models' mean). These are the facts the catalog prior
  (`learn.catalog_prior`) profiles a model without outcomes from. Until session 27 every model was
  priced at 0.02 (about 3.5× the market rate of open models) with a 1,000,000-token window (clamped
  to the largest known, which only strong commercial models have), both of which made a model
  without outcomes look stronger than the trained ones: `--usd-per-b 0.02 --context-window 1000000
  --legacy-sizes` reproduces those runs.
* Variants, each on the same seeded stream (`online_sim.simulate`'s draws: prompts with
  replacement, which 20% give feedback, from which of 200 users): offline (the artifact, never
  updated: `learning.online` off), online with each exploration share, and in-domain (a classifier
  policy over an artifact `fit_router` trains on the in-domain half). Policy: the most likely model
  (`willingness_to_pay: 0`), as `online_sim`.
* Every `--every` requests the online variants' live posterior (the hub's slot, as the router
  reads it) routes the whole field (offline: the pool's latents): field quality q(n); closed(n) =
  (q(n) − q_off) / (q_in − q_off). The exploration cost is the online run's cumulative quality minus
  the exploring run's, in points.
* Adverse selection (`best_model` in each variant's JSON, one printed line per online variant): the
  field's best single model's routed share (explored requests apart), the mean quality of all models
  on the prompts it was routed, its routed and explored feedbacks, and the live posterior's mean
  P(good) of it over the field at the end (`selection_of`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from llmroute import config as llmconfig
from llmroute.catalog import resolve_model
from llmroute.chat import chat_request
from llmroute.learn import artifact as artifacts
from llmroute.learn import policy
from llmroute.learn.catalog_prior import KNOWN_CATALOG_KEYS
from llmroute.learn.data import OutcomeTable, sha256_of
from llmroute.learn.online_field import split_source
from llmroute.learn.online_sim import RATERS, Stream, half_gap
from llmroute.learn.sources import (
    SOURCE_FILES,
    SourcedRecord,
    link_contained_questions,
    load_file,
    load_sources,
    source_weights,
)
from llmroute.learn.train import TrainConfig, fit_router
from llmroute.learn.transfer import honest_train
from llmroute.routers.classifier import ClassifierRouter
from llmroute.runtime import Runtime, build_runtime
from llmroute.settings import Settings

#: Public parameter counts (billions) of models whose names give none or give one expert's size.
SIZES = {"ai21labs/jamba-1.5-large": 398.0, "cohereforai/c4ai-command-r-v01": 35.0,
         "microsoft/phi-3-mini-4k-instruct": 3.8, "mistralai/mixtral-8x7b-instruct-v0.1": 46.7,
         "mistralai/mixtral-8x7b-v0.1": 46.7, "Mixtral-8x7B-Instruct-v0.1": 46.7}
MARKS = (1000, 2000, 5000, 10000)
#: RouterBench's test split: never trained on, as for the bundled artifact.
ROUTERBENCH_TEST = "routerbench/test.jsonl"


@dataclass(frozen=True)
class Field:
    """The field half: prompts, the models' recorded outcomes (N × M), the stream's draws."""

    models: tuple[str, ...]
    prompts: tuple[str, ...]
    quality: np.ndarray
    idx: np.ndarray
    gives: np.ndarray
    raters: np.ndarray
    #: Requests sent by one noisy rater ("troll") who reports every answer it rates as a failure
    #: (`--troll`; none by default). Drawn apart from the stream, which stays the same.
    trolls: np.ndarray | None = None

    def user(self, t: int) -> str:
        return "troll" if self.trolls is not None and self.trolls[t] else f"user-{int(self.raters[t])}"


@dataclass
class Run:
    """One variant's numbers."""

    name: str
    quality: list[float] = field(default_factory=list)
    cost: list[float] = field(default_factory=list)
    explored: list[bool] = field(default_factory=list)
    snapshots: list[tuple[int, float]] = field(default_factory=list)
    seconds: float = 0.0
    ledger_split: dict[str, int] = field(default_factory=dict)
    #: each request's answering model (a column of `Field.quality`); empty where not recorded
    picked: list[int] = field(default_factory=list)
    #: the live posterior's mean P(good) of each model over the field at the end (online only)
    p_end: list[float] = field(default_factory=list)

    def cumulative(self, n: int) -> tuple[float, float]:
        return float(np.mean(self.quality[:n])), float(np.mean(self.cost[:n]))


def billions(model: str, legacy: bool = False) -> float:
    """Parameters in billions: `SIZES`' public count, else the name's (e.g. llama-3.1-8b -> 8), else
    7. `legacy`: the name's alone, as until session 27 (mixtral-8x7b -> 7, phi-3-mini -> 7)."""
    if not legacy and model in SIZES:
        return SIZES[model]
    found = re.findall(r"(\d+(?:\.\d+)?)b(?![a-z])", model.lower())
    return float(found[-1]) if found else 7.0


def open_model_rate() -> float:
    """USD per million tokens per billion parameters (mean of input and output) of the open models the
    bundled price map lists at DeepInfra (`catalog_prior.KNOWN_CATALOG_KEYS`): their median."""
    rates = []
    for name, key in KNOWN_CATALOG_KEYS.items():
        spec = resolve_model(key, None) if key.startswith("deepinfra/") else None
        if spec is not None and spec.input_per_m is not None and spec.output_per_m is not None:
            rates.append(float(spec.input_per_m + spec.output_per_m) / 2 / billions(name))
    return float(np.median(rates))


@dataclass(frozen=True)
class Catalog:
    """What the bench tells the gateway about each model: a price per billion parameters, a context
    window (None: unknown), and whether sizes come from names alone (as until session 27)."""

    usd_per_b: float
    context_window: int | None = None
    legacy_sizes: bool = False

    def price(self, model: str) -> float:
        return round(self.usd_per_b * billions(model, self.legacy_sizes), 6)

    def size(self, model: str) -> float:
        return billions(model, self.legacy_sizes)


#: The inputs every run used until session 27 (`--usd-per-b 0.02 --context-window 1000000
#: --legacy-sizes`).
LEGACY_CATALOG = Catalog(0.02, 1_000_000, legacy_sizes=True)


def catalog_of(args: argparse.Namespace) -> Catalog:
    """The `--usd-per-b`, `--context-window` and `--legacy-sizes` options."""
    rate = open_model_rate() if args.usd_per_b is None else args.usd_per_b
    return Catalog(rate, args.context_window, args.legacy_sizes)


def field_of(records: Sequence[SourcedRecord], seed: int, requests: int, feedback: float,
             troll: float = 0.0, feedback_seed: int | None = None) -> tuple[Field, OutcomeTable]:
    """The field (deduplicated by prompt) and the in-domain training table. With `feedback_seed`,
    which requests give feedback and from which user are drawn again from their own seed: the same
    traffic, another 20% rated (`--feedback-seed`: how far the learner's path alone moves a run)."""
    train, rest, _ = split_source(records, seed)
    full = OutcomeTable.of(r.record for r in records)
    models = tuple(m for j, m in enumerate(full.models) if not np.isnan(full.quality[:, j]).any())
    seen: set[str] = set()
    field_records = [r.record for r in rest if not (r.prompt in seen or seen.add(r.prompt))]
    table = OutcomeTable.of(field_records, models)
    stream = Stream.draw(len(table.prompts), requests, feedback, seed)   # online_sim.simulate's
    idx, gives, raters = stream.idx, stream.gives, stream.raters
    if feedback_seed is not None:
        again = np.random.default_rng([seed, 11, feedback_seed])
        gives, raters = again.random(requests) < feedback, again.integers(0, RATERS, requests)
    trolls = np.random.default_rng([seed, 7]).random(requests) < troll if troll > 0 else None
    return (Field(models, tuple(table.prompts), table.quality, idx, gives, raters, trolls),
            OutcomeTable.of((r.record for r in train), models))


def write_replay(fld: Field, path: Path) -> None:
    """Replay records of the field: the recorded outcome, a placeholder for the unrecorded text."""
    with path.open("w", encoding="utf-8") as out:
        for i, prompt in enumerate(fld.prompts):
            models = {m: {"response": f"(replayed: recorded outcome {fld.quality[i, j]:g})",
                          "outcome": float(fld.quality[i, j]), "cost_usd": None,
                          "output_chars": 200}
                      for j, m in enumerate(fld.models)}
            out.write(json.dumps({"id": f"field-{i}", "prompt": prompt, "models": models}) + "\n")


def settings_for(fld: Field, work: Path, name: str, artifact: Path, learning: dict[str, Any],
                 catalog: Catalog) -> Settings:
    """A gateway over the replay deployment with one classifier policy."""
    models: dict[str, dict[str, Any]] = {}
    for m in fld.models:
        price = catalog.price(m)
        models[m] = {"deployment": "replay", "upstream_name": m, "input_per_m": str(price),
                     "output_per_m": str(price), "tier": "small" if catalog.size(m) <= 10 else "large"}
        if catalog.context_window is not None:
            models[m]["context_window"] = catalog.context_window
    small = min(fld.models, key=catalog.size)
    large = max(fld.models, key=catalog.size)
    raw = {
        "models": models, "catalog": {"bundled_prices": False}, "rules": [],
        "tiers": {"small": {"model": small}, "large": {"model": large}},
        "policies": {"learned": {"router": "classifier", "artifact": str(artifact),
                                 "willingness_to_pay": 0}},
        "routing": {"default_policy": "learned", "baseline_model": large},
        "providers": {"replay": {"type": "replay", "base_url": str(work / "replay.jsonl")}},
        "resilience": {"cooldown": {"failures": 1_000_000, "cooldown_s": 0}},
        "ledger": {"url": f"sqlite:///{work / name}.db", "spool_path": str(work / f"{name}.spool"),
                   "flush_interval_s": 0.05, "reads": "inline"},
        "learning": learning, "alerts": {"enabled": False},
    }
    path = work / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return llmconfig.load(path, environ={})


def classifier_of(runtime: Runtime) -> ClassifierRouter:
    router = runtime.gateway.engine.router("learned")[1]
    assert isinstance(router, ClassifierRouter)
    return router


def field_quality(router: ClassifierRouter, z: np.ndarray, fld: Field) -> float:
    """Mean recorded quality of the field when `router`'s current beliefs pick (most likely)."""
    names = list(fld.models)
    if router.online is not None:
        slot = router.online.slot
        p = slot.profiles.p_good_many(z)[:, [slot.rows[n] for n in names]]
    else:
        p, _ = router.model.predict_latent(z, np.zeros(len(z)), names)[:2]
    choice = policy.by_tradeoff_many(p, np.zeros_like(p), 0.0)
    return float(fld.quality[np.arange(len(choice)), choice].mean())


async def give_feedback(runtime: Runtime, request_id: str, quality: float) -> None:
    """A recorded outcome as feedback: task success when it is 0 or 1, else a rating of 1–5."""
    assert runtime.ledger is not None
    if quality in (0.0, 1.0):
        await runtime.ledger.feedback(request_id, success=quality == 1.0)
    else:
        await runtime.ledger.feedback(request_id, rating=1 + round(4 * quality))


async def run_variant(settings: Settings, name: str, fld: Field, every: int, lag: int = 0) -> Run:
    """Serve the stream through the gateway; learn from the feedback every `every` requests (a
    feedback is given once `lag` more requests have been served: the delay over HTTP, where the
    learner on its timer sees feedback a few hundred requests late, reproducibly)."""
    runtime = build_runtime(settings, metrics=False, background=False)
    await runtime.start()
    run = Run(name)
    router = classifier_of(runtime)
    z = router.model.latent_many(list(fld.prompts)).astype(np.float64)
    col = {m: j for j, m in enumerate(fld.models)}
    sync, ledger = runtime.online, runtime.ledger
    assert ledger is not None
    if sync is not None:
        sync.lag_s = 0.0
    run.snapshots.append((0, field_quality(router, z, fld)))
    pending: list[tuple[int, str, float]] = []
    start = time.monotonic()
    for t, i in enumerate(fld.idx):
        prompt = fld.prompts[int(i)]
        req = chat_request({"model": "auto", "messages": [{"role": "user", "content": prompt}],
                            "user": fld.user(t)})
        rid = f"{name}-{t}"
        _, outcome = await runtime.gateway.complete(req, request_id=rid)
        q = float(fld.quality[int(i), col[outcome.model]])
        run.quality.append(q)
        run.picked.append(col[outcome.model])
        run.cost.append(float(outcome.cost_usd or 0))
        run.explored.append(outcome.plan.explored)
        if fld.gives[t]:
            pending.append((t, rid, 0.0 if fld.user(t) == "troll" else q))
        if (t + 1) % every == 0 or t + 1 == len(fld.idx):
            due = [p for p in pending if p[0] + lag <= t]
            pending = [p for p in pending if p[0] + lag > t]
            for _, rid_given, q_given in due:  # the feedback endpoint's path (waits for the flush)
                await give_feedback(runtime, rid_given, q_given)
            if sync is not None:
                await sync.tick()
                run.snapshots.append((t + 1, field_quality(router, z, fld)))
    run.seconds = time.monotonic() - start
    run.p_end = posterior_end(router, z, fld)
    found = await ledger.store.aggregate("explored")
    run.ledger_split = {g.label: g.tally.requests for g in found.groups}
    await runtime.aclose()
    return run


def posterior_end(router: ClassifierRouter, z: np.ndarray, fld: Field) -> list[float]:
    """The live posterior's mean P(good) of each field model over the field prompts (latents `z`);
    empty when `router` does not learn online."""
    if router.online is None:
        return []
    slot = router.online.slot
    p_end = slot.profiles.p_good_many(z)[:, [slot.rows[m] for m in fld.models]]
    return [float(v) for v in p_end.mean(axis=0)]


def print_run(run: Run, fld: Field, requests: int) -> None:
    """One variant's line (seconds, cumulative quality) and, when it learnt, its `best_model` line."""
    print(f"{run.name}: {run.seconds:.0f} s, cumulative quality {run.cumulative(requests)[0]:.3f}",
          flush=True)
    chosen = selection_of(run, fld)
    if chosen is not None and chosen["posterior_p_end"] is not None:
        where = chosen["all_models_quality_where_routed"]
        print(f"  best model {chosen['model']} (field {chosen['field_quality']:.3f}): routed on "
              f"{chosen['routed_share']:.1%} of requests, where all models score "
              f"{'n/a' if where is None else f'{where:.3f}'} (stream "
              f"{chosen['all_models_quality_stream']:.3f}); posterior P at the end "
              f"{chosen['posterior_p_end']:.3f}", flush=True)


def selection_of(run: Run, fld: Field) -> dict[str, Any] | None:
    """Where the field's best single model was routed (not explored), and what the learner ended
    up believing of it: the measure of adverse selection. A model the greedy choice sends only the
    prompts most models fail (the incumbent is confidently bad there, the newcomer is still near
    its prior) is rated on those, and a posterior whose update is mostly a model's level carries
    that low rating to every prompt (docs/benchmarks.md, session 24). None when `run` recorded no
    picks."""
    if not run.picked:
        return None
    best = int(fld.quality.mean(axis=0).argmax())
    n = len(run.picked)
    idx = np.asarray(fld.idx[:n], dtype=np.int64)
    picked = np.asarray(run.picked, dtype=np.int64)
    explored = np.asarray(run.explored[:n], dtype=bool)
    gives = np.asarray(fld.gives[:n], dtype=bool)
    routed = (picked == best) & ~explored
    where = fld.quality[idx[routed]]
    return {"model": fld.models[best], "field_quality": float(fld.quality[:, best].mean()),
            "routed_share": float(routed.mean()),
            "routed_feedbacks": int((routed & gives).sum()),
            "explored_feedbacks": int((picked == best)[explored & gives].sum()),
            "all_models_quality_where_routed": float(where.mean()) if where.size else None,
            "own_quality_where_routed": float(where[:, best].mean()) if where.size else None,
            "all_models_quality_stream": float(fld.quality[idx].mean()),
            "posterior_p_end": run.p_end[best] if run.p_end else None}


def summary(runs: list[Run], q_off: float, q_in: float, requests: int,
            fld: Field | None = None) -> dict[str, Any]:
    by = {r.name: r for r in runs}
    out: dict[str, Any] = {"q_offline_field": q_off, "q_indomain_field": q_in, "variants": {}}
    base = by.get("online")
    for r in runs:
        marks = [n for n in MARKS if n <= requests]
        entry: dict[str, Any] = {
            "cumulative": {n: r.cumulative(n) for n in marks},
            "explored": int(sum(r.explored)), "ledger_split": r.ledger_split,
            "seconds": round(r.seconds, 1), "requests_per_s": round(requests / r.seconds, 1)}
        chosen = selection_of(r, fld) if fld is not None else None
        if chosen is not None:
            entry["best_model"] = chosen
        if len(r.snapshots) > 1:
            snaps = [(n, q, 0.0) for n, q in r.snapshots]
            entry["half_gap_first"], entry["half_gap_for_good"] = half_gap(snaps, q_off, q_in)
            entry["field_quality_end"] = r.snapshots[-1][1]
        if base is not None and r is not base and r.name.startswith("online"):
            entry["exploration_loss_points"] = 100 * (base.cumulative(requests)[0]
                                                      - r.cumulative(requests)[0])
            flags = np.asarray(r.explored)
            entry["explored_quality"] = float(np.asarray(r.quality)[flags].mean()) if flags.any() \
                else None
        out["variants"][r.name] = entry
    return out


def save_png(runs: list[Run], q_off: float, q_in: float, source: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for ax in (left,):
        ax.axhline(q_off, color="grey", linestyle="--", label="offline (never updated)")
        ax.axhline(q_in, color="black", linestyle=":", label="in-domain (trained on the source)")
        ax.axhline((q_off + q_in) / 2, color="grey", linewidth=0.5, label="half the gap")
    for r in runs:
        if len(r.snapshots) > 1:
            left.plot([s[0] for s in r.snapshots], [s[1] for s in r.snapshots], label=r.name)
        n = np.arange(1, len(r.quality) + 1)
        right.plot(n[99:], (np.cumsum(r.quality) / n)[99:], label=r.name)
    left.set(xlabel="requests", ylabel="field quality of the live posterior",
             title=f"learning online on {source}, through the gateway")
    right.set(xlabel="requests", ylabel="cumulative mean quality", title="served quality")
    left.legend(loc="lower right", fontsize=7)
    right.legend(loc="lower right", fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def trained_on(artifact: Path) -> list[str]:
    """The data files the artifact's metadata says it was trained on."""
    return [f["path"] for f in artifacts.read_metadata(artifact).get("training", {}).get("files", [])]


def held_out(artifact: Path, source: str) -> None:
    files = trained_on(artifact)
    if any(f.startswith(f"{source}/") for f in files):
        raise SystemExit(f"{artifact} was trained on {source} ({files}): not a held-out source; "
                         "pass --artifact with a router that never saw it, or leave --artifact out "
                         "for a held-out router")


def held_out_training(data: Path, source: str
                      ) -> tuple[dict[str, list[SourcedRecord]], list[SourcedRecord], int]:
    """Records per training file of every source but `source` (RouterBench test left out) and, after
    removing those sharing a prompt or question with `source` or RouterBench test, the training
    records in file order (RouterBench first); how many were removed."""
    per_file = {f: load_file(data / f, name) for name in SOURCE_FILES if name != source
                for f in SOURCE_FILES[name] if f != ROUTERBENCH_TEST}
    test = [] if source == "routerbench" or not (data / ROUTERBENCH_TEST).exists() \
        else load_file(data / ROUTERBENCH_TEST, "routerbench")
    held = load_sources(data, [source])[source]
    linked = link_contained_questions({"held-out": held, "routerbench-test": test, **per_file})
    kept: list[SourcedRecord] = []
    removed = 0
    for f in per_file:
        exclude = linked["held-out"] + ([] if f.startswith("routerbench/") else linked["routerbench-test"])
        honest, gone = honest_train(linked[f], exclude)
        kept.extend(honest)
        removed += gone
    return per_file, kept, removed


def held_out_router(data: Path, source: str, folder: Path, refit: bool = False) -> Path:
    """A router trained on every source but `source` (see the module docstring), saved under
    `folder` and reused while its metadata matches the data; the artifact's path."""
    path = folder / f"router-without-{source}"
    files = sorted(f for name in SOURCE_FILES if name != source for f in SOURCE_FILES[name]
                   if f != ROUTERBENCH_TEST)
    shas = {f: sha256_of(data / f) for f in files}
    config = TrainConfig(source_weights=source_weights())
    if not refit and path.with_suffix(".json").exists():
        try:
            training = artifacts.read_metadata(path).get("training", {})
            artifacts.load(path)
        except artifacts.ArtifactError:
            training = {}
        if training.get("held_out_source") == source and training.get("config") == repr(config) and \
                {f["path"]: f["sha256"] for f in training.get("files", [])} == shas:
            return path.with_suffix(".json")
    t0 = time.monotonic()
    per_file, kept, removed = held_out_training(data, source)
    table = OutcomeTable.of(r.record for r in kept)
    model = fit_router(table, config, sources=[r.source for r in kept])
    training = {"held_out_source": source, "recipe": "bench/online_gateway.py held_out_router",
                "config": repr(config),
                "files": [{"path": f, "sha256": shas[f], "records": len(per_file[f])} for f in per_file],
                "counts": {"prompts": len(table.prompts), "models": len(table.models),
                           "removed_sharing_a_prompt": removed},
                "seconds": round(time.monotonic() - t0, 1)}
    folder.mkdir(parents=True, exist_ok=True)
    written = artifacts.save(model, path, training)
    print(f"held-out router: {written}, {len(table.prompts)} prompts, {len(table.models)} models, "
          f"{removed} records removed as {source}'s, {training['seconds']} s", flush=True)
    return written


def offline_artifact(args: argparse.Namespace) -> Path:
    """`--artifact`; else the bundled artifact if it never saw the source; else a held-out router."""
    if args.artifact:
        return Path(args.artifact)
    bundled = artifacts.default_path()
    if not any(f.startswith(f"{args.source}/") for f in trained_on(bundled)):
        return bundled
    return held_out_router(Path(args.data), args.source, Path(args.held_out_dir), args.refit)


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    artifact = offline_artifact(args)
    held_out(artifact, args.source)
    records = load_sources(args.data, [args.source])[args.source]
    fld, train = field_of(records, args.seed, args.requests, args.feedback, args.troll,
                          args.feedback_seed)
    work = Path(args.out)
    work.mkdir(parents=True, exist_ok=True)
    for old in work.glob("*.db*"):
        old.unlink()
    write_replay(fld, work / "replay.jsonl")
    t0 = time.monotonic()
    inside = artifacts.save(fit_router(train), work / "indomain")
    fit_s = time.monotonic() - t0
    variants: list[tuple[str, Path, dict[str, Any]]] = [
        ("offline", artifact, {}), ("in-domain", inside.with_suffix(""), {})]
    for share in (float(s) for s in args.explore.split(",") if s.strip()):
        name = variant_name(share, [v[0] for v in variants])
        # the learner syncs by hand (`OnlineSync` every `--every`), not on a timer
        variants.append((name, artifact, learning_of(args, share, reload_s=3600)))
    runs = []
    catalog = catalog_of(args)
    for name, path, learning in variants:
        settings = settings_for(fld, work, re.sub(r"[^a-z0-9]+", "-", name), path, learning, catalog)
        runs.append(await run_variant(settings, name, fld, args.every, args.lag))
        print_run(runs[-1], fld, args.requests)
    q_off = runs[0].snapshots[0][1]
    q_in = runs[1].snapshots[0][1]
    out = summary(runs, q_off, q_in, args.requests, fld)
    out.update({"lag": args.lag, **knobs_of(args), "source": args.source,
                "feedback": args.feedback, "field_prompts": len(fld.prompts), "models": list(fld.models),
                "in_domain_train_records": len(train.prompts), "fit_router_s": round(fit_s, 1),
                "artifact": str(artifact), "artifact_trained_on": trained_on(artifact),
                "machine": f"{platform.machine()} {platform.node()}",
                "date": datetime.now(UTC).isoformat(timespec="seconds"),
                "prices": {m: catalog.price(m) for m in fld.models}})
    if args.png:
        save_png(runs, q_off, q_in, args.source, Path(args.png))
    return out


def knobs_of(args: argparse.Namespace) -> dict[str, Any]:
    """The knobs `common_parser` reads, as the output JSON records them."""
    return {"seed": args.seed, "requests": args.requests, "strategy": args.strategy,
            "pending": args.pending, "pending_s": args.pending_s, "gap": args.gap, "beat": args.beat,
            "regret": args.regret, "decay": args.decay, "explore_at": args.explore_at,
            "forget": args.forget, "ability_var": args.ability_var, "prior_scale": args.prior_scale,
            "optimism": args.optimism, "shared": args.shared, "shared_ability": args.shared_ability,
            **rater_settings(args), "troll": args.troll, "feedback_seed": args.feedback_seed,
            "usd_per_b": catalog_of(args).usd_per_b, "context_window": args.context_window,
            "legacy_sizes": args.legacy_sizes}


def learning_of(args: argparse.Namespace, share: float, reload_s: float) -> dict[str, Any]:
    """The `learning:` block of one online variant (exploration share `share`) from the knobs
    `common_parser` reads; unset knobs keep the settings' defaults."""
    return {"online": True, "explore": share, "seed": args.seed, "reload_s": reload_s,
            "forget": args.forget, "explore_strategy": args.strategy,
            "ability_var": args.ability_var, "prior_scale": args.prior_scale,
            "optimism": args.optimism, "shared_ability": args.shared_ability,
            "explore_pending": args.pending, "explore_pending_s": args.pending_s,
            "explore_gap": args.gap, "explore_decay": args.decay, "explore_at": args.explore_at,
            **rater_settings(args),
            **({} if args.beat is None else {"explore_beat": args.beat}),
            **({} if args.regret is None else {"explore_regret": args.regret}),
            **({} if args.shared is None else {"shared": args.shared})}


def rater_settings(args: argparse.Namespace) -> dict[str, float]:
    """`learning.rater_floor` / `rater_share` when given (else the settings' defaults)."""
    return {key: value for key, value in (("rater_floor", args.rater_floor),
                                          ("rater_share", args.rater_share)) if value is not None}


def variant_name(share: float, taken: Sequence[str]) -> str:
    """"online" (share 0) or "online+explore S"; a repeated share gets "#2", "#3"... (the same
    configuration run twice: over HTTP, the run-to-run noise floor; `bench/online_paired.py`)."""
    name = "online" if share == 0 else f"online+explore {share:g}"
    n = 1 + sum(1 for t in taken if t == name or t.startswith(name + "#"))
    return name if n == 1 else f"{name}#{n}"


def common_parser(doc: str | None, explore: str, out: str) -> argparse.ArgumentParser:
    """The options this script and `online_http.py` share (`explore`, `out`: their defaults)."""
    parser = argparse.ArgumentParser(description=doc,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="../shared/data")
    parser.add_argument("--source", default="llmrouter")
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--feedback", type=float, default=0.2)
    parser.add_argument("--explore", default=explore)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--every", type=int, default=50)
    parser.add_argument("--forget", type=float, default=0.0)
    parser.add_argument("--strategy", choices=("challenger", "thompson"), default="challenger")
    parser.add_argument("--ability-var", type=float, default=0.0)
    parser.add_argument("--shared", type=float, default=None,
                        help="learning.shared (default: unset, 0.25 when exploring, else 0)")
    parser.add_argument("--pending", type=int, default=0,
                        help="learning.explore_pending: most explorations of one model in flight")
    parser.add_argument("--pending-s", type=float, default=30.0,
                        help="learning.explore_pending_s: an exploration's time in flight")
    parser.add_argument("--prior-scale", type=float, default=1.0, help="learning.prior_scale")
    parser.add_argument("--shared-ability", type=float, default=0.0, help="learning.shared_ability")
    parser.add_argument("--optimism", type=float, default=0.0, help="learning.optimism")
    parser.add_argument("--regret", type=float, default=None,
                        help="learning.explore_regret (default: the setting's)")
    parser.add_argument("--gap", type=float, default=1.0, help="learning.explore_gap")
    parser.add_argument("--beat", type=float, default=None,
                        help="learning.explore_beat (default: the setting's, 0.1; 0 = no bound)")
    parser.add_argument("--decay", type=float, default=0.0, help="learning.explore_decay")
    parser.add_argument("--explore-at", choices=("prompt", "traffic"), default="prompt",
                        help="learning.explore_at: where the challenger is drawn")
    parser.add_argument("--feedback-seed", type=int, default=None,
                        help="draw which requests are rated (and by whom) from this seed instead "
                             "of the stream's: the same traffic, another sample rated")
    parser.add_argument("--troll", type=float, default=0.0,
                        help="share of requests sent by one noisy rater who rates every answer a "
                             "failure (the stream and the other raters' feedback stay the same)")
    parser.add_argument("--rater-floor", type=float, default=None,
                        help="learning.rater_floor (default: the setting's, 0.25)")
    parser.add_argument("--rater-share", type=float, default=None,
                        help="learning.rater_share (default: the setting's, 0.1; floor 10 and "
                             "share 0 give the rule before it: the cap alone)")
    parser.add_argument("--usd-per-b", type=float, default=None,
                        help="price per million tokens per billion parameters (default: "
                             "open_model_rate(), the bundled price map's open models; until "
                             "session 27: 0.02)")
    parser.add_argument("--context-window", type=int, default=None,
                        help="every model's context window (default: none, unknown; until session "
                             "27: 1000000)")
    parser.add_argument("--legacy-sizes", action="store_true",
                        help="sizes from names alone, as until session 27 (no SIZES table)")
    parser.add_argument("--artifact", default=None,
                        help="offline router; default: the bundled one if it never saw --source, "
                             "else a held-out router (see --held-out-dir)")
    parser.add_argument("--held-out-dir", default="out/held-out")
    parser.add_argument("--refit", action="store_true", help="rebuild the held-out router")
    parser.add_argument("--out", default=str(Path(tempfile.gettempdir()) / f"{out}-{os.getpid()}"),
                        help="work folder (its databases are deleted first; default: one per process, "
                             "so runs side by side do not delete each other's)")
    parser.add_argument("--json", default=None)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    parser = common_parser(__doc__, "0.0,0.02,0.05", "online_gateway")
    parser.add_argument("--png", default=None)
    parser.add_argument("--lag", type=int, default=0,
                        help="give each feedback this many requests after its request (0: at the "
                             "next --every boundary)")
    args = parser.parse_args(argv)
    out = asyncio.run(main_async(args))
    text = json.dumps(out, indent=1, default=str)
    print(text)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
