"""The held-out public MMLU prompts (bench/data/routellm-mmlu) and their evaluation (issue 13)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from llmroute.learn import artifact, policy
from llmroute.learn.data import DataError
from llmroute.learn.public_eval import (
    STRONG,
    WEAK,
    Outcomes,
    budget_quality,
    default_lambda,
    evaluate,
    evaluate_predictions,
    groups,
    load_dir,
    main,
    parse_csv,
    random_budget_quality,
)
from llmroute.learn.transfer import tie_averaged_apgr

DATA = Path(__file__).resolve().parents[2] / "bench" / "data" / "routellm-mmlu"
#: subject → (prompts, characters as read_file's total_chars reported them when they were copied).
EXPECTED = {"abstract_algebra": (100, 19975), "college_mathematics": (100, 25253),
            "elementary_mathematics": (378, 71794), "global_facts": (100, 19031),
            "high_school_geography": (198, 43082),
            "jurisprudence": (108, 34568), "medical_genetics": (100, 21414)}


def test_the_copied_csvs_have_their_upstream_length_rows_and_boolean_outcomes() -> None:
    for subject, (_rows, chars) in EXPECTED.items():
        text = (DATA / f"mmlu_{subject}.csv").read_text(encoding="utf-8")
        assert len(text) == chars, subject
    subjects = load_dir(DATA)
    assert {s: len(o) for s, o in subjects.items()} == {s: n for s, (n, _) in EXPECTED.items()}
    for outcomes in subjects.values():
        for q in (outcomes.q_strong, outcomes.q_weak):
            assert set(np.unique(q)) <= {0.0, 1.0}
        assert all(p.rstrip().endswith("Answer:") for p in outcomes.prompts)


def test_groups_split_math_from_the_rest() -> None:
    named = groups(load_dir(DATA))
    assert len(named["math"]) == 100 + 100 + 378
    assert len(named["non-math"]) == 100 + 198 + 108 + 100
    assert len(named["all"]) == 1084
    assert len(named["subject:jurisprudence"]) == 108


def test_parse_csv_rejects_a_wrong_header_or_outcome() -> None:
    good = 'prompt,mixtral-8x7b-instruct-v0.1,gpt-4-1106-preview\n"Q?\nA. x\nAnswer:",False,True\n'
    parsed = parse_csv(good)
    assert parsed.prompts == ("Q?\nA. x\nAnswer:",)
    assert parsed.q_strong.tolist() == [1.0] and parsed.q_weak.tolist() == [0.0]
    with pytest.raises(DataError, match="header"):
        parse_csv(good.replace("gpt-4-1106-preview", "gpt-4"))
    with pytest.raises(DataError, match="record 2"):
        parse_csv(good.replace("False,True", "False,yes"))
    with pytest.raises(DataError, match="record 2"):
        parse_csv(good.replace("False,True", "False"))


def _synthetic() -> tuple[Outcomes, np.ndarray, np.ndarray]:
    """Four prompts, router scores 0.4 > 0.3 > 0.2 > 0.1, prompt lengths in the opposite order;
    strong costs 1, weak 0."""
    data = Outcomes(("a", "bb", "ccc", "dddd"), np.array([1.0, 1.0, 1.0, 0.0]),
                    np.array([0.0, 0.0, 1.0, 0.0]))
    p = np.array([[0.9, 0.5], [0.8, 0.5], [0.7, 0.5], [0.6, 0.5]])
    est = np.array([[1.0, 0.0]] * 4)
    return data, p, est


def test_evaluation_matches_hand_computed_values_on_a_tiny_example() -> None:
    data, p, est = _synthetic()
    r = evaluate_predictions("tiny", data, p, est, lam=0.25, budgets=(0.25, 0.5))
    # strong mean 0.75, weak 0.25. Router order gains +1, +1, 0, 0 → PGR 0, .5, 1, 1, 1 → APGR 0.75.
    assert r.router_apgr == pytest.approx(0.75)
    # Length order (longest first) gains 0, 0, +1, +1 → PGR 0, 0, 0, .5, 1 → APGR 0.25.
    assert r.length_apgr == pytest.approx(0.25)
    # Budget 25% of all-strong = one strong call: router 0.5, length 0.25; 50%: 0.75 and 0.25.
    assert r.router_quality == pytest.approx((0.5, 0.75))
    assert r.length_quality == pytest.approx((0.25, 0.25))
    assert r.random_quality == pytest.approx((0.375, 0.5))
    # λ = 0.25: strong wins where P(strong) − 0.25 > 0.5, the first two prompts.
    assert (r.default_share, r.default_quality, r.default_cost) == pytest.approx((0.5, 0.75, 0.5))
    assert r.random_low is not None and r.random_high is not None and r.random_low < 0.5 < r.random_high


def test_budget_helpers_handle_budgets_below_the_weak_cost() -> None:
    qs, qw = np.array([1.0, 1.0]), np.array([0.0, 0.0])
    cs, cw = np.array([1.0, 1.0]), np.array([0.5, 0.5])
    assert budget_quality(np.array([1.0, 0.0]), qs, qw, cs, cw, 0.4) is None
    assert random_budget_quality(qs, qw, cs, cw, 0.4) is None
    assert random_budget_quality(qs, qw, cs, cw, 2.0) == pytest.approx(1.0)


def test_a_tied_pair_has_no_apgr() -> None:
    data = Outcomes(("a", "bb"), np.array([1.0, 0.0]), np.array([0.0, 1.0]))
    r = evaluate_predictions("tied", data, np.array([[0.9, 0.1], [0.1, 0.9]]), np.ones((2, 2)), lam=0.0)
    assert r.router_apgr is None and r.length_apgr is None and r.random_low is None


def test_the_shipped_artifact_scores_a_real_slice_consistently() -> None:
    model = artifact.load_default()
    assert STRONG in model.models and WEAK in model.models
    full = load_dir(DATA)["jurisprudence"]
    part = Outcomes(full.prompts[:24], full.q_strong[:24], full.q_weak[:24])
    r = evaluate("slice", part, model, default_lambda())
    p, _ = model.predict_many(part.prompts, [STRONG, WEAK])
    assert r.n == 24
    assert r.router_apgr == pytest.approx(
        tie_averaged_apgr(policy.strong_scores(p[:, 0], p[:, 1]), part.q_strong, part.q_weak))
    assert 0.0 <= r.default_share <= 1.0 and 0.0 < r.default_cost <= 1.0


def test_cli_writes_the_table_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    text = (DATA / "mmlu_global_facts.csv").read_text(encoding="utf-8")
    (folder / "mmlu_global_facts.csv").write_text(text, encoding="utf-8")
    out = tmp_path / "r.json"
    main(["--data", str(folder), "--json", str(out)])
    assert "| subject:global_facts | 100 |" in capsys.readouterr().out
    payload = json.loads(out.read_text(encoding="utf-8"))
    assert [r["name"] for r in payload["results"]] == ["non-math", "all", "subject:global_facts"]
    assert payload["lambda"] == default_lambda()


def test_cli_reports_a_folder_without_csvs(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="no mmlu_"):
        main(["--data", str(tmp_path)])
