"""DOMAIN.md's stories through the Russian stack (Tilda, MTS Link, Unisender Go, Calltouch and Metrica
visits of a ClientID identified later) give the same opportunities as through Segment/SendGrid/Zoom."""

from __future__ import annotations

import uuid

import httpx

from demo.send import send_all
from demo.send_ru import send_ru_stack
from demo.stories import all_stories
from demo.stories_ru import all_stories as ru_stories
from tests.e2e.conftest import Pipeline
from tests.e2e.test_pipeline import opportunity, wait_until

COMPANIES = ("romashka", "argotrubosbyt", "gazmyasneft")


def shape(o: dict) -> dict:
    """What must agree between the stacks: formation, the members with their roles, the gaps."""
    return {"formed": o["formed_at"] is not None, "solution": o["solution"],
            "members": sorted((m["name"], m["department"], m["role"]) for m in o["members"]),
            "missing_roles": sorted(o["missing_roles"])}


def ranking(api: httpx.Client, tag: str) -> list[str] | None:
    items = api.get("/v1/opportunities", params={"solution": "hr", "limit": 200}).json()["items"]
    ids = [o["account_id"].removesuffix(f"{tag}.ru") for o in items if o["account_id"].endswith(f"{tag}.ru")]
    return ids if {"argotrubosbyt", "gazmyasneft"} <= set(ids) else None


def test_russian_stack_gives_the_same_opportunities(pipeline: Pipeline):
    segment_tag, ru_tag = f"-sg{uuid.uuid4().hex[:6]}", f"-ru{uuid.uuid4().hex[:6]}"
    send_all(pipeline.ingest_url, all_stories(segment_tag))
    totals = send_ru_stack(pipeline.ingest_url, ru_stories(ru_tag))
    assert totals["dead_lettered"] == 0 and totals["accepted"] > 0
    with pipeline.api() as api:
        def settled(tag: str):
            got = {c: opportunity(api, f"{c}{tag}.ru:hr") for c in COMPANIES}
            done = all(got.values()) and len(got["romashka"]["members"]) == 4 and got["romashka"]["formed_at"] \
                and len(got["argotrubosbyt"]["members"]) == 4 and got["argotrubosbyt"]["formed_at"]
            return got if done else None

        by_segment, by_ru = wait_until(lambda: settled(segment_tag)), wait_until(lambda: settled(ru_tag))
        for company in COMPANIES:
            assert shape(by_ru[company]) == shape(by_segment[company]), company
        seg_rank, ru_rank = wait_until(lambda: ranking(api, segment_tag)), wait_until(lambda: ranking(api, ru_tag))
        for ranked in (seg_rank, ru_rank):
            assert ranked.index("argotrubosbyt") < ranked.index("gazmyasneft")

        # Елена's anonymous Metrica visits (before the Tilda form named her ClientID) count for the group,
        # and Сергей's call (Calltouch, known by his phone and his visit's yaClientId) is his touch.
        romashka = by_ru["romashka"]
        touches = romashka["timeline"]
        urls = {(t["kind"], t["url"]) for t in touches}
        assert ("page_view", "https://vendor.example/solutions/hr/overview") in urls
        assert ("page_view", "https://vendor.example/solutions/hr/integrations/api") in urls
        assert "call" in {t["kind"] for t in touches}
        assert len(romashka["members"]) == 4
