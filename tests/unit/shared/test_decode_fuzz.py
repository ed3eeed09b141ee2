"""Fuzz targets for every consumer's decode path (issue 19): grouping, scoring, projection and
the alert dispatcher decode with shared.codec (grouping's own stages with the same Codec).
Whatever bytes a topic holds, decode returns a message or raises DecodeError, which the
consumer dead-letters with the reason and goes on; never another exception (a crash loop).
A message that decodes encodes again to what decodes to itself."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.grouping.domain.messages import account_inputs, names_inputs, persons_inputs
from shared.codec import (
    DecodeError,
    crm_events,
    dead_letters,
    encode,
    opportunity_events,
    person_events,
    scoring_messages,
)
from tests.support.fuzz import json_values, mutated

EXAMPLES = Path(__file__).resolve().parents[3] / "shared" / "examples"
CODECS = {"person_events": person_events, "opportunity_events": opportunity_events,
          "scoring_messages": scoring_messages, "dead_letters": dead_letters, "crm_events": crm_events,
          "grouping.persons_inputs": persons_inputs,
          "grouping.names_inputs": names_inputs, "grouping.account_inputs": account_inputs}
EXAMPLE_MESSAGES = [json.loads(p.read_text(encoding="utf-8")) for p in sorted(EXAMPLES.glob("*.json"))]
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None)


def as_bytes(value) -> bytes:
    # The standard library writes what orjson refuses (integers beyond 64 bits).
    return json.dumps(value, ensure_ascii=False).encode()


messages = st.one_of(
    st.binary(max_size=300),
    st.sampled_from(EXAMPLE_MESSAGES).flatmap(lambda m: mutated(m, surrogates=False)).map(as_bytes),
    json_values(surrogates=False).map(as_bytes),
    # Text orjson would never write but a foreign producer might: lone surrogates escaped,
    # JSON deeper than pydantic's parser takes, invalid UTF-8.
    st.sampled_from([b'{"type": "touch", "event_id": "\\ud800"}', b'{"a":' * 300 + b"1" + b"}" * 300,
                     b'{"type": "touch", "event_id": "\xff\xfe"}', b'{"type": "touch", "event_id": "a\\u0000"}']),
)


@pytest.mark.parametrize("name", sorted(CODECS))
@FUZZ
@given(data=messages)
def test_decode_returns_a_message_or_a_decode_error(name, data):
    codec = CODECS[name]
    try:
        message = codec.decode(data)
    except DecodeError as exc:
        assert exc.reason in ("invalid_json", "invalid_schema") and exc.detail
        return
    assert codec.decode(encode(message)) == message
