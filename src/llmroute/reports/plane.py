"""Points on the cost–quality plane, each saying what it was measured on.

Two sources, never mixed up:

- the ledger (`ledger_points`): per model, the mean cost per priced request and the mean feedback
  quality of the requests that model *served* (task success rate, else (rating − 1) / 4, the
  scale `llmroute train --from-ledger` uses); and the routed traffic's point per policy or
  experiment arm. A model's ledger point is biased by routing: it answered the prompts the router
  sent it, not all of them.
- the lab (`LabFrontier`, e.g. the `frontier.json` that `llmroute demo` writes beside its ledger):
  offline, on held-out prompts with every model's recorded outcome: each single model on every
  prompt, the classifier's cost–quality curve over every knob setting (hindsight: the best setting
  is chosen on those very prompts), and the policy's own point(s).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from .aggregate import Summary

Kind = Literal["ledger-model", "ledger-routed", "lab-model", "lab-curve", "lab-policy"]
KINDS: tuple[Kind, ...] = ("ledger-model", "ledger-routed", "lab-model", "lab-curve", "lab-policy")
#: What each kind of point is measured on, as the plots' legends say it.
KIND_LABELS: dict[Kind, str] = {
    "ledger-model": "ledger: each model on the requests it served",
    "ledger-routed": "ledger: routed traffic (per policy / arm)",
    "lab-model": "lab: always one model (held-out prompts)",
    "lab-curve": "lab: classifier, every knob (hull, hindsight)",
    "lab-policy": "lab: the policy replayed (held-out prompts)",
}
FRONTIER_VERSION = 1


@dataclass(frozen=True)
class PlanePoint:
    """One point: mean USD per request and mean quality in [0, 1], over `requests` requests or
    prompts; `note` says what exactly it is measured on; `reference` is the reference model's
    (cost, quality) on the same requests, when known."""

    label: str
    kind: Kind
    cost_usd: float
    quality: float
    requests: int
    note: str = ""
    reference: tuple[float, float] | None = None

    def relative(self) -> tuple[float, float] | None:
        """(cost, quality) as fractions of the reference's on the same requests."""
        if self.reference is None or not self.reference[0] or not self.reference[1]:
            return None
        return self.cost_usd / self.reference[0], self.quality / self.reference[1]


def feedback_quality(summary: Summary) -> float | None:
    """The group's mean feedback quality in [0, 1]: its task success rate when any request was
    judged, else (mean rating − 1) / 4 when any was rated, else None."""
    if summary.success_rate is not None:
        return summary.success_rate
    if summary.mean_rating is not None:
        return (summary.mean_rating - 1) / 4
    return None


def _point(summary: Summary, kind: Kind, prefix: str) -> PlanePoint | None:
    quality = feedback_quality(summary)
    if quality is None or not summary.priced:
        return None
    scored = summary.judged if summary.success_rate is not None else summary.rated
    return PlanePoint(f"{prefix}{summary.label}", kind, float(summary.cost_usd) / summary.priced,
                      quality, summary.requests,
                      f"{summary.priced} priced requests, {scored} with feedback")


def ledger_points(models: Iterable[Summary], routed: Iterable[Summary], routed_prefix: str = ""
                  ) -> list[PlanePoint]:
    """The ledger's points: one per model (`models`: a report's groups by model) and one per
    routed group (`routed`: groups by policy or arm, or the total); groups without feedback or
    without a priced request have no point."""
    out = [_point(s, "ledger-model", "") for s in models]
    out += [_point(s, "ledger-routed", routed_prefix) for s in routed]
    return [p for p in out if p is not None]


@dataclass(frozen=True)
class LabFrontier:
    """The lab's points on held-out prompts, with what they were measured on and the reference
    model the shares are relative to."""

    measured_on: str
    reference: str
    points: tuple[PlanePoint, ...]

    def of_kind(self, kind: Kind) -> list[PlanePoint]:
        """The points of one kind, in order."""
        return [p for p in self.points if p.kind == kind]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {"version": FRONTIER_VERSION, "measured_on": self.measured_on,
                "reference": self.reference, "points": [asdict(p) for p in self.points]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LabFrontier:
        """Parse `to_dict`'s output (ValueError on another version or a malformed point)."""
        if data.get("version") != FRONTIER_VERSION:
            raise ValueError(f"frontier version {data.get('version')!r}, expected {FRONTIER_VERSION}")
        points = []
        for raw in data.get("points", ()):
            kind = raw.get("kind")
            if kind not in KINDS:
                raise ValueError(f"unknown point kind {kind!r}")
            ref = raw.get("reference")
            points.append(PlanePoint(str(raw["label"]), kind, float(raw["cost_usd"]),
                                     float(raw["quality"]), int(raw["requests"]),
                                     str(raw.get("note", "")),
                                     None if ref is None else (float(ref[0]), float(ref[1]))))
        return cls(str(data.get("measured_on", "")), str(data.get("reference", "")), tuple(points))

    def save(self, path: Path) -> None:
        """Write as JSON."""
        path.write_text(json.dumps(self.to_dict(), indent=2), "utf-8")

    @classmethod
    def load(cls, path: Path) -> LabFrontier:
        """Read a file `save` wrote."""
        return cls.from_dict(json.loads(path.read_text("utf-8")))


def plane_dicts(points: Sequence[PlanePoint]) -> list[dict[str, Any]]:
    """JSON-ready points (the dashboard's)."""
    return [asdict(p) for p in points]
