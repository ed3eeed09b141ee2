"""CSV exports of what the pages show: the priorities list (with its filters) and one
opportunity's buying group. Pure functions from the Reader's rows to CSV text, in the page's
language, so that a spreadsheet shows the same words as the page.

Cells that a spreadsheet would take for a formula (starting with = + - @, a tab or a carriage
return) are prefixed with an apostrophe (OWASP, "CSV Injection"): names come from outside.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from services.projection.web.i18n import Translator
from services.projection.web.views import in_role_order

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# A byte order mark, so that Excel reads the Cyrillic as UTF-8.
BOM = "\ufeff"


def cell(value: Any) -> Any:
    """A value as a CSV cell: numbers as they are, text defused, None empty, times in ISO 8601 UTC."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bool | int | float):
        return value
    text = str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def to_csv(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """RFC 4180 CSV (comma, CRLF, quoted where needed) with a BOM."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([cell(h) for h in header])
    writer.writerows([cell(v) for v in row] for row in rows)
    return BOM + out.getvalue()


def opportunities_csv(rows: Iterable[Mapping[str, Any]], t: Translator) -> str:
    """One line per opportunity, in priority order (rows as Reader.list_opportunities gives them)."""
    header = [t("col.rank"), "opportunity_id", t("col.account"), "account_id", t("col.solution"), t("col.tier"),
              t("col.score"), t("col.members"), t("export.engaged"), t("roles.covered_list"),
              t("roles.missing_list"), t("col.stage"), t("col.status"), t("col.activity"), t("opp.formed")]
    body = [[
        i + 1, r["opportunity_id"], r["account_name"] or r["account_id"], r["account_id"],
        t.value("solution", r["solution"]), r["tier"], round(r["score"], 1) if r["score"] is not None else None,
        r["members_count"], r["engaged_members"],
        ", ".join(t.value("role", x) for x in in_role_order(r["covered_roles"])),
        ", ".join(t.value("role", x) for x in in_role_order(r["missing_roles"])),
        t.value("stage", r["stage"]), t.value("status", r["status"]), r["last_activity_at"], r.get("formed_at"),
    ] for i, r in enumerate(rows)]
    return to_csv(header, body)


def group_csv(detail: Mapping[str, Any], t: Translator) -> str:
    """One line per member of the opportunity's buying group (Reader.opportunity's members)."""
    header = [t("export.person"), "email", t("export.job_title"), t("export.department"), t("export.role"),
              t("export.role_source"), t("opp.engagement"), t("opp.touches"), t("export.joined"),
              t("export.last_touch")]
    body = [[
        m["name"], m["email"], m["job_title"], t.value("dept", m["department"]), t.value("role", m["role"]),
        m.get("role_source"), round(m["engagement"], 2) if m.get("engagement") is not None else None,
        m["touches_count"], m["joined_at"], m.get("last_touch_at"),
    ] for m in detail["members"]]
    return to_csv(header, body)
