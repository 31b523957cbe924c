"""Guardrails at run time: a significantly worse arm is marked stopped in the shared state with one
alert, every replica reads the mark, and admission then serves that arm's units with the control."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

from llmroute.catalog import Catalog
from llmroute.chat import chat_request
from llmroute.config import load
from llmroute.control.admission import Admission
from llmroute.control.experiment_report import arm_window
from llmroute.control.experiments import ExperimentConfig, assign
from llmroute.control.guardrails import stop_arms, stopped_arms
from llmroute.control.state_memory import MemoryState
from llmroute.outcome import Principal

from .experiment_fixture import BASE, fixture_entries
from .test_experiment_report import EXPERIMENT


def test_a_worse_arm_is_stopped_once_and_served_by_the_control(tmp_path: Path) -> None:
    experiment = ExperimentConfig.model_validate(
        {**EXPERIMENT, "guardrails": {"alpha": 0.05}, "ends": None})
    state = MemoryState()
    now = BASE + timedelta(days=1)

    async def go() -> None:
        alerts = await stop_arms([experiment], arm_window(fixture_entries()), state, now)
        assert [(a.rule, a.severity, a.subject) for a in alerts] == [
            ("guardrail", "critical", f"{experiment.name}:cheap")]
        assert "error_rate" in alerts[0].message
        assert await stopped_arms([experiment], state) == {(experiment.name, "cheap")}
        # a guardrail at α = 0.01 stops nothing (the interval still holds 0)
        calm = experiment.model_copy(update={"guardrails": experiment.guardrails.model_copy(
            update={"alpha": 0.01})})
        assert await stop_arms([calm], arm_window(fixture_entries()), MemoryState(), now) == []

        path = tmp_path / "llmroute.yaml"
        path.write_text("ledger: {enabled: false}\n")
        settings = load(path, environ={}).model_copy(update={"experiments": (experiment,)})
        admission = Admission(settings, Catalog.from_settings(settings), state)
        users = [f"u{i}" for i in range(200)]
        cheap_users = [u for u in users if assign(experiment, u) == "cheap"]
        assert cheap_users
        control_policy = experiment.arms[experiment.control].policy
        req = chat_request({"model": "auto", "messages": [{"role": "user", "content": "hi"}],
                            "user": cheap_users[0]})
        before = await admission.assign(req, Principal(), control_policy)
        assert before is not None and before.arm == "cheap"
        await admission.refresh_stops()
        after = await admission.assign(req, Principal(), control_policy)
        assert after is not None and after.arm == experiment.control

    asyncio.run(go())
