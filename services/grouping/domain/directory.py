"""The company-name directory: normalised company name -> account (the `names` stage).

Corporate people register the names they give with their domain account; a free-mail person
looks their company name up. The directory is spread over partitions by *block*
(`shard_key`): a name is compared (fuzzy) with the names of its block only, so that no single
partition holds the whole directory and a lookup costs the size of its block, not of the
market. Its traffic is one lookup per free-mail person and one registration per new (person,
company name).

Answers are sticky: a looked-up name is stored with its answer, so the same name always gets
the same account, also when a lookup is replayed after a crash. The one exception is an
account made from a name alone: a corporate registration of that name takes it over, and the
name account is merged into the domain account (`register`, issue 15).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from services.grouping.domain.accounts import NAME_ACCOUNT_PREFIX, CompanyNames
from services.grouping.domain.messages import AccountAssigned, AccountMerge, NameLookup, NameRegistration, Outbound
from services.grouping.domain.scripts import match_key
from shared.schemas.base import Message
from shared.schemas.opportunity import AccountRef


def shard_key(name: str) -> str:
    """The block of a normalised company name, the names stage's partition key.

    The first character of its cross-script match key (CompanyNames.key: one Latin spelling
    for both scripts) with the words in sorted order: rapidfuzz's token_sort_ratio, which
    decides a fuzzy match, compares those keys with their words sorted, and two names at least
    90% alike practically always begin alike there. A pair that does not (a typo in the first
    letter of the first word) is not matched and gets an account of its own name, as a name
    seen before any corporate colleague does. "" (no name) is a block of its own.
    """
    words = sorted(match_key(name).split())
    return "names:" + (words[0][:1] if words else "")


class DirectoryEntry(Message):
    account: AccountRef
    origin: Literal["domain", "name"]  # a corporate domain's account, or one made from the name alone


def lookup(directory: Mapping[str, DirectoryEntry], msg: NameLookup,
           names: CompanyNames) -> tuple[dict[str, DirectoryEntry], list[Outbound]]:
    """Answer a lookup; returns the entries to write and the reply to the person.

    `directory` holds the names of the lookup's block (`shard_key`), the ones it may match.
    """
    updates: dict[str, DirectoryEntry] = {}
    entry = directory.get(msg.name)
    if entry is None:
        match = names.best_match(msg.name, directory.keys())
        if match is not None:
            entry = directory[match]
        else:
            entry = DirectoryEntry(
                account=AccountRef(account_id=NAME_ACCOUNT_PREFIX + msg.name, name=msg.display_name),
                origin="name",
            )
        updates[msg.name] = entry
    reply = AccountAssigned(lookup_id=msg.lookup_id, occurred_at=msg.occurred_at,
                            person_id=msg.person_id, name=msg.name, account=entry.account)
    return updates, [Outbound(to="people", key=msg.person_id, message=reply)]


def merge_id(source: str, into: str) -> str:
    """The id of the automatic merge of account `source` (made from a name) into `into`."""
    return f"merge:{source}>{into}"


def register(directory: Mapping[str, DirectoryEntry], msg: NameRegistration,
             names: CompanyNames) -> tuple[dict[str, DirectoryEntry], list[Outbound]]:
    """A corporate domain's account takes over the names made into accounts from the name alone.

    `directory` holds the names of the registration's block (`shard_key`). Taken over: the
    registered name, and every entry made from a name alone (origin "name") that is that name
    or that the name matcher takes for it (CompanyNames.best_match: same cross-script key, or
    fuzzy with the numbers agreeing), unless it is the domain account's already. An entry of a
    domain is never taken over: the first domain keeps a name, a person's merge decides otherwise.

    Returns the entries to write (now the domain account's) and, per distinct account made
    from a name that was taken over, in account id order, one AccountMerge keyed by it: the
    retroactive merge of issue 15 (domain/merge.py applies it in the accounts stage).
    """
    target = msg.account
    updates: dict[str, DirectoryEntry] = {}
    sources: dict[str, AccountRef] = {}
    for name in sorted(n for n, e in directory.items() if e.origin == "name"):
        entry = directory[name]
        if entry.account.account_id == target.account_id:
            continue
        if name != msg.name and names.best_match(msg.name, [name]) is None:
            continue
        updates[name] = DirectoryEntry(account=target, origin="domain")
        sources.setdefault(entry.account.account_id, entry.account)
    current = directory.get(msg.name)
    if current is None or current.origin == "name":
        updates[msg.name] = DirectoryEntry(account=target, origin="domain")
    merges = [
        Outbound(to="accounts", key=source_id, message=AccountMerge(
            input_id=merge_id(source_id, target.account_id), merge_id=merge_id(source_id, target.account_id),
            occurred_at=msg.occurred_at, account=source, into=target))
        for source_id, source in sorted(sources.items())
    ]
    return updates, merges
