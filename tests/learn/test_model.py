"""Training on a synthetic task with a known answer; prediction shapes and ranges."""

from __future__ import annotations

import numpy as np
import pytest

from llmroute.learn.data import OutcomeTable
from llmroute.learn.model import RouterModel
from llmroute.learn.policy import by_target, by_tradeoff

from .conftest import synthetic_records


def test_learns_who_is_good_at_what(trained: RouterModel) -> None:
    test = OutcomeTable.of(synthetic_records(40, seed=7), trained.models)
    p, cost = trained.predict_many(test.prompts)
    assert p.shape == cost.shape == (40, 3)
    assert np.all((p > 0) & (p < 1))
    good = p > 0.5
    assert np.mean(good == (test.quality > 0.5)) > 0.95
    assert np.all(cost[:, trained.index("big")] > cost[:, trained.index("coder")])
    # the policy sends code to the coder, trivia to the trivia model, both cheaper than `big`
    for prompt, dataset in zip(test.prompts, test.datasets, strict=True):
        pred = trained.predict(prompt)
        choice = by_target(pred.p_good, pred.expected_cost, 0.7)
        assert trained.models[choice.index] == ("coder" if dataset == "code" else "trivia")
        assert choice.confidence > 0.7 and choice.margin > 0
        assert by_tradeoff(pred.p_good, pred.expected_cost, 0.0).index == int(np.argmax(pred.p_good))


def test_costs_and_lengths_are_recovered(trained: RouterModel) -> None:
    j = trained.index("big")
    assert trained.input_prices[j] == pytest.approx(1e-5, rel=0.05)
    assert trained.output_prices[j] == pytest.approx(2e-5, rel=0.05)
    code = trained.predict("Write a python function that handles sort and regex.")
    trivia = trained.predict("What is the capital of the river, king or poet?")
    assert code.expected_output_chars[j] > 4 * trivia.expected_output_chars[j]


def test_prediction_api(trained: RouterModel) -> None:
    pred = trained.predict("Write a loop", models=["big", "coder"])
    assert pred.models == ("big", "coder") and pred.p_good.shape == (2,)
    assert pred.best()[0] in {"big", "coder"}
    assert trained.latent("x").shape == (trained.latent_dim,)
    assert trained.select(["trivia"]).models == ("trivia",)
    with pytest.raises(KeyError, match="known: big, coder, trivia"):
        trained.index("nope")
    assert trained.profile("big").tier == "complex" and trained.profile("coder").tier == "simple"


def test_tier_labels_train_the_same_router() -> None:
    pytest.importorskip("sklearn")
    from llmroute.learn.data import label_record
    from llmroute.learn.features import HashingFeaturizer
    from llmroute.learn.train import TrainConfig, fit_router

    labelled = [label_record({"prompt": r.prompt, "label": "complex" if r.dataset == "code" else "simple"})
                for r in synthetic_records(60)]
    model = fit_router(OutcomeTable.of(labelled), TrainConfig(c=10.0, rank=3),
                       HashingFeaturizer(bits=12, max_chars=4000))
    assert set(model.models) == {"tier:simple", "tier:medium", "tier:complex"}
    order = [model.index("tier:" + t) for t in ("simple", "medium", "complex")]
    cheapest_first = np.asarray([1.0, 2.0, 3.0])
    for prompt, want in (("Write a python class that handles loop and array.", "tier:complex"),
                         ("What is the city of the ocean, war or painter?", "tier:simple")):
        p = model.predict(prompt).p_good[order]
        assert model.models[order[by_target(p, cheapest_first, 0.5).index]] == want


def test_out_of_fold_predictions_come_from_routers_that_never_saw_the_record() -> None:
    pytest.importorskip("sklearn")
    from llmroute.learn.train import TrainConfig, fit_router, out_of_fold

    records = synthetic_records(60)
    also = synthetic_records(20, seed=5)
    config = TrainConfig(c=10.0, rank=4)
    calls: list[tuple[int, int]] = []
    p, est = out_of_fold(records, ["coder", "big"], also=also, folds=3, seed=1, config=config,
                         progress=lambda k, n: calls.append((k, n)))
    assert calls == [(1, 3), (2, 3), (3, 3)]
    assert p.shape == est.shape == (60, 2)
    fold = np.random.default_rng(1).integers(0, 3, 60)
    for k in range(3):  # each fold is what a router trained on the rest (and `also`) predicts
        rest = [r for r, f in zip(records, fold, strict=True) if f != k] + also
        router = fit_router(OutcomeTable.of(rest), config).select(["coder", "big"])
        held = [r.prompt for r, f in zip(records, fold, strict=True) if f == k]
        expected_p, expected_est = router.predict_many(held, ["coder", "big"])
        np.testing.assert_allclose(p[fold == k], expected_p)
        np.testing.assert_allclose(est[fold == k], expected_est)
    code = np.asarray([r.dataset == "code" for r in records])
    assert p[code, 0].mean() > p[~code, 0].mean() + 0.3  # and the task is still learned out of fold
