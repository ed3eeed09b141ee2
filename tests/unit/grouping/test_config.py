"""Configuration: shipped defaults, per-file and per-directory overrides, ABM list from a URL."""

from __future__ import annotations

import shutil
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from services.grouping.config import CONFIG_DIR, load

ABM = """
as_of: 2025-02-01T00:00:00+03:00
accounts:
  - name: ООО «Красная ромашка»
    domains: [hr.romashka.ru]
    aliases: [KR]
    owner: Анна
    precreate: [hr]
"""


def test_the_shipped_config_loads(config) -> None:
    assert config.people.catalog.slugs() == ("hr", "wms", "crm", "bi")
    assert {"gmail.com", "mail.ru", "yandex.ru", "bk.ru", "list.ru", "inbox.ru", "rambler.ru",
            "outlook.com"} <= config.people.accounts.free_domains
    assert "mailinator.com" in config.people.accounts.free_domains  # the disposable list joins in
    assert set(config.opportunities.profiles) == {"hr", "wms", "crm", "bi"}


def test_one_file_can_be_replaced(tmp_path: Path) -> None:
    accounts = tmp_path / "abm.yaml"
    accounts.write_text(ABM, encoding="utf-8")
    config = load({"BG_GROUPING_ACCOUNTS": str(accounts)})
    [target] = config.people.accounts.abm
    assert (target.account_id, target.domains, target.owner) == ("romashka.ru", ("romashka.ru",), "Анна")
    precreated = config.opportunities.precreated["romashka.ru"]
    assert precreated.solutions == ("hr",) and precreated.as_of.isoformat() == "2025-01-31T21:00:00+00:00"


def test_a_whole_directory_can_be_replaced(tmp_path: Path) -> None:
    shutil.copytree(CONFIG_DIR, tmp_path / "cfg")
    (tmp_path / "cfg" / "freemail_domains.txt").write_text("# only one\nromashka.ru\n", encoding="utf-8")
    config = load({"BG_GROUPING_CONFIG_DIR": str(tmp_path / "cfg")})
    assert config.people.accounts.is_free("hr.romashka.ru")
    assert not config.people.accounts.is_free("gmail.com")


def test_the_abm_list_can_come_from_an_api() -> None:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = ABM.encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/yaml")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        config = load({"BG_GROUPING_ACCOUNTS": f"http://127.0.0.1:{server.server_port}/abm"})
    finally:
        server.shutdown()
    assert [a.account_id for a in config.people.accounts.abm] == ["romashka.ru"]


@pytest.mark.parametrize(("text", "error"), [
    (ABM.replace("as_of: 2025-02-01T00:00:00+03:00\n", ""), "as_of"),
    (ABM.replace("precreate: [hr]", "precreate: [erp]"), "unknown solutions"),
])
def test_an_inconsistent_abm_list_is_refused(tmp_path: Path, text: str, error: str) -> None:
    accounts = tmp_path / "abm.yaml"
    accounts.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match=error):
        load({"BG_GROUPING_ACCOUNTS": str(accounts)})


def test_the_shipped_profiles_give_each_solution_its_initiators(config) -> None:
    from shared.schemas.roles import BuyingRole, Department, Level

    def role(solution: str, department: Department, level: Level = Level.staff) -> BuyingRole:
        return config.opportunities.profile(solution).roles.role(department, level)

    assert role("hr", Department.hr) is BuyingRole.initiator
    assert role("hr", Department.sales) is BuyingRole.influencer
    assert role("crm", Department.sales) is BuyingRole.initiator
    assert role("wms", Department.operations) is BuyingRole.initiator
    assert role("wms", Department.finance, Level.top) is BuyingRole.budget_holder  # from the default profile
    assert role("wms", Department.finance) is BuyingRole.influencer


def test_profiles_of_solutions_the_catalog_lacks_are_refused(tmp_path: Path) -> None:
    shutil.copytree(CONFIG_DIR, tmp_path / "cfg")
    profiles = tmp_path / "cfg" / "profiles.yaml"
    profiles.write_text(profiles.read_text(encoding="utf-8") + "  erp:\n    roles: {it: initiator}\n",
                        encoding="utf-8")
    with pytest.raises(ValueError, match="erp"):
        load({"BG_GROUPING_CONFIG_DIR": str(tmp_path / "cfg")})
