"""Host names out of the forms people and platforms write them in (one function, used by
every place where a domain can become an account id: the touch schema's company domain,
grouping's account resolution and its ABM list)."""

from __future__ import annotations

from urllib.parse import urlsplit


def host_of(value: str) -> str:
    """The host of a URL or host form, lower case; the input stripped when it has none.

    'https://www.berkut.ru/' -> 'www.berkut.ru'; 'http://berkut.ru', 'berkut.ru/',
    'berkut.ru:443', '//berkut.ru/about?x=1', 'BERKUT.RU.' -> 'berkut.ru'. It does not
    validate (shared/schemas/text.hostname does) nor reduce to the registrable domain
    (grouping does, with the Public Suffix List and its tenant platforms).
    """
    text = value.strip()
    try:
        host = urlsplit(text if "//" in text else f"//{text}").hostname
    except ValueError:  # an unbalanced [ of an IPv6 literal
        return text
    return host.rstrip(".") if host else text
