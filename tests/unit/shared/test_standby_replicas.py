"""Standby table copies are off unless BG_TABLE_STANDBY_REPLICAS asks for them: with one kept
on each other worker, two workers cost 15 to 49% more CPU per event than one (docs/benchmarks.md,
"Two workers: CPU per event")."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from shared.streaming import make_app


@pytest.fixture(autouse=True)
def environment(tmp_path, monkeypatch):
    monkeypatch.setenv("BG_STATE_DIR", str(tmp_path))
    monkeypatch.delenv("BG_TABLE_STANDBY_REPLICAS", raising=False)
    monkeypatch.delenv("TABLE_STANDBY_REPLICAS", raising=False)  # faust's own, which would override


def test_a_worker_keeps_no_standby_copies_by_default() -> None:
    app = make_app("standby-default")
    assert app.conf.table_standby_replicas == 0
    assert app.assignor.replicas == 0  # what faust's assignor hands out


def test_standby_copies_come_from_the_environment(monkeypatch) -> None:
    monkeypatch.setenv("BG_TABLE_STANDBY_REPLICAS", "1")
    assert make_app("standby-one").assignor.replicas == 1


def test_a_negative_count_is_refused_naming_the_variable(monkeypatch) -> None:
    monkeypatch.setenv("BG_TABLE_STANDBY_REPLICAS", "-1")
    with pytest.raises(ValidationError, match="table_standby_replicas"):
        make_app("standby-negative")
