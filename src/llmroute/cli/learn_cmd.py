"""`llmroute train`, `predict`, `eval` and `calibrate`: the learning lab on the command line."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from ..learn.data import DataError, OutcomeRecord, OutcomeTable, load_records
from .common import EXIT_ERROR, csv_option, err, json_option, out, wide_option, write_csv
from .eval_table import print_report, strategy_record

#: The routers `llmroute eval` compares (all by default).
ROUTERS = "random,rules,classifier,cascade,oracle"


def _split(value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


def read_records(paths: Sequence[Path]) -> list[OutcomeRecord]:
    """Every record of every file, or a clear error naming the file and line."""
    records: list[OutcomeRecord] = []
    for path in paths:
        if not path.is_file():
            err.print(f"[red]error:[/] no such file: {path}")
            raise typer.Exit(EXIT_ERROR)
        try:
            records += load_records(path)
        except DataError as exc:
            err.print(f"[red]error:[/] {exc}")
            raise typer.Exit(EXIT_ERROR) from None
    if not records:
        err.print("[red]error:[/] no records in the data given")
        raise typer.Exit(EXIT_ERROR)
    return records


def train(
    data: list[Path] = typer.Option([], "--data", "-d", help="Outcome or label JSONL (repeatable)."),
    from_ledger: bool = typer.Option(False, "--from-ledger", help="Also train on logged requests "
                                     "joined with their feedback (needs the ledger)."),
    models: str | None = typer.Option(None, "--models", help="Only these models (comma list)."),
    out_path: Path = typer.Option(..., "--out", "-o", help="Artifact path (writes .json + .npz)."),
    rank: int = typer.Option(16, "--rank", help="Latent skills."),
    c: float = typer.Option(0.1, "--reg-c", help="Inverse L2 strength of the per-model regressions."),
    config: Path | None = typer.Option(None, "--config", "-c", help="Config (the ledger's URL)."),
) -> None:
    """Train a learned router from outcome records (or complexity labels, or the ledger's logged
    requests with feedback) and save the artifact."""
    from ..learn import artifact
    from ..learn.train import TrainConfig, fit_router

    if not data and not from_ledger:
        err.print("[red]error:[/] give --data FILE (outcome records or complexity labels) and/or "
                  "--from-ledger")
        raise typer.Exit(EXIT_ERROR)
    columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
    with Progress(*columns, console=err) as bar:
        task = bar.add_task("reading data", total=3)
        records = read_records(data) if data else []
        if from_ledger:
            records += _ledger_records(config)
        if not records:
            err.print("[red]error:[/] no training records (ledger entries need stored prompt text "
                      "and feedback)")
            raise typer.Exit(EXIT_ERROR)
        table = OutcomeTable.of(records, _split(models))
        bar.update(task, advance=1, description=f"training on {len(records)} records × "
                                                f"{len(table.models)} models")
        model = fit_router(table, TrainConfig(c=c, rank=rank))
        bar.update(task, advance=1, description="saving")
        meta = {"data": [str(p) for p in data] + (["ledger"] if from_ledger else []),
                "records": len(records), "models": len(table.models)}
        written = artifact.save(model, out_path, meta)
        bar.update(task, advance=1, description="done")
    out.print(f"[green]✓[/] trained on {len(records)} records, {len(table.models)} models → {written}")


def _ledger_records(config: Path | None) -> list[OutcomeRecord]:
    import asyncio

    from ..learn.from_ledger import load_from_ledger
    from ..ledger import open_store
    from .common import engine_from, friendly_errors

    with friendly_errors():
        url = engine_from(config).settings.ledger.url

    async def read() -> list[OutcomeRecord]:
        store = open_store(url)
        try:
            return await load_from_ledger(store)
        finally:
            await store.close()

    return asyncio.run(read())


def predict(
    data: Path = typer.Option(..., "--data", "-d", help="JSONL with `prompt` or `messages`."),
    models: str = typer.Option(..., "--models", help="Comma list of models to score."),
    router: Path | None = typer.Option(None, "--router", help="Artifact (default: bundled)."),
    tiers: str | None = typer.Option(None, "--tiers", help="Tiers of models unknown to the "
                                     "artifact: m1=simple,m2=complex."),
    output: Path = typer.Option(..., "--output", "-o", help="Where predictions go (JSONL)."),
) -> None:
    """Write, per input line, `{"id", "predicted": {model: P(good)}}` for every model asked for."""
    from ..learn.abilities import profile_from_tier
    from ..learn.data import prompt_of

    model = _load_model(router)
    wanted = _split(models) or []
    given = dict(pair.split("=", 1) for pair in (_split(tiers) or []) if "=" in pair)
    for name in wanted:
        if name not in model.models:
            if name not in given:
                err.print(f"[red]error:[/] the artifact does not know {name!r}: give its tier with "
                          f"--tiers {name}=simple|medium|complex")
                raise typer.Exit(EXIT_ERROR)
            model = model.with_model(profile_from_tier(model, name, given[name]))
    lines = [json.loads(line) for line in data.read_text(encoding="utf-8").splitlines()
             if line.strip()]
    texts = [prompt_of(obj) for obj in lines]
    p, _ = model.predict_many(texts, wanted)
    with output.open("w", encoding="utf-8") as sink:
        for i, obj in enumerate(lines):
            scores = {m: round(float(p[i, j]), 6) for j, m in enumerate(wanted)}
            sink.write(json.dumps({"id": obj.get("id", i + 1), "predicted": scores}) + "\n")
    out.print(f"[green]✓[/] {len(lines)} predictions → {output}")


def _load_model(router: Path | None) -> Any:
    from ..learn import artifact

    try:
        return artifact.load(router) if router else artifact.load_default()
    except artifact.ArtifactError as exc:
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(EXIT_ERROR) from None


def _logged_table(config: Path | None, policy: str, since: str, reference: str | None
                  ) -> tuple[Any, Any, int | None]:
    """The classifier's pool model, the logged-traffic table over its pool, and the reference's
    column (`--reference`, else the gateway's baseline model when it is in the pool)."""
    import asyncio

    from ..evaluate.lab import Table
    from ..learn.from_ledger import LoggedRequest, logged_requests_from, traffic_table
    from ..ledger import open_store
    from ..routers import default_registry
    from ..routers.base import BuildContext
    from ..routers.classifier import ClassifierParams, build
    from .common import engine_from, friendly_errors, ledger_window

    with friendly_errors():
        engine = engine_from(config)
    settings = engine.settings
    spec = settings.policies.get(policy)
    params = {k: v for k, v in spec.params.items() if k in ("artifact", "aliases")} \
        if spec is not None and spec.router == "classifier" else {}
    ctx = BuildContext(settings.tier_names, engine.catalog, settings.rules, default_registry(), policy)
    router = build(ClassifierParams(**params), ctx)
    start, end = ledger_window(since, None)

    async def read() -> list[LoggedRequest]:
        store = open_store(settings.ledger.url)
        try:
            return await logged_requests_from(store.iterate(start, end))
        finally:
            await store.close()

    logged = traffic_table(asyncio.run(read()), router.model, tuple(router.tiers))
    if not logged.texts:
        err.print("[red]error:[/] no logged request with stored prompt text in that window "
                  "(set `ledger.store_text: true`)")
        raise typer.Exit(EXIT_ERROR)
    out.print(f"{len(logged.texts)} logged requests since {start:%Y-%m-%d %H:%M}, "
              f"{logged.observed} with feedback: the quality of every other (request, model) pair is "
              f"the router's own estimate, so quality goals are only as good as its calibration; "
              f"shares of calls are exact")
    table = Table(logged.models, logged.quality, logged.cost, logged.texts)
    name = reference or engine.baseline_model
    top = table.models.index(name) if name in table.models else None
    if reference and top is None:
        err.print(f"[red]error:[/] the reference {reference!r} is not in the classifier's pool: "
                  f"{', '.join(table.models)}")
        raise typer.Exit(EXIT_ERROR)
    return router.model, table, top


def _warn_if_trained_on(data: Sequence[Path], router: Path | None) -> None:
    """Warn when a data file is one the artifact was trained on (same SHA-256): the router has seen
    those outcomes, so a setting calibrated there is far too optimistic on new traffic."""
    from ..learn import artifact
    from ..learn.data import sha256_of

    try:
        meta = artifact.read_metadata(router or artifact.default_path())
    except artifact.ArtifactError:
        return
    seen = {f.get("sha256"): f.get("path") for f in meta.get("training", {}).get("files", [])
            if isinstance(f, dict)}
    for path in data:
        if sha256_of(path) in seen:
            err.print(f"[yellow]warning:[/] {path} is {seen[sha256_of(path)]!r}, which this router was "
                      "trained on: its predictions there are over-confident, so the setting below will "
                      "be too optimistic. Calibrate on held-out data or on logged traffic.")


def _eval_table(records: list[OutcomeRecord], models: list[str] | None, known: Sequence[str] | None
                ) -> Any:
    from ..evaluate.lab import Table

    names = models or [m for m in OutcomeTable.of(records).models if known is None or m in known]
    try:
        return Table.of(OutcomeTable.of(records, names).complete())
    except ValueError as exc:
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(EXIT_ERROR) from None


def _index(table: Any, name: str | None, what: str) -> int | None:
    if name is None:
        return None
    if name not in table.models:
        err.print(f"[red]error:[/] {what} model {name!r} is not among: {', '.join(table.models)}")
        raise typer.Exit(EXIT_ERROR)
    return int(table.models.index(name))


def evaluate(
    data: list[Path] = typer.Option(..., "--data", "-d", help="Outcome records (JSONL)."),
    routers: str = typer.Option(ROUTERS, "--routers", show_default=False, help="Routers to "
                                "compare, comma-separated (default: all: random, rules, "
                                "classifier, cascade, oracle)."),
    models: str | None = typer.Option(None, "--models", help="Models to route among (default: "
                                      "every model in the data the artifact knows)."),
    router: Path | None = typer.Option(None, "--router", help="Artifact (default: bundled)."),
    reference: str | None = typer.Option(None, "--reference", help="Baseline model (default: "
                                         "the best single model)."),
    strong: str | None = typer.Option(None, "--strong", help="Strong model for APGR/CPT."),
    weak: str | None = typer.Option(None, "--weak", help="Weak model for APGR/CPT."),
    html_path: Path | None = typer.Option(None, "--html", help="Write an HTML report."),
    png_path: Path | None = typer.Option(None, "--png", help="Write the cost–quality plot."),
    as_json: bool = json_option(),
    as_csv: bool = csv_option(),
    wide: bool = wide_option("every cell on one line"),
    config: Path | None = typer.Option(None, "--config", "-c", help="Config (rules table)."),
) -> None:
    """Replay a dataset through routers (no live calls): quality and cost along each curve,
    AIQ, APGR/CPT for a strong/weak pair, savings against the best single model."""
    from ..evaluate.report import plot_png, render_html
    from ..evaluate.run import strategies, summarise
    from ..routers.rules import RulesRouter
    from .common import engine_from, friendly_errors

    names = _split(routers) or []
    unknown = set(names) - set(ROUTERS.split(","))
    if unknown:
        err.print(f"[red]error:[/] unknown router(s) {sorted(unknown)}")
        raise typer.Exit(EXIT_ERROR)
    records = read_records(data)
    model = _load_model(router) if {"classifier", "cascade"} & set(names) else None
    table = _eval_table(records, _split(models), model.models if model else None)
    with friendly_errors():
        settings = engine_from(config).settings
    rules = RulesRouter(settings.rules, "medium")
    s, w = _index(table, strong, "strong"), _index(table, weak, "weak")
    pair = (s, w) if s is not None and w is not None else None
    found = strategies(table, names, model=model, rules=rules, ladder=settings.tier_names, pair=pair)
    report = summarise(table, found, dataset=", ".join(str(p) for p in data),
                       reference=reference, pair=pair)
    png = plot_png(report) if (png_path or html_path) else None
    if png_path and png:
        png_path.write_bytes(png)
    if html_path:
        html_path.write_text(render_html(report, png), encoding="utf-8")
    if as_json:
        out.print_json(json.dumps(report.to_dict(), default=str))
    elif as_csv:
        write_csv([strategy_record(r) for r in report.strategies])
    else:
        print_report(report, wide)


def calibrate(
    data: list[Path] = typer.Option([], "--data", "-d", help="Outcome records (JSONL)."),
    from_ledger: bool = typer.Option(False, "--from-ledger", help="Calibrate on logged traffic "
                                     "instead (the configured ledger; prompt text must be stored)."),
    config: Path | None = typer.Option(None, "--config", "-c", help="Config (ledger, pool, policy)."),
    since: str = typer.Option("30d", "--since", help="With --from-ledger: how far back (30m, 12h, "
                              "7d, or an ISO date)."),
    max_top_share: float | None = typer.Option(None, "--max-top-share", min=0, max=1,
                                               help="At most this share of calls to the "
                                               "reference (top) model, e.g. 0.3."),
    keep_quality: float | None = typer.Option(None, "--keep-quality", min=0, max=1.5,
                                              help="Keep this fraction of the reference model's "
                                              "quality at the least cost, e.g. 0.95."),
    models: str | None = typer.Option(None, "--models", help="Models to route among."),
    router: Path | None = typer.Option(None, "--router", help="Artifact (default: bundled)."),
    reference: str | None = typer.Option(None, "--reference", help="The top model (default: the "
                                         "best single model in the data)."),
    policy: str = typer.Option("default", "--policy", help="Policy the setting is for."),
    strong: str | None = typer.Option(None, "--strong", help="With --weak: calibrate the "
                                      "strong/weak knob for this pair (the strong model is the "
                                      "reference)."),
    weak: str | None = typer.Option(None, "--weak", help="The weak model of the pair."),
) -> None:
    """Turn a business goal into the classifier's policy knob, measured on a dataset or on logged
    traffic: the exact operating point of either knob, or a blend of two settings (a share of
    prompts on each) when the goal lies between them on the cost–quality curve's convex hull; with
    --strong/--weak, the strong/weak pair's threshold."""
    import numpy as np

    if (max_top_share is None) == (keep_quality is None):
        err.print("[red]error:[/] give exactly one goal: --max-top-share or --keep-quality")
        raise typer.Exit(EXIT_ERROR)
    if bool(data) == from_ledger:
        err.print("[red]error:[/] calibrate on --data FILE or on --from-ledger (one of them)")
        raise typer.Exit(EXIT_ERROR)
    if (strong is None) != (weak is None) or (strong is not None and reference not in (None, strong)):
        err.print("[red]error:[/] a strong/weak pair needs both --strong and --weak (the strong "
                  "model is the reference)")
        raise typer.Exit(EXIT_ERROR)
    reference = strong or reference
    if from_ledger:
        model, table, top = _logged_table(config, policy, since, reference)
    else:
        model = _load_model(router)
        table = _eval_table(read_records(data), _split(models), model.models)
        _warn_if_trained_on(data, router)
        top = _index(table, reference, "reference")
    if top is None:
        top = int(np.argmax(table.quality.mean(axis=0)))
    p, est = model.predict_many(table.texts, table.models)
    if strong is not None and weak is not None:
        w = _index(table, weak, "weak")
        assert w is not None
        _calibrate_pair(table, p, top, w, max_top_share, keep_quality, policy)
    else:
        _calibrate_knob(table, p, est, top, max_top_share, keep_quality, policy)


def _snippet(policy: str, lines: Sequence[str]) -> None:
    """The config block for a calibrated classifier policy."""
    out.print(f"config:\n  policies:\n    {policy}:\n      router: classifier\n" + "\n".join(lines),
              markup=False)


def _calibrate_pair(table: Any, p: Any, top: int, w: int, max_top_share: float | None,
                    keep_quality: float | None, policy: str) -> None:
    """The strong/weak threshold for the goal (strong = `top`, weak = `w`), printed with its config."""
    from ..learn import calibrate as cal

    ref_q, ref_c = float(table.quality[:, top].mean()), float(table.cost[:, top].mean())
    strong, weak, pair = table.models[top], table.models[w], [top, w]
    found = cal.for_pair(p[:, top] - p[:, w], table.quality[:, pair], table.cost[:, pair],
                         max_share=max_top_share,
                         quality_goal=None if keep_quality is None else keep_quality * ref_q)
    if found is None:
        err.print("[red]error:[/] no threshold of this pair reaches that goal on this data")
        raise typer.Exit(EXIT_ERROR)
    out.print(f"setting: strong/weak threshold {found.threshold:.6f} ({strong} when its "
              f"predicted gain over {weak} is larger)")
    out.print(f"on this data: quality {found.quality:.4f} ({found.quality / ref_q:.1%} of {strong}), "
              f"cost {found.cost / ref_c:.1%} of it, {found.share:.1%} of calls to it")
    _snippet(policy, [f"      strong_weak: {{strong: {strong}, weak: {weak}, "
                      f"threshold: {found.threshold:.6f}}}"])


def _calibrate_knob(table: Any, p: Any, est: Any, top: int, max_top_share: float | None,
                    keep_quality: float | None, policy: str) -> None:
    """The target / λ setting (or blend) for the goal on the hull, printed with its config."""
    from ..learn import calibrate as cal

    ref_q, ref_c = float(table.quality[:, top].mean()), float(table.cost[:, top].mean())
    found = cal.settings(p, est, table.quality, table.cost, top)
    if max_top_share is not None:
        best = cal.for_top_share(found, max_top_share)
    else:
        assert keep_quality is not None
        best = cal.for_quality(found, keep_quality * ref_q)
    if best is None:
        err.print("[red]error:[/] no setting of the classifier reaches that goal on this data")
        raise typer.Exit(EXIT_ERROR)
    name = table.models[top]
    if best.blend is None:
        out.print(f"setting: {best.main.knob} {best.main.value:.10g}")
    else:
        out.print(f"setting: {best.main.knob} {best.main.value:.10g} on {1 - best.share:.1%} of "
                  f"prompts, {best.blend.knob} {best.blend.value:.10g} on {best.share:.1%} (a blend)")
    out.print(f"expected: quality {best.quality:.4f} ({best.quality / ref_q:.1%} of {name}), cost "
              f"{best.cost / ref_c:.1%} of it, {best.top_share:.1%} of calls to it")
    if best.blend is not None:
        cost, quality = best.realised(p, est, table.quality, table.cost, table.texts)
        out.print(f"with the blend split by prompt hash on these {table.n} prompts: quality "
                  f"{quality:.4f} ({quality / ref_q:.1%}), cost {cost / ref_c:.1%}")
    lines = [f"      {k}: {v:.10g}" for k, v in best.params().items() if k != "blend"]
    if best.blend is not None:
        lines.append(f"      blend: {{share: {best.share:.6f}, {best.blend.knob}: {best.blend.value:.10g}}}")
    _snippet(policy, lines)
