"""Corrections (issue 16) without servers: what the write endpoints refuse (correcting.py), what
the projection makes of each message (domain.map_correction), and which undos it dead-letters
(consumer.vet_undos)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import ValidationError

from services.projection import correcting as cr
from services.projection.consumer import prepare, source_decoders, vet_undos
from services.projection.domain import map_message
from shared import topics
from shared.codec import corrections, encode

pytestmark = pytest.mark.unit

EXAMPLES = Path(__file__).resolve().parents[3] / "shared" / "examples"
AT = datetime(2026, 11, 30, 9, 15, tzinfo=UTC)
OPP = "krasnaya-romashka.ru:hr_system"


def example(kind: str):
    return corrections.decode((EXAMPLES / f"correction.{kind}.v1.json").read_bytes())


@dataclass
class Record:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


def records(*messages) -> list[Record]:
    name = topics.CORRECTIONS.name
    return [Record(name, 0, i, m.key().encode(), encode(m)) for i, m in enumerate(messages)]


def undo(of: str, cid: str, subject: str = OPP):
    return cr.undone({"correction_id": of, "subject": subject}, cr.UndoRequest(correction_id=cid), "Мария", AT)


# ---------------------------------------------------------------- what the projection records


def test_every_correction_is_a_history_row_with_who_when_why_and_what():
    stance = map_message(example("member_stance_set"))
    assert [r.kind for r in stance] == ["correction"]
    row = stance[0].values
    assert (row["correction_id"], row["type"], row["subject"], row["opportunity_id"], row["person_id"]) == (
        "c-0005", "member_stance_set", OPP, OPP, "a.smirnova@krasnaya-romashka.ru")
    assert (row["author"], row["made_at"], row["reason"]) == ("Мария Соколова", AT, "Сама продвигает проект")
    assert row["detail"] == {"stance": "champion", "influence": "high"}
    assert row["undone_by_id"] is None

    merge = map_message(example("accounts_merged"))[0].values
    # A merge is about accounts: keyed (and found) by the surviving one.
    assert (merge["subject"], merge["opportunity_id"], merge["detail"]) == (
        "krasnaya-romashka.ru", None, {"into": "krasnaya-romashka.ru", "merged": "name:красная ромашка"})


def test_an_undo_is_its_own_history_row_and_marks_the_correction_it_reverts():
    rows = map_message(example("correction_undone"))
    assert [r.kind for r in rows] == ["correction", "correction_undo"]
    assert rows[0].values["detail"] == {"undoes": "c-0003", "subject": OPP}
    assert rows[1].values == {"correction_id": "c-0003", "undone_by_id": "c-0008", "undone_by": "Мария Соколова",
                              "undone_at": AT, "undo_reason": "Ошибка: стажёр ведёт пилот"}


# ---------------------------------------------------------------- undos the consumer refuses


def test_undos_the_history_cannot_take_are_dead_lettered_with_the_reason():
    note = example("member_note_set")  # c-0006
    batch = records(note, undo("c-0006", "u1"), undo("c-0006", "u2"), undo("c-9999", "u3"), undo("u1", "u4"),
                    undo("c-0001", "u5"))
    prepared = prepare(batch, source_decoders())
    # c-0001 was undone in an earlier batch: the history says so.
    vet_undos(prepared, {"c-0001": ("opportunity_opened", True)}, {(r.topic, r.partition, r.offset): r for r in batch})
    assert [i.offset for i in prepared.items] == [0, 1]
    assert [(d.source_offset, d.reason) for d in prepared.dead] == [
        (2, "not_undoable"), (3, "unknown_correction"), (4, "not_undoable"), (5, "not_undoable")]
    assert "already undone" in prepared.dead[0].detail and "c-9999" in prepared.dead[1].detail
    assert "itself an undo" in prepared.dead[2].detail
    # Every offset still advances: nothing is stuck behind a refused undo.
    assert prepared.offsets == {(topics.CORRECTIONS.name, 0): 6}


def test_a_replayed_undo_is_dropped_without_a_dead_letter():
    batch = records(undo("c-0006", "u1"))
    prepared = prepare(batch, source_decoders())
    vet_undos(prepared, {"c-0006": ("member_note_set", True), "u1": ("correction_undone", False)},
              {(r.topic, r.partition, r.offset): r for r in batch})
    assert prepared.items == [] and prepared.dead == []


# ---------------------------------------------------------------- what the write endpoints refuse


@pytest.mark.parametrize(("into", "merged", "merges", "expected"), [
    ("a.ru", "a.ru", {}, "cannot be merged into itself"),
    ("a.ru", "b.ru", {"b.ru": "c.ru"}, "b.ru is already merged into c.ru"),
    # a.ru went into x.ru, which went into b.ru: merging b.ru into a.ru closes a loop.
    ("a.ru", "b.ru", {"a.ru": "x.ru", "x.ru": "b.ru"}, "a cycle of merges: b.ru -> a.ru -> x.ru -> b.ru"),
    ("a.ru", "b.ru", {"a.ru": "x.ru"}, "a.ru was merged into x.ru; merge into x.ru instead"),
    ("a.ru", "b.ru", {"c.ru": "a.ru"}, None),
])
def test_merge_conflicts(into, merged, merges, expected):
    found = cr.merge_conflict(into, merged, merges)
    assert found == expected if expected is None else expected in found


def test_undo_conflicts():
    assert "no correction 'c-1'" in cr.undo_conflict("c-1", None)
    row = {"type": "member_linked", "undone_by_id": None, "undone_by": None, "undone_at": None}
    assert cr.undo_conflict("c-1", row) is None
    assert "itself an undo" in cr.undo_conflict("c-1", {**row, "type": "correction_undone"})
    assert "already undone by Мария at 2026-11-30T09:15:00+00:00" in cr.undo_conflict(
        "c-1", {**row, "undone_by_id": "c-2", "undone_by": "Мария", "undone_at": AT})


@pytest.mark.parametrize(("model", "body", "field"), [
    (cr.StanceRequest, {"stance": "friend"}, "stance"),
    (cr.StanceRequest, {"stance": "champion", "influence": "huge"}, "influence"),
    (cr.NoteRequest, {"note": "ok", "concerns": ["price"]}, "concerns.0"),
    (cr.RoleRequest, {"role": "ceo"}, "role"),
    (cr.LinkRequest, {"person_id": ""}, "person_id"),
    (cr.LinkRequest, {"person_id": "a@b.ru", "extra": 1}, "extra"),
    (cr.NoteRequest, {"note": "bad\x00"}, "note"),
    (cr.MergeRequest, {"into": "a.ru"}, "merged"),
    (cr.UndoRequest, {"correction_id": "has space"}, "correction_id"),
])
def test_bad_bodies_name_the_field(model, body, field):
    with pytest.raises(ValidationError) as caught:
        model.model_validate(body)
    assert field in [".".join(str(p) for p in e["loc"]) for e in caught.value.errors()]


def test_built_messages_are_the_contract_and_carry_the_author():
    note = cr.note_set(OPP, "it@krasnaya-romashka.ru", cr.NoteRequest(
        note="Беспокоит интеграция с 1С", concerns=["integration_security", "integration_security", "tco_roi"]),
        "Мария Соколова", AT)
    assert corrections.decode(encode(note)) == note
    assert note.author == "Мария Соколова" and note.made_at == AT and note.correction_id.startswith("c-")
    assert note.concerns == ("integration_security", "tco_roi")
    opened = cr.opened(cr.OpenRequest(account_id="krasnaya-romashka.ru", solution="hr", correction_id="mine-1"),
                       "Мария", AT)
    assert (opened.opportunity_id, opened.correction_id, opened.key()) == (
        "krasnaya-romashka.ru:hr", "mine-1", "krasnaya-romashka.ru:hr")
    merge = cr.merged(cr.MergeRequest(into="a.ru", merged="b.ru"), "Мария", AT)
    assert merge.key() == "a.ru"
    back = undo(merge.correction_id, "u9", subject=merge.key())
    assert (back.undoes, back.subject, back.key()) == (merge.correction_id, "a.ru", "a.ru")


def test_the_write_endpoints_are_in_the_openapi_spec_with_their_refusals():
    from services.projection.main import openapi_spec

    paths = openapi_spec()["paths"]
    expected = {
        ("/v1/opportunities", "post"), ("/v1/opportunities/{opportunity_id}/members", "post"),
        ("/v1/opportunities/{opportunity_id}/members/{person_id}/unlink", "post"),
        ("/v1/opportunities/{opportunity_id}/members/{person_id}/role", "put"),
        ("/v1/opportunities/{opportunity_id}/members/{person_id}/stance", "put"),
        ("/v1/opportunities/{opportunity_id}/members/{person_id}/note", "put"),
        ("/v1/accounts/merges", "post"), ("/v1/corrections/{correction_id}/undo", "post"),
    }
    for path, method in expected:
        responses = paths[path][method]["responses"]
        assert {"202", "401", "403", "404", "409", "422", "503"} <= set(responses), (path, method)
    assert "corrections" in openapi_spec()["components"]["schemas"]["OpportunityDetail"]["properties"]
