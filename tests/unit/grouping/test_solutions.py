"""Solution interest from content: URLs, asset ids, webinar topics, keywords in both languages."""

from __future__ import annotations

import pytest

from shared.schemas.touch import Content


@pytest.mark.parametrize(("content", "solutions"), [
    (dict(url="https://vendor.example/solutions/hr/leave-automation"), ("hr",)),
    (dict(url="https://vendor.example/ru/solutions/wms/"), ("wms",)),
    (dict(url="/en/solutions/crm/pricing?utm_source=mail"), ("crm",)),
    (dict(url="https://vendor.example/solutions/bi"), ("bi",)),
    (dict(asset_id="hr-roi-case-study"), ("hr",)),
    (dict(asset_id="WMS-brochure-2025"), ("wms",)),
    (dict(topic="Автоматизация кадрового учёта"), ("hr",)),
    (dict(topic="Цифровой склад: адресное хранение"), ("wms",)),
    (dict(title="Как автоматизировать склад за 30 дней"), ("wms",)),
    (dict(title="Warehouse management: best practices"), ("wms",)),
    (dict(title="Учёт персонала без бумаги"), ("hr",)),
    (dict(title="HR analytics in one dashboard"), ("hr", "bi")),
    (dict(title="Воронка продаж в CRM"), ("crm",)),
    (dict(url="/blog/data-warehouse-for-retail"), ("bi",)),
    (dict(url="https://vendor.example/solutions/hr/recruiting", title="Как быстрее закрывать вакансии"), ("hr",)),
])
def test_content_shows_interest_in_solutions(config, content, solutions) -> None:
    assert config.people.catalog.tag(Content(**content)).solutions == solutions


@pytest.mark.parametrize("content", [
    dict(url="https://vendor.example/"),
    dict(url="https://vendor.example/ru/"),
    dict(url="https://vendor.example/careers/hr-manager"),
    dict(url="https://vendor.example/about"),
    dict(url="https://vendor.example/contacts"),
    dict(title="Вакансия: HR-менеджер"),
    dict(title="Новогоднее поздравление"),
    dict(),
])
def test_home_careers_and_unrelated_content_show_no_solution(config, content) -> None:
    assert config.people.catalog.tag(Content(**content)).solutions == ()


def test_api_and_integration_docs_carry_the_technical_signal(config) -> None:
    catalog = config.people.catalog
    assert catalog.tag(Content(url="/solutions/hr/integrations/api")).signals == ("technical",)
    assert catalog.tag(Content(url="/docs/api/v2/employees")).signals == ("technical",)
    assert catalog.tag(Content(topic="Интеграция HR-системы с 1С")).signals == ("technical",)
    assert catalog.tag(Content(url="/solutions/hr/leave-automation")).signals == ()


def test_the_sample_catalog_sells_four_solutions(config) -> None:
    assert config.people.catalog.slugs() == ("hr", "wms", "crm", "bi")
