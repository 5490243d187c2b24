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
- `meta`: `name, value` pairs: `kind` (run / sweep), `command`, `config` (JSON), `cost` (how
  the cost measurement was made).
- `costs`: the latest output's cost measurement, one row per workload and round
  (`bench.run.cost`; the columns of costs.csv).

Columns are added as new summary or row keys appear (a new metric never needs a migration).

The store trusts nothing on disk: before SQLite opens it, the file must be a regular file (not a
symlink, no other hard links) that optbench made: SQLite's header with optbench's
`application_id` (set when the store is created), or a store of an optbench from before the id
(only optbench's tables); an empty file is a store being created. Anything else (a user's
database, random bytes, a file cut short) is a ConfigError naming the file, so optbench's
tables never land in someone else's database.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import os
import sqlite3
import stat
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from bench.errors import ConfigError
from bench.run.engines import PER_RUN, engine_of
from bench.run.runner import RunResult
from bench.run.spec import RunSpec
from bench.store.keys import code_version, run_key, spec_from_dict, spec_to_dict

FILENAME = "store.sqlite"
APPLICATION_ID = int.from_bytes(b"optb", "big")  # SQLite's header field for the file's owner
_SQLITE_MAGIC = b"SQLite format 3\0"
_SIDECARS = ("-journal", "-wal", "-shm")  # files SQLite opens next to the database
_REQUIRED = {  # the columns optbench reads from each table
    "runs": {"key", "spec"},
    "epochs": {"key"},
    "manifest": {"position", "key", "phase", "label"},
    "meta": {"name", "value"},
}
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


_MOVE_AWAY = "move it away (the runs it held are then computed again)"


def _check_file(path: Path, create: bool = True) -> int | None:
    """Refuse anything at `path` but a store optbench made (module docstring); create it if
    absent (and `create`). Returns the header's application_id, None for a new or empty file."""
    if not create and not os.path.lexists(path):
        return None
    try:
        if create:
            os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644))
            return None
    except FileExistsError:
        pass
    except OSError as exc:
        raise ConfigError(f"cannot create the result store {path}: {exc.strerror}") from None
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode):
        raise ConfigError(
            f"{path} is a symlink; optbench keeps its results in a regular file it made and "
            f"never writes through a link: {_MOVE_AWAY}"
        )
    if not stat.S_ISREG(st.st_mode) or st.st_nlink > 1:
        raise ConfigError(
            f"{path} is not a result store optbench made (not a regular file, or it has other "
            f"hard links): {_MOVE_AWAY}"
        )
    for suffix in _SIDECARS:
        side = Path(f"{path}{suffix}")
        if os.path.lexists(side):
            sst = os.lstat(side)
            if not stat.S_ISREG(sst.st_mode) or sst.st_nlink > 1:
                raise ConfigError(
                    f"{side} is not a regular file (a symlink?); SQLite would write through "
                    "it: move it away"
                )
    if st.st_size == 0:
        return None  # created by an optbench that has not committed its first transaction yet
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    try:
        header = os.read(fd, 100)
    finally:
        os.close(fd)
    if len(header) < 100 or not header.startswith(_SQLITE_MAGIC):
        raise ConfigError(
            f"{path} is not a result store (not an SQLite database: damaged or someone "
            f"else's file): {_MOVE_AWAY}"
        )
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    pages = int.from_bytes(header[28:32], "big")
    if header[92:96] == header[24:28] and st.st_size < pages * page_size:  # size is valid
        raise ConfigError(
            f"{path} is damaged: cut short at {st.st_size} of its {pages * page_size} bytes; "
            f"{_MOVE_AWAY}"
        )
    application = int.from_bytes(header[68:72], "big")
    if application not in (0, APPLICATION_ID):
        raise ConfigError(
            f"{path} is an SQLite database of another application (application_id "
            f"{application:#x}), not optbench's result store: {_MOVE_AWAY}"
        )
    return application


def _check_tables(db: sqlite3.Connection, application: int | None, path: Path | str) -> None:
    """ConfigError unless the tables are optbench's: another application's tables in a file
    without optbench's id, or one of optbench's tables without the columns it reads."""
    tables = {
        name: {row[1] for row in db.execute(f'PRAGMA table_info("{name}")')}
        for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
    }
    foreign = sorted(set(tables) - set(_FIXED))
    if application == 0 and (foreign or "runs" not in tables):  # 0: not ours, or older
        raise ConfigError(
            f"{path} is an SQLite database optbench did not make (tables: "
            f"{', '.join(sorted(tables))}); {_MOVE_AWAY}"
        )
    for table in _FIXED:
        missing = _REQUIRED[table] - tables.get(table, _REQUIRED[table])
        if missing:
            raise ConfigError(
                f"{path} is damaged: its {table} table lacks {', '.join(sorted(missing))}; "
                f"{_MOVE_AWAY}"
            )


class Store:
    """A SQLite result store at `path` (":memory:" for a throwaway one); a file that is not
    an optbench store is a ConfigError (module docstring)."""

    def __init__(self, path: Path | str) -> None:
        self.path = path
        application = None if path == ":memory:" else _check_file(Path(path))
        self._db = sqlite3.connect(str(path), timeout=60, isolation_level=None)
        try:
            self._db.execute("PRAGMA busy_timeout = 60000")
            self._init(application)
        except sqlite3.DatabaseError as exc:
            self._db.close()
            if isinstance(exc, sqlite3.OperationalError):  # busy, full, I/O: not the file's fault
                raise
            raise ConfigError(f"{path} is damaged ({exc}); {_MOVE_AWAY}") from None
        except BaseException:
            self._db.close()
            raise
        self._columns: dict[str, dict[str, str]] = {}

    @staticmethod
    def verify(path: Path) -> None:
        """The checks of opening the store at `path`, writing nothing: a ConfigError for a file
        that is not an optbench store (none for a missing one). For checking an output
        folder's store before the folder is touched."""
        application = _check_file(path, create=False)
        if application is None:
            return
        uri = f"{Path(path).absolute().as_uri()}?mode=ro"
        try:
            with contextlib.closing(sqlite3.connect(uri, uri=True)) as db:
                _check_tables(db, application, path)
        except sqlite3.OperationalError:  # e.g. a hot journal to roll back: opening will tell
            return
        except sqlite3.DatabaseError as exc:
            raise ConfigError(f"{path} is damaged ({exc}); {_MOVE_AWAY}") from None

    def _init(self, application: int | None) -> None:
        """Create the tables in a new store; check an existing one's tables are optbench's."""
        with self._transaction():
            _check_tables(self._db, application, self.path)
            for table, columns in _FIXED.items():
                self._db.execute(f"CREATE TABLE IF NOT EXISTS {table} ({columns})")
            self._db.execute("CREATE INDEX IF NOT EXISTS epochs_key ON epochs (key)")
            if application != APPLICATION_ID and self.path != ":memory:":
                self._db.execute(f"PRAGMA application_id = {APPLICATION_ID}")

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

    def put(self, result: RunResult, key: str | None = None) -> str:
        """Persist one finished run (its summary and every epoch row) in one transaction;
        a run already stored under the same key is replaced. Returns the key (`key`: the
        run's key, when the caller has it already)."""
        return self.put_many([result], None if key is None else [key])[0]

    def put_many(
        self, results: Sequence[RunResult], keys: Sequence[str] | None = None
    ) -> list[str]:
        """Persist finished runs (a group's) in one transaction: all of them or none. Each is
        keyed by `keys`, or by its spec and the engine its summary names (`engine`; per-run
        if none)."""
        stored_utc = datetime.now(timezone.utc).isoformat(timespec="seconds")
        out = []
        with self._transaction():
            for i, result in enumerate(results):
                key = keys[i] if keys is not None else None
                key = key or run_key(result.spec, result.summary.get("engine", PER_RUN))
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
                out.append(key)
        return out

    def copy_from(self, other: Store, keys: Sequence[str]) -> None:
        """Copy the runs of `keys` from `other` exactly as stored there (values, declared
        column types, stored time), in one transaction; a run already here is replaced."""
        keys = list(dict.fromkeys(keys))
        if not keys:
            return
        with self._transaction():
            for table in ("runs", "epochs"):
                have = self._table_columns(table, refresh=True)
                for name, decl in other._table_columns(table, refresh=True).items():
                    if name not in have:
                        self._db.execute(f'ALTER TABLE "{table}" ADD COLUMN "{name}" {decl}')
                        have[name] = decl
            for i in range(0, len(keys), 500):  # SQLite's limit on bound parameters
                chunk = keys[i : i + 500]
                marks = ", ".join("?" * len(chunk))
                self._db.execute(f"DELETE FROM epochs WHERE key IN ({marks})", chunk)
                for table in ("runs", "epochs"):
                    cursor = other._db.execute(
                        f'SELECT * FROM "{table}" WHERE key IN ({marks})', chunk
                    )
                    names = ", ".join(f'"{d[0]}"' for d in cursor.description)
                    values = ", ".join("?" * len(cursor.description))
                    verb = "INSERT OR REPLACE" if table == "runs" else "INSERT"
                    self._db.executemany(
                        f'{verb} INTO "{table}" ({names}) VALUES ({values})', cursor
                    )

    def keys(self) -> set[str]:
        return {k for (k,) in self._db.execute("SELECT key FROM runs")}

    def reusable_keys(self) -> set[str]:
        """Keys of stored runs a command may reuse: all but those stopped by a timeout (a
        later command, perhaps with more time, computes them again)."""
        if "status" not in self._table_columns("runs", refresh=True):
            return self.keys()  # no run stored yet (columns come with the first run)
        rows = self._db.execute("SELECT key FROM runs WHERE status IS NOT 'timeout'")
        return {k for (k,) in rows}

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

    def _check_types(self, keys: Sequence[str]) -> None:
        """ConfigError if a number column of these runs holds text (a hand-edited store): one
        query per table and 500 runs, in SQLite, before anything is read into Python."""
        for table in ("runs", "epochs"):
            typed = [
                n for n, d in self._table_columns(table, refresh=True).items()
                if d in ("REAL", "INTEGER", "BOOLEAN")
            ]  # fmt: skip
            if not typed:
                continue
            text = " OR ".join(f"typeof(\"{n}\") = 'text'" for n in typed)
            for i in range(0, len(keys), 500):
                chunk = keys[i : i + 500]
                marks = ", ".join("?" * len(chunk))
                found = self._db.execute(
                    f'SELECT key FROM "{table}" WHERE key IN ({marks}) AND ({text}) LIMIT 1', chunk
                ).fetchone()
                if found:
                    raise ConfigError(
                        f"{self.path} is damaged: run {found[0]} has text in a number column "
                        f"of its {table} rows"
                    )

    def load_keys(self, keys: Sequence[str], specs: Sequence[RunSpec] | None = None) -> list:
        """The stored results of `keys`, in that order (KeyError naming a missing one). The
        specs are rebuilt from the store; given `specs`, each stored one must equal its own."""
        distinct = list(dict.fromkeys(keys))
        self._check_types(distinct)
        runs = self._records("runs", distinct, "")
        rows = self._records("epochs", distinct, "ORDER BY key, epoch")
        out = []
        for i, key in enumerate(keys):
            if not runs[key]:
                raise KeyError(key)
            summary = dict(runs[key][0])
            spec_json = summary.pop("spec")
            summary.pop("code_version"), summary.pop("stored_utc")
            spec = self._spec(key, spec_json)  # checked even when given: nothing trusted
            if specs is not None and spec != specs[i]:
                raise ConfigError(
                    f"{self.path} is damaged: run {key} holds the spec of another run (edited?)"
                )
            out.append(RunResult(specs[i] if specs is not None else spec, rows[key], summary))
        return out

    def _spec(self, key: str, text: Any) -> RunSpec:
        """A stored spec, rebuilt; ConfigError if it is not what `put` wrote (edited, cut)."""
        try:
            return spec_from_dict(json.loads(text))
        except (KeyError, TypeError, ValueError, AttributeError, RecursionError) as exc:
            what = f"{type(exc).__name__}: {exc}".splitlines()[0]
            raise ConfigError(
                f"{self.path} is damaged: run {key} has no valid spec ({what})"
            ) from None

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

    def set_costs(self, rows: Sequence[Mapping[str, Any]], **meta: Any) -> None:
        """Replace the cost measurement (`bench.run.cost`: one row per workload and round) of
        the folder's latest output, and record how it was made in `meta` (`cost`)."""
        with self._transaction():
            self._db.execute('DROP TABLE IF EXISTS "costs"')
            self._db.execute('CREATE TABLE "costs" (key TEXT)')
            self._columns.pop("costs", None)
            if rows:
                self._ensure_columns("costs", rows[0])
                self._insert("costs", list(rows), replace=False)
            self._db.execute(
                "INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)",
                ("cost", json.dumps(meta)),
            )

    def costs(self) -> list[dict[str, Any]]:
        """The latest cost measurement's rows (none if the output measured none)."""
        exists = self._db.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'costs'"
        ).fetchone()
        if not exists:
            return []
        cursor = self._db.execute('SELECT * FROM "costs"')
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, values, strict=True)) for values in cursor]

    def manifest(self) -> list[tuple[str, str, str]]:
        return list(self._db.execute("SELECT key, phase, label FROM manifest ORDER BY position"))

    def meta(self) -> dict[str, Any]:
        out = {}
        for name, value in self._db.execute("SELECT name, value FROM meta"):
            try:
                out[name] = json.loads(value)
            except (TypeError, ValueError, RecursionError):
                raise ConfigError(
                    f"{self.path} is damaged: its meta value {name!r} is not JSON"
                ) from None
        return out
