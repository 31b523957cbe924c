"""Transfer across sources (issue 13): loading, honest splits, the length-only router, pair rule, CLI."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from llmroute.learn import transfer
from llmroute.learn.model import RouterModel
from llmroute.learn.sources import (
    SOURCE_FILES,
    SourcedRecord,
    link_contained_questions,
    load_sources,
    normalise,
)

CODE = ["python", "function", "list", "sort", "recursion", "regex", "class", "loop"]
TRIVIA = ["capital", "river", "king", "painter", "ocean", "mountain", "war", "poet"]


def _write(path: Path, rows: list[dict[str, object]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def _row(i: int, source: str, task: str, key: str, models: dict[str, float],
         cost: bool = False, query: str | None = None) -> dict[str, object]:
    words = CODE if i % 2 == 0 else TRIVIA
    prompt = f"{source} {task} {i}: " + " ".join(words[(i + k) % len(words)] for k in range(4))
    row: dict[str, object] = {"id": f"{source}.{i}", "prompt": prompt, key: task, "outcomes": models}
    if cost:
        row["cost_usd"] = {m: (1e-3 if m.startswith("big") else 1e-5) * len(prompt) for m in models}
        row["output_chars"] = dict.fromkeys(models, 10.0)
    if query is not None:
        row["query"] = query
    return row


def _outcomes(i: int, names: tuple[str, str]) -> dict[str, float]:
    """`big` always right; `small` right on even (code) prompts only."""
    return {names[0]: 1.0, names[1]: float(i % 2 == 0)}


@pytest.fixture()
def data_dir(tmp_path: Path) -> Path:
    """A tiny copy of every source's layout; routerbench and zeroeval use their own spellings."""
    shared = ("big/model", "small/model")
    for j, rel in enumerate(SOURCE_FILES["routerbench"]):
        _write(tmp_path / rel, [_row(i, "routerbench", ("arc-challenge", "mbpp")[(i // 2) % 2], "dataset",
                                     {"gpt-4-1106-preview": 1.0, "big/model": 1.0,
                                      "mistralai/mixtral-8x7b-chat": float(i % 2 == 0)}, cost=True)
                                for i in range(100 * j, 100 * j + (12 if j == 0 else 4))])
    for rel, task in zip(SOURCE_FILES["zeroeval"], ("zeroeval-math-l5", "zeroeval-crux"), strict=True):
        _write(tmp_path / rel, [_row(i, "zeroeval", task, "dataset",
                                     {"Mixtral-8x7B-Instruct-v0.1": float(i % 2 == 0), "big/model": 1.0})
                                for i in range(8)])
    for name in ("mmlu-pro", "llmrouter"):
        for j, rel in enumerate(SOURCE_FILES[name]):
            _write(tmp_path / rel, [_row(i, name, ("math", "physics")[(i // 2) % 2], "category",
                                         _outcomes(i, shared), query=f"shared question {i}")
                                    for i in range(100 * j, 100 * j + 10)])
    _write(tmp_path / SOURCE_FILES["routeprofile"][0],
           [_row(i, "routeprofile", ("trivia_qa", "human_eval", "mbpp", "commongen")[i % 4], "category",
                 _outcomes(i, shared) | {"mistralai/mixtral-8x7b-instruct-v0.1": 0.5}, cost=True,
                 query=f"shared question {i}")
            for i in range(16)])
    return tmp_path


def test_loading_assigns_sources_tasks_and_drops_broken_categories(data_dir: Path) -> None:
    sources = load_sources(data_dir)
    assert set(sources) == set(SOURCE_FILES)
    assert {r.task for r in sources["routerbench"]} == {"arc-challenge", "mbpp"}
    assert {r.task for r in sources["zeroeval"]} == {"math-l5", "crux"}
    assert {r.task for r in sources["mmlu-pro"]} == {"math", "physics"}
    assert {r.task for r in sources["routeprofile"]} == {"trivia_qa", "commongen"}   # no human_eval/mbpp
    assert len(sources["routeprofile"]) == 8
    assert all(r.source == name for name, recs in sources.items() for r in recs)
    # the alias table maps the two spellings of Mixtral-8x7B-Instruct onto one name
    assert "mistralai/mixtral-8x7b-instruct-v0.1" in sources["routerbench"][0].record.outcomes
    assert "mistralai/mixtral-8x7b-chat" not in sources["routerbench"][0].record.outcomes
    assert "mistralai/mixtral-8x7b-instruct-v0.1" in sources["zeroeval"][0].record.outcomes
    assert "mistralai/mixtral-8x7b-instruct-v0.1" in sources["routerbench"][0].record.cost_usd
    assert normalise("shared question 3") in sources["llmrouter"][3].texts


def test_loading_the_real_routeprofile_file_drops_its_broken_categories() -> None:
    path = Path(__file__).resolve().parents[3] / "shared" / "data"
    if not (path / SOURCE_FILES["routeprofile"][0]).exists():
        pytest.skip("shared data not present")
    recs = load_sources(path, ["routeprofile"])["routeprofile"]
    assert recs and not {"human_eval", "mbpp"} & {r.task for r in recs}


def test_loso_and_loto_never_train_on_held_out_prompts(data_dir: Path) -> None:
    sources = load_sources(data_dir)
    splits = transfer.loso_splits(sources) + transfer.loto_splits(sources)
    assert {s.name for s in splits if s.kind == "source"} == set(SOURCE_FILES)
    assert {s.name for s in splits if s.kind == "task"} >= {"routerbench/mbpp", "zeroeval/crux",
                                                             "routeprofile/commongen"}
    for split in splits:
        held_prompts = {r.prompt for r in split.test}
        held_texts = set().union(*(r.texts for r in split.test))
        assert not held_prompts & {r.prompt for r in split.train}
        assert not any(r.texts & held_texts for r in split.train)
        if split.kind == "source":
            assert {r.source for r in split.test} == {split.source}
            assert split.source not in {r.source for r in split.train}
        else:
            assert {r.task for r in split.test} == {split.task}
            assert not any(r.source == split.source and r.task == split.task for r in split.train)
    # llmrouter and routeprofile share questions: holding one out removes the other's copies
    rp = next(s for s in splits if s.name == "routeprofile")
    assert rp.removed > 0
    assert all(r.source != "routeprofile" for r in rp.train)


def test_cap_per_source_is_deterministic_and_capped(data_dir: Path) -> None:
    train = transfer.loso_splits(load_sources(data_dir))[0].train
    a, b = transfer.cap_per_source(train, 3, seed=0), transfer.cap_per_source(train, 3, seed=0)
    assert a == b
    counts: dict[str, int] = {}
    for r in a:
        counts[r.source] = counts.get(r.source, 0) + 1
    assert max(counts.values()) == 3


def test_length_router_apgr_on_hand_made_cases() -> None:
    prompts = ["x" * n for n in (5, 10, 20, 40, 80, 160)]
    gains = np.array([0, 0, 0, 1, 1, 1], dtype=np.float64)   # the strong model only helps long prompts
    q_strong, q_weak = np.ones(6), 1.0 - gains
    separates = transfer.tie_averaged_apgr(transfer.length_scores(prompts), q_strong, q_weak)
    anti = transfer.tie_averaged_apgr(transfer.length_scores(prompts[::-1]), q_strong, q_weak)
    # perfect separation is the oracle's APGR (1 − share of prompts with a gain / 2), anti-separation
    # its mirror image
    assert separates == pytest.approx(0.75)
    assert anti == pytest.approx(0.25)
    rare = ["x" * n for n in range(1, 11)]
    gain_longest = np.array([0.0] * 9 + [1.0])
    assert transfer.tie_averaged_apgr(transfer.length_scores(rare), np.ones(10), 1 - gain_longest) \
        == pytest.approx(0.95)
    # all lengths tied: the expected APGR of random tie-breaking, exactly 0.5
    assert transfer.tie_averaged_apgr(np.zeros(6), q_strong, q_weak) == pytest.approx(0.5)


def test_pair_selection_follows_the_rule() -> None:
    means = {"a": 0.9, "b": 0.85, "c": 0.7, "d": 0.3, "unknown": 0.95}
    pair = transfer.pick_pair(means, ["a", "b", "c", "d"])
    assert pair is not None and (pair.strong, pair.weak) == ("a", "c")     # best ≥ 0.10 below the best
    pair = transfer.pick_pair(means, ["a", "b", "c", "d"], preferred=("b", "d"))
    assert pair is not None and (pair.strong, pair.weak, pair.rule) == ("b", "d", "preferred pair")
    pair = transfer.pick_pair(means, ["a", "b"], preferred=("a", "zzz"))
    assert pair is not None and (pair.strong, pair.weak) == ("a", "b")     # only 0.05 apart: weakest
    assert transfer.pick_pair({"a": 0.9, "b": 0.89}, ["a", "b"]) is None
    assert transfer.pick_pair(means, ["a"]) is None


def test_evaluate_split_restricts_to_known_models_and_reports_unknown(data_dir: Path) -> None:
    sources = load_sources(data_dir)
    split = next(s for s in transfer.loso_splits(sources) if s.name == "routerbench")
    result = transfer.evaluate_split(split, transfer.default_trainer(split.train))
    assert "gpt-4-1106-preview" in result.unknown_models
    assert result.pair is not None and "gpt-4-1106-preview" not in (result.pair.strong, result.pair.weak)


def test_cli_runs_end_to_end_with_json(data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                       ) -> None:
    out = tmp_path / "transfer.json"
    transfer.main(["--data", str(data_dir), "--json", str(out), "--quick", "--quick-cap", "20"])
    printed = capsys.readouterr().out
    assert "honest evaluation" in printed and "| source: routerbench |" in printed
    payload = json.loads(out.read_text(encoding="utf-8"))
    assert payload["mode"].startswith("quick")
    names = {r["name"] for r in payload["results"]}
    assert {"routerbench", "routerbench/mbpp", "routeprofile/commongen"} <= names
    rb = next(r for r in payload["results"] if r["name"] == "routerbench/mbpp")
    assert rb["pair"]["strong"] == "gpt-4-1106-preview"
    assert rb["pair"]["weak"] == "mistralai/mixtral-8x7b-instruct-v0.1"
    assert rb["cost"] is not None and rb["cost"]["reference"] == "gpt-4-1106-preview"
    assert 0.0 <= rb["router_apgr"] <= 1.5


def test_unknown_source_is_an_error(data_dir: Path) -> None:
    with pytest.raises(KeyError):
        load_sources(data_dir, ["nope"])


def test_a_question_inside_another_sources_prompt_counts_as_the_same_prompt(tmp_path: Path) -> None:
    question = "Which gas do plants take in from the air to make their food, and why?"
    _write(tmp_path / SOURCE_FILES["routerbench"][0],
           [{"id": "rb.0", "dataset": "arc-challenge", "outcomes": {"a": 1.0},
             "prompt": f"Answer the question.\n\nQuestion: {question}\nA) O2 B) CO2"},
            {"id": "rb.1", "dataset": "mbpp", "outcomes": {"a": 0.0}, "prompt": "Write a function."}])
    _write(tmp_path / SOURCE_FILES["routerbench"][1], [])
    _write(tmp_path / SOURCE_FILES["routeprofile"][0],
           [{"id": "rp.0", "category": "arc_challenge", "outcomes": {"a": 1.0}, "query": question,
             "messages": [{"role": "system", "content": "Be brief."},
                          {"role": "user", "content": f"Q: {question} Options: O2, CO2"}]}])
    sources = load_sources(tmp_path, ["routerbench", "routeprofile"])
    assert not transfer.honest_train(sources["routerbench"], sources["routeprofile"])[1]   # exact: missed
    linked = link_contained_questions(sources)
    kept, removed = transfer.honest_train(linked["routerbench"], linked["routeprofile"])
    assert removed == 1 and [r.record.id for r in kept] == ["rb.1"]
    kept, removed = transfer.honest_train(linked["routeprofile"], linked["routerbench"])
    assert removed == 1 and not kept


def test_cli_only_runs_the_named_held_out_sets(data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "only.json"
    transfer.main(["--data", str(data_dir), "--json", str(out), "--quick", "--quick-cap", "20",
                   "--only", "routerbench/"])
    payload = json.loads(out.read_text(encoding="utf-8"))
    assert {r["name"] for r in payload["results"]} == {"routerbench/arc-challenge", "routerbench/mbpp"}
    assert payload["done"] == payload["splits"] == 2


def test_in_source_ceiling_scores_each_half_with_a_router_trained_on_the_other(data_dir: Path) -> None:
    """The ceiling's routers see only the held-out set, and never the half they score."""
    records = load_sources(data_dir, ["mmlu-pro"])["mmlu-pro"]
    pair = transfer.Pair("big/model", "small/model", 1.0, 0.5, "test")
    first = transfer.two_folds(records)
    assert 0 < first.sum() < len(records)
    seen: list[set[str]] = []

    def trainer(train: Sequence[SourcedRecord]) -> RouterModel:
        seen.append({r.prompt for r in train})
        return transfer.default_trainer(train)

    scores = transfer.in_source_scores(records, pair, trainer)
    assert scores.shape == (len(records),) and not np.isnan(scores).any()
    halves = [{r.prompt for r, f in zip(records, first, strict=True) if f},
              {r.prompt for r, f in zip(records, first, strict=True) if not f}]
    assert seen == [halves[1], halves[0]]           # trained on the other half, of this set only
