"""python -m services.importers metrica|mtslink [args]: the scheduled pulls (see each module)."""

from __future__ import annotations

import sys

from services.importers import metrica_logs, mtslink_attendance

COMMANDS = {"metrica": metrica_logs.main, "mtslink": mtslink_attendance.main}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(COMMANDS[sys.argv[1]](sys.argv[2:]))
