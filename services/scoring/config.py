"""Scoring configuration: the shipped YAML, overridden by the file named in BG_SCORING_CONFIG."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, model_validator

from shared.schemas.roles import BuyingRole, Department
from shared.schemas.touch import TouchKind

DEFAULT_PATH = Path(__file__).parent / "config" / "scoring.yaml"
ENV_PATH = "BG_SCORING_CONFIG"


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Points(_Strict):
    engagement: float = Field(ge=0)
    breadth: float = Field(ge=0)
    role_coverage: float = Field(ge=0)
    departments: float = Field(ge=0)
    recency: float = Field(ge=0)


class Tiers(_Strict):
    A: float
    B: float

    @model_validator(mode="after")
    def _ordered(self) -> Tiers:
        if self.B > self.A:
            raise ValueError("tier B threshold must not exceed tier A threshold")
        return self


class StancePoints(_Strict):
    """Points a member marked by hand is worth, by influence (high, medium, low).

    The strongest champion counts (a deal needs one person who leads it on the buyer's side:
    MEDDICC's champion), every blocker counts; the sum stays within [blockers_floor, the
    strongest champion's points], and the score within 0..100."""

    champion: dict[str, float] = Field(default_factory=lambda: {"high": 8.0, "medium": 5.0, "low": 2.0})
    blocker: dict[str, float] = Field(default_factory=lambda: {"high": -8.0, "medium": -5.0, "low": -2.0})
    blockers_floor: float = Field(-15.0, le=0)

    @model_validator(mode="after")
    def _signs(self) -> StancePoints:
        levels = {"high", "medium", "low"}
        if set(self.champion) != levels or set(self.blocker) != levels:
            raise ValueError("score.stance.champion and .blocker need points for high, medium and low")
        if min(self.champion.values()) < 0 or max(self.blocker.values()) > 0:
            raise ValueError("a champion's points are not negative, a blocker's not positive")
        return self


class ScoreConfig(_Strict):
    points: Points
    stance: StancePoints = StancePoints()
    member_cap: PositiveFloat
    engagement_scale: PositiveFloat
    engaged_threshold: float = Field(ge=0)
    breadth_target: int = Field(ge=2)
    departments_target: int = Field(ge=2)
    recency_half_life: timedelta
    velocity_window: timedelta
    velocity_target: PositiveFloat
    tiers: Tiers


class FormationConfig(_Strict):
    forming_people: int = Field(ge=2)
    # At least two: one person alone is a lead, never a group.
    min_people: int = Field(ge=2)
    min_departments: int = Field(ge=1)
    window: timedelta
    # Departments a title did not reveal ("other") say nothing about breadth: a person of an
    # unknown department never counts as a second department (issue 15).
    uncounted_departments: frozenset[Department] = frozenset({Department.other})

    @model_validator(mode="after")
    def _forming_first(self) -> FormationConfig:
        if self.forming_people > self.min_people:
            raise ValueError("formation.forming_people must not exceed formation.min_people")
        return self


class TimersConfig(_Strict):
    role_gap_after: timedelta
    stall_after: timedelta
    # A signal whose fact is older than this behind the log's wall clock is history (backfill).
    backfill_after: timedelta = timedelta(hours=1)
    # How often, in the log's time, an idle opportunity's score is recomputed so that its
    # priority decays, and for how long after its last touch (then it has decayed away).
    rescore_every: timedelta = timedelta(days=1)
    rescore_for: timedelta = timedelta(days=90)

    @model_validator(mode="after")
    def _positive(self) -> TimersConfig:
        if min(self.role_gap_after, self.stall_after, self.rescore_every, self.rescore_for) <= timedelta(0):
            raise ValueError("timers must be positive durations")
        return self


class Profile(_Strict):
    expected_roles: tuple[BuyingRole, ...]
    required_roles: tuple[BuyingRole, ...]


class ScoringConfig(_Strict):
    touch_weights: dict[TouchKind, float]
    half_life: timedelta
    score: ScoreConfig
    formation: FormationConfig
    timers: TimersConfig
    default_profile: Profile
    retain_touches: timedelta

    @model_validator(mode="after")
    def _complete(self) -> ScoringConfig:
        missing = set(TouchKind) - set(self.touch_weights)
        if missing:
            raise ValueError(f"touch_weights lacks {sorted(missing)}")
        if self.half_life <= timedelta(0):
            raise ValueError("half_life must be positive")
        if self.retain_touches < self.formation.window:
            raise ValueError("retain_touches must cover the formation window")
        return self

    def weight(self, kind: TouchKind | str) -> float:
        return self.touch_weights[TouchKind(kind)]


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_config(path: str | Path | None = None) -> ScoringConfig:
    """The shipped defaults, deep-merged with the override file (argument, else BG_SCORING_CONFIG)."""
    data = yaml.safe_load(DEFAULT_PATH.read_text(encoding="utf-8"))
    override_path = path or os.environ.get(ENV_PATH)
    if override_path:
        data = _merge(data, yaml.safe_load(Path(override_path).read_text(encoding="utf-8")) or {})
    return ScoringConfig.model_validate(data)
