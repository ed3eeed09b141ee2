"""The Russian taxpayer number (ИНН) of a company or a person, as an account key.

The checksum is python-stdnum's `stdnum.ru.inn` (10 digits: a legal entity, one check digit;
12 digits: a person or a sole trader, two check digits), which implements the algorithm of the
Federal Tax Service's order of 29.06.2012 N ММВ-7-6/435@ (weights 2,4,10,3,5,9,4,6,8 for ten
digits; 7,2,4,10,3,5,9,4,6,8 and 3,7,2,4,10,3,5,9,4,6,8 for twelve; sum mod 11 mod 10).
"""

from __future__ import annotations

from stdnum.exceptions import ValidationError
from stdnum.ru import inn as _inn


def inn(value: object) -> str | None:
    """The INN in its compact form (digits only) when `value` is a valid 10- or 12-digit INN,
    else None. Spaces and dashes are allowed ("7707 083 893"); anything else is not an INN.
    A wrong checksum is None: a mistyped INN must never merge two companies."""
    if not isinstance(value, str | int) or isinstance(value, bool):
        return None
    try:
        return _inn.validate(str(value))
    except ValidationError:
        return None
