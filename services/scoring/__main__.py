"""`python -m services.scoring`: run the scoring worker (LOG_LEVEL: crit|error|warn|info|debug)."""

import os
import sys

from shared.logs import configure_logging
from shared.runtime import tune_gc
from shared.settings import WorkerSettings


def main() -> None:
    configure_logging("scoring")
    from services.scoring.main import app

    level = os.environ.get("LOG_LEVEL", "info").lower()
    level = {"warning": "warn", "critical": "crit"}.get(level, level)
    # faust's worker command turns its web server on unless told otherwise, whatever the
    # app's web_enabled says; two workers on one host would then fight over the port.
    web = "--with-web" if WorkerSettings().faust_web else "--without-web"
    sys.argv = [sys.argv[0], "worker", "--loglevel", level, web]
    tune_gc()
    app.main()


if __name__ == "__main__":
    main()
