"""Every source of outcome records in the shared data, loaded as named sources with task families.

| source | files | task |
|---|---|---|
| `routerbench` | `routerbench/{train,test}.jsonl` | `dataset` (arc-challenge, mbpp, winogrande) |
| `zeroeval` | `zeroeval/{math-l5,crux}.jsonl` | `dataset` without its `zeroeval-` prefix (math-l5, crux) |
| `mmlu-pro` | `mmlu-pro/{train,test}.jsonl` | `category` (MMLU-Pro subject) |
| `llmrouter` | `llmrouter/{train,test}.jsonl` | `category` (LLMRouter task) |
| `routeprofile` | `routeprofile/test.jsonl` | `category`, **without `human_eval` and `mbpp`** |

RouteProfile's `human_eval` and `mbpp` scores are broken upstream (about 0 for every model, see the
data README), so those two categories are dropped when loading (`DROPPED_TASKS`).

Model names are kept as the files spell them, except for `ALIASES`: a short, explicit table of
models that obviously appear under two spellings (zeroeval's and RouterBench's own names for a model
that the three newer folders name `org/model`). Each entry is the same released weights under the
same instruct/chat variant; nothing is mapped across versions (gemini-1.5-pro vs -002), between base
and instruct models (llama-3-70b vs Meta-Llama-3-70B-Instruct) or to a provider-suffixed copy
(`...@hyperbolic`).

`data.outcome_record` keeps `dataset` but not `category` or `query`; `SourcedRecord` wraps an
`OutcomeRecord` with its source, task and the texts used to find the same prompt in two sources.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Final

from .data import DataError, OutcomeRecord, json_lines, outcome_record

#: source → files under the data folder.
SOURCE_FILES: Final[Mapping[str, tuple[str, ...]]] = {
    "routerbench": ("routerbench/train.jsonl", "routerbench/test.jsonl"),
    "zeroeval": ("zeroeval/math-l5.jsonl", "zeroeval/crux.jsonl"),
    "mmlu-pro": ("mmlu-pro/train.jsonl", "mmlu-pro/test.jsonl"),
    "llmrouter": ("llmrouter/train.jsonl", "llmrouter/test.jsonl"),
    "routeprofile": ("routeprofile/test.jsonl",),
}
#: The bundled artifact's weight on the outcomes of every source but RouterBench (RouterBench's: 1),
#: in the joint loss: chosen in session 20 (scripts/build_router_artifact.py says how).
OTHERS_WEIGHT: Final = 0.5


def source_weights(routerbench: float = 1.0, others: float = OTHERS_WEIGHT) -> dict[str, float]:
    """`TrainConfig.source_weights` with RouterBench's outcomes at `routerbench` and every other
    source's at `others` (the bundled artifact's by default; weights of 1 left out)."""
    weights = {name: routerbench if name == "routerbench" else others for name in SOURCE_FILES}
    return {k: v for k, v in weights.items() if v != 1.0}


#: source → the record key that names the task (`dataset` or `category`).
TASK_KEY: Final[Mapping[str, str]] = {
    "routerbench": "dataset", "zeroeval": "dataset", "mmlu-pro": "category",
    "llmrouter": "category", "routeprofile": "category",
}
#: source → tasks left out when loading: RouteProfile's human_eval/mbpp scores are broken upstream.
DROPPED_TASKS: Final[Mapping[str, frozenset[str]]] = {"routeprofile": frozenset({"human_eval", "mbpp"})}

#: Other spelling → the `org/model` name of the newer folders. Same weights, same variant:
#: RouterBench's "mixtral-8x7b-chat" is Mixtral-8x7B-Instruct-v0.1 (the only chat/instruct release of
#: Mixtral 8x7B); the zeroeval names are the Hugging Face repository names of the same checkpoints.
ALIASES: Final[Mapping[str, str]] = {
    "mistralai/mixtral-8x7b-chat": "mistralai/mixtral-8x7b-instruct-v0.1",
    "Mixtral-8x7B-Instruct-v0.1": "mistralai/mixtral-8x7b-instruct-v0.1",
    "Meta-Llama-3.1-8B-Instruct": "meta-llama/llama-3.1-8b-instruct",
    "Meta-Llama-3.1-70B-Instruct": "meta-llama/llama-3.1-70b-instruct",
    "Phi-3-mini-4k-instruct": "microsoft/phi-3-mini-4k-instruct",
    "Qwen2.5-7B-Instruct": "qwen/qwen2.5-7b-instruct",
    "gemma-2-9b-it": "google/gemma-2-9b-it",
}


@dataclass(frozen=True)
class SourcedRecord:
    """An outcome record with the source and task family it belongs to. `texts` are the normalised
    prompt (and bare question, where the file has `query`), to recognise one prompt in two sources."""

    record: OutcomeRecord
    source: str
    task: str
    texts: frozenset[str]
    question: str = ""         # the normalised bare question (`query`), "" when the file has none

    @property
    def prompt(self) -> str:
        """The record's prompt text."""
        return self.record.prompt


def normalise(text: str) -> str:
    """Lower-case text with runs of whitespace collapsed (for finding a prompt in two sources)."""
    return re.sub(r"\s+", " ", text).strip().lower()


def rename_models(record: OutcomeRecord, aliases: Mapping[str, str]) -> OutcomeRecord:
    """`record` with model names mapped through `aliases` (unlisted names unchanged)."""
    if not any(m in aliases for m in record.outcomes):
        return record

    def mapped(values: Mapping[str, float]) -> dict[str, float]:
        return {aliases.get(m, m): v for m, v in values.items()}

    return replace(record, outcomes=mapped(record.outcomes), cost_usd=mapped(record.cost_usd),
                   output_chars=mapped(record.output_chars))


def task_of(source: str, obj: Mapping[str, Any]) -> str:
    """The task family of a raw record of `source`."""
    task = str(obj.get(TASK_KEY.get(source, "dataset"), "") or "")
    prefix = source + "-"
    return task[len(prefix):] if task.startswith(prefix) else task


def load_file(path: Path, source: str, aliases: Mapping[str, str] = ALIASES) -> list[SourcedRecord]:
    """The outcome records of one file of `source` (dropped tasks left out)."""
    dropped = DROPPED_TASKS.get(source, frozenset())
    records: list[SourcedRecord] = []
    for number, obj in json_lines(path):
        task = task_of(source, obj)
        if task in dropped:
            continue
        try:
            rec = rename_models(outcome_record(obj, f"{path.stem}.{number}"), aliases)
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"{path}:{number}: {exc}") from exc
        query = obj.get("query")
        question = normalise(query) if isinstance(query, str) else ""
        texts = {normalise(rec.prompt)} | ({question} if question else set())
        records.append(SourcedRecord(rec, source, task, frozenset(texts), question))
    return records


def load_sources(data: str | Path, sources: Iterable[str] | None = None,
                 aliases: Mapping[str, str] = ALIASES) -> dict[str, list[SourcedRecord]]:
    """Records of each source (default: all of `SOURCE_FILES`), in file order. A missing file of a
    requested source is an error (`FileNotFoundError`); unknown source names raise `KeyError`."""
    root = Path(data)
    names = list(sources) if sources is not None else list(SOURCE_FILES)
    result: dict[str, list[SourcedRecord]] = {}
    for name in names:
        if name not in SOURCE_FILES:
            raise KeyError(f"unknown source {name!r}; known: {sorted(SOURCE_FILES)}")
        result[name] = [r for f in SOURCE_FILES[name] for r in load_file(root / f, name, aliases)]
    return result


def link_contained_questions(sources: Mapping[str, Sequence[SourcedRecord]], min_chars: int = 40
                             ) -> dict[str, list[SourcedRecord]]:
    """Copies of `sources` in which a record of another source whose prompt contains a record's bare
    question (≥ `min_chars` characters, normalised) gets that question among its `texts`, so the two
    count as the same prompt (RouteProfile's ARC questions sit inside RouterBench's ARC prompts under
    another template; LLMRouter's MBPP inside RouterBench's). One substring search per question over
    the other sources' prompts (about a minute on the shared data)."""
    names = list(sources)
    flat = [(name, i, r) for name in names for i, r in enumerate(sources[name])]
    extra: dict[tuple[str, int], set[str]] = {}
    for name in names:
        needles = {r.question for r in sources[name] if len(r.question) >= min_chars}
        if not needles:
            continue
        others = [(n, i, r) for n, i, r in flat if n != name]
        texts = [normalise(r.prompt) for _, _, r in others]
        haystack = "\x00".join(texts)
        starts = [0]
        for text in texts:
            starts.append(starts[-1] + len(text) + 1)
        for needle in sorted(needles):
            at = haystack.find(needle)
            while at >= 0:
                k = bisect_right(starts, at) - 1
                n, i, _ = others[k]
                extra.setdefault((n, i), set()).add(needle)
                at = haystack.find(needle, starts[k + 1])
    return {name: [replace(r, texts=r.texts | extra[(name, i)]) if (name, i) in extra else r
                   for i, r in enumerate(sources[name])] for name in names}


def tasks_of(records: Sequence[SourcedRecord]) -> list[str]:
    """The distinct task families of `records`, sorted."""
    return sorted({r.task for r in records})
