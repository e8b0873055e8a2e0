"""One split for the whole corpus: the groups of every dataset joined (DuckDB, and numpy for the joins).

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
import numpy as np
import pyarrow as pa

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
        " FROM (SELECT t.tk, h.gu, h.gv FROM label t JOIN hashes h ON h.gid = t.root) c FULL JOIN given g USING (tk)",
    )
    for table in ("viewed", "edges", "roots", "label", "hashes", "given"):
        keys.do(db, f"DROP TABLE {table}")


def _components(db: duckdb.DuckDBPyConnection) -> None:
    """``label``: each grouped text's component (``root``, the place of its smallest group digest in ``hashes``).

    Groups are numbered in digest order (``hashes.gid``); only the texts in two groups or more
    (none where the datasets agree) join groups, and only the groups they touch go through
    :func:`roots`, in memory as large as those texts.
    """
    keys.do(
        db,
        "CREATE OR REPLACE TEMP TABLE hashes AS SELECT gk, gu, gv, (row_number() OVER (ORDER BY gk) - 1)::BIGINT AS gid"
        " FROM (SELECT gk, any_value(gu) AS gu, any_value(gv) AS gv FROM viewed WHERE gk IS NOT NULL GROUP BY gk)",
    )
    keys.do(
        db,
        "CREATE OR REPLACE TEMP TABLE edges AS SELECT DISTINCT v.tk, h.gid FROM viewed v JOIN hashes h USING (gk)",
    )
    pairs = db.sql(
        "SELECT min(gid) OVER (PARTITION BY tk) AS a, gid AS b FROM edges"
        " WHERE tk IN (SELECT tk FROM edges GROUP BY tk HAVING count(*) > 1)"
    ).to_arrow_table()
    a, b = (pairs.column(name).to_numpy() for name in ("a", "b"))
    involved = np.unique(np.concatenate([a, b]))
    found = roots(np.searchsorted(involved, a), np.searchsorted(involved, b), len(involved))
    db.register("joined", pa.table({"gid": involved, "root": involved[found]}))
    keys.do(db, "CREATE OR REPLACE TEMP TABLE roots AS SELECT * FROM joined")
    db.unregister("joined")
    keys.do(
        db,
        "CREATE OR REPLACE TEMP TABLE label AS SELECT e.tk, min(coalesce(r.root, e.gid)) AS root FROM edges e"
        " LEFT JOIN roots r USING (gid) GROUP BY e.tk",
    )


def roots(a: np.ndarray, b: np.ndarray, n: int) -> np.ndarray:
    """The smallest node of each node's connected component, for nodes ``0..n-1`` and edges ``a[i]-b[i]``.

    Each round hooks the larger root of every edge's two roots under the smaller one, then points
    every node at its root (pointer jumping): a chain of n groups takes about log n rounds, not n.
    """
    parent = np.arange(n)
    while True:
        root_a, root_b = parent[a], parent[b]
        low = np.minimum(root_a, root_b)
        np.minimum.at(parent, root_a, low)  # a node's parent is never above it: no cycles
        np.minimum.at(parent, root_b, low)
        while not np.array_equal(grand := parent[parent], parent):
            parent = grand
        if np.array_equal(parent[a], parent[b]):
            return parent
