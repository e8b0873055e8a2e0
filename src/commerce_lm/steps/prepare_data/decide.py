"""Duplicate and conflict rules, the ``sample`` cap and the split, in DuckDB over a dataset's keys.

The keys (:func:`.keys.row_keys`) hold every input row of the dataset, ordered by ``pos``. The
rules are those of today's row-by-row pass, in SQL, so DuckDB spills them to disk when they outgrow
the memory budget:

- a text seen with two different labels rejects all its rows (``conflicting_labels``);
- in order, a row is kept unless an earlier kept row has its id (``duplicate_row`` with the same
  text, ``duplicate_id`` otherwise) or its text (``duplicate_text``), or the corpus already holds
  its id with another text (``id_conflict_across_datasets``);
- ``sample`` keeps the rows with the smallest seeded keys; the split is a hash of the group or text.

Only three bytes per row come back to Python (:class:`Decisions`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np

from commerce_lm.config import PrepareConfig
from commerce_lm.data.parse import Dataset
from commerce_lm.steps.prepare_data import keys

RULE_REASONS = ("conflicting_labels", "duplicate_row", "duplicate_id", "duplicate_text", "id_conflict_across_datasets")


@dataclass
class Decisions:
    """What the rules decided for each row of a dataset, in the dataset's order."""

    rule: np.ndarray  # int8: 0, or 1 + the place of the row's reason in RULE_REASONS
    split: np.ndarray  # int8: -1 for a row not accepted, else the place of its split in keys.SPLITS
    new: np.ndarray  # bool: an accepted row whose id the corpus did not hold yet
    kept: int  # rows kept before the ``sample`` cap


def _do(db: duckdb.DuckDBPyConnection, sql: str) -> None:
    """Run a statement to its end (DuckDB keeps a statement's result until it is read)."""
    db.execute(sql).fetchall()


def _literal(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def start(db: duckdb.DuckDBPyConnection) -> None:
    """An empty corpus: the id and text of each document the task and similarity sets accepted so far."""
    _do(db, "CREATE OR REPLACE TEMP TABLE corpus (ik UHUGEINT, tk UHUGEINT)")


def learn(db: duckdb.DuckDBPyConnection, ds: Dataset) -> None:
    """What needs the whole dataset: the splits its files use and (domain, task) its label counts."""
    _do(db, "SET preserve_insertion_order = false")  # rows come back by position: their order is free
    _do(
        db,
        "CREATE OR REPLACE TEMP TABLE rows AS SELECT * EXCLUDE (ik_hi, ik_lo, tk_hi, tk_lo),"
        " hi_lo(ik_hi, ik_lo) AS ik, hi_lo(tk_hi, tk_lo) AS tk"
        f" FROM read_parquet({_literal(ds.scanned.keys)})",
    )
    found = db.execute("SELECT DISTINCT own FROM rows WHERE valid AND own >= 0").fetchall()
    ds.file_splits = {keys.SPLITS[code].as_py() for (code,) in found}
    if ds.kind in ("domain", "task"):
        ds.label_counts = dict(db.execute("SELECT target, count(*) FROM rows WHERE valid GROUP BY target").fetchall())


def _candidates(db: duckdb.DuckDBPyConnection, ds: Dataset) -> None:
    """``cand``: the valid rows; whether their text has two labels; whether the corpus has their id, other text."""
    labelled = ds.kind in ("domain", "task")
    _do(
        db,
        "CREATE OR REPLACE TEMP TABLE conflicted AS SELECT tk FROM rows WHERE valid"
        f" GROUP BY tk HAVING count(DISTINCT target) > 1 AND {labelled}",
    )
    against = "coalesce(k.tk <> r.tk, false)" if ds.kind != "domain" else "false"  # the domain is not in the corpus
    _do(
        db,
        f"CREATE OR REPLACE TEMP TABLE cand AS SELECT r.pos, r.ik, r.tk, c.tk IS NOT NULL AS conflict, {against}"
        " AS against_corpus FROM rows r LEFT JOIN conflicted c ON c.tk = r.tk LEFT JOIN corpus k ON k.ik = r.ik"
        " WHERE r.valid",
    )


def _first_kept(db: duckdb.DuckDBPyConnection) -> None:
    """``kept``: in order, each row no kept row came before with its id or its text.

    A row whose id and text no other row has is kept at once. Then each round keeps the rows that
    come first among the undecided ones for both their id and their text (the earliest undecided row
    always does), and drops those sharing an id or a text with them; the result is that of the
    row-by-row rule.
    """
    _do(
        db, "CREATE OR REPLACE TEMP TABLE und AS SELECT pos, ik, tk FROM cand WHERE NOT conflict AND NOT against_corpus"
    )
    _do(
        db,
        "CREATE OR REPLACE TEMP TABLE kept AS SELECT * FROM und"
        " WHERE ik NOT IN (SELECT ik FROM und GROUP BY ik HAVING count(*) > 1)"
        " AND tk NOT IN (SELECT tk FROM und GROUP BY tk HAVING count(*) > 1)",
    )
    _do(db, "DELETE FROM und USING kept WHERE und.pos = kept.pos")
    while db.execute("SELECT count(*) FROM und").fetchall()[0][0]:
        _do(
            db,
            "CREATE OR REPLACE TEMP TABLE taken AS SELECT * FROM und"
            " WHERE pos IN (SELECT min(pos) FROM und GROUP BY ik) AND pos IN (SELECT min(pos) FROM und GROUP BY tk)",
        )
        _do(db, "INSERT INTO kept SELECT * FROM taken")
        _do(db, "DELETE FROM und USING taken WHERE und.ik = taken.ik")
        _do(db, "DELETE FROM und USING taken WHERE und.tk = taken.tk")


def _scatter(db: duckdb.DuckDBPyConnection, sql: str, into: dict[str, np.ndarray], offsets: np.ndarray) -> None:
    """Write each column ``sql`` gives (besides ``pos``) into its array of ``into``, 65,536 rows at a time."""
    for batch in db.sql(sql).to_arrow_reader(65_536):
        at = keys.dense(batch.column("pos").to_numpy(), offsets)
        for name, array in into.items():
            array[at] = batch.column(name).to_numpy(zero_copy_only=False)


def _split(ds: Dataset, prep: PrepareConfig) -> str:
    """The SQL of an accepted row's split: the file's, or a hash of its group or text (as ``splits.assign_split``).

    A dataset whose files have no validation split carves a share out of their train rows
    (``splits.carve_validation``). The fractions are spelled as Python prints them and read as
    doubles, so the comparisons are Python's.
    """
    test, val, both = (
        f"'{fraction!r}'::DOUBLE"
        for fraction in (prep.test_fraction, prep.validation_fraction, prep.test_fraction + prep.validation_fraction)
    )
    carve = "validation" not in ds.file_splits
    return (
        f"CASE WHEN r.own = 0 AND {carve} AND coalesce(r.gv, r.tv) < {val} THEN 1 WHEN r.own >= 0 THEN r.own"
        f" WHEN coalesce(r.gu, r.tu) < {test} THEN 2 WHEN coalesce(r.gu, r.tu) < {both} THEN 1 ELSE 0 END::TINYINT"
    )


def decide(db: duckdb.DuckDBPyConnection, ds: Dataset, prep: PrepareConfig) -> Decisions:
    """Every row's rule reason, the accepted rows' splits and which of them are new to the corpus (then added to it).

    Args:
        db: The connection :func:`start` began and :func:`learn` prepared for ``ds``.
        ds: The dataset, scanned.
        prep: The split fractions.
    """
    _candidates(db, ds)
    _first_kept(db)
    n, offsets = ds.scanned.input_rows, ds.scanned.offsets()
    decisions = Decisions(np.zeros(n, np.int8), np.full(n, -1, np.int8), np.zeros(n, bool), 0)
    _scatter(
        db,
        "SELECT c.pos, CASE WHEN c.conflict THEN 1 WHEN ki.pos < c.pos THEN (CASE WHEN ki.tk = c.tk THEN 2 ELSE 3 END)"
        " WHEN kt.pos < c.pos THEN 4 ELSE 5 END::TINYINT AS rule"
        " FROM cand c LEFT JOIN kept ki ON ki.ik = c.ik LEFT JOIN kept kt ON kt.tk = c.tk"
        " WHERE c.pos NOT IN (SELECT pos FROM kept)",
        {"rule": decisions.rule},
        offsets,
    )
    decisions.kept = db.execute("SELECT count(*) FROM kept").fetchall()[0][0]
    cap = ds.spec.sample
    chosen = "SELECT pos FROM kept"
    if cap and decisions.kept > cap:  # the smallest seeded keys
        chosen = f"SELECT pos FROM kept JOIN rows USING (pos) ORDER BY su, id LIMIT {int(cap)}"
    _do(
        db,
        f"CREATE OR REPLACE TEMP TABLE accepted AS SELECT r.pos, {_split(ds, prep)} AS split,"
        f" k.ik IS NULL AND {ds.kind != 'domain'} AS new, r.ik, r.tk"
        f" FROM rows r LEFT JOIN corpus k ON k.ik = r.ik WHERE r.pos IN ({chosen})",
    )
    _scatter(db, "SELECT pos, split, new FROM accepted", {"split": decisions.split, "new": decisions.new}, offsets)
    _do(db, "INSERT INTO corpus SELECT ik, tk FROM accepted WHERE new")
    return decisions
