"""Cached transfer scores (issue 13): each split's router P(good) on its held-out prompts, saved once so
that the length hedge and the bootstrap (`transfer_hedge`) are evaluated without refitting.

    python -m llmroute.learn.transfer_cache --out out/len13 [--data DIR] [--only PREFIX,...]
                                            [--inner] [--sources a,b]

* Outer splits: the same leave-one-source-out and leave-one-task-out splits as `transfer` (same honest
  training sets, same `default_trainer`); one file `outer__<name>.npz` per split.
* `--inner`: the nested splits used to choose the hedge weight without any held-out set's outcomes.
  For every outer source S and every other source T: train on the sources other than S and T (records
  sharing a prompt or question with S or T removed), score every record of T — `inner__S>T.npz`. The
  training set of (S, T) is that of (T, S): one fit per two sources writes both files.
  The weight for any held-out set of S (the source itself or one of its tasks) is then chosen on these
  routers' results on T's sets only: S's outcomes are used neither to train them nor to choose.
* Each file holds, for the held-out records in order: task, prompt length in characters, the held-out
  models the router knows, their P(good) and their quality (NaN where the record has no outcome).
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from . import blas
from .data import OutcomeTable
from .model import RouterModel
from .sources import SOURCE_FILES, SourcedRecord, link_contained_questions, load_sources
from .transfer import Split, Trainer, default_trainer, honest_train, loso_splits, loto_splits

F64 = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Scored:
    """One held-out set as scored by one trained router."""

    name: str                    # outer: the split's name; inner: "S>T" (S left out, T held out)
    source: str                  # the held-out source
    tasks: tuple[str, ...]       # each record's task
    lengths: F64                 # each record's prompt length in characters
    models: tuple[str, ...]      # held-out models the router knows
    p: F64                       # N × M router P(good)
    quality: F64                 # N × M observed quality, NaN where missing
    n_train: int
    removed: int


def score(name: str, source: str, test: Sequence[SourcedRecord], model: RouterModel,
          n_train: int, removed: int) -> Scored:
    """`model`'s P(good) for every held-out model it knows, on every record of `test`."""
    table = OutcomeTable.of(r.record for r in test)
    known = [m for m in table.models if m in model.models]
    cols = [table.models.index(m) for m in known]
    p = model.predict_many(table.prompts, known)[0] if known else np.zeros((len(test), 0))
    return Scored(name, source, tuple(r.task for r in test),
                  np.asarray([len(t) for t in table.prompts], dtype=np.float64), tuple(known),
                  np.asarray(p, dtype=np.float64), table.quality[:, cols], n_train, removed)


def file_name(kind: str, name: str) -> str:
    """A file name for a split name (`/` and spaces replaced)."""
    return f"{kind}__{re.sub(r'[^A-Za-z0-9_.>-]+', '_', name)}.npz"


def save(path: Path, s: Scored) -> None:
    """Write `s` to `path` (npz, no pickle)."""
    np.savez_compressed(path, name=np.asarray(s.name), source=np.asarray(s.source),
                        tasks=np.asarray(s.tasks, dtype=str), lengths=s.lengths,
                        models=np.asarray(s.models, dtype=str), p=s.p, quality=s.quality,
                        n_train=np.asarray(s.n_train), removed=np.asarray(s.removed))


def load(path: Path) -> Scored:
    """Read a file written by `save`."""
    with np.load(path, allow_pickle=False) as z:
        return Scored(str(z["name"]), str(z["source"]), tuple(str(t) for t in z["tasks"]),
                      z["lengths"], tuple(str(m) for m in z["models"]), z["p"], z["quality"],
                      int(z["n_train"]), int(z["removed"]))


def inner_splits(sources: Mapping[str, Sequence[SourcedRecord]]) -> list[Split]:
    """For each two sources A and B (unordered): train on the other sources, records sharing a prompt or
    question with A or B removed; the test side holds A's and B's records (`Split.source` "A+B"). Scored
    once, it gives both nested sets: B's records for outer source A ("A>B") and A's for outer B."""
    names = [name for name, recs in sources.items() if recs]
    splits = []
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            train = [r for name, rs in sources.items() if name not in (a, b) for r in rs]
            kept, removed = honest_train(train, [*sources[a], *sources[b]])
            splits.append(Split("inner", f"{a}+{b}", "", kept, (*sources[a], *sources[b]), removed))
    return splits


def _targets(split: Split, out: Path) -> list[tuple[Path, str, str, tuple[SourcedRecord, ...]]]:
    """(file, name, held-out source, records) for each file a split writes."""
    if split.kind != "inner":
        return [(out / file_name("outer", split.name), split.name, split.source, split.test)]
    a, b = split.source.split("+")
    return [(out / file_name("inner", f"{outer}>{held}"), f"{outer}>{held}", held,
             tuple(r for r in split.test if r.source == held)) for outer, held in ((a, b), (b, a))]


def run(splits: Sequence[Split], out: Path, trainer: Trainer = default_trainer,
        log: Callable[[str], None] = lambda _: None) -> list[Path]:
    """Train and score every split not already cached under `out`; the paths of all of them."""
    out.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    for split in splits:
        targets = _targets(split, out)
        paths.extend(t[0] for t in targets)
        if all(t[0].exists() for t in targets):
            continue
        start = time.monotonic()
        model = trainer(split.train)
        for path, name, source, test in targets:
            save(path, score(name, source, test, model, len(split.train), split.removed))
        log(f"{split.name}: {len(split.train)} training records, {time.monotonic() - start:.0f} s")
    return paths


def main(argv: Sequence[str] | None = None) -> None:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--out", type=Path, default=Path("out/len13"))
    parser.add_argument("--sources", default=",".join(SOURCE_FILES), help="comma-separated sources to load")
    parser.add_argument("--inner", action="store_true", help="the nested splits instead of the outer ones")
    parser.add_argument("--only", default="", help="comma-separated prefixes of split names to run")
    args = parser.parse_args(argv)
    sources = link_contained_questions(load_sources(args.data, [s for s in args.sources.split(",") if s]))
    splits = inner_splits(sources) if args.inner else loso_splits(sources) + loto_splits(sources)
    prefixes = [p for p in args.only.split(",") if p]
    if prefixes:
        splits = [s for s in splits if any(s.name.startswith(p) for p in prefixes)]
    started = time.monotonic()
    paths = run(splits, args.out, log=lambda line: print(line, file=sys.stderr, flush=True))
    print(f"{len(paths)} splits cached under {args.out} in {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    blas.pin()  # the same fits on any x86-64 machine (learn/blas.py)
    main()
