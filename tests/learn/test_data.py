"""Loading outcome and label records."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from llmroute.learn.data import (
    DataError,
    OutcomeTable,
    label_record,
    load_records,
    prompt_of,
    sha256_of,
    text_of_messages,
)


def _write(tmp_path: Path, rows: list[object]) -> Path:
    path = tmp_path / "data.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n", encoding="utf-8")
    return path


def test_outcome_records_ignore_unknown_keys_and_tolerate_missing_models(tmp_path: Path) -> None:
    path = _write(tmp_path, [
        {"id": "a", "dataset": "d", "prompt": "hi", "outcomes": {"m1": 1.0, "m2": 0.0},
         "cost_usd": {"m1": 0.1}, "output_chars": {"m1": 3, "m2": 4}, "category": "x", "responses": {}},
        {"id": "b", "prompt": "yo", "outcomes": {"m1": 0.5}, "future_key": [1, 2]},
    ])
    records = load_records(path)
    assert [r.id for r in records] == ["a", "b"]
    assert records[0].cost_usd == {"m1": 0.1} and records[1].dataset == ""
    table = OutcomeTable.of(records)
    assert table.models == ("m1", "m2")
    assert np.isnan(table.quality[1, 1]) and table.quality[1, 0] == 0.5
    assert np.isnan(table.cost[0, 1])
    assert table.complete().prompts == ()          # no row has every outcome and cost
    assert OutcomeTable.of(records, ["m1"]).rows(np.array([True, False])).prompts == ("hi",)


def test_messages_become_the_user_text(tmp_path: Path) -> None:
    messages = [{"role": "system", "content": "be brief"},
                {"role": "user", "content": "first"},
                {"role": "assistant", "content": "ok"},
                {"role": "user", "content": [{"type": "text", "text": "second"}, {"type": "image_url"}]}]
    assert text_of_messages(messages) == "first\n\nsecond"
    path = _write(tmp_path, [{"messages": messages, "outcomes": {"m": 1}}])
    (record,) = load_records(path)
    assert record.prompt == "first\n\nsecond" and record.id == "data.1"
    assert prompt_of({"prompt": "p", "messages": messages}) == "p"


def test_labels_become_tier_pseudo_models(tmp_path: Path) -> None:
    path = _write(tmp_path, [{"prompt": "a", "label": "simple"}, {"prompt": "b", "label": "medium"},
                             {"messages": [{"role": "user", "content": "c"}], "label": "complex"}])
    records = load_records(path)
    assert records[0].outcomes == {"tier:simple": 1.0, "tier:medium": 1.0, "tier:complex": 1.0}
    assert records[1].outcomes == {"tier:simple": 0.0, "tier:medium": 1.0, "tier:complex": 1.0}
    assert records[2].outcomes == {"tier:simple": 0.0, "tier:medium": 0.0, "tier:complex": 1.0}
    custom = label_record({"prompt": "x", "label": "hard"}, tiers=("easy", "hard"))
    assert custom.outcomes == {"tier:easy": 0.0, "tier:hard": 1.0}


@pytest.mark.parametrize("line", ['{"prompt": "x"}', '{"prompt": "x", "label": "huge"}',
                                  '{"outcomes": {"m": 1}}', "[1, 2]", "{not json"])
def test_bad_lines_name_file_and_line(tmp_path: Path, line: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"prompt": "ok", "outcomes": {"m": 1}}\n' + line + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"bad\.jsonl:2"):
        load_records(path)


def test_sha256(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"abc")
    assert sha256_of(path) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
