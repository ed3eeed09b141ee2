"""Every checked-in example message decodes with the one codec and encodes back to the same JSON."""

import json
from pathlib import Path

import pytest

from shared.codec import DecodeError, dead_letters, opportunity_log, person_events, scoring_messages

EXAMPLES = Path(__file__).resolve().parents[2] / "shared" / "examples"
CODECS = {"person-events": person_events, "opportunity": opportunity_log, "score": scoring_messages,
          "signal": scoring_messages, "dlq": dead_letters}


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.json")), ids=lambda p: p.name)
def test_example_round_trips(path: Path):
    codec = CODECS[path.name.split(".")[0]]
    raw = path.read_bytes()
    message = codec.decode(raw)
    assert message.schema_version == 1
    assert json.loads(codec.encode(message)) == json.loads(raw)


def test_examples_cover_every_topic():
    assert {p.name.split(".")[0] for p in EXAMPLES.glob("*.json")} == set(CODECS)


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
