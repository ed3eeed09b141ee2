"""docs/configuration.md is the code's configuration, whole and current (issue 20)."""

from __future__ import annotations

import re
from pathlib import Path

from shared import config_reference

ROOT = Path(__file__).parents[3]
CODE = [p for d in ("services", "shared") for p in (ROOT / d).rglob("*.py")]
# os.environ.get("X"), os.environ["X"], os.getenv("X"), env.get("X") on a Mapping defaulting
# to os.environ, and the ENV_PATH = "X" constants passed to them.
READ = re.compile(r"""(?:environ|env)(?:\.get\(|\[)\s*["']([A-Z][A-Z0-9_]+)["']|getenv\(\s*["']([A-Z][A-Z0-9_]+)["']"""
                  r"""|^ENV_PATH\s*=\s*["']([A-Z][A-Z0-9_]+)["']""", re.MULTILINE)


def test_the_reference_in_docs_is_the_generated_one():
    written = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    assert written == config_reference.render(), \
        "docs/configuration.md is stale: python -m shared.config_reference > docs/configuration.md"


def test_every_variable_the_code_reads_is_in_the_reference():
    read = {name for path in CODE for match in READ.finditer(path.read_text(encoding="utf-8"))
            for name in match.groups() if name}
    assert {"BG_TOPIC_NAMESPACE", "BG_CLOCK_TICK_SECONDS", "BG_ALERTS_CONFIG", "LOG_LEVEL"} <= read  # the scan works
    reference = config_reference.render()
    assert sorted(n for n in read if f"`{n}`" not in reference) == []


def test_every_settings_class_is_in_the_reference():
    declaring = {".".join(p.relative_to(ROOT).with_suffix("").parts) for p in CODE
                 if re.search(r"^class \w+\((?:\w+, )*BaseSettings\)", p.read_text(encoding="utf-8"), re.MULTILINE)}
    assert declaring == set(config_reference.SETTINGS_MODULES)
    reference = config_reference.render()
    for cls in config_reference.settings_classes():
        for name, field in cls.model_fields.items():
            assert all(f"`{n}`" in reference for n in config_reference.env_names(cls, name, field))
