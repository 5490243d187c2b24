"""The result store: every finished run, persisted the moment it finishes, in one SQLite file.

Why SQLite: it is in the standard library (no new dependency), one file, and the runs of a
group (a vectorised group, or one per-run run: `bench.run.engines`) are committed in one
transaction, so a kill at any moment leaves either the whole group or none of it
(the rollback journal is replayed on the next open); concurrent writers are serialised by
SQLite's own locking; and anyone can query it with `sqlite3`, `pandas.read_sql` or DuckDB's
sqlite scanner. One Parquet file per run would need pyarrow and a directory of small files, and
gives no transactions across the rows of a run.

Tables (floats are stored exactly as IEEE doubles; NaN is stored as NULL, as SQL expects):
- `runs`: one row per run: `key` (see `bench.store.keys`), `spec` (the RunSpec as JSON, enough to
  rebuild it), `code_version`, `stored_utc`, then one column per key of the run's summary
  (the columns of runs.csv: `run_id, problem, method, ..., final_train_loss, status, ...`).
- `epochs`: one row per run and epoch: `key`, then the columns of epochs.csv.
- `manifest`: the runs of the folder's latest output, in order: `position, key, phase, label`
  (phase and label are the sweep's; empty for `run`). Join it to `runs` for "what the report
  shows".
- `meta`: `name, value` pairs: `kind` (run / sweep), `command`, `config` (JSON).

Columns are added as new summary or row keys appear (a new metric never needs a migration).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from bench.run.engines import PER_RUN, engine_of
from bench.run.runner import RunResult
from bench.run.spec import RunSpec
from bench.store.keys import code_version, run_key, spec_from_dict, spec_to_dict

FILENAME = "store.sqlite"
_FIXED = {
    "runs": "key TEXT PRIMARY KEY, spec TEXT NOT NULL, code_version TEXT, stored_utc TEXT",
    "epochs": "key TEXT NOT NULL",
    "manifest": "position INTEGER PRIMARY KEY, key TEXT NOT NULL, phase TEXT, label TEXT",
    "meta": "name TEXT PRIMARY KEY, value TEXT",
}


# Values SQLite binds as they are. An epoch row is mostly these; checking each value's type in
# one C-level pass and converting only a batch that needs it halves `put` (1.25 -> 0.6 ms per
# run in memory, measured), where a `_plain` call per value was three quarters of its time.
_BINDABLE = frozenset({float, int, str, bool, bytes, type(None)})


def _plain(value: Any) -> Any:
    """A value SQLite can bind: numpy scalars as Python ones, containers as JSON text."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, list | tuple | dict):
        return json.dumps(value)
    return value


def _decl(value: Any) -> str:
    if isinstance(value, bool | np.bool_):  # SQLite keeps 0/1; the declared type restores bool
        return "BOOLEAN"
    if isinstance(value, int):
        return "INTEGER"
    if isinstance(value, float):
        return "REAL"
    if isinstance(value, str):
        return "TEXT"
    return ""  # None (e.g. diverged_epoch of a run that converged): any type later


class Store:
    """A SQLite result store at `path` (":memory:" for a throwaway one)."""

    def __init__(self, path: Path | str) -> None:
        self.path = path
        self._db = sqlite3.connect(str(path), timeout=60, isolation_level=None)
        self._db.execute("PRAGMA busy_timeout = 60000")
        with self._transaction():
            for table, columns in _FIXED.items():
                self._db.execute(f"CREATE TABLE IF NOT EXISTS {table} ({columns})")
            self._db.execute("CREATE INDEX IF NOT EXISTS epochs_key ON epochs (key)")
        self._columns: dict[str, dict[str, str]] = {}

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        """BEGIN IMMEDIATE ... COMMIT: takes the write lock up front, rolls back on any error
        (a KeyboardInterrupt included), so a run is stored whole or not at all."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            if self._db.in_transaction:  # SQLite has rolled back itself on some errors (full)
                self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def _table_columns(self, table: str, refresh: bool = False) -> dict[str, str]:
        """The table's columns and declared types (cached; `refresh` reads them again)."""
        if refresh or table not in self._columns:
            info = self._db.execute(f'PRAGMA table_info("{table}")').fetchall()
            self._columns[table] = {row[1]: row[2] for row in info}
        return self._columns[table]

    def _ensure_columns(self, table: str, record: Mapping[str, Any]) -> None:
        """Adds the record's new columns. Called inside a write transaction: a name missing
        from the cache is looked up again first (another writer may have added it since)."""
        if self._table_columns(table).keys() >= record.keys():
            return
        have = self._table_columns(table, refresh=True)
        for name, value in record.items():
            if name not in have:
                decl = _decl(value)
                self._db.execute(f'ALTER TABLE "{table}" ADD COLUMN "{name}" {decl}')
                have[name] = decl

    def _insert(self, table: str, records: Sequence[Mapping[str, Any]], replace: bool) -> None:
        """The records as rows of the first record's columns (a key another lacks: NULL)."""
        names = list(records[0])
        cols = ", ".join(f'"{n}"' for n in names)
        marks = ", ".join("?" * len(names))
        verb = "INSERT OR REPLACE" if replace else "INSERT"
        values = [[r.get(n) for n in names] for r in records]
        if not _BINDABLE.issuperset(map(type, itertools.chain.from_iterable(values))):
            values = [[_plain(v) for v in row] for row in values]
        self._db.executemany(f'{verb} INTO "{table}" ({cols}) VALUES ({marks})', values)

    # ------------------------------------------------------------------------------------------
    # Runs

    def put(self, result: RunResult) -> str:
        """Persist one finished run (its summary and every epoch row) in one transaction;
        a run already stored under the same key is replaced. Returns the key."""
        return self.put_many([result])[0]

    def put_many(self, results: Sequence[RunResult]) -> list[str]:
        """Persist finished runs (a group's) in one transaction: all of them or none. Each is
        keyed by its spec and the engine its summary names (`engine`; per-run if none)."""
        stored_utc = datetime.now(timezone.utc).isoformat(timespec="seconds")
        keys = []
        with self._transaction():
            for result in results:
                key = run_key(result.spec, result.summary.get("engine", PER_RUN))
                run = {
                    "key": key,
                    "spec": json.dumps(spec_to_dict(result.spec)),
                    "code_version": code_version(),
                    "stored_utc": stored_utc,
                    **result.summary,
                }
                rows = [{"key": key, **row} for row in result.rows]
                self._ensure_columns("runs", run)
                self._ensure_columns("epochs", rows[0])
                self._db.execute("DELETE FROM epochs WHERE key = ?", (key,))
                self._insert("runs", [run], replace=True)
                self._insert("epochs", rows, replace=False)
                keys.append(key)
        return keys

    def keys(self) -> set[str]:
        return {k for (k,) in self._db.execute("SELECT key FROM runs")}

    def __len__(self) -> int:
        return self._db.execute("SELECT count(*) FROM runs").fetchone()[0]

    def count(self, specs: Iterable[RunSpec], engine: str = PER_RUN) -> int:
        """How many of `specs` (distinct) are stored, as `engine` computes them."""
        return len({run_key(s, engine_of(s, engine)) for s in specs} & self.keys())

    def _records(self, table: str, keys: Sequence[str], order: str) -> dict[str, list[dict]]:
        """The records of `keys`, grouped by key; REAL columns' NULLs read back as NaN,
        BOOLEAN columns' 0/1 as False/True."""
        declared = self._table_columns(table, refresh=True)  # another writer may have added some
        real = {n for n, d in declared.items() if d == "REAL"}
        boolean = {n for n, d in declared.items() if d == "BOOLEAN"}
        out: dict[str, list[dict]] = {k: [] for k in keys}
        for i in range(0, len(keys), 500):  # SQLite's limit on bound parameters
            chunk = keys[i : i + 500]
            cursor = self._db.execute(
                f'SELECT * FROM "{table}" WHERE key IN ({", ".join("?" * len(chunk))}) {order}',
                chunk,
            )
            names = [d[0] for d in cursor.description]
            for values in cursor:
                record = {
                    n: (math.nan if v is None and n in real else v)
                    for n, v in zip(names, values, strict=True)
                }
                for n in boolean & record.keys():
                    if record[n] is not None:
                        record[n] = bool(record[n])
                out[record.pop("key")].append(record)
        return out

    def load_keys(self, keys: Sequence[str], specs: Sequence[RunSpec] | None = None) -> list:
        """The stored results of `keys`, in that order (KeyError naming a missing one). The
        specs are rebuilt from the store unless given."""
        distinct = list(dict.fromkeys(keys))
        runs = self._records("runs", distinct, "")
        rows = self._records("epochs", distinct, "ORDER BY key, epoch")
        out = []
        for i, key in enumerate(keys):
            if not runs[key]:
                raise KeyError(key)
            summary = dict(runs[key][0])
            spec_json = summary.pop("spec")
            summary.pop("code_version"), summary.pop("stored_utc")
            spec = specs[i] if specs is not None else spec_from_dict(json.loads(spec_json))
            out.append(RunResult(spec, rows[key], summary))
        return out

    def load(self, specs: Sequence[RunSpec], engine: str = PER_RUN) -> list[RunResult]:
        """The stored results of `specs` as `engine` computes them, in their order; every one
        must be stored."""
        return self.load_keys([run_key(s, engine_of(s, engine)) for s in specs], specs)

    # ------------------------------------------------------------------------------------------
    # What the folder's latest output shows

    def set_manifest(self, entries: Sequence[tuple[str, str, str]], **meta: Any) -> None:
        """Replace the manifest with (key, phase, label) entries, and set meta values."""
        with self._transaction():
            self._db.execute("DELETE FROM manifest")
            self._db.executemany(
                "INSERT INTO manifest (position, key, phase, label) VALUES (?, ?, ?, ?)",
                [(i, *e) for i, e in enumerate(entries)],
            )
            self._db.executemany(
                "INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)",
                [(k, json.dumps(v)) for k, v in meta.items()],
            )

    def manifest(self) -> list[tuple[str, str, str]]:
        return list(self._db.execute("SELECT key, phase, label FROM manifest ORDER BY position"))

    def meta(self) -> dict[str, Any]:
        return {k: json.loads(v) for k, v in self._db.execute("SELECT name, value FROM meta")}
