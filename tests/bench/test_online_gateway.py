"""bench/online_gateway.py's held-out router (issue 13): trained on every source but the simulated one,
never on a record that shares a prompt or question with it (nor on RouterBench test), deterministic, reused
while the data is unchanged, and chosen by default when the bundled artifact saw the simulated source."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from llmroute.learn import artifact as artifacts
from llmroute.learn.sources import SOURCE_FILES

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import online_gateway

WORDS = ["python", "function", "list", "sort", "capital", "river", "king", "painter", "ocean"]


def _rows(source: str, rel: str, n: int, shared: int = 0) -> list[dict[str, object]]:
    """`n` records; the first `shared` carry a question also asked in llmrouter."""
    key = "category" if source in ("mmlu-pro", "llmrouter", "routeprofile") else "dataset"
    rows: list[dict[str, object]] = []
    for i in range(n):
        prompt = f"{rel} {i}: " + " ".join(WORDS[(i + k) % len(WORDS)] for k in range(5))
        row: dict[str, object] = {"id": f"{rel}.{i}", "prompt": prompt, key: "math",
                                  "outcomes": {"big/model": 1.0, "small/model": float(i % 2 == 0)}}
        if i < shared or source == "llmrouter":
            row["query"] = f"the shared question number {i}"
        rows.append(row)
    return rows


@pytest.fixture()
def data_dir(tmp_path: Path) -> Path:
    for source, files in SOURCE_FILES.items():
        for rel in files:
            path = tmp_path / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            rows = _rows(source, rel, 12, shared=3 if source == "routeprofile" else 0)
            path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return tmp_path


def test_held_out_training_leaves_the_source_and_its_questions_out(data_dir: Path) -> None:
    per_file, kept, removed = online_gateway.held_out_training(data_dir, "llmrouter")
    assert not any(f.startswith("llmrouter/") for f in per_file)
    assert online_gateway.ROUTERBENCH_TEST not in per_file
    assert {r.source for r in kept} == {"routerbench", "zeroeval", "mmlu-pro", "routeprofile"}
    assert kept[0].source == "routerbench"                       # RouterBench first keeps its grading
    assert removed == 3                                           # routeprofile's shared questions
    assert len(kept) == sum(len(v) for v in per_file.values()) - 3


def test_held_out_router_is_saved_reused_and_chosen_by_default(data_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "held"
    path = online_gateway.held_out_router(data_dir, "llmrouter", folder)
    online_gateway.held_out(path, "llmrouter")                     # passes: never saw llmrouter
    training = artifacts.read_metadata(path)["training"]
    assert training["held_out_source"] == "llmrouter"
    assert {"big/model", "small/model"} <= set(artifacts.load(path).models)
    stamp = path.stat().st_mtime_ns
    assert online_gateway.held_out_router(data_dir, "llmrouter", folder) == path
    assert path.stat().st_mtime_ns == stamp                       # reused, not refitted
    npz = path.with_suffix(".npz").read_bytes()
    assert online_gateway.held_out_router(data_dir, "llmrouter", folder, refit=True) == path
    assert path.with_suffix(".npz").read_bytes() == npz           # deterministic
    args = argparse.Namespace(artifact=None, data=str(data_dir), source="llmrouter",
                              held_out_dir=str(folder), refit=False)
    if any(f.startswith("llmrouter/") for f in online_gateway.trained_on(artifacts.default_path())):
        assert online_gateway.offline_artifact(args) == path
    args.artifact = "given.json"
    assert online_gateway.offline_artifact(args) == Path("given.json")


def test_a_troll_leaves_the_stream_and_the_other_raters_as_they_were(data_dir: Path) -> None:
    """`--troll`: a share of the requests is sent by one rater, "troll"; which prompt each request
    asks, which requests give feedback and the other requests' users are those of the plain stream."""
    from llmroute.learn.sources import load_sources

    records = load_sources(str(data_dir), ["llmrouter"])["llmrouter"]
    plain, _ = online_gateway.field_of(records, 0, 400, 0.2)
    trolled, _ = online_gateway.field_of(records, 0, 400, 0.2, troll=0.25)
    assert plain.trolls is None and "troll" not in {plain.user(t) for t in range(400)}
    for name in ("idx", "gives", "raters"):
        assert (getattr(plain, name) == getattr(trolled, name)).all()
    users = [trolled.user(t) for t in range(400)]
    assert 60 < users.count("troll") < 140
    assert all(u == plain.user(t) for t, u in enumerate(users) if u != "troll")


def test_a_feedback_seed_rates_another_sample_of_the_same_traffic(data_dir: Path) -> None:
    """`--feedback-seed`: the same prompts in the same order; which requests are rated (about the
    same share) and by whom are drawn again, and the same feedback seed draws them the same."""
    from llmroute.learn.sources import load_sources

    records = load_sources(str(data_dir), ["llmrouter"])["llmrouter"]
    plain, _ = online_gateway.field_of(records, 0, 2000, 0.2)
    other, _ = online_gateway.field_of(records, 0, 2000, 0.2, feedback_seed=1)
    again, _ = online_gateway.field_of(records, 0, 2000, 0.2, feedback_seed=1)
    assert (plain.idx == other.idx).all() and plain.prompts == other.prompts
    assert not (plain.gives == other.gives).all() and not (plain.raters == other.raters).all()
    assert 300 < int(other.gives.sum()) < 500
    assert (other.gives == again.gives).all() and (other.raters == again.raters).all()


def test_selection_shows_where_the_best_model_was_routed_and_what_the_learner_believes() -> None:
    # three models; "b" is the best on the field; prompts 0-1 are hard for everyone
    quality = np.array([[0.0, 0.2, 0.0], [0.0, 0.4, 0.2], [0.6, 0.9, 0.6], [0.8, 1.0, 0.4]])
    fld = online_gateway.Field(models=("a", "b", "c"), prompts=("p0", "p1", "p2", "p3"),
                               quality=quality, idx=np.array([0, 1, 2, 3, 0, 1, 2, 3]),
                               gives=np.array([1, 1, 1, 1, 0, 1, 0, 1], dtype=bool),
                               raters=np.zeros(8, dtype=np.int64))
    run = online_gateway.Run("online+explore 0.05")
    run.picked = [1, 1, 0, 1, 1, 2, 0, 2]          # "b" routed on 0, 1, 0; explored on prompt 3
    run.explored = [False, False, False, True, False, False, False, False]
    run.p_end = [0.5, 0.3, 0.4]
    got = online_gateway.selection_of(run, fld)
    assert got is not None and got["model"] == "b"
    assert got["field_quality"] == pytest.approx(quality[:, 1].mean())
    assert got["routed_share"] == pytest.approx(3 / 8)
    assert got["routed_feedbacks"] == 2 and got["explored_feedbacks"] == 1
    assert got["all_models_quality_where_routed"] == pytest.approx(quality[[0, 1, 0]].mean())
    assert got["own_quality_where_routed"] == pytest.approx((0.2 + 0.4 + 0.2) / 3)
    assert got["all_models_quality_stream"] == pytest.approx(quality.mean())
    assert got["all_models_quality_where_routed"] < got["all_models_quality_stream"]
    assert got["posterior_p_end"] == 0.3
    assert online_gateway.selection_of(online_gateway.Run("offline"), fld) is None


def test_models_are_priced_like_the_price_maps_open_models_with_public_sizes(tmp_path: Path) -> None:
    rate = online_gateway.open_model_rate()
    assert 0.003 < rate < 0.01          # the DeepInfra open models' ~$0.4 per 1M for a 70B model
    assert online_gateway.billions("mistralai/mixtral-8x7b-v0.1") == 46.7
    assert online_gateway.billions("mistralai/mixtral-8x7b-v0.1", legacy=True) == 7.0
    assert online_gateway.billions("ai21labs/jamba-1.5-large") == 398.0
    assert online_gateway.billions("meta-llama/llama-3.1-70b-instruct") == 70.0
    assert online_gateway.billions("acme/no-size-here") == 7.0
    fld = online_gateway.Field(models=("acme/m-70b", "acme/m-8b"), prompts=("p",),
                               quality=np.ones((1, 2)), idx=np.zeros(1, dtype=np.int64),
                               gives=np.zeros(1, dtype=bool), raters=np.zeros(1, dtype=np.int64))
    (tmp_path / "replay.jsonl").write_text("", encoding="utf-8")
    now = online_gateway.settings_for(fld, tmp_path, "now", artifacts.default_path(), {},
                                      online_gateway.Catalog(rate))
    old = online_gateway.settings_for(fld, tmp_path, "old", artifacts.default_path(), {},
                                      online_gateway.LEGACY_CATALOG)
    big = now.models["acme/m-70b"]
    assert big.input_per_m is not None and float(big.input_per_m) == pytest.approx(70 * rate, rel=1e-4)
    assert big.context_window is None and big.tier == "large"
    assert now.models["acme/m-8b"].tier == "small"
    assert old.models["acme/m-70b"].context_window == 1_000_000
    assert float(old.models["acme/m-70b"].input_per_m or 0) == pytest.approx(1.4)


def test_the_old_inputs_make_a_model_without_outcomes_look_stronger(tmp_path: Path) -> None:
    """The catalog prior, fed 0.02 per billion and a 1M window (the bench until session 27), profiles
    an unknown 70B open model above what the market-rate inputs give it."""
    from llmroute.learn.catalog_prior import CatalogPrior

    model = artifacts.load(artifacts.default_path())
    prior = CatalogPrior.fit(model)
    assert prior is not None
    fld = online_gateway.Field(models=("acme/m-70b",), prompts=("p",), quality=np.ones((1, 1)),
                               idx=np.zeros(1, dtype=np.int64), gives=np.zeros(1, dtype=bool),
                               raters=np.zeros(1, dtype=np.int64))
    (tmp_path / "replay.jsonl").write_text("", encoding="utf-8")
    bias = {}
    for name, catalog in (("now", online_gateway.Catalog(online_gateway.open_model_rate())),
                          ("old", online_gateway.LEGACY_CATALOG)):
        spec = online_gateway.settings_for(fld, tmp_path, name, artifacts.default_path(), {},
                                           catalog).models["acme/m-70b"]
        profile = prior.profile("acme/m-70b", spec)
        assert profile is not None
        bias[name] = profile.bias
    assert bias["old"] > bias["now"]
