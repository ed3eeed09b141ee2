"""Account resolution: registrable domains, free mail, company names, the ABM list."""

from __future__ import annotations

import pytest
from publicsuffixlist import PublicSuffixList

from services.grouping.domain.accounts import (
    AccountRules,
    CompanyNames,
    NeedsLookup,
    Resolved,
    Unresolved,
    abm_account,
    person_id,
)


def test_person_id_is_one_per_mailbox() -> None:
    assert person_id("Elena.Sokolova+webinar@Romashka.RU") == "elena.sokolova@romashka.ru"
    assert person_id("i.van.ov@googlemail.com") == "ivanov@gmail.com"
    assert person_id("ivan@xn--80aa3agjl3d.xn--p1ai") == person_id("ivan@ромашка.рф")


def test_subdomains_are_one_company(config) -> None:
    rules = config.people.accounts
    ids = {rules.resolve(e).account.account_id for e in ("a@hr.romashka.ru", "b@romashka.ru", "c@mail.it.romashka.ru")}
    assert ids == {"romashka.ru"}
    assert rules.resolve("d@romashka.com.ru").account.account_id == "romashka.com.ru"
    assert rules.resolve("e@hr.ромашка.рф").account.account_id == "ромашка.рф"


@pytest.mark.parametrize("domain", ["gmail.com", "mail.ru", "yandex.ru", "bk.ru", "list.ru", "inbox.ru",
                                    "rambler.ru", "outlook.com", "mailinator.com", "guerrillamail.com"])
def test_free_and_disposable_mail_never_makes_an_account(config, domain) -> None:
    rules = config.people.accounts
    assert rules.is_free(domain)
    assert isinstance(rules.resolve(f"someone@{domain}"), Unresolved)
    assert rules.resolve(f"someone@{domain}", "ООО «Красная ромашка»") == NeedsLookup(
        "красная ромашка", "ООО «Красная ромашка»")


def test_a_company_domain_trait_names_the_account_of_a_free_mail_person(config) -> None:
    found = config.people.accounts.resolve("ivan@gmail.com", "Ромашка", company_domain="www.romashka.ru")
    assert isinstance(found, Resolved) and found.account.account_id == "romashka.ru"
    assert isinstance(config.people.accounts.resolve("ivan@gmail.com", None, company_domain="yandex.ru"),
                      Unresolved)


@pytest.mark.parametrize("raw", [
    "ООО «Красная ромашка»", 'ООО "Красная Ромашка"', "Красная ромашка, ООО", "АО Красная ромашка",
    "Общество с ограниченной ответственностью «Красная ромашка»", "  красная   РОМАШКА ", "ГК Красная ромашка",
])
def test_company_names_lose_legal_forms_quotes_and_case(config, raw) -> None:
    assert config.people.accounts.names.normalise(raw) == "красная ромашка"


def test_yo_and_foreign_legal_forms(config) -> None:
    names = config.people.accounts.names
    assert names.normalise("ЗАО «Ёлка»") == names.normalise("Елка") == "елка"
    for raw in ("Acme LLC", "Acme Ltd.", "ACME GmbH", "Acme, Inc.", "Acme L.L.C.", "ПАО Acme", "ИП Acme"):
        assert names.normalise(raw) == "acme", raw


def test_fuzzy_match_has_a_threshold(config) -> None:
    names = config.people.accounts.names
    assert names.best_match("красная ромашко", ["красная ромашка", "синяя ромашка"]) == "красная ромашка"
    assert names.best_match("ромашка строй", ["ромашка"]) is None
    assert names.best_match("газпром", []) is None


@pytest.fixture(scope="module")
def abm_rules(config) -> AccountRules:
    psl = PublicSuffixList()
    names = CompanyNames(legal_forms=("ооо", "ао"), threshold=90)
    target = abm_account(psl, names, "Красная ромашка", domains=["romashka.ru", "www.krasnaya-romashka.com"],
                         aliases=["KR Group", "Ромашка-Холдинг"], owner="Анна", precreate=["hr"])
    named_only = abm_account(psl, names, "Синяя Лилия")
    return AccountRules(psl=psl, free_domains=config.people.accounts.free_domains, names=names,
                        abm=(target, named_only))


def test_abm_domains_take_precedence_and_join_domains(abm_rules) -> None:
    found = abm_rules.resolve("cfo@krasnaya-romashka.com")
    assert isinstance(found, Resolved) and found.by_domain
    assert found.account.account_id == "romashka.ru"
    assert found.account.domains == ("romashka.ru", "krasnaya-romashka.com")
    assert (found.account.name, found.account.owner) == ("Красная ромашка", "Анна")


def test_abm_names_and_aliases_match_free_mail_people(abm_rules) -> None:
    for company in ("ООО KR Group", "ромашка-холдинг", "Красная Ромашка", "Красная ромашко"):
        found = abm_rules.resolve("someone@mail.ru", company)
        assert isinstance(found, Resolved) and not found.by_domain, company
        assert found.account.account_id == "romashka.ru"
    lily = abm_rules.resolve("someone@mail.ru", "АО «Синяя лилия»")
    assert isinstance(lily, Resolved) and lily.account.account_id == "name:синяя лилия"


def test_a_name_that_is_only_a_legal_form_does_not_match(abm_rules) -> None:
    assert isinstance(abm_rules.resolve("someone@mail.ru", "ООО"), Unresolved)


# Issue 15: company names across scripts, look-alike letters, legal forms, numbers.

@pytest.mark.parametrize(("latin", "cyrillic"), [
    ("OOO Skvorechnik Tekhnologii", "ООО «Скворечник Технологии»"),
    ("Skvorechnik Texnologii LLC", "Скворечник Технологии"),
    ("PJSC Gazmyasneft", "ПАО «Газмяснефть»"),
    ("JSC Kvartsmontazh-31", "АО «Кварцмонтаж-31»"),
    ("Krasnaya Romashka Group", "ГК «Красная ромашка»"),
    ("CJSC Argotrubosbyt", "ЗАО Арготрубосбыт"),
])
def test_latin_and_cyrillic_spellings_are_one_company_both_ways(config, latin, cyrillic) -> None:
    names = config.people.accounts.names
    assert names.best_match(names.normalise(latin), [names.normalise(cyrillic)]) == names.normalise(cyrillic)
    assert names.best_match(names.normalise(cyrillic), [names.normalise(latin)]) == names.normalise(latin)


def test_look_alike_letters_of_the_other_script_are_fixed(config) -> None:
    names = config.people.accounts.names
    # "Kвaрцмонтаж" with a Latin K and a; "Аcmе" with a Cyrillic А and е; "OOO" in Latin letters.
    assert names.normalise("Kвaрцмонтаж-31") == names.normalise("Кварцмонтаж-31") == "кварцмонтаж 31"
    assert names.normalise("Аcmе LLC") == "acme"
    assert names.normalise("OOO «Cкворечник»") == "скворечник"


@pytest.mark.parametrize("raw", [
    "ООО Ромашка", "OOO Romashka", "Romashka LLC", "АО Ромашка", "AO Romashka", "Romashka JSC",
    "ПАО Ромашка", "PJSC Romashka", "ЗАО Ромашка", "CJSC Romashka", "ИП Ромашка", "IP Romashka",
    "ГК Ромашка", "GK Romashka", "НКО Ромашка", "NKO Romashka", "Romashka Limited Liability Company",
    "Obshchestvo s ogranichennoy otvetstvennostyu Romashka", "Romashka Group of Companies",
])
def test_legal_forms_in_both_scripts_are_removed(config, raw) -> None:
    names = config.people.accounts.names
    assert names.key(names.normalise(raw)) == names.key("ромашка") == "romashka"


@pytest.mark.parametrize(("one", "other"), [
    ("АО «Кварцмонтаж-32»", "Кварцмонтаж-31"),
    ("Экспресс-1", "Экспресс-2"),
    ("Ekspress 2", "Экспресс-1"),
    ("Ромашка", "Ромашка-2"),
    ("Стройтрест II", "Стройтрест III"),
    ("Альфа 2 Сервис", "Альфа 2 Сервис-2"),  # a number repeated is another number
])
def test_numbers_are_part_of_a_name(config, one, other) -> None:
    names = config.people.accounts.names
    assert names.best_match(names.normalise(one), [names.normalise(other)]) is None
    assert names.best_match(names.normalise(other), [names.normalise(one)]) is None


def test_the_same_number_still_matches_across_spellings(config) -> None:
    names = config.people.accounts.names
    found = names.best_match(names.normalise("Kvartsmontazh31"), ["кварцмонтаж 32", "кварцмонтаж 31"])
    assert found == "кварцмонтаж 31"


# Issue 13: any URL or host form of a website, and tenants of shared platforms.

@pytest.mark.parametrize("website", ["https://www.berkut.ru/", "http://berkut.ru", "berkut.ru/", "BERKUT.RU.",
                                     "www.berkut.ru:443", "//berkut.ru/about?x=1", "https://user@berkut.ru:8443/"])
def test_a_website_in_any_url_or_host_form_is_the_registrable_domain(config, website) -> None:
    found = config.people.accounts.resolve("ivan@gmail.com", "Беркут", company_domain=website)
    assert isinstance(found, Resolved) and found.account.account_id == "berkut.ru"


def test_tenants_of_shared_platforms_are_separate_accounts(config) -> None:
    rules = config.people.accounts
    ids = [rules.resolve(e).account.account_id for e in (
        "anna@berezka.onmicrosoft.com", "oleg@topol.onmicrosoft.com", "ivan@berezka.mail.onmicrosoft.com",
        "li@dongfang.partner.onmschina.cn", "a@romashka.ru")]
    assert ids == ["berezka.onmicrosoft.com", "topol.onmicrosoft.com", "berezka.onmicrosoft.com",
                   "dongfang.partner.onmschina.cn", "romashka.ru"]
    # The platform's own domain is no tenant; its registrable domain stays as it was.
    assert rules.resolve("admin@onmicrosoft.com").account.account_id == "onmicrosoft.com"


def test_abm_list_domains_in_url_form_and_on_tenant_platforms(config) -> None:
    from services.grouping.config import source, tenant_platforms

    tenants = tenant_platforms(source("tenant_platforms", {}))
    names = CompanyNames()
    berezka = abm_account(PublicSuffixList(), names, "Берёзка", domains=["https://www.berezka.ru/",
                                                                           "berezka.onmicrosoft.com"], tenants=tenants)
    assert berezka.domains == ("berezka.ru", "berezka.onmicrosoft.com")
    rules = AccountRules(psl=PublicSuffixList(), free_domains=frozenset(), names=names, abm=(berezka,),
                         tenants=tenants)
    assert rules.resolve("oleg@topol.onmicrosoft.com").account.account_id == "topol.onmicrosoft.com"
    assert rules.resolve("anna@berezka.onmicrosoft.com").account.account_id == "berezka.ru"
