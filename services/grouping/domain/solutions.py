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
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from shared.schemas.touch import Content


def _compile(patterns: Sequence[str]) -> tuple[re.Pattern[str], ...]:
    return tuple(re.compile(p, re.IGNORECASE) for p in patterns)


def _words(patterns: Sequence[str]) -> tuple[re.Pattern[str], ...]:
    """Keywords match at the start of a word: 'кадр' finds 'кадровый', '\\bhr\\b' only 'hr'."""
    return tuple(re.compile(r"(?<!\w)(?:" + p + ")", re.IGNORECASE) for p in patterns)


def _phrases(phrases: Sequence[str]) -> tuple[re.Pattern[str], ...]:
    return tuple(re.compile(r"(?<!\w)" + re.escape(_text(p)) + r"(?!\w)") for p in phrases)


def _text(value: str) -> str:
    value = value.lower().replace("ё", "е")
    return " ".join(re.sub(r"[^\w&+#]+", " ", value).split())


@dataclass(frozen=True)
class Solution:
    slug: str
    name: str
    url_patterns: tuple[re.Pattern[str], ...] = ()
    asset_prefixes: tuple[str, ...] = ()
    topics: tuple[re.Pattern[str], ...] = ()  # webinar and event topics, as phrases
    keywords: tuple[re.Pattern[str], ...] = ()


@dataclass(frozen=True)
class ContentSignal:
    name: str
    url_patterns: tuple[re.Pattern[str], ...] = ()
    keywords: tuple[re.Pattern[str], ...] = ()


@dataclass(frozen=True)
class Tags:
    solutions: tuple[str, ...] = ()
    signals: tuple[str, ...] = ()


@dataclass(frozen=True)
class Catalog:
    solutions: tuple[Solution, ...]
    neutral_urls: tuple[re.Pattern[str], ...] = ()
    neutral_keywords: tuple[re.Pattern[str], ...] = ()
    signals: tuple[ContentSignal, ...] = ()
    language_prefixes: tuple[str, ...] = ()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Catalog:
        neutral = data.get("neutral", {})
        return cls(
            solutions=tuple(
                Solution(
                    slug=s["slug"], name=s.get("name", s["slug"]),
                    url_patterns=_compile(s.get("url_patterns", ())),
                    asset_prefixes=tuple(p.lower() for p in s.get("asset_prefixes", ())),
                    topics=_phrases(s.get("topics", ())),
                    keywords=_words(s.get("keywords", ())),
                )
                for s in data["solutions"]
            ),
            neutral_urls=_compile(neutral.get("url_patterns", ())),
            neutral_keywords=_words(neutral.get("keywords", ())),
            signals=tuple(
                ContentSignal(name=name, url_patterns=_compile(sig.get("url_patterns", ())),
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
        signals = tuple(
            s.name for s in self.signals
            if (path and any(p.search(path) for p in s.url_patterns)) or any(k.search(text) for k in s.keywords)
        )
        strong = tuple(
            s.slug for s in self.solutions
            if (path and any(p.search(path) for p in s.url_patterns))
            or (asset and any(asset.startswith(prefix) for prefix in s.asset_prefixes))
        )
        if strong:
            return Tags(strong, signals)
        neutral_url = bool(path) and any(p.search(path) for p in self.neutral_urls)
        if neutral_url or any(k.search(text) for k in self.neutral_keywords):
            return Tags((), signals)
        found = tuple(
            s.slug for s in self.solutions
            if any(t.search(text) for t in s.topics) or any(k.search(text) for k in s.keywords)
        )
        return Tags(found, signals)
