"""Duplicate and conflict rules, the ``sample`` cap and the split, in DuckDB over a dataset's keys.

The keys (:func:`.keys.row_keys`) hold every input row of the dataset, ordered by ``pos``. The
rules are those of today's row-by-row pass, in SQL, so DuckDB spills them to disk when they outgrow
the memory budget:

- a text seen with two different labels rejects all its rows (``conflicting_labels``), and so does a
  text two datasets' files give different splits (``conflicting_splits``, :mod:`.groups`);
- in order, a row is kept unless an earlier kept row has its id (``duplicate_row`` with the same
  text, ``duplicate_id`` otherwise) or its text (``duplicate_text``), or the corpus already holds
  its id with another text (``id_conflict_across_datasets``);
- ``sample`` keeps the rows with the smallest seeded keys; the split is the file's, or the one another
  dataset's file gives the text, or a hash of the text's corpus-wide group (:mod:`.groups`) or text.

Only three bytes per row come back to Python (:class:`Decisions`).
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import numpy as np

from commerce_lm.config import PrepareConfig
from commerce_lm.data.parse import Dataset
from commerce_lm.steps.prepare_data import keys

RULE_REASONS = (
    "conflicting_labels",
    "conflicting_splits",
    "duplicate_row",
    "duplicate_id",
    "duplicate_text",
    "id_conflict_across_datasets",
)
_CODE = {reason: code for code, reason in enumerate(RULE_REASONS, start=1)}  # as Decisions.rule holds them


def rule_column(ds: Dataset, reason: str) -> str | None:
    """The column a rule's reason names: the id, the split or the (first) text column."""
    if "id" in reason:
        return ds.spec.id
    return ds.spec.split if reason == "conflicting_splits" else ds.spec.text[0]


@dataclass
class Decisions:
    """What the rules decided for each row of a dataset, in the dataset's order."""

    rule: np.ndarray  # int8: 0, or 1 + the place of the row's reason in RULE_REASONS
    split: np.ndarray  # int8: -1 for a row not accepted, else the place of its split in keys.SPLITS
    new: np.ndarray  # bool: an accepted row whose id the corpus did not hold yet
    kept: int  # rows kept before the ``sample`` cap


def start(db: duckdb.DuckDBPyConnection) -> None:
    """An empty corpus: the id and text of each document the task and similarity sets accepted so far."""
    keys.do(db, "CREATE OR REPLACE TEMP TABLE corpus (ik UHUGEINT, tk UHUGEINT)")


def learn(db: duckdb.DuckDBPyConnection, ds: Dataset) -> None:
    """What needs the whole dataset: the splits its files use and (domain, task) its label counts."""
    keys.do(db, "SET preserve_insertion_order = false")  # rows come back by position: their order is free
    keys.do(db, f"CREATE OR REPLACE TEMP VIEW rows AS SELECT * FROM read_parquet({keys.literal(ds.scanned.keys)})")
    found = db.execute("SELECT DISTINCT own FROM rows WHERE valid AND own >= 0").fetchall()
    ds.file_splits = {keys.SPLITS[code].as_py() for (code,) in found}
    if ds.kind in ("domain", "task"):
        ds.label_counts = dict(db.execute("SELECT target, count(*) FROM rows WHERE valid GROUP BY target").fetchall())


def _candidates(db: duckdb.DuckDBPyConnection, ds: Dataset) -> None:
    """``decided``: every row, whether its text has two labels, whether the corpus holds its id (with which text).

    Each row also gets its text's corpus-wide split hashes and given split (``cu``, ``cv``, ``given``,
    ``split_conflict`` of :func:`.groups.resolve`).

    The corpus join is the one join as large as the dataset; every later query filters ``decided``
    or joins it with sets as small as the duplicates, so nothing has to hold a whole dataset at once.
    """
    labelled = ds.kind in ("domain", "task")
    keys.do(
        db,
        "CREATE OR REPLACE TEMP TABLE conflicted AS SELECT hi_lo(tk_hi, tk_lo) AS tk FROM rows WHERE valid"
        f" GROUP BY tk HAVING count(DISTINCT target) > 1 AND {labelled}",
    )
    corpus = "corpus" if ds.kind != "domain" else "(SELECT * FROM corpus WHERE false)"  # the domain is not in it
    keys.do(
        db,
        "CREATE OR REPLACE TEMP TABLE decided AS SELECT r.* EXCLUDE (ik_hi, ik_lo, tk_hi, tk_lo, gk_hi, gk_lo),"
        " r.ik, r.tk, r.valid AND c.tk IS NOT NULL AS conflict, k.ik IS NOT NULL AS in_corpus,"
        " r.valid AND coalesce(k.tk <> r.tk, false) AS against_corpus, s.cu, s.cv, s.given,"
        " r.valid AND coalesce(s.split_conflict, false) AS split_conflict"
        " FROM (SELECT *, hi_lo(ik_hi, ik_lo) AS ik, hi_lo(tk_hi, tk_lo) AS tk FROM rows) r"
        f" LEFT JOIN conflicted c ON c.tk = r.tk LEFT JOIN {corpus} k ON k.ik = r.ik"
        " LEFT JOIN text_split s ON s.tk = r.tk",
    )


_ELIGIBLE = "valid AND NOT conflict AND NOT split_conflict AND NOT against_corpus"
# Eligible rows no other eligible row shares an id or a text with: kept whatever their order.
_ALONE = f"{_ELIGIBLE} AND NOT (ik IN (SELECT ik FROM ids) OR tk IN (SELECT tk FROM texts))"
_KEPT = f"(({_ALONE}) OR pos IN (SELECT pos FROM kept_in_rounds))"


def _first_kept(db: duckdb.DuckDBPyConnection) -> None:
    """Which rows :data:`_KEPT` holds: in order, each row no kept row came before with its id or its text.

    A row whose id and text no other row has is kept at once (:data:`_ALONE`). Among the others,
    each round keeps the rows that come first among the undecided ones for both their id and their
    text (the earliest undecided row always does), and drops those sharing an id or a text with
    them; the result is that of the row-by-row rule. Every table here is as large as the
    duplicates, not as the dataset.
    """
    for table, key in (("ids", "ik"), ("texts", "tk")):  # ids and texts more than one eligible row has
        keys.do(
            db,
            f"CREATE OR REPLACE TEMP TABLE {table} AS SELECT {key} FROM decided WHERE {_ELIGIBLE}"
            f" GROUP BY {key} HAVING count(*) > 1",
        )
    keys.do(
        db,
        f"CREATE OR REPLACE TEMP TABLE und AS SELECT pos, ik, tk FROM decided WHERE {_ELIGIBLE}"
        " AND (ik IN (SELECT ik FROM ids) OR tk IN (SELECT tk FROM texts))",
    )
    keys.do(db, "CREATE OR REPLACE TEMP TABLE kept_in_rounds AS SELECT * FROM und LIMIT 0")
    while db.execute("SELECT count(*) FROM und").fetchall()[0][0]:
        keys.do(
            db,
            "CREATE OR REPLACE TEMP TABLE taken AS SELECT * FROM und"
            " WHERE pos IN (SELECT min(pos) FROM und GROUP BY ik) AND pos IN (SELECT min(pos) FROM und GROUP BY tk)",
        )
        keys.do(db, "INSERT INTO kept_in_rounds SELECT * FROM taken")
        keys.do(
            db,
            "CREATE OR REPLACE TEMP TABLE rest AS SELECT * FROM und"
            " WHERE ik NOT IN (SELECT ik FROM taken) AND tk NOT IN (SELECT tk FROM taken)",
        )
        keys.do(db, "DROP TABLE und")
        keys.do(db, "ALTER TABLE rest RENAME TO und")


def _rules(db: duckdb.DuckDBPyConnection, into: np.ndarray, offsets: np.ndarray) -> None:
    """The reason of each valid row not kept: the kept row before it with its id or text says which."""
    keys.do(
        db,
        f"CREATE OR REPLACE TEMP TABLE later AS SELECT pos, ik, tk, conflict, split_conflict FROM decided"
        f" WHERE valid AND NOT {_KEPT}",
    )
    keys.do(
        db,
        f"CREATE OR REPLACE TEMP TABLE by_id AS SELECT pos, ik, tk FROM decided WHERE {_KEPT}"
        " AND ik IN (SELECT ik FROM later)",
    )
    keys.do(
        db,
        f"CREATE OR REPLACE TEMP TABLE by_text AS SELECT pos, tk FROM decided WHERE {_KEPT}"
        " AND tk IN (SELECT tk FROM later)",
    )
    _scatter(
        db,
        f"SELECT l.pos, CASE WHEN l.conflict THEN {_CODE['conflicting_labels']}"
        f" WHEN l.split_conflict THEN {_CODE['conflicting_splits']}"
        f" WHEN ki.pos < l.pos AND ki.tk = l.tk THEN {_CODE['duplicate_row']}"
        f" WHEN ki.pos < l.pos THEN {_CODE['duplicate_id']}"
        f" WHEN kt.pos < l.pos THEN {_CODE['duplicate_text']} ELSE {_CODE['id_conflict_across_datasets']} END::TINYINT"
        " AS rule FROM later l LEFT JOIN by_id ki ON ki.ik = l.ik LEFT JOIN by_text kt ON kt.tk = l.tk",
        {"rule": into},
        offsets,
    )


def _scatter(db: duckdb.DuckDBPyConnection, sql: str, into: dict[str, np.ndarray], offsets: np.ndarray) -> None:
    """Write each column ``sql`` gives (besides ``pos``) into its array of ``into``, 65,536 rows at a time."""
    for batch in db.sql(sql).to_arrow_reader(65_536):
        at = keys.dense(batch.column("pos").to_numpy(), offsets)
        for name, array in into.items():
            array[at] = batch.column(name).to_numpy(zero_copy_only=False)


def _split(ds: Dataset, prep: PrepareConfig) -> str:
    """The SQL of an accepted row's split (as ``splits.assign_split``).

    The file's; else the one another dataset's file gives its text; else a hash of its corpus-wide
    group (:mod:`.groups`) or of its text. A dataset whose files have no validation split carves a
    share out of their train rows (``splits.carve_validation``), by group too. The fractions are
    spelled as Python prints them and read as doubles, so the comparisons are Python's.
    """
    test, val, both = (
        f"'{fraction!r}'::DOUBLE"
        for fraction in (prep.test_fraction, prep.validation_fraction, prep.test_fraction + prep.validation_fraction)
    )
    carve = "validation" not in ds.file_splits
    return (
        f"CASE WHEN own = 0 AND {carve} AND coalesce(cv, tv) < {val} THEN 1 WHEN own >= 0 THEN own"
        f" WHEN given IS NOT NULL THEN given"
        f" WHEN coalesce(cu, tu) < {test} THEN 2 WHEN coalesce(cu, tu) < {both} THEN 1 ELSE 0 END::TINYINT"
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
    _rules(db, decisions.rule, offsets)
    decisions.kept = db.execute(f"SELECT count(*) FROM decided WHERE {_KEPT}").fetchall()[0][0]
    cap = ds.spec.sample
    accepted = _KEPT
    if cap and decisions.kept > cap:  # the smallest seeded keys
        keys.do(
            db,
            f"CREATE OR REPLACE TEMP TABLE sampled AS SELECT pos FROM decided WHERE {_KEPT}"
            f" ORDER BY su, id LIMIT {int(cap)}",
        )
        accepted = "pos IN (SELECT pos FROM sampled)"
    new = "NOT in_corpus" if ds.kind != "domain" else "false"
    keys.do(
        db,
        f"CREATE OR REPLACE TEMP TABLE accepted AS SELECT pos, {_split(ds, prep)} AS split, {new} AS new, ik, tk"
        f" FROM decided WHERE {accepted}",
    )
    _scatter(db, "SELECT pos, split, new FROM accepted", {"split": decisions.split, "new": decisions.new}, offsets)
    keys.do(db, "INSERT INTO corpus SELECT ik, tk FROM accepted WHERE new")
    return decisions
