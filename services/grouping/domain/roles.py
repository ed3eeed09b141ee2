"""Role classification: job title, stated role and behaviour -> department and buying role.

Strength of evidence follows RoleSource: a role the person stated (Zoom's
role_in_purchase_process, a form field) beats one read from the job title, which beats one
inferred from behaviour (reading API docs), which beats the default. The department comes
from the title, else from behaviour, else "other". Rules come from roles.yaml.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from shared.schemas.roles import BuyingRole, Department, RoleSource


def normalise_title(text: str) -> str:
    """'HR-Менеджер' -> 'hr менеджер'; keeps & + # for c&b, fp&a, c++, c#."""
    text = text.lower().replace("ё", "е")
    return " ".join(re.sub(r"[^\w&+#]+", " ", text).split())


def _compile(patterns: Sequence[str]) -> re.Pattern[str] | None:
    """One alternation per rule: a title is searched once per rule, not once per pattern."""
    if not patterns:
        return None
    return re.compile("|".join(f"(?:{p})" for p in patterns), re.IGNORECASE)


def _any(pattern: re.Pattern[str] | None, text: str) -> bool:
    return pattern is not None and pattern.search(text) is not None


@dataclass(frozen=True)
class TitleRule:
    name: str
    department: Department
    patterns: re.Pattern[str] | None
    role: BuyingRole | None = None  # None: the department's role (by seniority)
    weak: bool = False  # a generic title ("специалист", "engineer"): behaviour tells more


@dataclass(frozen=True)
class StatedRule:
    role: BuyingRole | None  # None: the statement says "not involved", it carries no role
    patterns: re.Pattern[str] | None


@dataclass(frozen=True)
class BehaviourRule:
    signal: str  # a content signal from the catalog, e.g. "technical"
    min_touches: int
    department: Department
    role: BuyingRole


@dataclass(frozen=True)
class Classification:
    department: Department
    role: BuyingRole
    source: RoleSource


@dataclass(frozen=True)
class RoleRules:
    titles: tuple[TitleRule, ...]
    department_roles: Mapping[Department, BuyingRole]
    senior_roles: Mapping[Department, BuyingRole]
    seniority: re.Pattern[str] | None
    stated: tuple[StatedRule, ...]
    behaviour: tuple[BehaviourRule, ...]
    default_department: Department = Department.other
    default_role: BuyingRole = BuyingRole.influencer

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RoleRules:
        departments = data.get("departments", {})
        return cls(
            titles=tuple(
                TitleRule(
                    name=rule.get("name", rule["department"]),
                    department=Department(rule["department"]),
                    patterns=_compile(rule["match"]),
                    role=BuyingRole(rule["role"]) if rule.get("role") else None,
                    weak=bool(rule.get("weak", False)),
                )
                for rule in data["titles"]
            ),
            department_roles={Department(d): BuyingRole(v["role"]) for d, v in departments.items()},
            senior_roles={Department(d): BuyingRole(v["senior_role"])
                          for d, v in departments.items() if v.get("senior_role")},
            seniority=_compile(data.get("seniority", ())),
            stated=tuple(
                StatedRule(role=BuyingRole(r["role"]) if r.get("role") else None, patterns=_compile(r["match"]))
                for r in data.get("stated_roles", ())
            ),
            behaviour=tuple(
                BehaviourRule(signal=r["signal"], min_touches=int(r.get("min_touches", 1)),
                              department=Department(r["department"]), role=BuyingRole(r["role"]))
                for r in data.get("behaviour", ())
            ),
        )

    def title_rule(self, title: str | None) -> TitleRule | None:
        """The first rule recognising the title; None when none does (then behaviour may tell)."""
        if not title:
            return None
        text = normalise_title(title)
        return next((rule for rule in self.titles if _any(rule.patterns, text)), None)

    def classify_title(self, title: str | None) -> tuple[Department, BuyingRole] | None:
        return self._by_rule(self.title_rule(title), title)

    def _by_rule(self, rule: TitleRule | None, title: str | None) -> tuple[Department, BuyingRole] | None:
        if rule is None or title is None:
            return None
        if rule.role is not None:
            return rule.department, rule.role
        if rule.department in self.senior_roles and _any(self.seniority, normalise_title(title)):
            return rule.department, self.senior_roles[rule.department]
        return rule.department, self.department_roles.get(rule.department, self.default_role)

    def stated_role(self, statement: str | None) -> BuyingRole | None:
        if not statement:
            return None
        text = normalise_title(statement)
        for rule in self.stated:
            if _any(rule.patterns, text):
                return rule.role
        return None

    def from_behaviour(self, signals: Mapping[str, int]) -> tuple[Department, BuyingRole] | None:
        for rule in self.behaviour:
            if signals.get(rule.signal, 0) >= rule.min_touches:
                return rule.department, rule.role
        return None

    def classify(self, title: str | None, stated: str | None = None,
                 signals: Mapping[str, int] | None = None) -> Classification:
        rule = self.title_rule(title)
        by_title = self._by_rule(rule, title)
        by_behaviour = self.from_behaviour(signals or {})
        if by_behaviour and rule is not None and rule.weak:
            by_title = None
        department = (by_title or by_behaviour or (self.default_department,))[0]
        if (role := self.stated_role(stated)) is not None:
            return Classification(department, role, RoleSource.stated)
        if by_title:
            return Classification(department, by_title[1], RoleSource.title)
        if by_behaviour:
            return Classification(department, by_behaviour[1], RoleSource.behaviour)
        return Classification(department, self.default_role, RoleSource.default)
