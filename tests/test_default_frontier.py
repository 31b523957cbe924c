"""The default policy is a point on the frontier: replayed through the Engine on the demo's held-out
prompts (RouterBench test, never trained on), it keeps ≥ 95% of gpt-4's quality on the half its knob
was not tuned on, close to the classifier's own cost–quality hull. Properties only: the numbers move
with the artifact (re-derive the knob with `python scripts/calibrate_default.py`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from llmroute.config_text import default_config_text, parse_yaml
from llmroute.demo import frontier as fr
from llmroute.demo.config import BASELINE, demo_settings
from llmroute.demo.run import mean_outcomes
from llmroute.engine import Engine
from llmroute.evaluate.metrics import CurvePoint
from llmroute.providers.replay import ReplayBook, load_records

RETUNE = "re-derive the default's knob: python scripts/calibrate_default.py --write"


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> tuple[Engine, fr.Replayed, np.ndarray, np.ndarray]:
    book = ReplayBook(load_records())
    engine = Engine(demo_settings(tmp_path_factory.mktemp("ledger"), mean_outcomes(book)))
    pool = [spec.name for spec in engine.catalog if spec.tier]
    table = fr.Replayed.of_records(book.records, pool)
    classifier = fr.classifier_of(engine.router("default")[1])
    assert classifier is not None
    p, est = fr.predictions(classifier, table)
    return engine, table, p, est


def _half(table: fr.Replayed, half: fr.Split) -> np.ndarray:
    return np.asarray([fr.split_of(t) == half for t in table.texts], dtype=bool)


def test_the_split_is_stable_and_about_even(lab: tuple[Engine, fr.Replayed, np.ndarray, np.ndarray]
                                            ) -> None:
    _, table, _, _ = lab
    on = _half(table, "calibrate")
    assert 0.4 < on.mean() < 0.6
    assert fr.split_of("What's 2+2?") == fr.split_of("What's 2+2?")


def test_default_keeps_95_percent_on_the_held_out_half_near_the_hull(
        lab: tuple[Engine, fr.Replayed, np.ndarray, np.ndarray]) -> None:
    engine, table, p, est = lab
    for half, floor in (("report", 0.95), ("calibrate", 0.95)):
        mask = _half(table, half)
        sub = table.where(mask)
        point = sub.point(fr.policy_choice(engine, "default", sub), "default")
        ref = sub.single(BASELINE)
        cost, quality = fr.relative(point, ref)
        assert quality >= floor, f"{half} half: {quality:.1%} of gpt-4's quality; {RETUNE}"
        assert cost < 0.5, f"{half} half: {cost:.1%} of gpt-4's cost; {RETUNE}"
        gap = fr.hull_gap(point, fr.classifier_curve(p[mask], est[mask], sub))
        assert gap <= 0.02 * ref.quality, f"{half} half: {gap:.4f} under the hull; {RETUNE}"


def test_the_default_beats_the_seed_cascade(lab: tuple[Engine, fr.Replayed, np.ndarray, np.ndarray],
                                            tmp_path: Path) -> None:
    """The keyword-rules cascade the project started from sits well inside the frontier."""
    engine, table, p, est = lab
    seed = {"router": "cascade", "fallback_tier": "medium",
            "stages": [{"router": "rules", "threshold": 0.7},
                       {"router": "classifier", "quality_target": 0.7, "threshold": 0.7}]}
    policies = {**parse_yaml(default_config_text(), "defaults")["policies"], "seed": seed}
    book = ReplayBook(load_records())
    with_seed = Engine(demo_settings(tmp_path, mean_outcomes(book), extra={"policies": policies}))
    ours = table.point(fr.policy_choice(engine, "default", table), "default")
    old = table.point(fr.policy_choice(with_seed, "seed", table), "seed")
    curve = fr.classifier_curve(p, est, table)
    assert fr.hull_gap(ours, curve) < fr.hull_gap(old, curve)
    assert ours.quality > old.quality and ours.cost < old.cost


def test_default_rules_are_structural_only() -> None:
    """Keyword rules measured imprecise on held-out outcomes are not in the default policy."""
    default = parse_yaml(default_config_text(), "defaults")["policies"]["default"]
    rules = [st for st in default["stages"] if st["router"] == "rules"]
    assert rules and all(set(rule) & {"has_code", "has_tools", "has_images"}
                         and not set(rule) & {"keywords", "max_words", "regex"}
                         for st in rules for rule in st["rules"])
    classifier = next(st for st in default["stages"] if st["router"] == "classifier")
    assert classifier["threshold"] == 0.0     # the classifier decides every other prompt


def test_calibration_reaches_its_goal_on_the_calibration_half(
        lab: tuple[Engine, fr.Replayed, np.ndarray, np.ndarray]) -> None:
    engine, table, p, est = lab
    on = _half(table, "calibrate")
    decided, fixed = fr.before_classifier(engine.router("default")[1], engine, table)
    tuned = fr.calibrate_default(p[on], est[on], table.where(on), decided[on], fixed[on], BASELINE,
                                 0.96)
    assert tuned is not None and "willingness_to_pay" in tuned.calibration.params()
    ref = table.where(on).single(BASELINE)
    assert tuned.point.quality >= 0.96 * ref.quality - 1e-9
    assert fr.calibrate_default(p[on], est[on], table.where(on), decided[on], fixed[on], BASELINE,
                                1.5) is None


def test_with_classifier_params_replaces_only_the_knob() -> None:
    spec = {"router": "cascade", "stages": [{"router": "rules"},
                                            {"router": "classifier", "quality_target": 0.7,
                                             "threshold": 0.0}]}
    out = fr.with_classifier_params(spec, {"willingness_to_pay": 30.0})
    assert out["stages"][1] == {"router": "classifier", "threshold": 0.0, "willingness_to_pay": 30.0}
    assert out["stages"][0] == {"router": "rules"}
    assert fr.with_classifier_params({"router": "classifier", "blend": {}}, {"quality_target": 0.8}) \
        == {"router": "classifier", "quality_target": 0.8}


def test_hull_gap_is_zero_on_the_hull_and_positive_below() -> None:
    curve = [CurvePoint(0.0, 0.5, "a"), CurvePoint(1.0, 1.0, "b")]
    assert fr.hull_gap(CurvePoint(0.5, 0.75, "on"), curve) == pytest.approx(0.0)
    assert fr.hull_gap(CurvePoint(0.5, 0.6, "under"), curve) == pytest.approx(0.15)
