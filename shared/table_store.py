"""Where faust tables keep their state, and RocksDB's memory bound when they are on disk.

`BG_TABLE_STORE` (default `memory://`) picks faust's store for every table of grouping and
scoring. With `memory://` a table is a dict: resident memory grows with every person and
account the service has seen. With `rocksdb://` (the `rocksdict` driver) each table partition
is a RocksDB database under `BG_STATE_DIR`, rebuilt from its changelog after a restart on
another machine, and resident memory is what RocksDB caches plus the services' own bounded
decoded-state caches (issue 12: state of 1M persons and 100k accounts under 1 GiB per service).

faust's RocksDB defaults are sized for one large table on a dedicated machine: a 2 GiB block
cache, a 500 MiB compressed cache and three 64 MiB write buffers *per database*
(faust/stores/rocksdb.py, DEFAULT_*). A grouping worker opens one database per table and
partition (5 tables x 4 partitions here), so those defaults bound nothing. `table_options`
gives each database a small share instead; RocksDB reads the rest from the OS page cache.
(faust's rocksdict path has no compressed block cache, so that default costs nothing there.)
"""

from __future__ import annotations

from typing import Any

from shared.settings import WorkerSettings

MIB = 1024 * 1024

# Per table partition. 20 databases x (8 MiB cache + 2 x 4 MiB write buffers) = 320 MiB at
# most, reached only once every partition is hot; most of a market's keys are cold.
BLOCK_CACHE_BYTES = 8 * MIB
WRITE_BUFFER_BYTES = 4 * MIB
WRITE_BUFFERS = 2


# Decoded states kept in front of a table, per cache (grouping: identities, people, directory;
# accounts get 2/5 of it; scoring: one per partition). Measured (docs/benchmarks.md, "State on
# disk"): a decoded state costs grouping about 5 KiB of RSS, so with every cache full the
# default is about 0.8 GiB of decoded states in grouping, whatever the store.
DEFAULT_STATE_CACHE_ENTRIES: int = WorkerSettings.model_fields["state_cache_entries"].default


def state_cache_entries() -> int:
    """`BG_STATE_CACHE_ENTRIES`: the most decoded states per cache (default 50,000; at least 1).
    With `rocksdb://` this, not the market, bounds a worker's memory; a smaller cache decodes
    evicted keys again (CPU) instead. Raises pydantic's ValidationError, naming the variable,
    on a value that is not an integer of at least 1."""
    return WorkerSettings().state_cache_entries


def table_store() -> str:
    """The faust store URL from `BG_TABLE_STORE`: `memory://` (default) or `rocksdb://`.
    Raises pydantic's ValidationError on any other value."""
    return WorkerSettings().table_store


def table_options(store: str | None = None) -> dict[str, Any] | None:
    """faust `Table(options=...)` for the store: RocksDB's per-database memory bound (bytes)
    with the rocksdict driver, or None for `memory://` (which takes no options)."""
    if not (store or table_store()).startswith("rocksdb"):
        return None
    return {"driver": "rocksdict", "block_cache_size": BLOCK_CACHE_BYTES, "write_buffer_size": WRITE_BUFFER_BYTES,
            "max_write_buffer_number": WRITE_BUFFERS}
