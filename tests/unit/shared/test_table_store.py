"""The table store's options and the decoded-state cache bound (shared/table_store.py)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from shared.table_store import DEFAULT_STATE_CACHE_ENTRIES, state_cache_entries, table_options, table_store


def test_rocksdb_gets_a_small_cache_per_database_and_memory_takes_no_options() -> None:
    options = table_options("rocksdb://")
    assert options is not None and options["driver"] == "rocksdict"
    # faust's own default is 2 GiB per database, one database per table and partition.
    assert options["block_cache_size"] == 8 * 2**20
    assert options["write_buffer_size"] * options["max_write_buffer_number"] == 8 * 2**20
    assert table_options("memory://") is None


def test_the_cache_bound_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BG_STATE_CACHE_ENTRIES", raising=False)
    assert state_cache_entries() == DEFAULT_STATE_CACHE_ENTRIES == 50_000
    monkeypatch.setenv("BG_STATE_CACHE_ENTRIES", "5000")
    assert state_cache_entries() == 5000
    for wrong in ("0", "many"):
        monkeypatch.setenv("BG_STATE_CACHE_ENTRIES", wrong)
        with pytest.raises(ValidationError, match="state_cache_entries"):
            state_cache_entries()


def test_a_store_faust_would_take_but_the_project_does_not_bound_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BG_TABLE_STORE", raising=False)
    assert table_store() == "memory://"
    monkeypatch.setenv("BG_TABLE_STORE", "rocksdb://")
    assert table_store() == "rocksdb://"
    monkeypatch.setenv("BG_TABLE_STORE", "aerospike://")  # faust has it; table_options would not bound it
    with pytest.raises(ValidationError, match="table_store"):
        table_store()
