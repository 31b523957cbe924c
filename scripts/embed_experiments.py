"""Does the sentence-embedding featurizer improve the learned router? (issue 4; needs the `embed` extra)

    python scripts/embed_experiments.py --static-model out/static-minilm [--variants ...] [--val] \
        [--transfer] [--latency] [--json out.json]

Variants: shipped (the bundled artifact), hashing (retrained), static, static+hashing, minilm,
minilm+hashing. For each: train on routerbench/train.jsonl + zeroeval/*.jsonl (never on test), then
measure on routerbench/test.jsonl with the evaluation lab (`llmroute eval`'s code): % of gpt-4's cost
to keep 95% / 100% of its quality, quality at 15% / 30% of its cost, AIQ, APGR gpt-4 vs mixtral.
`--val` instead holds out 20% of routerbench/train (by id) and reports on it (for choosing `--scales`
without looking at test).
`--transfer`: APGR when training on two routerbench datasets and testing on the third.
`--latency`: p50/p99 of one decision (featurize + predict + choose), run this pinned to one core:
`taskset -c 0 env OMP_NUM_THREADS=1 python scripts/embed_experiments.py --latency ...`.
Embeddings are cached per process (the encoder is deterministic), so the variants share them.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from llmroute.evaluate import metrics as mx
from llmroute.evaluate.lab import Table
from llmroute.evaluate.run import strategies, summarise
from llmroute.learn import artifact, policy
from llmroute.learn.data import OutcomeRecord, OutcomeTable, load_records
from llmroute.learn.embed import EmbeddingFeaturizer, Encoder
from llmroute.learn.evaluate_quick import STRONG, WEAK, _long, decision_ms
from llmroute.learn.features import Featurizer, FloatArray, HashingFeaturizer
from llmroute.learn.model import RouterModel
from llmroute.learn.train import TrainConfig, fit_router

REPO = Path(__file__).resolve().parent.parent
VARIANTS = ("hashing", "static", "static+hashing", "minilm", "minilm+hashing")


@dataclass
class CachedEncoder:
    """Memoises a deterministic encoder's rows by text."""

    inner: Encoder
    cache: dict[str, FloatArray] = field(default_factory=dict)

    @property
    def dim(self) -> int:
        return self.inner.dim

    def encode(self, texts: Sequence[str]) -> FloatArray:
        missing = list(dict.fromkeys(t for t in texts if t not in self.cache))
        if missing:
            for t, v in zip(missing, self.inner.encode(missing), strict=True):
                self.cache[t] = v
        return np.asarray([self.cache[t] for t in texts], dtype=np.float32).reshape(len(texts), self.dim)


class Featurizers:
    """Builds each variant, sharing one cached encoder per kind."""

    def __init__(self, static_model: Path | None, scale: float, threads: int = 0) -> None:
        self.static_model, self.scale, self.threads = static_model, scale, threads
        self.base: dict[str, EmbeddingFeaturizer] = {}

    def _base(self, kind: str) -> EmbeddingFeaturizer:
        if kind not in self.base:
            if kind == "static":
                if self.static_model is None:
                    raise SystemExit("--static-model is needed (scripts/distill_static_embeddings.py)")
                made = EmbeddingFeaturizer.static(self.static_model)
            else:
                made = EmbeddingFeaturizer.minilm(threads=self.threads)
            self.base[kind] = replace(made, encoder=CachedEncoder(made.encoder))
        return self.base[kind]

    def make(self, variant: str, cached: bool = True) -> Featurizer:
        if variant in ("hashing", "shipped"):
            return HashingFeaturizer()
        kind, _, extra = variant.partition("+")
        base = self._base(kind)
        if not cached:
            base = replace(base, encoder=base.encoder.inner)  # type: ignore[attr-defined]
        return replace(base, scale=self.scale, hashing=HashingFeaturizer() if extra == "hashing" else None)


def lab(model: RouterModel, records: list[OutcomeRecord]) -> dict[str, Any]:
    """The evaluation lab's classifier numbers on `records` (all models the model knows)."""
    known = [m for m in OutcomeTable.of(records).models if m in model.models]
    table = Table.of(OutcomeTable.of(records, known).complete())
    pair = (table.models.index(STRONG), table.models.index(WEAK))
    found = strategies(table, ["classifier"], model=model.select(known), rules=None, ladder=(), pair=pair)
    report = summarise(table, found, dataset="", reference=STRONG, pair=pair)
    res, ref = report.strategies[0], report.reference
    assert res.pair is not None
    return {
        "n": table.n, "aiq": res.aiq,
        "cost_for_95": res.targets[0].cost_fraction, "cost_for_100": res.targets[1].cost_fraction,
        "q_at_15": (mx.quality_at_cost(res.hull, 0.15 * ref.cost) or float("nan")) / ref.quality,
        "q_at_30": (mx.quality_at_cost(res.hull, 0.30 * ref.cost) or float("nan")) / ref.quality,
        "apgr": res.pair.apgr, "cpt50": res.pair.cpt.get("CPT(50%)"), "cpt80": res.pair.cpt.get("CPT(80%)"),
        "beats_best_single": res.beats_best_single,
        "hull": [(p.cost / ref.cost, p.quality / ref.quality) for p in res.hull],
    }


def transfer(featurizer: Featurizer, train: list[OutcomeRecord], test: list[OutcomeRecord]
             ) -> dict[str, float]:
    """APGR (gpt-4 vs mixtral) on each held-out routerbench dataset, trained on the other two."""
    out = {}
    for held in sorted({r.dataset for r in test}):
        model = fit_router(OutcomeTable.of([r for r in train if r.dataset != held], [STRONG, WEAK]),
                           TrainConfig(), featurizer)
        table = OutcomeTable.of([r for r in test if r.dataset == held], [STRONG, WEAK]).complete()
        p, _ = model.predict_many(table.prompts, [STRONG, WEAK])
        out[held] = mx.apgr(policy.strong_scores(p[:, 0], p[:, 1]), table.quality[:, 0], table.quality[:, 1])
    return out


def latency(model: RouterModel, long_text: str, repeats: int = 300) -> dict[str, dict[str, float]]:
    """p50/p99 (ms) of one decision for a short prompt and a ~2,000-token one (first call excluded)."""
    out = {}
    for label, text in (("short", "What's the capital of France?"), ("2000 tokens", long_text)):
        p50, p99 = decision_ms(model, text, repeats)
        out[label] = {"chars": len(text), "p50_ms": p50, "p99_ms": p99}
    return out


def _val_split(records: list[OutcomeRecord]) -> tuple[list[OutcomeRecord], list[OutcomeRecord]]:
    held = [hashlib.sha256(r.id.encode()).digest()[0] < 52 for r in records]       # ≈ 20%
    return ([r for r, h in zip(records, held, strict=True) if not h],
            [r for r, h in zip(records, held, strict=True) if h])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--static-model", type=Path, default=None)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--scales", default="0.1", help="embedding columns' weight(s), comma-separated")
    parser.add_argument("--val", action="store_true", help="hold out 20%% of train instead of test")
    parser.add_argument("--transfer", action="store_true")
    parser.add_argument("--latency", action="store_true", help="only latency (train on a 300-prompt slice)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads for minilm (0: default)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    train = load_records(args.data / "routerbench" / "train.jsonl")
    extra = [r for n in ("math-l5", "crux") for r in load_records(args.data / "zeroeval" / f"{n}.jsonl")]
    test = load_records(args.data / "routerbench" / "test.jsonl")
    fit_on, evaluate_on = (_val_split(train) if args.val else (train, test))
    feats = Featurizers(args.static_model, 0.1, args.threads)
    results: dict[str, Any] = {}
    runs = [(v, float(sc)) for v in args.variants.split(",")
            for sc in (args.scales.split(",") if v not in ("hashing", "shipped") else ["0"])]
    for variant, scale in runs:
        feats.scale = scale
        start = time.perf_counter()
        row: dict[str, Any] = {}
        if args.latency:                                   # 11 models (the shipped artifact: 60)
            model = (artifact.load_default() if variant == "shipped"
                     else fit_router(OutcomeTable.of(train[:300]), TrainConfig(), feats.make(variant)))
            if variant not in ("hashing", "shipped"):      # time the real encoder, not the cache
                feat: Any = model.featurizer
                model = replace(model, featurizer=replace(feat, encoder=feat.encoder.inner))
            row["latency"] = latency(model, _long([r.prompt for r in test]))
        elif variant == "shipped":                         # the bundled artifact, as it is
            model = artifact.load_default()
            row.update(lab(model, evaluate_on))
            if args.transfer:
                row["transfer"] = transfer(feats.make(variant), train, test)
        else:
            model = fit_router(OutcomeTable.of(fit_on + extra), TrainConfig(), feats.make(variant))
            row.update(lab(model, evaluate_on))
            if args.transfer:
                row["transfer"] = transfer(feats.make(variant), train, test)
        row["seconds"] = time.perf_counter() - start
        name = variant if variant in ("hashing", "shipped") else f"{variant}@{scale:g}"
        results[name] = row
        shown = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items() if k != "hull"}
        print(f"{name:20s} {json.dumps(shown)}", flush=True)
    if args.json:
        args.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()},
                                         "results": results}, indent=1))


if __name__ == "__main__":
    main()
