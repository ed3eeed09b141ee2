"""Solution interest: which of the vendor's solutions a touch shows interest in, if any.

Strong evidence first: a URL under a solution's pages or an asset id with its prefix names
the solution outright. Otherwise neutral content (home, careers, contacts) shows no solution
(the touch is account activity only), and failing that keywords and webinar topics in the
title, topic, asset id and URL words decide. Content signals (API and integration docs -> "technical") feed the
behaviour rules of role classification.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

from shared.schemas.touch import Content


def _alternation(fragments: Sequence[str], prefix: str = "", suffix: str = "") -> re.Pattern[str] | None:
    """One pattern per list, so a text is searched once per list, not once per entry."""
    if not fragments:
        return None
    return re.compile(prefix + "(?:" + "|".join(f"(?:{f})" for f in fragments) + ")" + suffix, re.IGNORECASE)


def _words(patterns: Sequence[str]) -> re.Pattern[str] | None:
    """Keywords match at the start of a word: 'кадр' finds 'кадровый', '\\bhr\\b' only 'hr'."""
    return _alternation(patterns, prefix=r"(?<!\w)")


def _phrases(phrases: Sequence[str]) -> re.Pattern[str] | None:
    return _alternation([re.escape(_text(p)) for p in phrases], prefix=r"(?<!\w)", suffix=r"(?!\w)")


def _found(pattern: re.Pattern[str] | None, text: str) -> bool:
    return bool(text) and pattern is not None and pattern.search(text) is not None


def _match(pattern: re.Pattern[str] | None, text: str) -> str | None:
    found = pattern.search(text) if text and pattern is not None else None
    return found.group(0) if found is not None else None


def _text(value: str) -> str:
    value = value.lower().replace("ё", "е")
    return " ".join(re.sub(r"[^\w&+#]+", " ", value).split())


@dataclass(frozen=True)
class Solution:
    slug: str
    name: str
    url_patterns: re.Pattern[str] | None = None
    asset_prefixes: tuple[str, ...] = ()
    topics: re.Pattern[str] | None = None  # webinar and event topics, as phrases
    keywords: re.Pattern[str] | None = None


@dataclass(frozen=True)
class ContentSignal:
    name: str
    url_patterns: re.Pattern[str] | None = None
    keywords: re.Pattern[str] | None = None


@dataclass(frozen=True)
class Tags:
    solutions: tuple[str, ...] = ()
    signals: tuple[str, ...] = ()
    # Per solution, what matched ("url /hr/...", "asset hr-demo", "keyword «кадр»"): the answer
    # to "why is this person in this opportunity?".
    reasons: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Catalog:
    solutions: tuple[Solution, ...]
    neutral_urls: re.Pattern[str] | None = None
    neutral_keywords: re.Pattern[str] | None = None
    signals: tuple[ContentSignal, ...] = ()
    language_prefixes: tuple[str, ...] = ()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Catalog:
        neutral = data.get("neutral", {})
        return cls(
            solutions=tuple(
                Solution(
                    slug=s["slug"], name=s.get("name", s["slug"]),
                    url_patterns=_alternation(s.get("url_patterns", ())),
                    asset_prefixes=tuple(p.lower() for p in s.get("asset_prefixes", ())),
                    topics=_phrases(s.get("topics", ())),
                    keywords=_words(s.get("keywords", ())),
                )
                for s in data["solutions"]
            ),
            neutral_urls=_alternation(neutral.get("url_patterns", ())),
            neutral_keywords=_words(neutral.get("keywords", ())),
            signals=tuple(
                ContentSignal(name=name, url_patterns=_alternation(sig.get("url_patterns", ())),
                              keywords=_words(sig.get("keywords", ())))
                for name, sig in data.get("signals", {}).items()
            ),
            language_prefixes=tuple(data.get("language_prefixes", ())),
        )

    def slugs(self) -> tuple[str, ...]:
        return tuple(s.slug for s in self.solutions)

    def _path(self, url: str | None) -> str:
        if not url:
            return ""
        path = unquote(urlsplit(url.strip()).path).lower() or "/"
        for prefix in self.language_prefixes:
            marker = f"/{prefix}"
            if path == marker or path.startswith(marker + "/"):
                path = path[len(marker):] or "/"
                break
        return path

    def tag(self, content: Content) -> Tags:
        path = self._path(content.url)
        asset = (content.asset_id or "").lower()
        text = _text(" ".join(v for v in (path, content.title, content.topic, asset) if v))
        signals = tuple(s.name for s in self.signals if _found(s.url_patterns, path) or _found(s.keywords, text))
        strong: dict[str, str] = {}
        for s in self.solutions:
            if _found(s.url_patterns, path):
                strong[s.slug] = f"url {path}"
            elif asset and (prefix := next((p for p in s.asset_prefixes if asset.startswith(p)), None)):
                strong[s.slug] = f"asset {asset} (prefix {prefix})"
        if strong:
            return Tags(tuple(strong), signals, strong)
        if _found(self.neutral_urls, path) or _found(self.neutral_keywords, text):
            return Tags((), signals)
        found: dict[str, str] = {}
        for s in self.solutions:
            if (topic := _match(s.topics, text)) is not None:
                found[s.slug] = f"topic «{topic}»"
            elif (keyword := _match(s.keywords, text)) is not None:
                found[s.slug] = f"keyword «{keyword.strip()}»"
        return Tags(tuple(found), signals, found)
