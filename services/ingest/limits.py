"""What one Kafka message can carry, checked per event before anything is claimed or written.

An event larger than the producer's per-message limit used to fail its whole batch at the
produce step (503 with Retry-After) after its neighbours had been written: each retry wrote
them again. Checked here, per item, it is refused alone (batch.each_item) and never reaches
the producer.
"""

from __future__ import annotations

import json
from typing import Any

import orjson
from aiokafka.record.default_records import DefaultRecordBatchBuilder

from shared.codec import encode
from shared.schemas.text import MAX_JSON_DEPTH
from shared.schemas.touch import IdentityEvent, TouchEvent

# The producer's max_request_size (aiokafka's default, which is also about the broker's default
# message.max.bytes of 1,048,588): the most one record may take, its batch header included.
MAX_MESSAGE_BYTES = 1_048_576
# A dead letter quotes the item it could not use; a quote this long says enough and fits Kafka.
MAX_QUOTE_CHARS = 64 * 1024


def message_bytes(event: TouchEvent | IdentityEvent) -> int:
    """The size aiokafka gives the record (key, value, record and batch overhead), in bytes:
    the number it compares with max_request_size before sending."""
    return DefaultRecordBatchBuilder.estimate_size_in_bytes(event.key().encode(), encode(event), [])


def too_large(event: TouchEvent | IdentityEvent) -> str | None:
    """Why the event cannot be one Kafka message, or None when it can."""
    size = message_bytes(event)
    if size <= MAX_MESSAGE_BYTES:
        return None
    return (f"the event is {size:,} bytes encoded; one Kafka message takes at most {MAX_MESSAGE_BYTES:,} "
            "(make properties smaller)")


def pruned(value: Any, depth: int = MAX_JSON_DEPTH) -> Any:
    """A copy of JSON `value` with whatever lies deeper than `depth` levels replaced by a note.
    Iterative: a refused item may be nested up to orjson's 1,024 levels."""
    if not isinstance(value, dict | list):
        return value
    root: Any = {} if isinstance(value, dict) else []
    stack = [(value, root, 1)]
    while stack:
        source, target, level = stack.pop()
        items = source.items() if isinstance(source, dict) else enumerate(source)
        for key, item in items:
            if isinstance(item, dict | list):
                if level >= depth:
                    copy: Any = f"(nested deeper than {depth} levels, left out)"
                else:
                    copy = {} if isinstance(item, dict) else []
                    stack.append((item, copy, level + 1))
            else:
                copy = item
            if isinstance(target, dict):
                target[key] = copy
            else:
                target.append(copy)
    return root


def quoted(item: Any) -> str:
    """The item as JSON text for a dead letter's payload: at most MAX_JSON_DEPTH levels and
    MAX_QUOTE_CHARS characters, so that quoting a refused item never fails nor overflows Kafka."""
    shallow = pruned(item)
    try:
        text = orjson.dumps(shallow, default=str).decode()
    except TypeError:  # orjson.JSONEncodeError: integers beyond 64 bits, lone surrogates
        text = json.dumps(shallow, default=str)
    if len(text) > MAX_QUOTE_CHARS:
        text = text[:MAX_QUOTE_CHARS] + f"... ({len(text):,} characters, cut)"
    return text
