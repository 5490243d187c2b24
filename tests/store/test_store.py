"""The result store: exact round trips, content-hash keys, reuse, atomic runs."""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import sqlite3
import subprocess
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench.analysis.tables import tables
from bench.errors import ConfigError
from bench.run.executors import run_all
from bench.run.runner import RunResult, run
from bench.run.spec import RunSpec
from bench.schema import freeze_hparams
from bench.store import CachedRuns, Store, keys, run_key


def spec(**kw) -> RunSpec:
    base = dict(dataset="crops5", method="adam", hparams=freeze_hparams({"lr": 0.1}), epochs=3)
    return RunSpec(**{**base, **kw})


@pytest.fixture(scope="module")
def results() -> list[RunResult]:
    specs = [spec(), spec(seed=1), spec(method="gd", hparams=freeze_hparams({"lr": 1e39}))]
    return run_all(specs)


def test_a_run_reads_back_exactly(results, tmp_path):
    with Store(tmp_path / "s.sqlite") as store:
        for r in results:
            store.put(r)
    with Store(tmp_path / "s.sqlite") as store:  # a fresh connection: nothing cached
        back = store.load_keys([run_key(r.spec) for r in results])
    for a, b in zip(results, back, strict=True):
        assert b.spec == a.spec  # rebuilt from the stored JSON
        assert b.summary.keys() == a.summary.keys()
        for x, y in [*zip(a.rows, b.rows, strict=True), (a.summary, b.summary)]:
            for k, v in x.items():
                if isinstance(v, float) and math.isnan(v):
                    assert math.isnan(y[k]), k
                else:
                    assert y[k] == v, k  # floats bitwise
                    # an int in a REAL column (sum([]) == 0 of a run without epochs) reads 0.0
                    assert type(y[k]) is type(v) or type(v) is int, k
    assert back[2].summary["status"] == "diverged"
    pd.testing.assert_frame_equal(tables(back)[0], tables(results)[0])


def test_the_store_is_plain_sql(results, tmp_path):
    path = tmp_path / "s.sqlite"
    with Store(path) as store:
        store.put(results[0])
    db = sqlite3.connect(path)
    (n,) = db.execute("SELECT count(*) FROM epochs WHERE method = 'adam'").fetchone()
    assert n == 4  # epochs 0..3
    frame = pd.read_sql("SELECT method, seed, final_train_loss FROM runs", db)
    assert frame["final_train_loss"].iloc[0] == results[0].summary["final_train_loss"]


def _with(result: RunResult, seed: int, **extra) -> RunResult:
    """The result as another seed's run, its summary and every epoch row carrying `extra`."""
    rows = [{**row, **extra} for row in result.rows]
    return RunResult(replace(result.spec, seed=seed), rows, {**result.summary, **extra})


def test_columns_another_writer_added_are_seen_and_odd_values_stored(results, tmp_path):
    """Two connections to one file: a column the other one added is reused, not added twice
    (the column cache is refreshed on a miss); numpy scalars and rows missing a key store
    as plain values and NULL."""
    path = tmp_path / "s.sqlite"
    with Store(path) as a, Store(path) as b:
        a.put(results[0])  # a caches the columns
        b.put(_with(results[0], 11, new_metric=1.5))  # b adds one
        a.put(_with(results[0], 12, new_metric=np.float32(2.5), flag=np.bool_(True)))
        odd = _with(results[0], 13)
        odd.rows[-1].pop("train_loss")  # a row without a column the first row has
        a.put(odd)
        back = a.load_keys(
            [run_key(r.spec) for r in (results[0], odd)]
            + [run_key(replace(results[0].spec, seed=s)) for s in (11, 12)]
        )
    metric = [r.summary["new_metric"] for r in back]
    assert math.isnan(metric[0])
    assert math.isnan(metric[1])
    assert metric[2:] == [1.5, 2.5]
    assert back[3].summary["flag"] is True
    assert back[3].rows[0]["new_metric"] == 2.5
    assert math.isnan(back[1].rows[-1]["train_loss"])  # NULL in a REAL column reads NaN
    assert back[1].rows[0]["train_loss"] == odd.rows[0]["train_loss"]


def test_the_key_changes_with_what_changes_the_numbers(monkeypatch, tmp_path):
    s = spec()
    assert run_key(s) == run_key(spec())
    assert run_key(s) != run_key(spec(seed=1))
    assert run_key(s) != run_key(spec(problem="renamed"))  # the rows carry the name
    monkeypatch.setattr(keys, "code_version", lambda: "another version")
    other = run_key(s)
    monkeypatch.undo()
    assert other != run_key(s)
    csv = tmp_path / "t.csv"
    csv.write_text("x,y\n1,2\n2,3\n3,5\n4,4\n")
    a = run_key(spec(dataset=str(csv), targets=("y",), method="gd"))
    csv.write_text("x,y\n1,2\n2,3\n3,5\n4,9\n")
    assert a != run_key(spec(dataset=str(csv), targets=("y",), method="gd"))


class Counting:
    def __init__(self) -> None:
        self.ran: list[RunSpec] = []

    def map(self, fn, groups):  # run_all's tasks: groups of specs (bench.run.engines.plan)
        for group in groups:
            self.ran.extend(group.specs)
            yield fn(group)


def test_stored_runs_are_reused_and_fresh_recomputes_once(tmp_path):
    specs = [spec(), spec(seed=1)]
    messages: list[str] = []
    with Store(tmp_path / "s.sqlite") as store:
        ex = Counting()
        first = CachedRuns(store, ex, say=messages.append).results(specs[:1])
        again = CachedRuns(store, ex, say=messages.append).results([*specs, specs[0]])
        assert ex.ran == specs  # the stored one was not run again, the duplicate once
        assert messages == [f"optbench: 1 of 2 runs reused from {store.path}; computing 1"]
        assert again[0].rows == first[0].rows == again[2].rows
        fresh = CachedRuns(store, ex, fresh=True)
        fresh.results(specs)
        fresh.results(specs)  # a later phase of the same invocation reuses what it computed
        assert ex.ran == specs + specs


def test_a_run_is_stored_whole_or_not_at_all(results, tmp_path):
    broken = RunResult(results[0].spec, [*results[0].rows[:-1], {"epoch": object()}])
    with Store(tmp_path / "s.sqlite") as store:
        with pytest.raises(sqlite3.Error):
            store.put(replace(broken, summary=results[0].summary))
        assert len(store) == 0
        assert store._db.execute("SELECT count(*) FROM epochs").fetchone() == (0,)


def test_a_fresh_run_equals_a_stored_one_bitwise(results, tmp_path):
    with Store(tmp_path / "s.sqlite") as store:
        store.put(results[0])
        again = run(results[0].spec)
        stored = store.load([results[0].spec])[0]
    losses = ["train_loss", "holdout_loss", "init_hash", "status"]
    a, b = tables([again])[0][losses], tables([stored])[0][losses]
    pd.testing.assert_frame_equal(a, b, check_exact=True)


def test_the_readme_query_example_runs(tmp_path, monkeypatch, capsys):
    """The README's pandas and sqlite3 examples, run against a real output folder's store."""
    from bench import cli

    text = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = text[text.index("**Querying it.**") :]
    python = section.split("```python\n", 1)[1].split("```", 1)[0]
    shell = section.split("```bash\n", 1)[1].split("```", 1)[0].split("duckdb", 1)[0]
    monkeypatch.chdir(tmp_path)
    argv = ["run", "--datasets", "crops5", "--methods", "gd,adam", "--epochs", "2", "--seeds", "0"]
    assert cli.main([*argv, "--no-parity"]) == 0  # default --out: results/latest
    capsys.readouterr()
    exec(python, {})  # the README's own code
    printed = capsys.readouterr().out
    assert "crops5" in printed
    assert "adam" in printed
    assert "gd" in printed
    if shutil.which("sqlite3") is None:
        pytest.skip("the sqlite3 shell is not installed (the pandas example ran)")
    out = subprocess.run(["bash", "-c", shell], capture_output=True, text=True, check=True)
    assert sorted(line.split("|")[0] for line in out.stdout.split()) == ["adam", "gd"]


# ---------------------------------------------------------------------------------------------
# The store trusts nothing on disk (issue 18)


def _user_db(path: Path) -> Path:
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE contacts (name TEXT)")
    db.execute("INSERT INTO contacts VALUES ('ada')")
    db.commit()
    db.close()
    return path


def _tables(path: Path) -> list[str]:
    with contextlib.closing(sqlite3.connect(path)) as db:
        return sorted(r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'"))


def test_a_new_store_carries_optbenchs_application_id(tmp_path):
    with Store(tmp_path / "s.sqlite"):
        pass
    assert (tmp_path / "s.sqlite").read_bytes()[68:72] == b"optb"


@pytest.mark.parametrize("how", ["symlink", "hardlink", "in-place"])
def test_a_users_database_never_gets_optbenchs_tables(tmp_path, how):
    user = _user_db(tmp_path / "mine.db")
    before = user.read_bytes()
    store = tmp_path / "store.sqlite"
    if how == "symlink":
        store.symlink_to(user)
    elif how == "hardlink":
        os.link(user, store)
    else:
        store = user
    with pytest.raises(ConfigError, match=r"symlink|hard links|did not make") as err:
        Store(store)
    assert "\n" not in str(err.value)
    assert user.read_bytes() == before
    assert _tables(user) == ["contacts"]


def test_a_symlinked_sidecar_journal_is_refused(tmp_path):
    path = tmp_path / "s.sqlite"
    with Store(path):
        pass
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    Path(f"{path}-journal").symlink_to(victim)
    with pytest.raises(ConfigError, match="journal is not a regular file"):
        Store(path)
    assert victim.read_text() == "precious"


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda p: p.write_bytes(np.random.default_rng(0).bytes(20_000)), "not an SQLite"),
        (lambda p: p.write_bytes(p.read_bytes()[:3000]), "cut short at 3000 of"),
        (lambda p: p.write_bytes(p.read_bytes()[:20_000]), "cut short at 20000 of"),
        (lambda p: p.write_bytes(p.read_bytes()[:50]), "not an SQLite"),
        (
            lambda p: p.write_bytes(p.read_bytes()[:68] + b"ABCD" + p.read_bytes()[72:]),
            "another application",
        ),
    ],
    ids=["random-bytes", "truncated-3000", "truncated-20000", "header-only", "foreign-app-id"],
)
def test_a_damaged_store_is_one_line(results, tmp_path, damage, message):
    path = tmp_path / "s.sqlite"
    with Store(path) as store:
        for r in results:
            store.put(r)
    damage(path)
    before = path.read_bytes()
    with pytest.raises(ConfigError, match=message) as err:
        Store(path)
    assert "\n" not in str(err.value)
    assert path.read_bytes() == before


def test_a_store_from_before_the_application_id_is_adopted(results, tmp_path):
    path = tmp_path / "s.sqlite"
    with Store(path) as store:
        store.put(results[0])
    data = bytearray(path.read_bytes())
    data[68:72] = bytes(4)  # as written by optbench before it set the id
    path.write_bytes(bytes(data))
    with Store(path) as store:
        assert len(store) == 1
    assert path.read_bytes()[68:72] == b"optb"


def test_an_empty_file_is_a_store_being_created(tmp_path):
    path = tmp_path / "s.sqlite"
    path.touch()
    with Store(path) as store:
        assert len(store) == 0
    assert _tables(path) == ["epochs", "manifest", "meta", "runs"]


def test_damaged_rows_are_one_line_errors(results, tmp_path):
    path = tmp_path / "s.sqlite"
    with Store(path) as store:
        key = store.put(results[0])
        store.set_manifest([(key, "", "")], kind="run")
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute("UPDATE runs SET spec = '{not json'")
        db.execute("UPDATE meta SET value = '{oops' WHERE name = 'kind'")
        db.commit()
    with Store(path) as store:
        with pytest.raises(ConfigError, match=f"run {key} has no valid spec"):
            store.load_keys([key])
        with pytest.raises(ConfigError, match="meta value 'kind' is not JSON"):
            store.meta()


def test_a_table_without_optbenchs_columns_is_damage(tmp_path):
    path = tmp_path / "s.sqlite"
    with Store(path):
        pass
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.executescript("DROP TABLE manifest; CREATE TABLE manifest (x);")
    with pytest.raises(ConfigError, match="manifest table lacks key, label, phase, position"):
        Store(path)


def _rows(store: Store, table: str, keys: list[str]) -> list[str]:
    cursor = store._db.execute(f"SELECT * FROM {table}")
    names = [d[0] for d in cursor.description]
    rows = [dict(zip(names, row, strict=True)) for row in cursor]
    return sorted(json.dumps(r, sort_keys=True) for r in rows if r["key"] in keys)


def test_copy_from_copies_runs_exactly(results, tmp_path):
    with Store(tmp_path / "a.sqlite") as a, Store(tmp_path / "b.sqlite") as b:
        keys = [a.put(r) for r in results]
        b.put(results[1])
        b.copy_from(a, [keys[0], keys[2], keys[0]])
        assert b.keys() == {keys[0], keys[1], keys[2]}
        for table in ("runs", "epochs"):  # the copied runs' rows and declared types, exactly
            assert _rows(b, table, keys[::2]) == _rows(a, table, keys[::2])
            declared = [dict(s._table_columns(table, refresh=True)) for s in (a, b)]
            assert declared[0] == declared[1]
        back = b.load_keys([keys[0], keys[2]])
    assert back[1].summary["status"] == "diverged"
    pd.testing.assert_frame_equal(tables(back)[0], tables([results[0], results[2]])[0])


def test_a_shared_store_serves_runs_and_the_folder_store_gets_exactly_its_own(tmp_path):
    specs = [spec(), spec(seed=1), spec(seed=2)]
    with Store(tmp_path / "shared.sqlite") as shared:
        ex = Counting()
        with Store(tmp_path / "one.sqlite") as one:
            CachedRuns(one, ex, shared=shared).results(specs[:2])
            assert one.keys() == {run_key(s) for s in specs[:2]}
        messages: list[str] = []
        with Store(tmp_path / "two.sqlite") as two:
            cache = CachedRuns(two, ex, shared=shared, say=messages.append)
            got = cache.results(specs[1:])
            assert two.keys() == {run_key(s) for s in specs[1:]}, "exactly its runs"
            assert cache.in_store() == (2, 2, "runs")
        assert ex.ran == specs, "the overlapping run was reused, not computed again"
        assert messages == [f"optbench: 1 of 2 runs reused from {shared.path}; computing 1"]
        assert shared.keys() == {run_key(s) for s in specs}
    with Store(tmp_path / "one.sqlite") as one:
        assert got[0].rows == one.load([specs[1]])[0].rows


def test_verify_checks_a_store_without_writing(results, tmp_path):
    path = tmp_path / "s.sqlite"
    Store.verify(path)
    assert not path.exists(), "a missing store is not created"
    with Store(path) as store:
        store.put(results[0])
    before = path.read_bytes()
    Store.verify(path)
    assert path.read_bytes() == before
    _user_db(tmp_path / "mine.db")
    with pytest.raises(ConfigError, match="optbench did not make"):
        Store.verify(tmp_path / "mine.db")
