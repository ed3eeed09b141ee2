"""Who a person is: job title, stated role and behaviour -> department, level and buying role.

A title gives the department (function) and the level (seniority), in Russian and English:
abbreviations common in Russian titles are expanded first ("зам. ГД по ИТ" -> "заместитель
генеральный директор по it"), and Russian words are also read in their dictionary form with
pymorphy3, so "начальника отдела закупок" and "Генеральным директором" meet the rules written
for "начальник отдела закупок" and "генеральный директор". Rules come from roles.yaml.

The buying role depends on the solution: a RoleMap (profiles.yaml) says which role a department
at a level takes in that solution's group (an IT director validates an HR system but may
initiate an IT purchase). Strength of evidence follows RoleSource: a role the person stated
(Zoom's role_in_purchase_process, a form field) beats one read from the job title, which beats
one inferred from behaviour (reading API docs), which beats the default.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import pymorphy3

from shared.schemas.roles import BuyingRole, Department, Level, RoleSource

_CYRILLIC_WORD = re.compile(r"^[а-я]+$")
_PARTICIPLE = {"PRTF", "PRTS"}
# pymorphy3 loads its dictionaries (about 15 MB) once per process, on the first title it reads.
_morph: pymorphy3.MorphAnalyzer | None = None


def normalise_title(text: str) -> str:
    """'HR-Менеджер' -> 'hr менеджер'; keeps & + # for c&b, fp&a, c++, c#."""
    text = text.lower().replace("ё", "е")
    return " ".join(re.sub(r"[^\w&+#]+", " ", text).split())


@lru_cache(maxsize=65536)
def lemma(word: str) -> str:
    """A Russian word in its dictionary form by pymorphy3 ('начальника' -> 'начальник').

    A reading as an adjective wins ('главного' -> 'главный', not the noun 'главное'), and
    participles stay adjectives ('управляющим' -> 'управляющий', not the verb 'управлять'), as
    titles use them; words of 3 letters or fewer and non-Cyrillic words are returned as they are.
    """
    global _morph
    if len(word) <= 3 or not _CYRILLIC_WORD.match(word):
        return word
    if _morph is None:
        _morph = pymorphy3.MorphAnalyzer()
    parses = _morph.parse(word)
    parse = next((p for p in parses if p.tag.POS == "ADJF"), parses[0])
    if parse.tag.POS in _PARTICIPLE:
        inflected = parse.inflect({"sing", "masc", "nomn"})
        return inflected.word if inflected is not None else word
    return parse.normal_form


def _compile(patterns: Sequence[str]) -> re.Pattern[str] | None:
    """One alternation per rule: a title is searched once per rule, not once per pattern."""
    if not patterns:
        return None
    return re.compile("|".join(f"(?:{p})" for p in patterns), re.IGNORECASE)


def _any(pattern: re.Pattern[str] | None, text: str) -> bool:
    return pattern is not None and pattern.search(text) is not None


@dataclass(frozen=True)
class TitleText:
    """A title as the rules read it: normalised with abbreviations expanded, and its lemmas."""

    text: str
    lemmas: str

    def matches(self, pattern: re.Pattern[str] | None) -> bool:
        return _any(pattern, self.text) or _any(pattern, self.lemmas)


@dataclass(frozen=True)
class TitleRule:
    name: str
    department: Department
    patterns: re.Pattern[str] | None
    weak: bool = False  # a generic title ("специалист", "engineer"): behaviour tells more


@dataclass(frozen=True)
class LevelRule:
    level: Level
    patterns: re.Pattern[str] | None


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
class RoleMap:
    """Department x level -> buying role, for one solution's group (profiles.yaml `roles`).

    `roles[department]` is a role for every level, or a mapping level -> role where "*" stands
    for the levels not named. A department the map does not name falls back to `fallback`
    (the default profile's map), then to influencer.
    """

    roles: Mapping[Department, Mapping[str, BuyingRole]] = field(default_factory=dict)
    fallback: RoleMap | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None, fallback: RoleMap | None = None) -> RoleMap:
        roles: dict[Department, dict[str, BuyingRole]] = {}
        for department, value in (data or {}).items():
            if isinstance(value, str):
                roles[Department(department)] = {"*": BuyingRole(value)}
            else:
                levels = {str(k): BuyingRole(v) for k, v in value.items()}
                unknown = [k for k in levels if k != "*" and k not in Level.__members__]
                if unknown:
                    raise ValueError(f"roles of {department!r}: unknown levels {unknown} (use {list(Level)} or *)")
                roles[Department(department)] = levels
        return cls(roles=roles, fallback=fallback)

    def role(self, department: Department, level: Level | None) -> BuyingRole:
        by_level = self.roles.get(department)
        if by_level is not None:
            if level is not None and level.value in by_level:
                return by_level[level.value]
            if "*" in by_level:
                return by_level["*"]
        if self.fallback is not None:
            return self.fallback.role(department, level)
        return BuyingRole.influencer


@dataclass(frozen=True)
class Classification:
    department: Department
    level: Level | None  # None when no title tells
    role: BuyingRole  # the role by the default profile; an opportunity applies its solution's map
    source: RoleSource
    # What decided it, for "why is this person in this role?": the title rule and the title, the
    # statement, or the behaviour rule; None for the default.
    basis: str | None = None


@dataclass(frozen=True, eq=False)  # compared by identity: it is a cache key of _classify_title
class RoleRules:
    titles: tuple[TitleRule, ...]
    levels: tuple[LevelRule, ...]
    abbreviations: Mapping[str, str]
    stated: tuple[StatedRule, ...]
    behaviour: tuple[BehaviourRule, ...]
    roles: RoleMap = RoleMap()  # the default profile's department x level -> role
    default_level: Level = Level.staff
    default_department: Department = Department.other
    default_role: BuyingRole = BuyingRole.influencer

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], roles: RoleMap | None = None) -> RoleRules:
        """roles.yaml's content; `roles` is the default profile's RoleMap (profiles.yaml)."""
        return cls(
            titles=tuple(
                TitleRule(name=rule.get("name", rule["department"]), department=Department(rule["department"]),
                          patterns=_compile(rule["match"]), weak=bool(rule.get("weak", False)))
                for rule in data["titles"]
            ),
            levels=tuple(LevelRule(level=Level(rule["level"]), patterns=_compile(rule["match"]))
                         for rule in data.get("levels", ())),
            abbreviations={normalise_title(k): normalise_title(v) for k, v in data.get("abbreviations", {}).items()},
            stated=tuple(
                StatedRule(role=BuyingRole(r["role"]) if r.get("role") else None, patterns=_compile(r["match"]))
                for r in data.get("stated_roles", ())
            ),
            behaviour=tuple(
                BehaviourRule(signal=r["signal"], min_touches=int(r.get("min_touches", 1)),
                              department=Department(r["department"]), role=BuyingRole(r["role"]))
                for r in data.get("behaviour", ())
            ),
            roles=roles or RoleMap(),
        )

    def read(self, title: str) -> TitleText:
        """The title normalised, abbreviations expanded word by word, and its lemmas."""
        words = [self.abbreviations.get(w, w) for w in normalise_title(title).split()]
        text = " ".join(words)
        return TitleText(text=text, lemmas=" ".join(lemma(w) for w in text.split()))

    def title_rule(self, title: str | None) -> TitleRule | None:
        """The first rule recognising the title; None when none does (then behaviour may tell)."""
        return _title_rule(self, title) if title else None

    def level(self, title: str | None) -> Level | None:
        """The first level rule matching the title, else the default level; None without a title."""
        if not title:
            return None
        text = self.read(title)
        return next((rule.level for rule in self.levels if text.matches(rule.patterns)), self.default_level)

    def classify_title(self, title: str | None) -> tuple[Department, Level] | None:
        """(department, level) from the title alone; None when no rule recognises it."""
        return _classify_title(self, title) if title else None

    def stated_role(self, statement: str | None) -> BuyingRole | None:
        if not statement:
            return None
        text = normalise_title(statement)
        for rule in self.stated:
            if _any(rule.patterns, text):
                return rule.role
        return None

    def behaviour_rule(self, signals: Mapping[str, int]) -> BehaviourRule | None:
        return next((rule for rule in self.behaviour if signals.get(rule.signal, 0) >= rule.min_touches), None)

    def from_behaviour(self, signals: Mapping[str, int]) -> tuple[Department, BuyingRole] | None:
        rule = self.behaviour_rule(signals)
        return (rule.department, rule.role) if rule is not None else None

    def classify(self, title: str | None, stated: str | None = None,
                 signals: Mapping[str, int] | None = None, roles: RoleMap | None = None) -> Classification:
        """Department, level and role of a person; `roles` is a solution's map (default: the default profile)."""
        roles = roles or self.roles
        rule = self.title_rule(title)
        by_title = self.classify_title(title)
        level = by_title[1] if by_title else None
        behaviour = self.behaviour_rule(signals or {})
        if behaviour and rule is not None and rule.weak:
            by_title = None
        department = by_title[0] if by_title else behaviour.department if behaviour else self.default_department
        if (role := self.stated_role(stated)) is not None:
            return Classification(department, level, role, RoleSource.stated, f"stated «{stated}»")
        if by_title and rule is not None:
            return Classification(department, level, roles.role(department, level), RoleSource.title,
                                  f"title rule {rule.name}: «{title}» -> {department}/{level}")
        if behaviour:
            return Classification(department, level, behaviour.role, RoleSource.behaviour,
                                  f"behaviour rule {behaviour.signal} >= {behaviour.min_touches}")
        return Classification(department, level, self.default_role, RoleSource.default)


@lru_cache(maxsize=16384)
def _title_rule(rules: RoleRules, title: str) -> TitleRule | None:
    """Cached as _classify_title: every event of a person asks for its title's rule again
    (RoleRules.classify), and reading a title (lemmas, pymorphy3) was 4% of grouping's CPU."""
    text = rules.read(title)
    return next((rule for rule in rules.titles if text.matches(rule.patterns)), None)


@lru_cache(maxsize=16384)
def _classify_title(rules: RoleRules, title: str) -> tuple[Department, Level] | None:
    """Cached: a title is read (lemmatised) once per process, not on every event of its person."""
    rule = rules.title_rule(title)
    if rule is None:
        return None
    return rule.department, rules.level(title) or rules.default_level
