"""Person identifiers of the Russian stack, mapped onto the canonical ones grouping already stitches.

- Yandex Metrica's ClientID (the `_ym_uid` first-party cookie, `yaClientId` in a call) is an
  anonymous browser id, like Segment's anonymousId: it becomes `anonymous_id = "ym:<ClientID>"`,
  so Metrica visits wait in grouping until a form, call or email names the person, and then count.
- A phone number is a person identifier: normalised to E.164 with Google's libphonenumber
  (`phonenumbers`), it becomes `user_id = "tel:+79161234567"`. A form or webinar registration
  that carries both an email and a phone links them; a later call from that phone then
  reaches the person through grouping's identity stage.
"""

from __future__ import annotations

import re

import phonenumbers

# Metrica's ClientID is a decimal UInt64 (Logs API: ym:s:clientID UInt64); `_ym_uid` holds it.
_CLIENT_ID = re.compile(r"^[0-9]{1,20}$")
METRICA_PREFIX = "ym:"
PHONE_PREFIX = "tel:"


def metrica_anonymous_id(client_id: object) -> str | None:
    """'1700000000123456789' -> 'ym:1700000000123456789'; None when empty or not a ClientID."""
    if client_id is None:
        return None
    value = str(client_id).strip()
    if not _CLIENT_ID.match(value) or value.strip("0") == "":
        return None
    return METRICA_PREFIX + value


def client_id_of(anonymous_id: str | None) -> str | None:
    """The Metrica ClientID back from an anonymous id made by metrica_anonymous_id."""
    if anonymous_id and anonymous_id.startswith(METRICA_PREFIX):
        return anonymous_id[len(METRICA_PREFIX):]
    return None


def ym_uid_from_cookies(cookies: str | None) -> str | None:
    """The `_ym_uid` value of a Cookie-header-like string ("_ym_uid=123; _ym_d=456; ...").

    A plain split, not http.cookies: that parser gives up on the whole string at the first
    cookie it finds malformed, and browsers send such cookies.
    """
    for part in (cookies or "").split(";"):
        name, _, value = part.strip().partition("=")
        if name == "_ym_uid" and value:
            return value.strip('"')
    return None


def phone_user_id(raw: object, default_region: str = "RU") -> str | None:
    """A phone number as 'tel:+E164', or None when it is not a valid number.

    Numbers without a country code are read in `default_region` (ISO 3166 alpha-2); Russian
    "8 (916) ..." and "79161234567" (call-tracking platforms drop the plus) both give +7916....
    """
    if raw is None:
        return None
    text = str(raw).strip()
    if not text:
        return None
    digits = re.sub(r"\D", "", text)
    # Call-tracking platforms send international numbers without "+" (Roistat "79990009911").
    candidates = [text] if text.startswith("+") else [text, "+" + digits]
    for candidate in candidates:
        try:
            number = phonenumbers.parse(candidate, default_region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(number):
            return PHONE_PREFIX + phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return None
