"""`llmroute train / predict / eval / calibrate`, run as a user runs them, on slices of the shared
RouterBench data (train on train, evaluate on test)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from test_cli import run

from llmroute.routers.classifier import ClassifierParams

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "routerbench"
MODELS = "gpt-4-1106-preview,mistralai/mixtral-8x7b-chat,gpt-3.5-turbo-1106"

pytestmark = pytest.mark.skipif(not DATA.is_dir(), reason=f"shared data not found at {DATA}")


def head(source: Path, target: Path, count: int, step: int = 1) -> Path:
    lines = source.read_text(encoding="utf-8").splitlines()[::step][:count]
    target.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return target


@pytest.fixture(scope="module")
def slices(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("data")
    return {"train": head(DATA / "train.jsonl", root / "train.jsonl", 300, step=7),
            "test": head(DATA / "test.jsonl", root / "test.jsonl", 200, step=4)}


def test_train_then_predict_with_the_new_artifact(slices: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "mine"
    trained = run("train", "--data", str(slices["train"]), "--models", MODELS, "--out", str(out),
                  "--rank", "4")
    assert trained.returncode == 0, trained.stderr
    assert (tmp_path / "mine.json").is_file() and (tmp_path / "mine.npz").is_file()
    meta = json.loads((tmp_path / "mine.json").read_text())
    assert [m["name"] for m in meta["models"]] == MODELS.split(",")  # in the order asked
    preds = tmp_path / "preds.jsonl"
    predicted = run("predict", "--data", str(slices["test"]), "--models", MODELS, "--router",
                    str(tmp_path / "mine.json"), "--output", str(preds))
    assert predicted.returncode == 0, predicted.stderr
    lines = [json.loads(line) for line in preds.read_text().splitlines()]
    assert len(lines) == 200
    assert lines[0]["id"] == "arc-challenge.test.1"
    for line in lines:
        assert set(line["predicted"]) == set(MODELS.split(","))
        assert all(0.0 <= p <= 1.0 for p in line["predicted"].values())


def test_predict_needs_a_tier_for_a_model_the_artifact_does_not_know(slices: dict[str, Path],
                                                                    tmp_path: Path) -> None:
    preds = tmp_path / "p.jsonl"
    refused = run("predict", "--data", str(slices["test"]), "--models", "acme/new-model",
                  "--output", str(preds))
    assert refused.returncode == 1 and "--tiers acme/new-model=" in refused.stderr
    accepted = run("predict", "--data", str(slices["test"]), "--models", "acme/new-model",
                   "--tiers", "acme/new-model=simple", "--output", str(preds))
    assert accepted.returncode == 0, accepted.stderr
    assert len(preds.read_text().splitlines()) == 200


def test_train_reports_bad_data_with_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "x", "outcomes": {"m": 1}}\n{"nothing": 1}\n')
    result = run("train", "--data", str(bad), "--out", str(tmp_path / "a"))
    assert result.returncode == 1
    assert "bad.jsonl:2" in result.stderr and "Traceback" not in result.stderr


def test_complexity_labels_train_a_tier_router(tmp_path: Path) -> None:
    labels = tmp_path / "labels.jsonl"
    rows = [{"prompt": f"hello there friend number {i}", "label": "simple"} for i in range(20)]
    rows += [{"prompt": f"prove theorem {i} about compact operators on Banach spaces rigorously",
              "label": "complex"} for i in range(20)]
    labels.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    result = run("train", "--data", str(labels), "--out", str(tmp_path / "tiers"), "--rank", "2")
    assert result.returncode == 0, result.stderr
    names = [m["name"] for m in json.loads((tmp_path / "tiers.json").read_text())["models"]]
    assert names == ["tier:complex", "tier:medium", "tier:simple"]


def test_eval_writes_json_html_and_png(slices: dict[str, Path], tmp_path: Path) -> None:
    html, png = tmp_path / "report.html", tmp_path / "curve.png"
    result = run("eval", "--data", str(slices["test"]), "--json", "--html", str(html), "--png",
                 str(png), "--strong", "gpt-4-1106-preview", "--weak",
                 "mistralai/mixtral-8x7b-chat")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    names = [s["name"] for s in report["strategies"]]
    assert names == ["random", "rules", "classifier", "cascade", "oracle"]
    by_name = {s["name"]: s for s in report["strategies"]}
    oracle, random = by_name["oracle"], by_name["random"]
    assert oracle["aiq"] > by_name["classifier"]["aiq"] > 0
    assert abs(random["pair"]["apgr"] - 0.5) < 0.15  # a random router recovers about half
    assert oracle["pair"]["apgr"] > 0.9
    assert html.read_text().startswith("<!doctype html>") and "data:image/png;base64" in html.read_text()
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_eval_table_and_unknown_router(slices: dict[str, Path]) -> None:
    table = run("eval", "--data", str(slices["test"]), "--routers", "random,oracle")
    assert table.returncode == 0, table.stderr
    assert "oracle" in table.stdout and "AIQ" in table.stdout
    bad = run("eval", "--data", str(slices["test"]), "--routers", "magic")
    assert bad.returncode == 1 and "unknown router" in bad.stderr


def test_calibrate_turns_a_goal_into_a_knob_setting(slices: dict[str, Path], tmp_path: Path) -> None:
    share = run("calibrate", "--data", str(slices["test"]), "--max-top-share", "0.3",
                "--reference", "gpt-4-1106-preview", "--policy", "capped")
    assert share.returncode == 0, share.stderr
    assert "router: classifier" in share.stdout
    fraction = float(share.stdout.split("% of calls to it")[0].split(", ")[-1])
    assert fraction == pytest.approx(30.0, abs=0.1)  # a blend lands on the goal, not below it
    # The printed config is valid YAML that the router accepts as it is.
    snippet = yaml.safe_load(share.stdout.split("config:\n", 1)[1])
    params = snippet["policies"]["capped"]
    assert params.pop("router") == "classifier"
    ClassifierParams(**params)
    keep = run("calibrate", "--data", str(slices["test"]), "--keep-quality", "0.9")
    assert keep.returncode == 0, keep.stderr
    assert "(90.0% of" in keep.stdout
    never = run("calibrate", "--data", str(slices["test"]), "--keep-quality", "1.4")
    assert never.returncode == 1 and "no setting" in never.stderr
    both = run("calibrate", "--data", str(slices["test"]))
    assert both.returncode == 1 and "exactly one goal" in both.stderr
    assert "trained on" not in share.stderr


def test_calibrate_a_strong_weak_pair(slices: dict[str, Path]) -> None:
    strong, weak = "gpt-4-1106-preview", "mistralai/mixtral-8x7b-chat"
    capped = run("calibrate", "--data", str(slices["test"]), "--strong", strong, "--weak", weak,
                 "--max-top-share", "0.25", "--policy", "pair")
    assert capped.returncode == 0, capped.stderr
    share = float(capped.stdout.split("% of calls to it")[0].split(", ")[-1])
    assert 20.0 <= share <= 25.0
    params = yaml.safe_load(capped.stdout.split("config:\n", 1)[1])["policies"]["pair"]
    assert params.pop("router") == "classifier"
    knob = ClassifierParams(**params).strong_weak
    assert knob is not None and (knob.strong, knob.weak) == (strong, weak)
    alone = run("calibrate", "--data", str(slices["test"]), "--strong", strong, "--keep-quality", "0.9")
    assert alone.returncode == 1 and "both --strong and --weak" in alone.stderr


def test_calibrate_warns_on_the_routers_own_training_data() -> None:
    seen = run("calibrate", "--data", str(DATA / "train.jsonl"), "--keep-quality", "0.9")
    assert seen.returncode == 0, seen.stderr
    assert "routerbench/train.jsonl" in seen.stderr and "too optimistic" in seen.stderr


def test_train_from_the_ledger(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from llmroute.learn.from_ledger import records_from_entries, user_text
    from llmroute.ledger.entry import LedgerEntry

    def entry(i: int, model: str, prompt: str, **feedback: object) -> LedgerEntry:
        return LedgerEntry(request_id=f"req_{i}", ts=datetime.now(UTC), status="ok",
                           http_status=200, model=model, prompt_text=f"system: be brief\nuser: {prompt}",
                           **feedback)  # type: ignore[arg-type]

    entries = [entry(i, "small", f"hello {i}", user_rating=5) for i in range(15)]
    entries += [entry(100 + i, "small", f"prove lemma {i} about sheaves", task_success=False)
                for i in range(15)]
    entries += [entry(200 + i, "big", f"prove lemma {i} about sheaves", task_success=True,
                      explored=True, latent="AAA8AAA8")  # learning online's columns (0006)
                for i in range(15)]
    entries += [entry(300, "big", "no feedback here")]  # skipped: no feedback
    records = records_from_entries(entries)
    assert len(records) == 45
    assert records[0].prompt == "hello 0" and records[0].outcomes == {"small": 1.0}
    assert user_text("user: a\nassistant: b\nuser: c") == "c"

    config = ledger_config(tmp_path, "ledger", entries)
    result = run("train", "--from-ledger", "-c", str(config), "--out", str(tmp_path / "mine"),
                 "--rank", "2")
    assert result.returncode == 0, result.stderr
    meta = json.loads((tmp_path / "mine.json").read_text())
    assert sorted(m["name"] for m in meta["models"]) == ["big", "small"]
    assert meta["training"]["records"] == 45


def test_calibrate_on_logged_traffic(tmp_path: Path) -> None:
    from datetime import UTC, datetime
    from decimal import Decimal

    from llmroute.ledger.entry import LedgerEntry

    top = "anthropic/claude-sonnet-4-5"   # the default config's baseline (its top tier's primary)
    prompts = [f"what is {i} + {i}?" for i in range(30)]
    prompts += [f"Write a Python function that parses log format {i}, with unit tests and edge cases"
                for i in range(30)]
    entries = [LedgerEntry(request_id=f"req_{i}", ts=datetime.now(UTC), status="ok", http_status=200,
                           model=top if i % 3 == 0 else "openai/gpt-4o-mini",
                           prompt_text=f"user: {prompt}", cost_usd=Decimal("0.001"),
                           task_success=(i % 2 == 0) if i % 4 else None)
               for i, prompt in enumerate(prompts)]
    entries.append(LedgerEntry(request_id="req_no_text", ts=datetime.now(UTC), status="ok",
                               http_status=200, model=top))   # no stored text: not usable
    config = ledger_config(tmp_path, "ledger", entries)
    capped = run("calibrate", "--from-ledger", "-c", str(config), "--max-top-share", "0.2",
                 "--policy", "learned")
    assert capped.returncode == 0, capped.stderr
    assert "60 logged requests" in capped.stdout and "45 with feedback" in capped.stdout
    share = float(capped.stdout.split("% of calls to it")[0].split(", ")[-1])
    assert share <= 20.0 + 1e-6
    snippet = yaml.safe_load(capped.stdout.split("config:\n", 1)[1])
    params = snippet["policies"]["learned"]
    assert params.pop("router") == "classifier"
    ClassifierParams(**params)
    keep = run("calibrate", "--from-ledger", "-c", str(config), "--keep-quality", "0.9")
    assert keep.returncode == 0, keep.stderr
    assert "of anthropic/claude-sonnet-4-5" in keep.stdout
    stranger = run("calibrate", "--from-ledger", "-c", str(config), "--keep-quality", "0.9",
                   "--reference", "nope")
    assert stranger.returncode == 1 and "not in the classifier's pool" in stranger.stderr
    empty = ledger_config(tmp_path, "empty", [])
    nothing = run("calibrate", "--from-ledger", "-c", str(empty), "--keep-quality", "0.9")
    assert nothing.returncode == 1 and "store_text" in nothing.stderr
    both = run("calibrate", "--from-ledger", "--data", str(config), "--keep-quality", "0.9")
    assert both.returncode == 1 and "one of them" in both.stderr



def ledger_config(tmp_path: Path, name: str, entries: list[Any]) -> Path:
    """A config whose ledger is a fresh SQLite file holding `entries`."""
    import asyncio

    from llmroute.ledger import open_store

    db = tmp_path / f"{name}.db"

    async def fill() -> None:
        store = open_store(f"sqlite:///{db}")
        await store.migrate()
        await store.write(entries)
        await store.close()

    asyncio.run(fill())
    config = tmp_path / f"{name}.yaml"
    config.write_text(f"ledger: {{url: 'sqlite:///{db}'}}\n")
    return config
