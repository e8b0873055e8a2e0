"""One split for the whole corpus: the groups of every dataset joined, in DuckDB.

Datasets may tie rows together by different columns (the domain by re-listing, a similarity set
by translation). Each ties the texts of a group together; a text in groups of two datasets ties
those groups together. The connected components of texts and groups are the corpus's groups: a
component is split as one, by the hashes of its smallest group (by digest, so the choice is
independent of the split hash and of the order of files and datasets). A text alone is split by its
own hash, as before; a group no other group joins keeps its own split.

A split a file gives (its ``split`` column) is kept; a text without one takes the split another
dataset's file gives it, and a text that two datasets give different splits is rejected in every
dataset (``conflicting_splits``).

The views come from :func:`commerce_lm.config.split_groups` of the whole run, so every part of a
run (``--part``) finds the same components.
"""

from __future__ import annotations

import duckdb

from commerce_lm.data.parse import Dataset
from commerce_lm.steps.prepare_data import keys


def resolve(db: duckdb.DuckDBPyConnection, views: list[Dataset]) -> None:
    """Table ``text_split`` (``tk``, ``cu``, ``cv``, ``given``, ``split_conflict``) from the scanned views.

    Per text with a group or a split some file gives: the split hashes of its component (``cu``,
    ``cv``; null for a text in no group), the split files give it (``given``, a code of
    :data:`.keys.SPLITS`; null for none), and whether two datasets give it different ones.

    Args:
        db: The rules' connection (:func:`.keys.connect`).
        views: Datasets of kind ``view`` (every way the run's datasets group rows), scanned.
    """
    rows = " UNION ALL ".join(
        f"SELECT {i} AS view, pos, hi_lo(tk_hi, tk_lo) AS tk, hi_lo(gk_hi, gk_lo) AS gk, gu, gv, own"
        f" FROM read_parquet({keys.literal(ds.scanned.keys)}) WHERE valid"
        for i, ds in enumerate(views)
    )
    keys.do(db, f"CREATE OR REPLACE TEMP TABLE viewed AS {rows}")
    keys.do(db, "CREATE OR REPLACE TEMP TABLE edges AS SELECT DISTINCT tk, gk FROM viewed WHERE gk IS NOT NULL")
    _components(db)
    # The first split each view's file gives a text (the duplicate rule keeps the first row), then across views.
    keys.do(
        db,
        "CREATE OR REPLACE TEMP TABLE given AS SELECT tk, min(own)::TINYINT AS given,"
        " count(DISTINCT own) > 1 AS split_conflict FROM (SELECT tk, arg_min(own, pos) AS own FROM viewed"
        " WHERE own >= 0 GROUP BY view, tk) GROUP BY tk",
    )
    keys.do(
        db,
        "CREATE OR REPLACE TEMP TABLE text_split AS SELECT tk, c.gu AS cu, c.gv AS cv, g.given,"
        " coalesce(g.split_conflict, false) AS split_conflict"
        " FROM (SELECT t.tk, h.gu, h.gv FROM label t JOIN hashes h ON h.gk = t.c) c FULL JOIN given g USING (tk)",
    )
    for table in ("viewed", "edges", "label", "hashes", "given"):
        keys.do(db, f"DROP TABLE {table}")


def _components(db: duckdb.DuckDBPyConnection) -> None:
    """``label``: each grouped text's component (its smallest group digest ``c``); ``hashes``: each group's hashes.

    Labels spread from groups to texts and back until none falls; where no text is in two groups
    (datasets that agree) the first step is the last.
    """
    keys.do(
        db,
        "CREATE OR REPLACE TEMP TABLE hashes AS SELECT gk, any_value(gu) AS gu, any_value(gv) AS gv FROM viewed"
        " WHERE gk IS NOT NULL GROUP BY gk",
    )
    keys.do(db, "CREATE OR REPLACE TEMP TABLE label AS SELECT tk, min(gk) AS c FROM edges GROUP BY tk")
    joined = db.execute("SELECT count(*) FROM edges GROUP BY tk HAVING count(*) > 1 LIMIT 1").fetchall()
    while joined:
        keys.do(
            db,
            "CREATE OR REPLACE TEMP TABLE spread AS SELECT e.tk, min(g.c) AS c FROM edges e JOIN"
            " (SELECT e.gk, min(l.c) AS c FROM edges e JOIN label l USING (tk) GROUP BY e.gk) g USING (gk)"
            " GROUP BY e.tk",
        )
        joined = db.execute("SELECT 1 FROM spread s JOIN label l USING (tk) WHERE s.c < l.c LIMIT 1").fetchall()
        keys.do(db, "DROP TABLE label")
        keys.do(db, "ALTER TABLE spread RENAME TO label")
