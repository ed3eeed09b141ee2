"""`python -m services.scoring`: run the scoring worker (LOG_LEVEL: crit|error|warn|info|debug)."""

import os
import sys

from shared.logs import configure_logging


def main() -> None:
    configure_logging("scoring")
    from services.scoring.main import app

    level = os.environ.get("LOG_LEVEL", "info").lower()
    sys.argv = [sys.argv[0], "worker", "--loglevel", {"warning": "warn", "critical": "crit"}.get(level, level)]
    app.main()


if __name__ == "__main__":
    main()
