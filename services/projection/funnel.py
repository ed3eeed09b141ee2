"""The qualifying funnel a customer configures (config/funnel.yaml, or PROJECTION_FUNNEL):
stages with names, probabilities and exit criteria, the criteria themselves, the CRM's stage
names, the seller's team roles and the forecast's health rule.

A broken file fails at start with the field at fault (pydantic), never at the first message.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from functools import cache, cached_property
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.schemas.roles import BuyingRole

DEFAULT_PATH = Path(__file__).parent / "config" / "funnel.yaml"

Rule = Literal["member_engaged", "group_formed", "roles_engaged", "departments_engaged", "engaged_members",
               "required_roles_covered", "technical_content"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Names(_Strict):
    ru: str
    en: str

    def __call__(self, lang: str) -> str:
        return self.ru if lang == "ru" else self.en


class Stage(_Strict):
    code: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    name: Names
    description: Names | None = None
    probability: float = Field(ge=0, le=1)
    engaged_benchmark: float = Field(ge=0)
    exit: tuple[str, ...] = ()
    outcome: Literal["won", "lost"] | None = None  # a closed stage


class Criterion(_Strict):
    name: Names
    rule: Rule | None = None  # derived from the buying group by this rule
    set_by: Literal["person"] | None = None  # or set by a person with evidence
    roles: tuple[BuyingRole, ...] = ()
    at_least: int = Field(1, ge=1)

    @model_validator(mode="after")
    def _one_source(self) -> Criterion:
        if (self.rule is None) == (self.set_by is None):
            raise ValueError("a criterion is either derived (rule) or set by a person (set_by: person)")
        if self.rule == "roles_engaged" and not self.roles:
            raise ValueError("rule roles_engaged needs roles")
        return self

    @property
    def derived(self) -> bool:
        return self.rule is not None


class TeamRole(_Strict):
    code: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    name: Names


class Team(_Strict):
    roles: tuple[TeamRole, ...]
    forecast_role: str


class ForecastRule(_Strict):
    health_floor: float = Field(0.5, ge=0, le=1)
    finance_early_days: int = Field(14, ge=1)


class Funnel(_Strict):
    stages: tuple[Stage, ...]
    criteria: dict[str, Criterion]
    technical_content: str
    crm_stages: dict[str, str] = {}
    team: Team
    forecast: ForecastRule = ForecastRule()

    @model_validator(mode="after")
    def _consistent(self) -> Funnel:
        codes = [s.code for s in self.stages]
        if len(set(codes)) != len(codes):
            raise ValueError("stage codes must be unique")
        if not any(s.outcome == "won" for s in self.stages) or not any(s.outcome == "lost" for s in self.stages):
            raise ValueError("the funnel needs a won and a lost stage")
        if not self.open_stages:
            raise ValueError("the funnel needs at least one open stage")
        for stage in self.stages:
            for c in stage.exit:
                if c not in self.criteria:
                    raise ValueError(f"stage {stage.code}: unknown exit criterion {c!r}")
        for crm, stage in self.crm_stages.items():
            if stage not in codes:
                raise ValueError(f"crm_stages: {crm!r} maps onto unknown stage {stage!r}")
        if self.team.forecast_role not in {r.code for r in self.team.roles}:
            raise ValueError(f"team.forecast_role {self.team.forecast_role!r} is not a team role")
        re.compile(self.technical_content)
        return self

    @cached_property
    def open_stages(self) -> tuple[Stage, ...]:
        return tuple(s for s in self.stages if s.outcome is None)

    @cached_property
    def by_code(self) -> dict[str, Stage]:
        return {s.code: s for s in self.stages}

    def index(self, code: str) -> int:
        """Position among the open stages; a closed or unknown stage is -1."""
        return next((i for i, s in enumerate(self.open_stages) if s.code == code), -1)

    @property
    def first(self) -> Stage:
        return self.open_stages[0]

    def stage_for(self, name: str) -> Stage | None:
        """A funnel code as is, else the CRM's stage name mapped (case-insensitive)."""
        if name in self.by_code:
            return self.by_code[name]
        mapped = {k.lower(): v for k, v in self.crm_stages.items()}.get(name.strip().lower())
        return self.by_code[mapped] if mapped else None

    def outcome_stage(self, outcome: str) -> Stage:
        return next(s for s in self.stages if s.outcome == outcome)

    @property
    def person_criteria(self) -> list[str]:
        return [code for code, c in self.criteria.items() if not c.derived]

    @property
    def team_roles(self) -> list[str]:
        return [r.code for r in self.team.roles]


def parse(data: Mapping) -> Funnel:
    return Funnel.model_validate(data)


def load(env: Mapping[str, str] = os.environ) -> Funnel:
    """The funnel of PROJECTION_FUNNEL, else the default next to this module."""
    path = Path(env.get("PROJECTION_FUNNEL") or DEFAULT_PATH)
    return parse(yaml.safe_load(path.read_text(encoding="utf-8")))


@cache
def configured() -> Funnel:
    """The funnel of this process's environment, read once."""
    return load()
