"""What text a message may hold: the one check of strings, host names and free-form JSON that
every producer and consumer shares (ingest refuses at the door what a later hop could not carry).

Measured limits of the hops a message crosses (orjson 3.13, pydantic-core 2.50, PostgreSQL 15):
- NUL cannot be stored in PostgreSQL `text` nor `jsonb` (one NUL in a name once froze an
  opportunity's projection); other C0/C1 control characters are stored but are never text.
- Lone surrogates (halves of UTF-16 pairs) cannot be encoded as UTF-8: orjson and pydantic
  refuse to write them, so a message holding one could never be produced.
- Nesting: orjson parses up to 1,024 levels and writes up to 254; pydantic-core's JSON parser
  (every consumer's decode) stops at 200 levels for a whole message and its serialiser at 255;
  PostgreSQL's jsonb parses between 10,000 and 20,000 (max_stack_depth 2 MB). The tightest,
  200 per message, is shared with the envelope: a touch's properties sit two levels down, and
  grouping wraps touches once more (Outbound). MAX_JSON_DEPTH keeps well clear of it.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from typing import Any

import idna
import orjson

MAX_JSON_DEPTH = 64

_CONTROL = "\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f"
_SURROGATE = "\ud800-\udfff"
# Free text (properties, details): tab, line feed and carriage return are text.
_NOT_TEXT = re.compile(f"[{_CONTROL}{_SURROGATE}]")
# Identifiers, codes, hosts: no control character at all, layout whitespace included.
_NOT_IDENTIFIER = re.compile(f"[\t\n\r{_CONTROL}{_SURROGATE}]")
_LAYOUT = re.compile(r"[\t\n\r]+")
# Letters, digits, hyphens: a host name in its ASCII (A-label) form, at least two labels.
_LDH = re.compile(r"(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)+")


def _describe(char: str) -> str:
    code = f"U+{ord(char):04X}"
    if "\ud800" <= char <= "\udfff":
        return f"a lone surrogate ({code})"
    return f"a control character ({code}{', NUL' if char == chr(0) else ''})"


def _refuse(found: re.Match[str]) -> None:
    raise ValueError(f"contains {_describe(found.group())} at position {found.start()}, which is not text")


def text(value: str) -> str:
    """Free text: refuses control characters other than tab, line feed and carriage return,
    and lone surrogates (ValueError naming the character and its position)."""
    if (found := _NOT_TEXT.search(value)) is not None:
        _refuse(found)
    return value


def identifier(value: str) -> str:
    """Ids, codes and keys: refuses every control character, tab and line breaks included,
    and lone surrogates. Never cleaned: a changed id would be another id."""
    if (found := _NOT_IDENTIFIER.search(value)) is not None:
        _refuse(found)
    return value


def line(value: str) -> str:
    """One line of display text (a name, a job title, a company, a page title). Tabs and line
    breaks are layout, not content: each run becomes one space (cleaned, not refused, since
    forms and spreadsheets put them into names). Other control characters and lone surrogates
    are refused as in text()."""
    if (found := _NOT_IDENTIFIER.search(value)) is not None:
        if found.group() not in "\t\n\r":
            _refuse(found)
        value = text(_LAYOUT.sub(" ", value))
    return value


def hostname(value: str) -> str:
    """A host or domain name, in one form everywhere: lower case, Unicode labels for IDNs
    (xn--80aa3acqrh5b.xn--p1ai and ЛАСТОЧКА.РФ both become ласточка.рф), no trailing dot.

    Valid means IDNA 2008 with the UTS #46 mapping (the `idna` package) and, in ASCII form,
    letters, digits and hyphens in at least two labels of 1-63 characters, 253 at most in
    all (RFC 1123). ValueError otherwise: `<>"'/`, spaces, URLs and empty labels are refused.
    """
    host = value.strip().rstrip(".").lower()
    if host.isascii() and "xn--" not in host and _LDH.fullmatch(host):
        return host
    return _idn(host)


@lru_cache(maxsize=4096)
def _idn(host: str) -> str:
    problem = f"'{host[:80]}' is not a valid host name"
    if _NOT_IDENTIFIER.search(host):
        raise ValueError(f"{problem}: it contains a control character")
    try:
        encoded = idna.encode(unicodedata.normalize("NFC", host), uts46=True)
        if not _LDH.fullmatch(encoded.decode("ascii")):
            raise ValueError(f"{problem} (letters, digits and hyphens in two or more labels)")
        return idna.decode(encoded)
    except (idna.IDNAError, UnicodeError) as exc:
        raise ValueError(f"{problem}: {exc}") from None


# In orjson's output: an escaped C0 control other than tab, line feed and carriage return
# (\u0000-\u001f, \b, \f), DEL, or a C1 control (UTF-8 C2 80-9F). A backslash escaped
# before b, f or u00 also matches: the exact walk then decides.
_JSON_CONTROL = re.compile(rb"\\u00[01]|\\[bf]|\x7f|\xc2[\x80-\x9f]")


def json_object(value: dict[str, Any]) -> dict[str, Any]:
    """Free-form JSON (a touch's properties): every key and string as text(), nested at most
    MAX_JSON_DEPTH levels (the object itself is level 1). ValueError with the path inside the
    object, e.g. "at a.b.0: contains a control character (U+0000, NUL) ...".

    Hot (every touch, in ingest and again in every consumer's decode), so the common case is
    decided on orjson's output: no control character in it, and no more brackets than levels
    allowed. Anything else (and what orjson cannot write: lone surrogates, deeper than 254
    levels, integers beyond 64 bits) is walked exactly, with its own stack.
    """
    try:
        raw = orjson.dumps(value)
    except orjson.JSONEncodeError:
        return _walk(value)
    if raw.count(b"{") + raw.count(b"[") <= MAX_JSON_DEPTH and not _JSON_CONTROL.search(raw):
        return value
    return _walk(value)


def _walk(value: dict[str, Any]) -> dict[str, Any]:
    """json_object's exact check (the path only built when something is wrong)."""
    stack: list[tuple[Any, int, tuple]] = [(value, 1, ())]
    search = _NOT_TEXT.search
    while stack:
        node, depth, path = stack.pop()
        if depth > MAX_JSON_DEPTH:
            raise ValueError(f"nested deeper than {MAX_JSON_DEPTH} levels (at {_path(path)})")
        for key, item in (node.items() if node.__class__ is dict else enumerate(node)):
            if key.__class__ is str and search(key):
                _refuse_at((*path, key), key)
            cls = item.__class__
            if cls is str:
                if search(item):
                    _refuse_at((*path, key), item)
            elif cls is dict or cls is list or cls is tuple:
                stack.append((item, depth + 1, (*path, key)))
    return value


def _path(path: tuple) -> str:
    return ".".join(str(p) for p in path)


def _refuse_at(path: tuple, value: str) -> None:
    try:
        text(value)
    except ValueError as exc:
        raise ValueError(f"at {_path(path)}: {exc}") from None
