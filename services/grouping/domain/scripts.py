"""Cyrillic and Latin spellings of one company name: look-alike letters and a cross-script key.

A company is written «Кварцмонтаж», "Kvartsmontazh" or "Kвaрцмонтаж" (Latin K and a typed in a
Cyrillic word); all three must meet. Two steps:

- `fix_lookalikes`: in a word mostly of one script, letters of the other script that look the
  same (Unicode's confusables for Cyrillic/Latin: А/A, В/B, Е/E, К/K, М/M, Н/H, О/O, Р/P, С/C,
  Т/T, У/Y, Х/X) are replaced by that script's letter, so a mixed word reads as its writer meant.
- `match_key`: Cyrillic is transliterated to Latin with iuliia's Wikipedia scheme (the one of
  Russian Wikipedia's Latin names, close to how Russian companies spell themselves in Latin),
  and the variants of the usual schemes are folded (kh/h, ts/c, shch/sch, y/j/i, x/ks, doubled
  zh/j, letters doubled), so "Tekhnologii", "Texnologii" and «Технологии» give one key.
"""

from __future__ import annotations

import re
from functools import lru_cache

import iuliia

# Cyrillic letter -> the Latin letter drawn the same (upper and lower case).
_CYR_TO_LAT = {
    "А": "A", "В": "B", "Е": "E", "К": "K", "М": "M", "Н": "H", "О": "O", "Р": "P", "С": "C", "Т": "T",
    "У": "Y", "Х": "X", "а": "a", "е": "e", "к": "k", "о": "o", "р": "p", "с": "c", "у": "y", "х": "x",
}
_LAT_TO_CYR = {lat: cyr for cyr, lat in _CYR_TO_LAT.items()}
_TO_LATIN = str.maketrans(_CYR_TO_LAT)
_TO_CYRILLIC = str.maketrans(_LAT_TO_CYR)
_CYRILLIC = re.compile(r"[а-яёА-ЯЁ]")
_WORD = re.compile(r"\w+")

# Folds of the usual transliteration schemes (Wikipedia, BGN/PCGN, ICAO, GOST 7.79-B, MVD) and
# of English spelling, applied in order to lower-case Latin text.
_FOLDS = (
    ("shch", "sch"), ("shh", "sch"), ("kh", "h"), ("tch", "ch"), ("ts", "c"), ("tz", "c"), ("ck", "k"),
    ("ph", "f"), ("w", "v"), ("q", "k"), ("x", "ks"), ("zh", "j"), ("j", "i"), ("y", "i"), ("ie", "e"),
)
_DOUBLED = re.compile(r"([a-z])\1+")


def _script_of(word: str) -> str | None:
    """The script a mixed word is written in: of its letters that have no look-alike, the majority."""
    cyrillic = sum(1 for c in word if _CYRILLIC.match(c) and c not in _CYR_TO_LAT)
    latin = sum(1 for c in word if c.isascii() and c.isalpha() and c not in _LAT_TO_CYR)
    if cyrillic == latin:  # only look-alikes (ООО, "OOO", "Рос" typed half in Latin): count them all
        cyrillic = sum(1 for c in word if _CYRILLIC.match(c))
        latin = sum(1 for c in word if c.isascii() and c.isalpha())
    if cyrillic > latin:
        return "cyrillic"
    if latin > cyrillic:
        return "latin"
    return None


def fix_lookalikes(text: str) -> str:
    """Each word containing both scripts is rewritten in its main script; others are left alone.

    'Kвaрцмонтаж' -> 'Кварцмонтаж', 'Аcmе' (Cyrillic А and е) -> 'Acme'; 'ООО Acme' unchanged.
    """
    def fix(match: re.Match[str]) -> str:
        word = match.group(0)
        has_cyrillic = _CYRILLIC.search(word) is not None
        has_latin = any(c.isascii() and c.isalpha() for c in word)
        if not (has_cyrillic and has_latin):
            return word
        script = _script_of(word)
        if script == "cyrillic":
            return word.translate(_TO_CYRILLIC)
        if script == "latin":
            return word.translate(_TO_LATIN)
        return word

    return _WORD.sub(fix, text)


@lru_cache(maxsize=65536)
def match_key(normalised: str) -> str:
    """A normalised company name (lower case, words separated by spaces) as its cross-script key.

    'скворечник технологии' and 'skvorechnik tekhnologii' -> 'skvorechnik tehnologii'.
    Cached: the directory compares one name with every name it knows.
    """
    latin = iuliia.WIKIPEDIA.translate(normalised).lower()
    words = []
    for word in latin.split():
        for old, new in _FOLDS:
            word = word.replace(old, new)
        words.append(_DOUBLED.sub(r"\1", word))
    return " ".join(words)
