"""Folding K joint fits (one per text-basis seed) into one router that averages their logits."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from llmroute.learn import artifact
from llmroute.learn.data import OutcomeTable
from llmroute.learn.ensemble import fold_ensemble
from llmroute.learn.features import HashingFeaturizer
from llmroute.learn.model import RouterModel
from llmroute.learn.train import TrainConfig, fit_members, fit_router

from .conftest import synthetic_records

pytest.importorskip("scipy")
pytest.importorskip("sklearn")

#: A small basis, so that the seed changes the fit (with 256 directions and 60 prompts every seed
#: spans the same space).
CONFIG = TrainConfig(basis=4, rank=2, basis_seeds=(0, 1, 2))


@pytest.fixture(scope="module")
def table() -> OutcomeTable:
    return OutcomeTable.of(synthetic_records(60))


@pytest.fixture(scope="module")
def members(table: OutcomeTable) -> list[RouterModel]:
    return fit_members(table, CONFIG, HashingFeaturizer(bits=12))


def _logits(model: RouterModel, texts: list[str]) -> np.ndarray:
    z = model.latent_many(texts).astype(np.float64)
    return np.asarray(z @ model.abilities.T.astype(np.float64) + model.biases)


def _log_chars(model: RouterModel, texts: list[str]) -> np.ndarray:
    z = model.latent_many(texts).astype(np.float64)
    return np.asarray(z @ model.lengths.T.astype(np.float64) + model.length_biases)


def test_the_fold_predicts_the_mean_of_the_members_logits(table: OutcomeTable,
                                                          members: list[RouterModel]) -> None:
    texts = [*table.prompts[:10], "What's 2+2?", "an unseen prompt about rivers and kings"]
    logits = np.stack([_logits(m, texts) for m in members])
    assert np.ptp(logits, axis=0).max() > 0.05            # the seeds really give different fits
    folded = fold_ensemble(members)
    assert folded.projection.shape[1] == sum(m.projection.shape[1] for m in members)
    np.testing.assert_allclose(_logits(folded, texts), logits.mean(axis=0), atol=1e-4)
    p, _ = folded.predict_many(texts)
    np.testing.assert_allclose(p, 1 / (1 + np.exp(-logits.mean(axis=0))), atol=1e-5)
    # output lengths: the mean of the members' log-lengths (their geometric mean)
    expected = np.exp(np.mean([_log_chars(m, texts) for m in members], axis=0))
    _, _, chars = folded.predict_latent(folded.latent_many(texts), np.asarray([len(t) for t in texts]))
    np.testing.assert_allclose(chars, expected, rtol=1e-4)


def test_fit_router_with_several_basis_seeds_is_the_fold_of_one_fit_per_seed(
        table: OutcomeTable, members: list[RouterModel]) -> None:
    router = fit_router(table, CONFIG, HashingFeaturizer(bits=12))
    texts = list(table.prompts[:8])
    np.testing.assert_allclose(router.predict_many(texts)[0], fold_ensemble(members).predict_many(texts)[0],
                               atol=1e-6)
    single = fit_router(table, replace(CONFIG, basis_seeds=(1,)), HashingFeaturizer(bits=12))
    np.testing.assert_array_equal(single.projection, members[1].projection)
    with pytest.raises(ValueError, match="basis_seeds"):
        fit_router(table, replace(CONFIG, basis_seeds=()), HashingFeaturizer(bits=12))


def test_a_folded_router_survives_the_artifact_round_trip(members: list[RouterModel], tmp_path: Path) -> None:
    folded = fold_ensemble(members)
    loaded = artifact.load(artifact.save(folded, tmp_path / "router"))
    texts = ["Write a python function that sorts a list.", "What is the capital of the river?"]
    np.testing.assert_allclose(loaded.predict_many(texts)[0], folded.predict_many(texts)[0], atol=2e-3)


def test_members_must_agree_on_models_and_featurizer(table: OutcomeTable, members: list[RouterModel]) -> None:
    assert fold_ensemble(members[:1]) is members[0]
    with pytest.raises(ValueError, match="at least one"):
        fold_ensemble([])
    with pytest.raises(ValueError, match="different models"):
        fold_ensemble([members[0], members[1].select(list(reversed(members[1].models)))])
    other = fit_members(OutcomeTable.of(synthetic_records(30, seed=5)), replace(CONFIG, basis_seeds=(0,)),
                        HashingFeaturizer(bits=12))[0]
    with pytest.raises(ValueError, match="fitted differently"):
        fold_ensemble([members[0], other])
