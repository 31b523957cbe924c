"""The base of every settings model: frozen, and unknown keys are errors."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Frozen(BaseModel):
    """A frozen settings section that forbids unknown keys."""

    model_config = ConfigDict(frozen=True, extra="forbid")
