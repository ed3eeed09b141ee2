"""The configuration reference (docs/configuration.md), generated from the code so it cannot drift.

    python -m shared.config_reference > docs/configuration.md

Three sources, each read from where the setting is defined:
- every pydantic-settings class of SETTINGS_MODULES: variable names (env_prefix + field, or the
  field's aliases), defaults and descriptions;
- the variables read directly from the environment (faust workers, command lines, config file
  paths), in ENVIRONMENT with their defaults and meaning; tests/unit/shared/test_config_reference.py
  fails when the code reads one that is not listed here;
- the ${VARIABLES} the shipped alerts file expands, and the variables that override it.
"""

from __future__ import annotations

import importlib
import inspect
import re
from collections.abc import Iterator
from typing import Any

import yaml
from pydantic import AliasChoices
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined
from pydantic_settings import BaseSettings

SETTINGS_MODULES = (
    "shared.settings", "shared.http", "shared.privacy.settings", "services.ingest.settings",
    "services.projection.settings",
    "services.crm.settings", "services.importers.metrica_logs", "services.importers.mtslink_attendance",
    "services.metrica_writeback.worker",
)

# Read with os.environ.get (or a Mapping defaulting to os.environ), not through pydantic-settings.
ENVIRONMENT: dict[str, tuple[str, str]] = {
    "BG_TOPIC_NAMESPACE": ("empty", "prefix of every topic and consumer group (tests use it to stay apart)"),
    "BG_GROUPING_SESSION_TIMEOUT": ("15", "grouping's consumer session timeout, seconds (every faust worker has 15 s "
                                    "unless faust's BROKER_SESSION_TIMEOUT says otherwise)"),
    "BG_CLOCK_TICK_SECONDS": ("5", "how often grouping writes a clock tick into the log when idle"),
    "BG_CLOCK_IDLE_SECONDS": ("30", "how long a partition must be idle before a tick moves its clock"),
    "BG_CLOCK_HISTORY_IDLE_SECONDS": ("300", "the same for a partition reading history (latest event time over an "
                                      "hour old): a paused backfill keeps its clock"),
    "BG_GROUPING_CONFIG_DIR": ("services/grouping/config", "directory of grouping's rule files"),
    "BG_SCORING_CONFIG": ("unset", "a YAML file overriding scoring's shipped weights"),
    "BG_ALERTS_CONFIG": ("services/scoring/config/alerts.yaml", "the alerts file (webhooks, routing, cooldowns)"),
    "PROJECTION_FUNNEL": ("services/projection/config/funnel.yaml", "the qualifying funnel's file"),
    "LOG_LEVEL": ("info", "log level of every service"),
    "BG_LANG": ("ru", "language of the offline importer's progress and report"),
    "INGEST_IMPORT_API_KEY": ("dev-api-key", "the offline importer's API key for ingest"),
}


def _grouping_files() -> dict[str, tuple[str, str]]:
    from services.grouping.config import FILES
    return {f"BG_GROUPING_{part.upper()}": ("in BG_GROUPING_CONFIG_DIR", f"path or URL of grouping's `{file}`")
            for part, file in FILES.items()}


def _alerts() -> dict[str, tuple[str, str]]:
    from services.scoring.alerts.config import DEFAULT_PATH, OVERRIDES
    found: dict[str, tuple[str, str]] = {}

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)
        elif isinstance(value, str):
            for name, has_default, default in re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(:-([^}]*))?\}", value):
                shown = (default or "empty") if has_default else "required"
                found[name] = (shown, "expanded in the shipped alerts file")

    walk(yaml.safe_load(DEFAULT_PATH.read_text(encoding="utf-8")))
    for name, key in OVERRIDES.items():
        found.setdefault(name, ("the file's", f"overrides the alerts file's `{key}`"))
    return found


def settings_classes() -> Iterator[type[BaseSettings]]:
    for module_name in SETTINGS_MODULES:
        module = importlib.import_module(module_name)
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, BaseSettings) and cls is not BaseSettings and cls.__module__ == module_name:
                yield cls


def env_names(cls: type[BaseSettings], name: str, field: FieldInfo) -> list[str]:
    """The variables a field is read from: its aliases if it has any, else env_prefix + name."""
    alias = field.validation_alias or field.alias
    if isinstance(alias, AliasChoices):
        return [c for c in alias.choices if isinstance(c, str)]
    if isinstance(alias, str):
        return [alias]
    return [(cls.model_config.get("env_prefix") or "").upper() + name.upper()]


def _default(field: FieldInfo) -> str:
    if field.default_factory is not None:
        return "computed"
    if field.default is PydanticUndefined:
        return "required"
    return "unset" if field.default is None else f"`{field.default}`"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render() -> str:
    """The whole reference as Markdown."""
    lines = ["# Configuration reference", "",
             "Generated by `python -m shared.config_reference > docs/configuration.md` from the settings",
             "classes and the code's own environment reads; a unit test fails when it is stale.", ""]
    for cls in settings_classes():
        lines += [f"## {cls.__name__} (`{cls.__module__}`)", ""]
        if doc := (cls.__doc__ or "").strip().split("\n\n")[0]:
            lines += [" ".join(doc.split()), ""]
        lines += ["| variable | default | meaning |", "|---|---|---|"]
        for name, field in cls.model_fields.items():
            names = ", ".join(f"`{n}`" for n in env_names(cls, name, field))
            lines.append(f"| {names} | {_cell(_default(field))} | {_cell(field.description or '')} |")
        lines.append("")
    for title, table in (("Read directly from the environment", ENVIRONMENT),
                         ("Grouping's rule files", _grouping_files()),
                         ("Alerts", _alerts())):
        lines += [f"## {title}", "", "| variable | default | meaning |", "|---|---|---|"]
        lines += [f"| `{n}` | {_cell(d)} | {_cell(m)} |" for n, (d, m) in sorted(table.items())]
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    print(render(), end="")
