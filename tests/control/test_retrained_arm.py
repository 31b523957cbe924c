"""An A/B experiment can pit an artifact retrained from the ledger (`llmroute train --from-ledger`)
against the live one: each arm is a classifier policy, the retrained one with `artifact:` naming
the new file; traffic splits by user, and each arm routes with its own artifact."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

import llmroute
from llmroute.config import load
from llmroute.ledger import LedgerEntry, open_store
from llmroute.testing.upstream import FakeUpstream

HARD = "prove lemma {} about sheaves"
EASY = "hello {}"


def _entries() -> list[LedgerEntry]:
    """Logged traffic with feedback: the small model is fine on greetings and fails the lemmas, the
    big one solves them."""

    def entry(i: int, model: str, prompt: str, success: bool) -> LedgerEntry:
        return LedgerEntry(request_id=f"req_{i}", ts=datetime.now(UTC), status="ok",
                           http_status=200, model=model, prompt_text=f"user: {prompt}",
                           task_success=success)

    out = [entry(i, "fake/small", EASY.format(i), True) for i in range(20)]
    out += [entry(100 + i, "fake/small", HARD.format(i), False) for i in range(20)]
    out += [entry(200 + i, "fake/big", HARD.format(i), True) for i in range(20)]
    out += [entry(300 + i, "fake/big", EASY.format(i), True) for i in range(20)]
    return out


def _ledger(db: Path, entries: list[LedgerEntry]) -> None:
    async def fill() -> None:
        store = open_store(f"sqlite:///{db}")
        await store.migrate()
        if entries:
            await store.write(entries)
        await store.close()

    asyncio.run(fill())


def _read(db: Path) -> list[LedgerEntry]:
    async def read() -> list[LedgerEntry]:
        store = open_store(f"sqlite:///{db}")
        try:
            return await store.query()
        finally:
            await store.close()

    return asyncio.run(read())


def _config(tmp_path: Path, upstream: FakeUpstream, artifact: Path, db: Path) -> dict[str, Any]:
    knob = {"router": "classifier", "quality_target": 0.7}
    return {
        "providers": {"fake": {"type": "openai", "base_url": upstream.openai_base_url}},
        "models": {"fake/small": {"deployment": "fake", "input_per_m": 0.5, "output_per_m": 1.5},
                   "fake/big": {"deployment": "fake", "input_per_m": 10, "output_per_m": 30}},
        "tiers": {"simple": {"model": "fake/small"}, "medium": {"model": "fake/small"},
                  "complex": {"model": "fake/big"}},
        "policies": {"live": knob, "retrained": {**knob, "artifact": str(artifact)}},
        "routing": {"default_policy": "live"},
        "experiments": [{"name": "retrain-ab", "control": "live", "sticky_by": "user",
                         "arms": {"live": {"policy": "live"},
                                  "retrained": {"policy": "retrained"}}}],
        "resilience": {"retry": {"max_attempts": 1}},
        "ledger": {"url": f"sqlite:///{db}", "spool_path": str(tmp_path / "spool.jsonl"),
                   "flush_interval_s": 0.05, "store_text": True},
    }


@pytest.fixture(scope="module")
def upstream() -> Any:
    with FakeUpstream() as up:
        yield up


def test_an_experiment_pits_a_retrained_artifact_against_the_live_one(
        tmp_path: Path, upstream: FakeUpstream) -> None:
    logged = tmp_path / "logged.db"
    _ledger(logged, _entries())
    source = tmp_path / "source.yaml"
    source.write_text(f"ledger: {{url: 'sqlite:///{logged}'}}\n")
    trained = subprocess.run([sys.executable, "-m", "llmroute", "train", "--from-ledger", "-c",
                              str(source), "--out", str(tmp_path / "retrained"), "--rank", "2"],
                             capture_output=True, text=True, timeout=300)
    assert trained.returncode == 0, trained.stderr
    artifact = tmp_path / "retrained.json"
    assert {m["name"] for m in json.loads(artifact.read_text())["models"]} == {"fake/small",
                                                                                "fake/big"}
    db = tmp_path / "ab.db"
    path = tmp_path / "llmroute.yaml"
    path.write_text(yaml.safe_dump(_config(tmp_path, upstream, artifact, db)))
    settings = load(path, environ={})
    users = [f"user-{i}" for i in range(24)]
    with llmroute.Client(settings) as client:
        for n, user in enumerate(users):
            for text in (HARD.format(1000 + n), EASY.format(1000 + n)):
                client.chat.completions.create(model="auto", user=user,
                                               messages=[{"role": "user", "content": text}])
    entries = _read(db)
    assert len(entries) == 2 * len(users)
    arms = {e.experiment_arm for e in entries}
    assert arms == {"retrain-ab:live", "retrain-ab:retrained"}
    retrained = [e for e in entries if e.experiment_arm == "retrain-ab:retrained"]
    assert all(e.policy == "retrained" for e in retrained)
    # the retrained arm routes by what the ledger taught it: lemmas to the big model, greetings
    # to the small one
    assert {e.model for e in retrained if "lemma" in (e.prompt_text or "")} == {"fake/big"}
    assert {e.model for e in retrained if "hello" in (e.prompt_text or "")} == {"fake/small"}
    live = [e for e in entries if e.experiment_arm == "retrain-ab:live"]
    assert live and all(e.policy == "live" for e in live)
    report = subprocess.run([sys.executable, "-m", "llmroute", "experiments", "report",
                             "retrain-ab", "-c", str(path)], capture_output=True, text=True,
                            timeout=120)
    assert report.returncode == 0, report.stderr
    assert "retrained" in report.stdout and "live" in report.stdout
