"""The command line, run as a subprocess exactly as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent / "llmroute"


def run(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
        stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("LLMROUTE")}
    return subprocess.run([sys.executable, "-m", "llmroute", *args], capture_output=True, text=True,
                          cwd=cwd, env={**base, **(env or {})}, input=stdin, timeout=60)


def test_console_script_is_installed() -> None:
    result = subprocess.run([str(BIN), "version"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    assert result.stdout.strip() == __import__("llmroute").__version__


def test_route_prompt_shows_decision_reason_and_costs(tmp_path: Path) -> None:
    # the keyword table is the `rules` policy's (the default policy keeps only structural rules)
    result = run("route", "what's 2+2?", "--policy", "rules", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "simple" in result.stdout
    assert "openai/gpt-4o-mini" in result.stdout
    assert "rule 'short' matched" in result.stdout
    assert "baseline anthropic/claude-sonnet-4-5" in result.stdout
    learned = run("route", "what's 2+2?", cwd=tmp_path)
    assert "policy default, router classifier" in learned.stdout and "saves" in learned.stdout


def test_route_json_and_policy(tmp_path: Path) -> None:
    result = run("route", "Please debug this python traceback", "--json", "--policy", "rules",
                 cwd=tmp_path)
    decision = json.loads(result.stdout)
    assert decision["tier"] == "complex"
    assert decision["chain"][0] == "anthropic/claude-sonnet-4-5"
    assert "code-words" in decision["reason"]
    cheap = json.loads(run("route", "Tell me a story about a dragon and a knight who become "
                           "friends after a long misunderstanding", "--json", "--policy", "cheap",
                           cwd=tmp_path).stdout)
    assert cheap["tier"] == "simple" and cheap["policy"] == "cheap"


def test_route_unknown_policy_is_a_clear_error(tmp_path: Path) -> None:
    result = run("route", "hi", "--policy", "nope", cwd=tmp_path)
    assert result.returncode == 1
    assert "Unknown policy 'nope'" in result.stderr
    assert "Traceback" not in result.stderr


def test_route_constraints_and_no_eligible_model(tmp_path: Path) -> None:
    ok = json.loads(run("route", "hi", "--json", "--allow", "anthropic/*", cwd=tmp_path).stdout)
    # only the allowed models are scored and chained (which of the two wins "hi" is the classifier's
    # near-tie: P(good) − λ·cost within 0.001 of each other with session 20's artifact)
    assert set(ok["scores"]) == {"anthropic/claude-haiku-4-5", "anthropic/claude-sonnet-4-5"}
    assert ok["chain"] and all(m.startswith("anthropic/") for m in ok["chain"])
    assert set(ok["excluded"]) == {"openai/gpt-4o-mini", "openai/gpt-4.1-mini", "openai/gpt-4.1"}
    bad = run("route", "hi", "--allow", "anthropic/*", "--exclude", "*claude*", cwd=tmp_path)
    assert bad.returncode == 1
    assert "No model can serve this request" in bad.stderr
    assert "anthropic/claude-haiku-4-5: excluded by excluded_models" in bad.stderr
    assert "openai/gpt-4o-mini: not in allowed_models" in bad.stderr


def test_route_batch_jsonl(tmp_path: Path) -> None:
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("\n".join([
        json.dumps({"id": "a", "prompt": "hello there"}),
        json.dumps({"id": "b", "messages": [{"role": "system", "content": "be brief"},
                                            {"role": "user", "content": "refactor this function"}]}),
        "",
        "{not json",
        json.dumps({"id": "d", "text": "no prompt key"}),
        json.dumps({"id": "e", "prompt": "hi", "max_tokens": 10_000_000}),
    ]) + "\n")
    out = tmp_path / "decisions.jsonl"
    result = run("route", "--input", str(prompts), "--output", str(out), "--policy", "rules",
                 cwd=tmp_path)
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["id"] for line in lines] == ["a", "b", 4, "d", "e"]
    assert lines[0]["tier"] == "simple"
    assert lines[1]["tier"] == "complex"
    assert "invalid JSON" in lines[2]["error"]
    assert "`prompt`" in lines[3]["error"]
    assert "No model can serve" in lines[4]["error"]
    assert result.returncode == 1  # some lines failed, and the summary says so
    assert "routed 2 request(s)" in result.stderr and "3 error(s)" in result.stderr


def test_models_table_and_json(tmp_path: Path) -> None:
    table = run("models", cwd=tmp_path)
    assert table.returncode == 0
    assert "openai/gpt-4o-mini" in table.stdout and "0.15" in table.stdout
    models = json.loads(run("models", "--json", "--tier", "complex", cwd=tmp_path).stdout)
    assert [m["name"] for m in models] == ["anthropic/claude-sonnet-4-5", "openai/gpt-4.1"]
    assert models[0]["input_per_m"] == "3" and models[0]["output_per_m"] == "15"
    everything = json.loads(run("models", "--json", "--all", "--search", "gpt-4o-mini",
                                cwd=tmp_path).stdout)
    assert len(everything) > 1


def test_unpriced_model_is_flagged_not_zero(tmp_path: Path) -> None:
    config = tmp_path / "llmroute.yaml"
    config.write_text("models:\n  acme/house-model: {provider: acme, tier: simple}\n"
                      "tiers:\n  simple: {model: acme/house-model}\n  medium: {model: gpt-4o-mini}\n"
                      "  complex: {model: gpt-4o}\n"
                      "policies:\n  default: {router: rules, default_tier: simple}\n")
    checked = run("config", "check", str(config))
    assert checked.returncode == 0
    assert "acme/house-model" in checked.stderr and "no price" in checked.stderr
    listed = json.loads(run("models", "--json", "-c", str(config)).stdout)
    assert listed[0]["priced"] is False and listed[0]["input_per_m"] is None
    routed = run("route", "hi", "-c", str(config))
    assert "est. cost   unpriced" in routed.stdout


def test_config_check_reports_every_problem_with_paths_and_hints(tmp_path: Path) -> None:
    config = tmp_path / "broken.yaml"
    config.write_text(
        "tiers:\n"
        "  simple: {model: openai/gpt-4o-mimi}\n"
        "  complex: {model: gpt-4o, fallbaks: [gpt-4.1]}\n"
        "rules:\n"
        "  - {name: r1, tier: huge, keywords: [x]}\n"
        "  - {name: r2, tier: simple, regex: ['(unclosed']}\n"
        "routing: {expected_output_tokens: many}\n"
    )
    result = run("config", "check", str(config))
    assert result.returncode == 2
    assert "tiers.complex.fallbaks" in result.stderr and "did you mean 'fallbacks'" in result.stderr
    assert "routing.expected_output_tokens" in result.stderr
    assert "Traceback" not in result.stderr
    config.write_text(
        "tiers:\n"
        "  simple: {model: openai/gpt-4o-mimi}\n"
        "  complex: {model: gpt-4o}\n"
        "rules:\n"
        "  - {name: r1, tier: huge, keywords: [x]}\n"
        "  - {name: r2, tier: simple, regex: ['(unclosed']}\n"
        "policies:\n"
        "  default: {router: rulez}\n"
        "  cheap: {router: rules, default_tier: medium}\n"
    )
    result = run("config", "check", str(config))
    assert result.returncode == 2
    err = result.stderr
    assert "tiers.simple.model" in err and "openai/gpt-4o-mini" in err  # close-name hint
    assert "rules[0].tier" in err and "unknown tier 'huge'" in err
    assert "rules[1].regex[0]" in err and "invalid regex" in err
    assert "policies.default.router" in err and "registered routers" in err
    assert "policies.cheap.default_tier" in err


def test_broken_config_never_half_starts(tmp_path: Path) -> None:
    config = tmp_path / "llmroute.yaml"
    config.write_text("tiers: {simple: {model: nope/nothing}}\n")
    result = run("route", "hi", cwd=tmp_path)  # picks up ./llmroute.yaml
    assert result.returncode == 2
    assert "tiers.simple.model" in result.stderr
    assert result.stdout == ""


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("tiers:\n  simple: [unclosed\n")
    result = run("config", "check", str(config))
    assert result.returncode == 2
    assert "invalid YAML at line" in result.stderr


def test_env_overrides_apply_to_cli(tmp_path: Path) -> None:
    result = run("route", "a b c d e f g h i j k l m n o p q r s t", "--json", cwd=tmp_path,
                 env={"LLMROUTE__ROUTING__DEFAULT_POLICY": "quality"})
    assert json.loads(result.stdout)["policy"] == "quality"
    bad = run("config", "check", cwd=tmp_path, env={"LLMROUTE__ROUTING__DEFAULT_POLICY": "nope"})
    assert bad.returncode == 2 and "routing.default_policy" in bad.stderr


@pytest.mark.parametrize("args", [["route"], ["route", "hi", "--input", "x.jsonl"]])
def test_route_needs_exactly_one_source(tmp_path: Path, args: list[str]) -> None:
    result = run(*args, cwd=tmp_path)
    assert result.returncode == 1
    assert "give either a PROMPT or --input FILE" in result.stderr


def test_db_migrate_status_and_feedback(tmp_path: Path) -> None:
    import asyncio
    from datetime import UTC, datetime

    from llmroute.ledger import open_store
    from llmroute.ledger.entry import LedgerEntry

    db = tmp_path / "ledger.db"
    config = tmp_path / "llmroute.yaml"
    config.write_text(f"ledger: {{url: 'sqlite:///{db}'}}\n")
    pending = run("db", "status", "-c", str(config))
    assert pending.returncode == 0 and "0001_create_requests" in pending.stdout
    assert "pending" in pending.stdout
    migrated = run("db", "migrate", "-c", str(config))
    from llmroute.ledger.migrations import MIGRATIONS

    names = [m.name for m in MIGRATIONS]
    assert names[:2] == ["0001_create_requests", "0002_control"]
    assert f"applied {len(names)} migration(s): {', '.join(names)}" in migrated.stdout
    again = run("db", "migrate", "-c", str(config))
    assert "up to date" in again.stdout
    assert "pending" not in run("db", "status", "-c", str(config)).stdout

    async def add() -> LedgerEntry | None:
        store = open_store(f"sqlite:///{db}")
        await store.write([LedgerEntry(request_id="req_1", ts=datetime.now(UTC), status="ok",
                                       http_status=200, model="m")])
        await store.close()
        return None

    asyncio.run(add())
    ok = run("feedback", "req_1", "--rating", "5", "--success", "-c", str(config))
    assert ok.returncode == 0, ok.stderr

    async def read() -> LedgerEntry | None:
        store = open_store(f"sqlite:///{db}")
        try:
            return await store.get("req_1")
        finally:
            await store.close()

    entry = asyncio.run(read())
    assert entry is not None and (entry.user_rating, entry.task_success) == (5, True)
    missing = run("feedback", "req_nope", "--rating", "2", "-c", str(config))
    assert missing.returncode == 1 and "no request 'req_nope'" in missing.stderr
    bad = run("feedback", "req_1", "--rating", "9", "-c", str(config))
    assert bad.returncode == 2  # typer's own usage error for an out-of-range rating
