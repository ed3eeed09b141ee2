"""Pure parts of crypto-shredding: identifier digests, pseudonyms, sealing with a per-identifier key.

What goes on the log in place of a person's identifiers and name (docs/privacy.md):

- email ``elena.sokolova@krasnaya-romashka.ru`` -> ``p3f9a...@krasnaya-romashka.ru`` (the company's
  domain stays: it names the account, not the person);
- user and anonymous ids ``U-123``, ``ym:1700000000123`` -> ``p4c1e...``, ``ym:p4c1e...`` (a
  scheme prefix such as ``ym:`` or ``tel:`` stays: consumers route on it);
- the raw identifiers and IP address -> one sealed string in ``person.sealed``, and the name ->
  a sealed string in ``person.name``, each ``v1.<token>.<base64url(nonce | AES-256-GCM
  ciphertext)>``, under the key of the event's first identifier (email, else user id, else
  anonymous id).

Each identifier has its own random pseudonym token and key in the vault (shared/privacy/vault.py);
erasing a person deletes them, after which the pseudonyms on the log lead nowhere and the
sealed values cannot be opened by anyone, including a replay or a rebuild.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
from dataclasses import dataclass
from typing import Literal

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

Kind = Literal["email", "user", "anon"]
KINDS: tuple[Kind, ...] = ("email", "user", "anon")
SEAL_VERSION = "v1"
_TOKEN = re.compile(r"^p[0-9a-f]{20}$")
_SCHEME = re.compile(r"^([a-z][a-z0-9]{0,9}):(.+)$")
_SEALED = re.compile(r"^v1\.p[0-9a-f]{20}\.[A-Za-z0-9_-]+$")
# What a sealed value looks like inside a JSON message on the log (projection finds them in raw bytes).
SEALED_IN_JSON = re.compile(rb'"(v1\.p[0-9a-f]{20}\.[A-Za-z0-9_-]+)"')


class SealError(ValueError):
    """A sealed value that is not of this format (``v1.<token>.<base64url>``)."""


@dataclass(frozen=True)
class Identifier:
    """One identifier of a person as a platform gave it. `value` is normalised (see normalise)."""

    kind: Kind
    value: str


def normalise(kind: Kind, value: str, person_id: callable | None = None) -> str:
    """The form two spellings of one identifier share. Emails go through `person_id` (grouping's
    rule: lower case, no +tag, Gmail's dots; services/grouping/domain/accounts.person_id) when
    given, else lower case; ids are taken as given, stripped."""
    value = value.strip()
    if kind == "email":
        return person_id(value) if person_id else value.lower()
    return value


def digest(pepper: bytes, identifier: Identifier) -> str:
    """HMAC-SHA256 of ``<kind>:<value>`` under the deployment's pepper, 32 hex digits: how the vault
    and the suppression list find an identifier without storing it."""
    mac = hmac.new(pepper, f"{identifier.kind}:{identifier.value}".encode(), hashlib.sha256)
    return mac.hexdigest()[:32]


def new_token() -> str:
    """A fresh pseudonym token: ``p`` and 20 random hex digits (80 bits)."""
    return "p" + os.urandom(10).hex()


def new_key() -> bytes:
    """A fresh AES-256 key (32 random bytes)."""
    return AESGCM.generate_key(bit_length=256)


def pseudonym(kind: Kind, raw: str, token: str) -> str:
    """The identifier as the log carries it: an email keeps its domain (``<token>@<domain>``),
    an id keeps its scheme prefix (``ym:<token>``), anything else is the token."""
    if kind == "email":
        domain = raw.strip().rpartition("@")[2].lower()
        return f"{token}@{domain}"
    match = _SCHEME.match(raw.strip())
    return f"{match.group(1)}:{token}" if match else token


def seal(token: str, key: bytes, values: dict[str, str]) -> str:
    """``values`` (JSON object of strings) encrypted under `key`, tagged with the key's token.
    The token is also the AES-GCM associated data, so a value cannot be moved under another token."""
    nonce = os.urandom(12)
    ciphertext = AESGCM(key).encrypt(nonce, orjson.dumps(values), token.encode())
    return f"{SEAL_VERSION}.{token}.{base64.urlsafe_b64encode(nonce + ciphertext).rstrip(b'=').decode()}"


def is_token(value: str) -> bool:
    """True when `value` is a pseudonym token (``p`` and 20 hex digits), as new_token makes them."""
    return bool(_TOKEN.match(value))


def is_sealed(value: str) -> bool:
    """True when `value` is a sealed value (``v1.<token>.<base64url>``), not a person's own text."""
    return bool(_SEALED.match(value))


def token_of(sealed: str) -> str:
    """The key token a sealed value names; SealError when it is not a sealed value."""
    version, _, rest = sealed.partition(".")
    token, _, body = rest.partition(".")
    if version != SEAL_VERSION or not _TOKEN.match(token) or not body:
        raise SealError(f"not a sealed value of version {SEAL_VERSION}")
    return token


def open_sealed(sealed: str, key: bytes) -> dict[str, str]:
    """The values a sealed string holds; SealError when it is malformed or the key is not its key."""
    token = token_of(sealed)
    body = sealed.split(".", 2)[2]
    try:
        data = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        plain = AESGCM(key).decrypt(data[:12], data[12:], token.encode())
    except (ValueError, InvalidTag) as exc:
        raise SealError(f"cannot open the sealed value: {type(exc).__name__}") from None
    values = orjson.loads(plain)
    if not isinstance(values, dict):
        raise SealError("a sealed value holds a JSON object")
    return values
