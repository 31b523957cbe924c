"""`bench/online_gateway.py`'s measurement over HTTP (issue 13): the gateway served by uvicorn, each
request sent with the official openai SDK, feedback posted to `/v1/feedback`, and the runtime's
`OnlineSync` learning on its own timer (`learning.reload_s`, default here 0.2 s, plus its 1 s lag),
as in production. Slower, and not reproducible to the digit (when feedback lands depends on
timing), so it is the cross-check of the in-process runs, not their replacement.

    python bench/online_http.py [--data ../shared/data] [--source llmrouter] [--requests 10000]
        [--feedback 0.2] [--explore 0.0,0.05] [--seed 0] [--every 50] [--reload-s 0.2]
        [--prior-scale 1.0] [--optimism K] [--strategy challenger|thompson] [--shared S]
        [--shared-ability C] [--pending N]
        [--pending-s S] [--artifact PATH] [--held-out-dir out/held-out] [--refit] [--out DIR]
        [--json FILE]

`--explore 0,0` serves the same configuration twice ("online", "online#2"): the difference between
them is the run-to-run noise (timing decides when feedback lands). `bench/online_paired.py` turns
several runs' JSON into the paired difference with its interval over runs.

The offline router is chosen as in `bench/online_gateway.py` (`offline_artifact`: the bundled
artifact if it never saw the source, else the held-out router, trained on every other source).

Field quality of the live posterior is read from the served app's classifier (`app.state.gateway`)
every `--every` requests, from the benchmark's thread (a read racing an update sees one or the
other). The exploration marks come from the ledger. Each variant's JSON has the `best_model` block of
`bench/online_gateway.py` (where the field's best model was routed, what the learner ended believing).
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import openai
import uvicorn
from online_gateway import (
    Field,
    Run,
    catalog_of,
    common_parser,
    field_of,
    field_quality,
    held_out,
    knobs_of,
    learning_of,
    offline_artifact,
    posterior_end,
    print_run,
    settings_for,
    summary,
    variant_name,
    write_replay,
)

from llmroute.engine import Engine
from llmroute.learn import artifact as artifacts
from llmroute.learn.sources import load_sources
from llmroute.learn.train import fit_router
from llmroute.ledger import open_store
from llmroute.routers.classifier import ClassifierRouter
from llmroute.server.app import create_app
from llmroute.settings import Settings


class Served:
    """A gateway app on 127.0.0.1:<free port>, in a thread."""

    def __init__(self, settings: Settings):
        self.app = create_app(settings, environ={})
        config = uvicorn.Config(self.app, host="127.0.0.1", port=0, lifespan="on", log_config=None,
                                access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Served:
        self.thread.start()
        while not self.server.started:
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(30)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.servers[0].sockets[0].getsockname()[1]}"

    def classifier(self) -> ClassifierRouter:
        router = self.app.state.gateway.engine.router("learned")[1]
        assert isinstance(router, ClassifierRouter)
        return router


def post_feedback(http: httpx.Client, request_id: str, quality: float) -> None:
    body: dict[str, Any] = {"request_id": request_id}
    if quality in (0.0, 1.0):
        body["success"] = quality == 1.0
    else:
        body["rating"] = 1 + round(4 * quality)
    answer = http.post("/v1/feedback", json=body)
    answer.raise_for_status()


def explored_ids(ledger_url: str) -> set[str]:
    async def read() -> set[str]:
        store = open_store(ledger_url)
        try:
            return {e.request_id async for batch in store.iterate() for e in batch if e.explored}
        finally:
            await store.close()

    return asyncio.run(read())


def run_http(settings: Settings, name: str, fld: Field, every: int) -> Run:
    run = Run(name)
    col = {m: j for j, m in enumerate(fld.models)}
    with Served(settings) as served, \
            openai.OpenAI(base_url=served.url + "/v1", api_key="open", max_retries=0) as client, \
            httpx.Client(base_url=served.url, timeout=30) as http:
        router = served.classifier()
        z = router.model.latent_many(list(fld.prompts)).astype(np.float64)
        run.snapshots.append((0, field_quality(router, z, fld)))
        ids, pending = [], []
        start = time.monotonic()
        for t, i in enumerate(fld.idx):
            raw = client.chat.completions.with_raw_response.create(
                model="auto", messages=[{"role": "user", "content": fld.prompts[int(i)]}],
                user=fld.user(t))
            picked = col[raw.parse().model]
            q = float(fld.quality[int(i), picked])
            ids.append(raw.headers["x-llmroute-request-id"])
            run.quality.append(q)
            run.picked.append(picked)
            run.cost.append(float(raw.headers.get("x-llmroute-cost-usd") or 0))
            if fld.gives[t]:
                pending.append((ids[-1], 0.0 if fld.user(t) == "troll" else q))
            if (t + 1) % every == 0 or t + 1 == len(fld.idx):
                for given in pending:
                    post_feedback(http, *given)
                pending = []
                run.snapshots.append((t + 1, field_quality(router, z, fld)))
        run.seconds = time.monotonic() - start
        run.p_end = posterior_end(router, z, fld)
    marked = explored_ids(settings.ledger.url)
    run.explored = [rid in marked for rid in ids]
    run.ledger_split = {"explored": len(marked), "routed": len(ids) - len(marked)}
    return run


def main() -> None:
    parser = common_parser(__doc__, "0.0,0.05", "online_http")
    parser.add_argument("--reload-s", type=float, default=0.2)
    args = parser.parse_args()
    artifact = offline_artifact(args)
    held_out(artifact, args.source)
    fld, train = field_of(load_sources(args.data, [args.source])[args.source], args.seed,
                          args.requests, args.feedback, args.troll, args.feedback_seed)
    work = Path(args.out)
    work.mkdir(parents=True, exist_ok=True)
    for old in work.glob("*.db*"):
        old.unlink()
    write_replay(fld, work / "replay.jsonl")
    inside = artifacts.save(fit_router(train), work / "indomain").with_suffix("")
    catalog = catalog_of(args)
    in_router = Engine(settings_for(fld, work, "in-domain", inside, {}, catalog)).router("learned")[1]
    assert isinstance(in_router, ClassifierRouter)
    q_in = field_quality(in_router, in_router.model.latent_many(list(fld.prompts)).astype(np.float64),
                         fld)
    runs: list[Run] = []
    for share in (float(s) for s in args.explore.split(",") if s.strip()):
        name = variant_name(share, [r.name for r in runs])
        learning = learning_of(args, share, reload_s=args.reload_s)
        settings = settings_for(fld, work, re.sub(r"[^a-z0-9]+", "-", name), artifact, learning,
                                catalog)
        runs.append(run_http(settings, name, fld, args.every))
        print_run(runs[-1], fld, args.requests)
    out = summary(runs, runs[0].snapshots[0][1], q_in, args.requests, fld)
    out.update({"transport": "HTTP (uvicorn, openai SDK)", "reload_s": args.reload_s,
                **knobs_of(args), "artifact": str(artifact)})
    text = json.dumps(out, indent=1, default=str)
    print(text)
    if args.json:
        Path(args.json).write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
