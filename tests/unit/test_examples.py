"""Every checked-in example message decodes with the one codec and encodes back to the same JSON."""

import json
from pathlib import Path

import pytest

from shared.codec import (
    DecodeError,
    corrections,
    crm_events,
    crm_links,
    dead_letters,
    opportunity_log,
    person_events,
    person_log,
    qualification_events,
    scoring_messages,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "shared" / "examples"
# (topic, version) -> codec; an example is named <topic>.<type>.v<version>.json
CODECS = {("person-events", 1): person_log, ("opportunity", 1): opportunity_log,
          ("score", 1): scoring_messages, ("signal", 1): scoring_messages, ("dlq", 1): dead_letters,
          ("crm-stage", 1): crm_events, ("crm-stage", 2): qualification_events,
          ("crm-links", 1): crm_links, ("correction", 1): corrections}


def _topic_version(path: Path) -> tuple[str, int]:
    parts = path.name.split(".")
    return parts[0], int(parts[-2].removeprefix("v"))


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.json")), ids=lambda p: p.name)
def test_example_round_trips(path: Path):
    topic, version = _topic_version(path)
    codec = CODECS[(topic, version)]
    raw = path.read_bytes()
    message = codec.decode(raw)
    assert message.schema_version == version
    assert json.loads(codec.encode(message)) == json.loads(raw)


def test_examples_cover_every_topic():
    assert {_topic_version(p) for p in EXAMPLES.glob("*.json")} == set(CODECS)


def test_crm_stage_v2_rejects_a_v1_message_and_the_other_way_round():
    v1 = (EXAMPLES / "crm-stage.stage_changed.v1.json").read_bytes()
    v2 = (EXAMPLES / "crm-stage.stage_moved.v2.json").read_bytes()
    with pytest.raises(DecodeError):
        qualification_events.decode(v1)
    with pytest.raises(DecodeError):
        crm_events.decode(v2)


def test_decode_rejects_with_reason_and_field():
    with pytest.raises(DecodeError) as err:
        person_events.decode(b'{"type": "touch", "event_id": "x"}')
    assert err.value.reason == "invalid_schema" and "occurred_at" in err.value.detail
    with pytest.raises(DecodeError) as err:
        person_events.decode(b"\xff not json")
    assert err.value.reason == "invalid_json"
    touch = json.loads((EXAMPLES / "person-events.touch.v1.json").read_text())
    with pytest.raises(DecodeError) as err:
        person_events.decode(json.dumps({**touch, "schema_version": 2}))
    assert "schema_version" in err.value.detail
