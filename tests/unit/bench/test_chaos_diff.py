"""bench/chaos_diff.py: two runs of one market name the same person by different pseudonyms
(each run's privacy vault draws its own, docs/privacy.md), so the chaos bench compared no run
equal to the fault-free one before it named people by their touches (0 of 8 in the series of
17:03 UTC). A person is named by the smallest id of their touches, the market's event ids."""

from __future__ import annotations

import json

from bench.chaos_diff import diff, person_labels


def test_a_person_is_named_by_the_smallest_id_of_their_touches() -> None:
    touches = [("p-a1", "load-chaos-0-3-2"), ("p-a1", "load-chaos-0-3-0"), ("p-b1", "load-chaos-0-1-4")]

    assert person_labels(touches) == {"p-a1": "load-chaos-0-3-0", "p-b1": "load-chaos-0-1-4"}


def test_the_same_people_under_other_pseudonyms_are_no_difference() -> None:
    def run(pseudonym: dict[str, str]) -> tuple[dict, set]:
        label = person_labels([(pseudonym["anna"], "t-1"), (pseudonym["anna"], "t-3"), (pseudonym["boris"], "t-2")])
        members = {("acme:crm", label[pseudonym[p]], dept, role)
                   for p, dept, role in (("anna", "it", "technical_validator"), ("boris", "finance", "budget_holder"))}
        return {"acme:crm": {"formed_at": "2025-10-01", "breakdown": json.dumps({"score": 0.4})}}, members

    base, other = run({"anna": "p-91", "boris": "p-17"}), run({"anna": "p-03", "boris": "p-55"})

    assert diff(base, other) == []


def test_a_differing_column_and_role_are_named() -> None:
    base = ({"acme:crm": {"formed_at": "2025-10-01"}}, {("acme:crm", "t-1", "it", "technical_validator")})
    run = ({"acme:crm": {"formed_at": "2025-10-03"}}, {("acme:crm", "t-1", "it", "influencer")})

    assert diff(base, run) == [
        "acme:crm: formed_at 2025-10-01 -> 2025-10-03",
        "member only in baseline: ('acme:crm', 't-1', 'it', 'technical_validator')",
        "member only in run: ('acme:crm', 't-1', 'it', 'influencer')",
    ]
