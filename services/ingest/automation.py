"""Touches made by machines, not people: kept, flagged, never counted as engagement.

Platform-specific marks are set by the adapters (SendGrid's sg_machine_open, a click within
seconds of delivery). What every source shares is the user agent: a known crawler's,
matched against the crawler-user-agents list (github.com/monperrus/crawler-user-agents, the
list most bot filters start from; the PyPI package ships it).
"""

from __future__ import annotations

from functools import lru_cache

import crawleruseragents

from shared.schemas.touch import IdentityEvent, TouchEvent

BOT_USER_AGENT = "bot_user_agent"


@lru_cache(maxsize=8192)
def is_bot(user_agent: str) -> bool:
    """True for a known crawler's user agent. Cached: one check costs ~0.2 ms, and a
    campaign's traffic repeats a few hundred user agents."""
    return crawleruseragents.is_crawler(user_agent)


def flag_bot(event: TouchEvent | IdentityEvent) -> TouchEvent | IdentityEvent:
    """The touch marked automated when its user agent is a known bot's (else unchanged)."""
    if not isinstance(event, TouchEvent) or event.automated or not event.context.user_agent:
        return event
    if not is_bot(event.context.user_agent):
        return event
    return event.model_copy(update={"automated": True, "automated_reason": BOT_USER_AGENT})
