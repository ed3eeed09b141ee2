"""Loads grouping's editable configuration into the domain's rule objects.

Every file lives in services/grouping/config/ and can be replaced: BG_GROUPING_CONFIG_DIR
points at another directory, and BG_GROUPING_<NAME> (CATALOG, ROLES, PROFILES, RULES,
COMPANY_NAMES, FREEMAIL, ACCOUNTS) at a single file. The ABM account list may also be an
http(s) URL answering the same YAML or JSON, read once at start.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import disposable_email_domains
import httpx
import yaml
from publicsuffixlist import PublicSuffixList

from services.grouping.domain.accounts import AccountRules, CompanyNames, TenantPlatforms, abm_account
from services.grouping.domain.identity import IdentityLimits
from services.grouping.domain.opportunities import CreationRule, GroupProfile, OpportunityRules, PrecreatedAccount
from services.grouping.domain.people import PeopleLimits, PeopleRules
from services.grouping.domain.roles import RoleMap, RoleRules
from services.grouping.domain.solutions import Catalog
from shared.schemas.roles import BuyingRole
from shared.schemas.touch import TouchKind

CONFIG_DIR = Path(__file__).resolve().parent / "config"
FILES = {
    "catalog": "catalog.yaml",
    "roles": "roles.yaml",
    "profiles": "profiles.yaml",
    "rules": "rules.yaml",
    "company_names": "company_names.yaml",
    "freemail": "freemail_domains.txt",
    "accounts": "accounts.yaml",
    "tenant_platforms": "tenant_platforms.txt",
}


@dataclass(frozen=True)
class GroupingConfig:
    identity: IdentityLimits
    people: PeopleRules
    opportunities: OpportunityRules
    sources: Mapping[str, str]  # where each part came from, for the start-up log


def source(name: str, env: Mapping[str, str] = os.environ) -> str:
    if explicit := env.get(f"BG_GROUPING_{name.upper()}"):
        return explicit
    return str(Path(env.get("BG_GROUPING_CONFIG_DIR", CONFIG_DIR)) / FILES[name])


def _read(location: str) -> str:
    if location.startswith(("http://", "https://")):
        response = httpx.get(location, timeout=30.0, follow_redirects=True)
        response.raise_for_status()
        return response.text
    return Path(location).read_text(encoding="utf-8")


def _yaml(location: str) -> Any:
    return yaml.safe_load(_read(location)) or {}


def _days(value: float | None) -> timedelta | None:
    return None if value is None else timedelta(days=float(value))


def _as_utc(value: datetime | str) -> datetime:
    parsed = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def free_domains(location: str) -> frozenset[str]:
    listed = {line.strip().lower() for line in _read(location).splitlines()}
    return frozenset(d for d in listed if d and not d.startswith("#")) | frozenset(disposable_email_domains.blocklist)


def company_names(data: Mapping[str, Any]) -> CompanyNames:
    return CompanyNames(
        legal_forms=tuple(data.get("legal_forms", ())),
        generic_words=tuple(data.get("generic_words", ())),
        threshold=float(data.get("fuzzy_threshold", 90)),
    )


def tenant_platforms(location: str) -> TenantPlatforms:
    """tenant_platforms.txt: per line a platform suffix, optionally the suffix its tenants'
    accounts are named under (`mail.onmicrosoft.com onmicrosoft.com`); # starts a comment."""
    suffixes = {}
    for line in _read(location).splitlines():
        words = line.split("#", 1)[0].lower().split()
        if words:
            suffixes[words[0]] = words[1] if len(words) > 1 else words[0]
    return TenantPlatforms(suffixes)


def account_rules(psl: PublicSuffixList, free: frozenset[str], names: CompanyNames,
                  data: Mapping[str, Any], tenants: TenantPlatforms = TenantPlatforms()) -> AccountRules:
    accounts = tuple(
        abm_account(psl, names, name=a["name"], domains=a.get("domains", ()), aliases=a.get("aliases", ()),
                    owner=a.get("owner"), precreate=a.get("precreate", ()), tenants=tenants)
        for a in data.get("accounts", ())
    )
    as_of = _as_utc(data["as_of"]) if data.get("as_of") else None
    if as_of is None and any(a.precreate for a in accounts):
        raise ValueError("the ABM account list pre-creates opportunities, so it needs `as_of` (event time)")
    return AccountRules(psl=psl, free_domains=free, names=names, abm=accounts, abm_as_of=as_of, tenants=tenants)


def default_roles(profiles: Mapping[str, Any]) -> RoleMap:
    """The default profile's department x level -> role map (profiles.yaml `default.roles`)."""
    return RoleMap.from_dict(profiles.get("default", {}).get("roles"))


def opportunity_rules(rules: Mapping[str, Any], profiles: Mapping[str, Any], accounts: AccountRules,
                      solutions: tuple[str, ...]) -> OpportunityRules:
    defaults = default_roles(profiles)

    def profile(data: Mapping[str, Any], roles: RoleMap) -> GroupProfile:
        return GroupProfile(expected=tuple(BuyingRole(r) for r in data.get("expected", ())),
                            required=tuple(BuyingRole(r) for r in data.get("required", ())), roles=roles)

    unknown = [slug for slug in profiles.get("solutions", {}) if slug not in solutions]
    if unknown:
        raise ValueError(f"profiles.yaml names solutions the catalog does not have: {unknown}")

    creation = rules.get("opportunity_creation", {})
    precreated = {}
    for account in accounts.abm:
        unknown = [s for s in account.precreate if s not in solutions]
        if unknown:
            raise ValueError(f"ABM account {account.name!r} pre-creates unknown solutions {unknown}")
        if account.precreate and accounts.abm_as_of is not None:
            precreated[account.account_id] = PrecreatedAccount(account.ref(), account.precreate, accounts.abm_as_of)
    return OpportunityRules(
        creation=CreationRule(min_touches=int(creation.get("min_touches", 1)),
                              min_people=int(creation.get("min_people", 1)),
                              window=_days(creation.get("window_days"))),
        passive_kinds=frozenset(TouchKind(k) for k in rules.get("passive_kinds", ["email_delivered"])),
        profiles={slug: profile(p, RoleMap.from_dict(p.get("roles"), defaults))
                  for slug, p in profiles.get("solutions", {}).items()},
        default_profile=profile(profiles.get("default", {}), defaults),
        precreated=precreated,
        max_pending=int(rules.get("max_pending", 200)),
        solutions=frozenset(solutions),
    )


def load(env: Mapping[str, str] = os.environ) -> GroupingConfig:
    sources = {name: source(name, env) for name in FILES}
    rules = _yaml(sources["rules"])
    catalog = Catalog.from_dict(_yaml(sources["catalog"]))
    names = company_names(_yaml(sources["company_names"]))
    accounts = account_rules(PublicSuffixList(), free_domains(sources["freemail"]), names,
                             _yaml(sources["accounts"]), tenant_platforms(sources["tenant_platforms"]))
    profiles = _yaml(sources["profiles"])
    identity, people = rules.get("identity", {}), rules.get("people", {})
    return GroupingConfig(
        identity=IdentityLimits(ttl=timedelta(days=float(identity.get("ttl_days", 30))),
                                max_held=int(identity.get("max_held", 200)),
                                max_aliases=int(identity.get("max_aliases", 20))),
        people=PeopleRules(
            accounts=accounts,
            roles=RoleRules.from_dict(_yaml(sources["roles"]), default_roles(profiles)),
            catalog=catalog,
            limits=PeopleLimits(ttl=timedelta(days=float(people.get("ttl_days", 30))),
                                max_held=int(people.get("max_held", 200)),
                                dedupe_window=timedelta(days=float(people.get("dedupe_window_days", 7))),
                                max_remembered=int(people.get("max_remembered", 1000))),
        ),
        opportunities=opportunity_rules(rules, profiles, accounts, catalog.slugs()),
        sources=sources,
    )
