"""Account resolution: which company a person belongs to.

- A corporate email's registrable domain (Public Suffix List) is the account, so
  hr.romashka.ru and romashka.ru are one company.
- On shared platforms that give each customer a subdomain (Microsoft 365's
  <tenant>.onmicrosoft.com), the tenant's subdomain is the account, not the platform's
  registrable domain, which the Public Suffix List does not split (TenantPlatforms).
- Free and disposable mail domains never make an account: such a person is matched by the
  normalised company name, first against the ABM account list (its domains and aliases take
  precedence over everything learned), then against the directory of names learned from
  corporate people (domain/directory.py), or stays unresolved until a later event tells.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Protocol

from rapidfuzz import fuzz, process

from services.grouping.domain.scripts import fix_lookalikes, match_key
from shared.hosts import host_of
from shared.inn import inn as valid_inn
from shared.schemas.opportunity import AccountRef

NAME_ACCOUNT_PREFIX = "name:"


class SuffixList(Protocol):
    def privatesuffix(self, domain: str) -> str | None: ...


def _unicode_domain(domain: str) -> str:
    # Any URL or host form (a website typed into a CRM, an ABM list) is its host.
    domain = host_of(domain).strip(".").lower()
    if "xn--" in domain:
        with contextlib.suppress(UnicodeError):
            domain = domain.encode("ascii").decode("idna")
    return domain


def email_domain(email: str) -> str:
    return _unicode_domain(email.rpartition("@")[2])


_GMAIL = {"gmail.com", "googlemail.com"}


def person_id(email: str) -> str:
    """One id per mailbox: lower case, no +tag, Gmail's dots ignored, IDN domains in Unicode."""
    local, _, domain = email.strip().lower().rpartition("@")
    domain = _unicode_domain(domain)
    local = local.split("+", 1)[0] or local
    if domain in _GMAIL:
        local, domain = local.replace(".", ""), "gmail.com"
    return f"{local}@{domain}"


_LETTER_DIGIT = re.compile(r"(?<=[^\W\d_])(?=\d)|(?<=\d)(?=[^\W\d_])")
_ROMAN = re.compile(r"^(?:x{0,3})(?:ix|iv|v?i{0,3})$")


@lru_cache(maxsize=65536)
def distinguishing(normalised: str) -> tuple[str, ...]:
    """The words of a normalised name that tell companies of one stem apart: numbers and roman numerals.

    'кварцмонтаж 31' -> ('31',); 'экспресс ii' -> ('ii',). Sorted, repeats kept: 'альфа 2' and
    'альфа 2 2' differ. Two names match only when these agree. Cached like match_key: the
    names stage asks it of the same names again and again.
    """
    return tuple(sorted(w for w in normalised.split() if any(c.isdigit() for c in w)
                        or (len(w) > 1 and _ROMAN.match(w))))


@dataclass(frozen=True)
class CompanyNames:
    """Normalises and matches company names across spellings, scripts and legal forms.

    «ООО "Красная Ромашка"» -> 'красная ромашка'; 'OOO Krasnaya Romashka' matches it (domain/scripts.py:
    look-alike letters fixed, then one Latin key for both scripts); 'Кварцмонтаж-31' never matches
    'Кварцмонтаж-32' (numbers must agree).
    """

    legal_forms: tuple[str, ...] = ()  # regex fragments, removed as whole words (both scripts)
    generic_words: tuple[str, ...] = ()  # "группа компаний", "group", ...
    threshold: float = 90.0  # rapidfuzz token_sort_ratio (0..100) of the match keys needed for a fuzzy match
    _strip: re.Pattern[str] | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Longest first: "limited liability company" goes whole, not as "limited" and two words.
        words = sorted([*self.legal_forms, *self.generic_words], key=len, reverse=True)
        if words:
            pattern = r"(?<!\w)(?:" + "|".join(f"(?:{w})" for w in words) + r")(?!\w)"
            object.__setattr__(self, "_strip", re.compile(pattern, re.IGNORECASE))

    def normalise(self, name: str) -> str:
        """Lower case, ё -> е, look-alike letters in their word's script, quotes and legal forms gone,
        numbers apart from letters ('Кварцмонтаж31' -> 'кварцмонтаж 31'). Keeps the name's script."""
        text = fix_lookalikes(name).lower().replace("ё", "е")
        text = re.sub(r"[«»\"“”„‟'’`]", " ", text)
        if self._strip is not None:
            text = self._strip.sub(" ", text)
        text = re.sub(r"[^\w&+]+|_", " ", text)
        text = _LETTER_DIGIT.sub(" ", text)
        if self._strip is not None:  # a legal form glued to a number or left by the split ("ООО-2000")
            text = self._strip.sub(" ", text)
        return " ".join(text.split())

    def key(self, normalised: str) -> str:
        """The cross-script key of a normalised name (domain/scripts.py)."""
        return match_key(normalised)

    def best_match(self, name: str, candidates: Iterable[str]) -> str | None:
        """The candidate (normalised names) that is the same company as `name`, or None.

        Same key wins outright; otherwise the best rapidfuzz token_sort_ratio of the keys at or
        above the threshold, among candidates whose numbers and roman numerals are the same.
        Ties go to the smallest candidate, so the answer does not depend on the order given.
        """
        key, marks = match_key(name), distinguishing(name)
        keyed = {c: match_key(c) for c in sorted(candidates) if distinguishing(c) == marks}
        exact = [c for c, k in keyed.items() if k == key]
        if exact:
            return exact[0]
        found = process.extractOne(key, keyed, scorer=fuzz.token_sort_ratio, score_cutoff=self.threshold)
        return found[2] if found else None


@dataclass(frozen=True)
class AbmAccount:
    """A target account from the ABM list: its domains and aliases win over learned matches."""

    account_id: str  # its first registrable domain, else "name:<normalised name>"
    name: str
    domains: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    owner: str | None = None
    precreate: tuple[str, ...] = ()  # solutions whose opportunities exist before any touch

    def ref(self) -> AccountRef:
        return AccountRef(account_id=self.account_id, name=self.name, domains=self.domains, owner=self.owner)


@dataclass(frozen=True)
class Resolved:
    account: AccountRef
    by_domain: bool  # the account comes from a corporate domain (so its names can be learned)


@dataclass(frozen=True)
class NeedsLookup:
    name: str  # normalised company name to ask the directory about
    display_name: str


@dataclass(frozen=True)
class Unresolved:
    reason: str


Resolution = Resolved | NeedsLookup | Unresolved


@dataclass(frozen=True)
class TenantPlatforms:
    """Platform suffix -> the suffix its tenants' accounts are named under.

    {"onmicrosoft.com": "onmicrosoft.com", "mail.onmicrosoft.com": "onmicrosoft.com"} makes
    anna@berezka.onmicrosoft.com and x@berezka.mail.onmicrosoft.com one account,
    berezka.onmicrosoft.com, and oleg@topol.onmicrosoft.com another.
    """

    suffixes: Mapping[str, str] = field(default_factory=dict)

    def tenant(self, domain: str) -> str | None:
        """The tenant's account domain when `domain` is under a platform (the longest
        matching suffix wins), else None. The platform's own domain is not a tenant."""
        labels = domain.split(".")
        for i in range(1, len(labels) - 1):
            suffix = ".".join(labels[i:])
            if suffix in self.suffixes:
                return f"{labels[i - 1]}.{self.suffixes[suffix]}"
        return None


@dataclass(frozen=True)
class AccountRules:
    psl: SuffixList
    free_domains: frozenset[str]
    names: CompanyNames
    tenants: TenantPlatforms = TenantPlatforms()
    abm: tuple[AbmAccount, ...] = ()
    abm_as_of: datetime | None = None  # event time given to the pre-created opportunities
    _abm_domains: Mapping[str, AbmAccount] = field(default_factory=dict, init=False, repr=False, compare=False)
    _abm_names: Mapping[str, AbmAccount] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_domain: dict[str, AbmAccount] = {}
        by_name: dict[str, AbmAccount] = {}
        for account in self.abm:
            for domain in account.domains:
                by_domain.setdefault(self.registrable(domain) or domain, account)
            for alias in (account.name, *account.aliases):
                if key := self.names.normalise(alias):
                    by_name.setdefault(key, account)
        object.__setattr__(self, "_abm_domains", by_domain)
        object.__setattr__(self, "_abm_names", by_name)

    def registrable(self, domain: str) -> str | None:
        """The account domain of a host: its tenant on a shared platform, else its
        registrable domain (Public Suffix List); None for a public suffix or nothing."""
        domain = _unicode_domain(domain)
        if not domain:
            return None
        return self.tenants.tenant(domain) or self.psl.privatesuffix(domain)

    def is_free(self, domain: str) -> bool:
        domain = _unicode_domain(domain)
        return domain in self.free_domains or (self.registrable(domain) or domain) in self.free_domains

    def abm_by_name(self, normalised: str) -> AbmAccount | None:
        if not normalised:
            return None
        if normalised in self._abm_names:
            return self._abm_names[normalised]
        match = self.names.best_match(normalised, self._abm_names.keys())
        return self._abm_names[match] if match else None

    def _domain_account(self, domain: str, company: str | None) -> Resolved | None:
        if self.is_free(domain):
            return None
        registrable = self.registrable(domain)
        if not registrable:
            return None
        if abm := self._abm_domains.get(registrable):
            return Resolved(abm.ref(), by_domain=True)
        return Resolved(AccountRef(account_id=registrable, name=company, domains=(registrable,)), by_domain=True)

    def resolve(self, email: str, company: str | None = None, company_domain: str | None = None) -> Resolution:
        if found := self._domain_account(email_domain(email), company):
            return found
        if company_domain and (found := self._domain_account(company_domain, company)):
            return found
        if not company:
            return Unresolved("free mail domain and no company name yet")
        normalised = self.names.normalise(company)
        if not normalised:
            return Unresolved(f"company name {company!r} is only a legal form")
        if abm := self.abm_by_name(normalised):
            return Resolved(abm.ref(), by_domain=False)
        return NeedsLookup(normalised, company)


def abm_account(psl: SuffixList, names: CompanyNames, name: str, domains: Iterable[str] = (),
                aliases: Iterable[str] = (), owner: str | None = None,
                precreate: Iterable[str] = (), tenants: TenantPlatforms = TenantPlatforms()) -> AbmAccount:
    """An ABM list entry with its domains (any URL or host form) reduced to account domains
    (tenant on a shared platform, else registrable) and its id derived."""
    hosts = [_unicode_domain(d) for d in domains]
    registrable = tuple(dict.fromkeys(tenants.tenant(h) or psl.privatesuffix(h) or h for h in hosts))
    account_id = registrable[0] if registrable else NAME_ACCOUNT_PREFIX + names.normalise(name)
    return AbmAccount(account_id=account_id, name=name, domains=registrable, aliases=tuple(aliases),
                      owner=owner, precreate=tuple(precreate))


INN_ACCOUNT_PREFIX = "inn:"


def by_inn(resolution: Resolution, inn: str | None, known: Mapping[str, AccountRef]) -> Resolution:
    """Apply a company's INN (taxpayer number) to a resolution by domain or name.

    `inn`: the company's INN as a person event, form or CRM gave it (validated here with
    shared.inn: a wrong checksum is ignored, never used as a key); `known`: INN -> the account
    already seen with that INN (the caller's state). The rules:

    - the same INN is one account: a known INN wins over the name lookup and the domain
      (two spellings, or a second website, of one company become the account first seen);
    - different INNs are never merged by name: a name-based resolution (NeedsLookup, a name
      match in the ABM list) of a company with an unknown INN becomes its own account
      `inn:<INN>` named as given, so two same-named companies stay apart;
    - a domain account with an INN not yet known stays the domain's account (the caller
      records INN -> that account in `known`);
    - no (valid) INN: the resolution is unchanged.
    Returns a Resolution; pure.
    """
    key = valid_inn(inn) if inn is not None else None
    if key is None or isinstance(resolution, Unresolved):
        return resolution
    if key in known:
        by_domain = isinstance(resolution, Resolved) and resolution.by_domain \
            and resolution.account.account_id == known[key].account_id
        return Resolved(known[key], by_domain=by_domain)
    if isinstance(resolution, Resolved) and resolution.by_domain:
        return resolution
    name = resolution.display_name if isinstance(resolution, NeedsLookup) else resolution.account.name
    return Resolved(AccountRef(account_id=INN_ACCOUNT_PREFIX + key, name=name), by_domain=False)
