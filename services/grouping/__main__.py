"""`python -m services.grouping`: run the grouping worker until SIGTERM or SIGINT."""

from __future__ import annotations

import logging
import os

import faust

from shared.logs import configure_logging
from shared.runtime import tune_gc


def main() -> None:
    configure_logging("grouping")
    from services.grouping.main import config, grouping

    app = grouping.app
    logging.getLogger("services.grouping").info(
        "grouping worker starting",
        extra={
            "app_id": app.conf.id,
            "broker": str(app.conf.broker),
            "input": grouping.person_events.get_topic_name(),
            "output": grouping.topics["opportunities"].get_topic_name(),
            "dead_letters": grouping.dlq.topic.get_topic_name(),
            "table_store": str(app.conf.store),
            "config": dict(config.sources),
            "solutions": list(config.people.catalog.slugs()),
            "title_rules": len(config.people.roles.titles),
            "abm_accounts": len(config.people.accounts.abm),
        },
    )
    tune_gc()
    # faust's own logging setup would replace the JSON handler configure_logging installed.
    worker = faust.Worker(app, loglevel=os.environ.get("LOG_LEVEL", "info").lower(), override_logging=False)
    worker.execute_from_commandline()


if __name__ == "__main__":
    main()
