"""Load training data for the learned router: outcome records and human complexity labels.

An outcome record is one JSON object per line: a prompt (or OpenAI-style `messages`, whose user
turns become the text) and, per model, the quality of its answer (`outcomes`), optionally the
real cost of the call (`cost_usd`) and the answer's length (`output_chars`). Unknown keys are
ignored. A label record `{"prompt": ..., "label": "simple"|"medium"|"complex"}` becomes an outcome
record over pseudo-models `tier:<name>`: quality 1 where the tier is at or above the label, else 0.
`OutcomeTable` holds records as aligned matrices, NaN where a model's outcome/cost is missing.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

DEFAULT_TIERS: tuple[str, ...] = ("simple", "medium", "complex")
TIER_PREFIX = "tier:"


class DataError(ValueError):
    """A training file is malformed (the message names the file and line)."""


@dataclass(frozen=True)
class OutcomeRecord:
    """One prompt and what each model's answer to it was worth (and cost)."""

    id: str
    prompt: str
    outcomes: Mapping[str, float]
    dataset: str = ""
    cost_usd: Mapping[str, float] = field(default_factory=dict)
    output_chars: Mapping[str, float] = field(default_factory=dict)


def text_of_messages(messages: Sequence[Any]) -> str:
    """The user text of OpenAI-style messages (string or text-part contents), joined by blank lines."""
    parts: list[str] = []
    for message in messages:
        if not isinstance(message, Mapping) or message.get("role", "user") != "user":
            continue
        content = message.get("content")
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, Sequence):
            parts.extend(p["text"] for p in content
                         if isinstance(p, Mapping) and isinstance(p.get("text"), str))
    return "\n\n".join(parts)


def prompt_of(obj: Mapping[str, Any]) -> str:
    """`prompt` if present, else the user text of `messages` (`KeyError` when neither is there)."""
    prompt = obj.get("prompt")
    if isinstance(prompt, str):
        return prompt
    messages = obj.get("messages")
    if isinstance(messages, Sequence) and not isinstance(messages, str):
        return text_of_messages(messages)
    raise KeyError("record has neither 'prompt' nor 'messages'")


def _numbers(obj: Any) -> dict[str, float]:
    if not isinstance(obj, Mapping):
        return {}
    return {str(k): float(v) for k, v in obj.items() if isinstance(v, int | float) and np.isfinite(v)}


def json_lines(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) of each non-blank line of a JSON Lines file (DataError otherwise)."""
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}:{number}: not JSON ({exc.msg})") from exc
            if not isinstance(obj, dict):
                raise DataError(f"{path}:{number}: expected a JSON object")
            yield number, obj


def outcome_record(obj: Mapping[str, Any], fallback_id: str = "") -> OutcomeRecord:
    """Parse one outcome record (unknown keys ignored)."""
    return OutcomeRecord(
        id=str(obj.get("id", fallback_id)), prompt=prompt_of(obj), outcomes=_numbers(obj.get("outcomes")),
        dataset=str(obj.get("dataset", "")), cost_usd=_numbers(obj.get("cost_usd")),
        output_chars=_numbers(obj.get("output_chars")))


def label_record(obj: Mapping[str, Any], tiers: Sequence[str] = DEFAULT_TIERS,
                 fallback_id: str = "") -> OutcomeRecord:
    """Turn a complexity label into outcomes of the tier pseudo-models (1 at or above the label)."""
    label = obj.get("label")
    if not isinstance(label, str) or label not in tiers:
        raise KeyError(f"label {label!r} is not one of {list(tiers)}")
    rank = list(tiers).index(label)
    outcomes = {TIER_PREFIX + t: float(i >= rank) for i, t in enumerate(tiers)}
    return OutcomeRecord(id=str(obj.get("id", fallback_id)), prompt=prompt_of(obj), outcomes=outcomes,
                         dataset=str(obj.get("dataset", "labels")))


def load_records(path: str | Path, tiers: Sequence[str] = DEFAULT_TIERS) -> list[OutcomeRecord]:
    """Read a JSONL file of outcome records or label records (each line may be either kind)."""
    path = Path(path)
    records: list[OutcomeRecord] = []
    for number, obj in json_lines(path):
        try:
            if "outcomes" in obj:
                records.append(outcome_record(obj, f"{path.stem}.{number}"))
            elif "label" in obj:
                records.append(label_record(obj, tiers, f"{path.stem}.{number}"))
            else:
                raise KeyError("neither 'outcomes' nor 'label'")
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"{path}:{number}: {exc}") from exc
    return records


def sha256_of(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class OutcomeTable:
    """Records as matrices over `models` (rows = prompts); NaN where a value is missing."""

    prompts: tuple[str, ...]
    datasets: tuple[str, ...]
    models: tuple[str, ...]
    quality: npt.NDArray[np.float64]
    cost: npt.NDArray[np.float64]
    output_chars: npt.NDArray[np.float64]

    @classmethod
    def of(cls, records: Iterable[OutcomeRecord], models: Sequence[str] | None = None) -> OutcomeTable:
        """Align `records` on `models` (default: every model seen, sorted)."""
        recs = list(records)
        names = tuple(models) if models is not None else tuple(sorted({m for r in recs for m in r.outcomes}))
        col = {m: j for j, m in enumerate(names)}
        shape = (len(recs), len(names))
        q, c, o = np.full(shape, np.nan), np.full(shape, np.nan), np.full(shape, np.nan)
        for i, rec in enumerate(recs):
            for source, target in ((rec.outcomes, q), (rec.cost_usd, c), (rec.output_chars, o)):
                for m, v in source.items():
                    if m in col:
                        target[i, col[m]] = v
        return cls(tuple(r.prompt for r in recs), tuple(r.dataset for r in recs), names, q, c, o)

    def rows(self, keep: npt.NDArray[np.bool_]) -> OutcomeTable:
        """The rows where `keep` is true."""
        idx = np.flatnonzero(keep)
        return OutcomeTable(tuple(self.prompts[i] for i in idx), tuple(self.datasets[i] for i in idx),
                            self.models, self.quality[idx], self.cost[idx], self.output_chars[idx])

    def complete(self) -> OutcomeTable:
        """Only prompts where every model has both an outcome and a cost."""
        missing = np.isnan(self.quality).any(axis=1) | np.isnan(self.cost).any(axis=1)
        return self.rows(np.logical_not(missing))
