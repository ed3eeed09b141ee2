"""Merging the rows of one batch: the result must not depend on how messages were batched,
or a rebuild (big batches) and a live run (small ones) would end in different rows."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.projection.domain import Row, map_message, reduce_rows
from shared.schemas.roles import BuyingRole
from tests.unit.projection.stories import ELENA, Log, argotrubosbyt, day, krasnaya_romashka

pytestmark = pytest.mark.unit


def _rows() -> list[Row]:
    log = Log("r1")
    opp = krasnaya_romashka(log)
    argotrubosbyt(log)
    log.change_role(opp, ELENA, BuyingRole.decision_maker, day(12))
    log.stage(opp, "won", "won", day(30), 5e5)
    return [row for _, _, message in log.messages for row in map_message(message)]


ROWS = _rows()


def _as_rows(reduced: dict) -> list[Row]:
    return [Row(kind, values) for kind, rows in reduced.items() for values in rows]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=len(ROWS) - 1), max_size=6, unique=True))
def test_batching_does_not_change_the_result(cuts):
    """Reducing batch by batch (each batch's result merged into the next) equals one big batch."""
    bounds = [0, *sorted(cuts), len(ROWS)]
    carried: list[Row] = []
    for start, end in zip(bounds, bounds[1:], strict=False):
        carried = _as_rows(reduce_rows(carried + ROWS[start:end]))
    assert reduce_rows(carried) == reduce_rows(ROWS)


def test_one_row_per_key_sorted_by_key():
    reduced = reduce_rows(ROWS)
    members = reduced["member"]
    keys = [(m["opportunity_id"], m["person_id"]) for m in members]
    assert keys == sorted(set(keys)) and len(members) == 8


def test_latest_version_wins_but_joined_at_is_the_first():
    elena = next(m for m in reduce_rows(ROWS)["member"] if m["person_id"].startswith("elena"))
    assert elena["role"] == "decision_maker" and elena["role_source"] == "manual"
    assert elena["joined_at"] == day(0)


def test_first_and_last_seen_span_every_row():
    (account,) = [a for a in reduce_rows(ROWS)["account_seen"] if a["account_id"].startswith("romashka")]
    assert (account["first_seen_at"], account["last_activity_at"]) == (day(0), day(12))


def test_immutable_rows_keep_the_first_copy():
    duplicate = [r for r in ROWS if r.kind == "touch"][0]
    changed = Row("touch", {**duplicate.values, "title": "changed"})
    touches = reduce_rows([duplicate, changed])["touch"]
    assert touches == [duplicate.values]


def test_contact_belongs_to_the_account_of_its_latest_activity():
    older = Row("contact_seen", {"person_id": "p", "account_id": "b.ru", "first_seen_at": day(0),
                                         "last_activity_at": day(1)})
    newer = Row("contact_seen", {"person_id": "p", "account_id": "a.ru", "first_seen_at": day(2),
                                         "last_activity_at": day(3)})
    for rows in ([older, newer], [newer, older]):
        (merged,) = reduce_rows(rows)["contact_seen"]
        assert (merged["account_id"], merged["first_seen_at"], merged["last_activity_at"]) == (
            "a.ru", day(0), day(3))
