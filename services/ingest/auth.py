"""Who may post: an API key per source, and the platforms' own signatures where they sign."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from collections.abc import Mapping

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key

from services.ingest.errors import ApiError

# Unix seconds in ASCII digits: str.isdigit() also takes "²" and other digits int() refuses,
# and twelve digits (year 33658) bound what int() and float arithmetic must take.
_UNIX_SECONDS = re.compile(r"[0-9]{1,12}")


def same(presented: str, expected: str) -> bool:
    """Constant-time equality of a presented secret and an expected one, whatever characters
    the presented one holds. hmac.compare_digest refuses str with non-ASCII characters
    (TypeError, which was a 500 for a key like "\\xe9"), so both are compared as UTF-8 bytes."""
    return hmac.compare_digest(presented.encode("utf-8", "surrogatepass"), expected.encode("utf-8", "surrogatepass"))


def presented_keys(headers: Mapping[str, str]) -> list[str]:
    """X-API-Key, a Bearer token, or HTTP Basic (Segment's write key is the user name;
    SendGrid's webhook URL carries user:password)."""
    keys = []
    if key := headers.get("x-api-key"):
        keys.append(key)
    auth = headers.get("authorization", "")
    scheme, _, value = auth.partition(" ")
    if scheme.lower() == "bearer" and value:
        keys.append(value.strip())
    elif scheme.lower() == "basic" and value:
        try:
            user, _, password = base64.b64decode(value, validate=True).decode().partition(":")
        except ValueError:  # not base64 (binascii.Error), not ASCII, not UTF-8 (UnicodeDecodeError)
            raise ApiError(401, "unauthorized", "Authorization: malformed Basic credentials") from None
        keys += [k for k in (user, password) if k]
    return keys


def require_key(source: str, keys_by_source: Mapping[str, list[str]], headers: Mapping[str, str]) -> None:
    presented = presented_keys(headers)
    if not presented:
        raise ApiError(401, "unauthorized", f"an API key for source '{source}' is required "
                       "(X-API-Key header, Bearer token or HTTP Basic)")
    allowed = keys_by_source.get(source, [])
    if not any(same(p, a) for p in presented for a in allowed):
        raise ApiError(403, "forbidden", f"the API key is not valid for source '{source}'")


def require_hmac(header_name: str, presented: str | None, expected: str) -> None:
    if not presented:
        raise ApiError(401, "unauthorized", f"{header_name}: signature header is required")
    if not same(presented.strip(), expected):
        raise ApiError(403, "forbidden", f"{header_name}: signature does not match the body")


def hmac_sha1_hex(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()


def require_fresh(header_name: str, value: str | None, max_age_seconds: float, now: float | None = None) -> str:
    """A signed timestamp header (unix seconds) within max_age_seconds of now, either way:
    a captured request replayed later is refused (401) even after the dedupe window has
    passed. Returns the header's value as sent, for the signature check.

    The tolerance is the platforms' own advice: Zoom's sample verifier refuses requests older
    than 5 minutes; SendGrid documents no window, and 5 minutes is the common default of
    signed webhooks (Svix, Standard Webhooks). INGEST_SIGNATURE_MAX_AGE_SECONDS changes it.
    """
    if value is None or not _UNIX_SECONDS.fullmatch(value.strip()):
        raise ApiError(401, "unauthorized", f"{header_name}: a timestamp header in unix seconds is required")
    age = (time.time() if now is None else now) - int(value)
    if abs(age) > max_age_seconds:
        raise ApiError(401, "unauthorized", f"{header_name}: {int(age)} s from now, more than the "
                       f"{int(max_age_seconds)} s allowed (a replayed request?)")
    return value.strip()


def require_header(header_name: str, value: str | None) -> str:
    """A signature header must be there before the body is read (401 otherwise)."""
    if not value or not value.strip():
        raise ApiError(401, "unauthorized", f"{header_name}: signature header is required")
    return value


def require_sendgrid_signature(public_key_b64: str, signature_b64: str | None,
                               timestamp: str | None, body: bytes) -> None:
    """SendGrid's Signed Event Webhook: ECDSA (P-256, SHA-256) over timestamp + raw body."""
    header = "X-Twilio-Email-Event-Webhook-Signature"
    if not signature_b64 or not timestamp:
        raise ApiError(401, "unauthorized", f"{header} and its -Timestamp header are required")
    try:
        key = load_der_public_key(base64.b64decode(public_key_b64))
        assert isinstance(key, ec.EllipticCurvePublicKey)
        key.verify(base64.b64decode(signature_b64), timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError):  # ValueError: not base64, not ASCII
        raise ApiError(403, "forbidden", f"{header}: signature does not match the body") from None
