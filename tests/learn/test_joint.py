"""The joint fit: one shared latent space, one ability vector per model, grader offsets as biases."""

from __future__ import annotations

import numpy as np
import pytest

from llmroute.learn.data import OutcomeRecord, OutcomeTable
from llmroute.learn.joint import JointProblem, Penalties, fit_params, refit_offsets
from llmroute.learn.model import RouterModel

from .conftest import synthetic_records

pytest.importorskip("scipy")


def _problem(offset: float, seed: int = 0) -> tuple[JointProblem, np.ndarray]:
    """Three models over two sources: `both` is scored in sources a and b, `only_a` in a, `only_b`
    in b. Source b grades every model `offset` lower in logit. Qualities are the exact
    probabilities (soft labels), so the fit can recover the truth without sampling noise."""
    rng = np.random.default_rng(seed)
    n, r = 600, 6
    u = rng.normal(size=(n, r))
    w_true = rng.normal(size=(r, 2))
    abilities = np.asarray([[1.0, -0.5], [0.5, 1.0], [-1.0, 0.5]])
    bias = np.asarray([0.2, -0.3, 0.4])
    source = (np.arange(n) % 2).astype(np.int64)                   # 0 = a, 1 = b
    logit = (u @ w_true) @ abilities.T + bias + offset * source[:, None]
    quality = 1 / (1 + np.exp(-logit))
    quality[source == 1, 1] = np.nan                               # only_a: not scored in b
    quality[source == 0, 2] = np.nan                               # only_b: not scored in a
    return JointProblem(u, np.zeros((n, 0)), quality, source, ("a", "b")), logit


def test_a_per_source_grader_offset_is_learned_as_a_bias_not_an_ability() -> None:
    problem, _ = _problem(offset=-1.5)
    params = fit_params(problem, rank=2, penalties=Penalties(1e-3, 1e-3, 1e-3), max_iter=2000)
    offsets = params.source_offset[:, None] + params.model_offset
    # `both` is seen in a and b: the difference of its two offsets is source b's harsher grading
    assert offsets[1, 0] - offsets[0, 0] == pytest.approx(-1.5, abs=0.1)
    # and the same abilities explain both sources: no ability was spent on the grader
    same, _ = _problem(offset=0.0)
    plain = fit_params(same, rank=2, penalties=Penalties(1e-3, 1e-3, 1e-3), max_iter=2000)
    z = same.u @ plain.w
    z_off = problem.u @ params.w
    np.testing.assert_allclose(z_off @ params.abilities[0], z @ plain.abilities[0], atol=0.15)


def test_served_bias_predicts_each_model_as_fitted_on_its_own_source() -> None:
    problem, logit = _problem(offset=-1.5)
    params = fit_params(problem, rank=2, penalties=Penalties(1e-3, 1e-3, 1e-3), max_iter=2000)
    served = params.served_bias(problem.quality, problem.source)
    eta = (problem.u @ params.w) @ params.abilities.T + served
    only_b = problem.source == 1
    np.testing.assert_allclose(eta[only_b, 2], logit[only_b, 2], atol=0.15)   # only_b, graded by b
    only_a = problem.source == 0
    np.testing.assert_allclose(eta[only_a, 1], logit[only_a, 1], atol=0.15)   # only_a, graded by a


def test_refitting_the_offsets_restores_each_sources_grading_and_keeps_the_abilities() -> None:
    problem, logit = _problem(offset=-1.5)
    held = fit_params(problem, rank=2, penalties=Penalties(1e-3, 1e4, 1e4), max_iter=2000)
    before = held.source_offset[:, None] + held.model_offset
    assert abs(before[1, 0] - before[0, 0]) < 0.05          # offsets held at 0: b's grading unexplained
    refit = refit_offsets(held, problem, Penalties(1e-3, 1e-3, 1e-3), max_iter=2000)
    after = refit.source_offset[:, None] + refit.model_offset
    assert after[1, 0] - after[0, 0] == pytest.approx(-1.5, abs=0.1)
    np.testing.assert_array_equal(refit.w, held.w)            # the skill map and abilities as fitted
    np.testing.assert_array_equal(refit.abilities, held.abilities)
    served = refit.served_bias(problem.quality, problem.source)
    eta = (problem.u @ refit.w) @ refit.abilities.T + served
    only_b = problem.source == 1
    # only_b's served bias now carries source b's grading, as a model seen in one source should
    assert abs(float(np.mean(eta[only_b, 2] - logit[only_b, 2]))) < 0.1
    # refitted at the penalties it was fitted with, a converged fit stays where it is
    again = refit_offsets(held, problem, Penalties(1e-3, 1e4, 1e4), max_iter=2000)
    np.testing.assert_allclose(again.bias, held.bias, atol=1e-3)
    np.testing.assert_allclose(again.model_offset, held.model_offset, atol=1e-3)


def _two_sources() -> tuple[list[OutcomeRecord], list[str]]:
    first = synthetic_records(40)
    second = [OutcomeRecord(f"b{r.id}", r.prompt + " Please.", dict(r.outcomes), r.dataset)
              for r in synthetic_records(40, seed=3)]
    return first + second, ["one"] * len(first) + ["two"] * len(second)


def test_a_model_in_two_sources_gets_one_ability_vector_and_fits_are_deterministic() -> None:
    from llmroute.learn.features import HashingFeaturizer
    from llmroute.learn.train import TrainConfig, fit_router

    records, sources = _two_sources()
    config = TrainConfig(c=10.0, rank=3, basis=32)
    fit = fit_router(OutcomeTable.of(records), config, HashingFeaturizer(bits=12, max_chars=4000), sources)
    assert fit.models == ("big", "coder", "trivia")
    assert fit.abilities.shape == (3, fit.latent_dim)
    again = fit_router(OutcomeTable.of(records), config, HashingFeaturizer(bits=12, max_chars=4000), sources)
    np.testing.assert_array_equal(fit.abilities, again.abilities)
    np.testing.assert_array_equal(fit.biases, again.biases)
    code = fit.predict("Write a python function that handles sort and regex.")
    assert code.p_good[fit.index("coder")] > 0.8 > code.p_good[fit.index("trivia")]


def test_served_offset_l2_refits_only_the_biases_of_a_fit() -> None:
    from dataclasses import replace

    from llmroute.learn.features import HashingFeaturizer
    from llmroute.learn.train import TrainConfig, fit_router

    records, sources = _two_sources()
    config = TrainConfig(c=10.0, rank=3, basis=32, offset_l2=1e3)

    def fit(cfg: TrainConfig) -> RouterModel:
        return fit_router(OutcomeTable.of(records), cfg, HashingFeaturizer(bits=12, max_chars=4000), sources)

    plain = fit(config)
    refit = fit(replace(config, served_offset_l2=1e-3))
    np.testing.assert_array_equal(refit.abilities, plain.abilities)
    np.testing.assert_array_equal(refit.projection, plain.projection)
    assert not np.allclose(refit.biases, plain.biases)      # the refit reached the served biases


def test_sources_must_match_the_rows() -> None:
    from llmroute.learn.features import HashingFeaturizer
    from llmroute.learn.train import TrainConfig, fit_router

    records, sources = _two_sources()
    with pytest.raises(ValueError, match="sources for"):
        fit_router(OutcomeTable.of(records), TrainConfig(basis=8), HashingFeaturizer(bits=10), sources[1:])


def test_source_weights_scale_each_sources_outcomes() -> None:
    problem, _ = _problem(offset=-1.5)
    penalties = Penalties(1e-3, 1e-3, 1e-3)
    plain = fit_params(problem, rank=2, penalties=penalties, max_iter=200)
    ones = fit_params(problem, rank=2, penalties=penalties, max_iter=200, weights=[1.0, 1.0])
    np.testing.assert_array_equal(plain.abilities, ones.abilities)
    # source b not counted: only_b (scored in b alone) is left at the prior, the others learn from a
    muted = fit_params(problem, rank=2, penalties=penalties, max_iter=200, weights=[1.0, 0.0])
    assert np.abs(muted.abilities[2]).max() < 1e-6 < np.abs(muted.abilities[1]).max()
    with pytest.raises(ValueError, match="weights for"):
        fit_params(problem, rank=2, penalties=penalties, weights=[1.0])


def _dense_problem() -> JointProblem:
    """Two models whose outcomes depend on two dense columns (no text): each column matters."""
    rng = np.random.default_rng(5)
    n = 400
    dense = rng.normal(size=(n, 2))
    logit = dense @ np.asarray([[1.5, -1.0], [-0.5, 2.0]])
    quality = 1 / (1 + np.exp(-logit))
    return JointProblem(np.zeros((n, 1)), dense, quality, np.zeros(n, dtype=np.int64), ("a",))


def test_a_per_column_dense_penalty_damps_only_its_columns() -> None:
    problem = _dense_problem()
    scalar = fit_params(problem, rank=1, penalties=Penalties(1e-3, 1e-3, 1e-3, dense=10.0), max_iter=300)
    same = fit_params(problem, rank=1, penalties=Penalties(1e-3, 1e-3, 1e-3, dense=np.asarray([10.0, 10.0])),
                      max_iter=300)
    np.testing.assert_allclose(same.abilities, scalar.abilities, atol=1e-9)
    split = fit_params(problem, rank=1, penalties=Penalties(1e-3, 1e-3, 1e-3, dense=np.asarray([0.0, 1e6])),
                       max_iter=300)
    dense_part = split.abilities[:, -2:]
    assert np.abs(dense_part[:, 1]).max() < 1e-3            # the damped column is all but off
    assert np.abs(dense_part[:, 0]).min() > 0.3              # the other still carries its signal


def test_dense_l2_by_name_sets_each_named_features_strength() -> None:
    from llmroute.learn.features import DENSE_NAMES, DENSE_NAMES_V2
    from llmroute.learn.train import TrainConfig, dense_strengths

    assert dense_strengths(TrainConfig(dense_l2=7.0), len(DENSE_NAMES)) == 7.0
    config = TrainConfig(dense_l2=7.0, dense_l2_by_name=dict.fromkeys(DENSE_NAMES_V2, 99.0))
    got = np.asarray(dense_strengths(config, len(DENSE_NAMES)))
    v2 = np.asarray([n in DENSE_NAMES_V2 for n in DENSE_NAMES])
    assert v2.sum() == 11 and (got[v2] == 99.0).all() and (got[~v2] == 7.0).all()
    with pytest.raises(ValueError, match="lacks"):
        dense_strengths(TrainConfig(dense_l2_by_name={"no_such_feature": 1.0}), len(DENSE_NAMES))
    with pytest.raises(ValueError, match="lacks"):
        dense_strengths(TrainConfig(dense_l2_by_name={"log_chars": 1.0}), 0)
