"""`RouterModel.predict_latent` reads per-pool tables built once: the same numbers as computing
them from the model's arrays, for every pool order, and never another model's tables."""

from __future__ import annotations

import numpy as np

from llmroute.learn.model import RouterModel, _sigmoid


def _direct(model: RouterModel, z: np.ndarray, chars: int, names: list[str]
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rows = np.asarray([model.index(n) for n in names])
    zz = z.astype(np.float64)
    logits = zz @ model.abilities[rows].T.astype(np.float64) + model.biases[rows]
    out = np.exp(zz @ model.lengths[rows].T.astype(np.float64) + model.length_biases[rows])
    cost = np.float64(chars) * model.input_prices[rows] + out * model.output_prices[rows]
    return _sigmoid(logits), cost, out


def test_pool_tables_give_the_direct_numbers(trained: RouterModel) -> None:
    z = trained.latent("Write a python function that sorts a list.")
    for names in (list(trained.models), list(reversed(trained.models)), [trained.models[1]]):
        for _ in range(2):  # built, then read back
            got = trained.predict_latent(z, 44, names)
            for a, b in zip(got, _direct(trained, z, 44, names), strict=True):
                assert np.array_equal(a, b)
    everyone = trained.predict_latent(z, 44)
    assert np.array_equal(everyone[0], _direct(trained, z, 44, list(trained.models))[0])


def test_a_changed_model_does_not_read_the_old_tables(trained: RouterModel) -> None:
    names = list(trained.models)
    z = trained.latent("What is the capital of France?")
    before = trained.predict_latent(z, 30, names)[0]
    profiles = trained.profiles()
    first = profiles[0]
    changed = trained.with_profiles([first.__class__(first.name, first.ability, first.bias + 3.0,
                                                     first.length, first.length_bias,
                                                     first.usd_per_input_char,
                                                     first.usd_per_output_char, first.tier),
                                     *profiles[1:]])
    after = changed.predict_latent(z, 30, names)[0]
    assert after[0] > before[0]
    assert np.array_equal(after[1:], before[1:])
    assert np.array_equal(trained.predict_latent(z, 30, names)[0], before)


def test_tables_are_read_only(trained: RouterModel) -> None:
    trained.predict_latent(trained.latent("hello"), 5)
    tables = trained._pools[None]
    assert not any(array.flags.writeable for array in tables)
