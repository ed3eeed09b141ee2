"""Who is who: department and level accuracy of the title rules on the labelled title sets.

    .venv/bin/python -m bench.titles

Reads tests/unit/grouping/titles_untuned.csv (written and committed before the rules' output was
looked at, never used to tune them) and titles_tuned.csv (the rules were tuned on it), classifies
every title with the shipped rules (services/grouping/config/roles.yaml) and reports, for each
set apart, department and level accuracy, per department, and the misses. A title no rule
recognises counts as department "other". Results: bench-results/titles.json.
"""

from __future__ import annotations

import csv
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bench.common import save
from services.grouping.config import load
from services.grouping.domain.roles import RoleRules

SETS = Path(__file__).resolve().parents[1] / "tests" / "unit" / "grouping"


def evaluate(rules: RoleRules, path: Path) -> dict[str, Any]:
    """{titles, department_accuracy, level_accuracy, by_department: {dept: [right, total]}, misses}."""
    rows = list(csv.DictReader(path.open(encoding="utf-8")))
    right, total, misses = Counter(), Counter(), []
    levels = 0
    for row in rows:
        found = rules.classify_title(row["title"])
        department = found[0].value if found else "other"
        level = rules.level(row["title"])
        total[row["department"]] += 1
        right[row["department"]] += department == row["department"]
        levels += level is not None and level.value == row["level"]
        if department != row["department"] or level is None or level.value != row["level"]:
            misses.append({"title": row["title"], "want": [row["department"], row["level"]],
                           "got": [department, level.value if level else None]})
    return {"titles": len(rows), "department_accuracy": sum(right.values()) / len(rows),
            "level_accuracy": levels / len(rows),
            "by_department": {d: [right[d], total[d]] for d in sorted(total)}, "misses": misses}


def main() -> None:
    rules = load().people.roles
    report = {name: evaluate(rules, SETS / f"titles_{name}.csv") for name in ("untuned", "tuned")}
    table = Table(title="Department and level from job titles")
    for column in ("set", "titles", "department", "level"):
        table.add_column(column, justify="left" if column == "set" else "right")
    for name, r in report.items():
        table.add_row(name, str(r["titles"]), f"{r['department_accuracy']:.1%}", f"{r['level_accuracy']:.1%}")
    console = Console()
    console.print(table)
    for m in report["untuned"]["misses"]:
        console.print(f"untuned miss: {m['title']!r} want {m['want']} got {m['got']}")
    console.print(f"saved {save('titles', {'command': ' '.join(['python -m bench.titles', *sys.argv[1:]]), **report})}")


if __name__ == "__main__":
    main()
