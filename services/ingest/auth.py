"""Who may post: an API key per source, and the platforms' own signatures where they sign."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key

from services.ingest.errors import ApiError


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
        except (binascii.Error, UnicodeDecodeError):
            raise ApiError(401, "unauthorized", "Authorization: malformed Basic credentials") from None
        keys += [k for k in (user, password) if k]
    return keys


def require_key(source: str, keys_by_source: Mapping[str, list[str]], headers: Mapping[str, str]) -> None:
    presented = presented_keys(headers)
    if not presented:
        raise ApiError(401, "unauthorized", f"an API key for source '{source}' is required "
                       "(X-API-Key header, Bearer token or HTTP Basic)")
    allowed = keys_by_source.get(source, [])
    if not any(hmac.compare_digest(p, a) for p in presented for a in allowed):
        raise ApiError(403, "forbidden", f"the API key is not valid for source '{source}'")


def require_hmac(header_name: str, presented: str | None, expected: str) -> None:
    if not presented:
        raise ApiError(401, "unauthorized", f"{header_name}: signature header is required")
    if not hmac.compare_digest(presented.strip(), expected):
        raise ApiError(403, "forbidden", f"{header_name}: signature does not match the body")


def hmac_sha1_hex(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()


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
    except (InvalidSignature, binascii.Error, ValueError):
        raise ApiError(403, "forbidden", f"{header}: signature does not match the body") from None
