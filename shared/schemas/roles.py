"""Departments and buying-group roles: the vocabulary every service shares."""

from enum import StrEnum


class Department(StrEnum):
    hr = "hr"
    it = "it"
    finance = "finance"
    executive = "executive"
    procurement = "procurement"
    legal = "legal"
    operations = "operations"
    sales = "sales"
    marketing = "marketing"
    other = "other"


class Level(StrEnum):
    """Seniority read from a job title: it decides, with the department, the role in a solution's group."""

    top = "top"  # owners, the CEO and deputies, C-level and directors of a function (ФД, CIO, VP)
    head = "head"  # heads of a department, service or team (начальник отдела, Head of X, главбух)
    staff = "staff"  # specialists, managers without a unit, assistants, interns


class BuyingRole(StrEnum):
    initiator = "initiator"  # initiator / user: feels the pain, starts the search
    technical_validator = "technical_validator"
    budget_holder = "budget_holder"
    decision_maker = "decision_maker"
    procurement = "procurement"
    legal = "legal"  # legal / compliance
    influencer = "influencer"


class RoleSource(StrEnum):
    """Where a member's role came from; a stronger source replaces a weaker one."""

    default = "default"
    behaviour = "behaviour"
    title = "title"
    stated = "stated"
    manual = "manual"


ROLE_SOURCE_STRENGTH = {s: i for i, s in enumerate(RoleSource)}
