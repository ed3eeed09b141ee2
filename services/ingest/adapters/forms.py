"""Bodies of the platforms that post HTML-form style (Tilda, Calltouch) as a flat dict of strings."""

from __future__ import annotations

from urllib.parse import parse_qsl

import orjson

from services.ingest.adapters.results import PayloadError


def form_fields(body: bytes, content_type: str) -> dict[str, str]:
    """application/x-www-form-urlencoded (or a flat JSON object when so configured) -> dict.

    Raises PayloadError (422) on a body that is neither. A repeated name keeps its last value.
    """
    if content_type.startswith("application/json"):
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise PayloadError("(body)", f"invalid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise PayloadError("(body)", "expected an object of form fields")
        return {str(k): "" if v is None else str(v) for k, v in data.items()}
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise PayloadError("(body)", "the form body is not UTF-8") from None
    return dict(parse_qsl(text, keep_blank_values=True))
