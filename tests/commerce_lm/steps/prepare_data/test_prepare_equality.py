"""The Arrow-native prepare-data gives exactly today's rows, reasons, splits and counts.

The peer is today's per-row implementation, kept beside this file in ``prepare_reference``. Both run on
the same input; every table they write (accepted rows per dataset, the corpus, the rejected rows
with their reason, column and input) and ``stats.json`` / ``labels.json`` must be identical.
"""

import unicodedata

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import yaml

from commerce_lm import config
from commerce_lm.demo import corpus as demo_corpus
from commerce_lm.steps import prepare_data
from tests.helpers.paths import REPO
from tests.helpers.prepare import assert_same_as_reference, assert_same_tables, prepare_reference

SHARED = REPO.parent / "shared" / "datasets"


def _demo_cfg(data: str) -> config.RunConfig:
    raw = yaml.safe_load((REPO / "configs" / "demo.yaml").read_text())
    for spec in [raw["domain"], *raw["tasks"], *raw["similarity"]]:
        spec["data"] = data
    raw["model"] = "unused"
    return config.parse_config(raw)


def test_demo_corpus_is_prepared_exactly_as_today(tmp_path, monkeypatch):
    from commerce_lm.steps.prepare_data import frame

    monkeypatch.setattr(frame, "SLICE", 500)  # texts normalised in slices on threads, as a large file's are
    data = demo_corpus.write(str(tmp_path / "listings.parquet"), n_items=1500)
    stats = assert_same_as_reference(_demo_cfg(data), tmp_path)
    assert stats["domain"]["accepted_rows"] > 1000


def test_files_read_in_small_batches_with_duplicates_across_them_are_prepared_exactly_as_today(tmp_path):
    """Several files per dataset, a glob naming some of them, batches of 97 rows, duplicates across files."""
    frame = pd.read_parquet(demo_corpus.write(str(tmp_path / "listings.parquet"), n_items=300))
    again = frame.head(30).copy()  # exact duplicates, one id with another text, one text under new ids
    again.loc[again.index[10:20], "title"] = "a title changed on relisting"
    again.loc[again.index[20:30], "id"] = [f"new-{i}" for i in range(10)]
    folder = tmp_path / "parts"
    folder.mkdir()
    thirds = [frame.iloc[i * len(frame) // 3 : (i + 1) * len(frame) // 3] for i in range(3)]
    for i, part in enumerate([*thirds, again]):
        part.to_parquet(folder / f"part-{i}.parquet", row_group_size=50)
    cfg = _demo_cfg(str(folder))
    cfg.tasks[1].data = str(folder / "part-[13].parquet")  # shares two of the domain's files
    cfg.similarity[0].text = ["title"]  # the same ids with other texts than the tasks': conflicts across datasets
    cfg.prepare.batch_rows = 97
    cfg.prepare.max_rejected_fraction = 1.0
    stats = assert_same_as_reference(cfg, tmp_path)
    reasons = {reason for s in stats.values() for reason in s["rejected_by_reason"]}
    assert {"duplicate_row", "duplicate_id", "duplicate_text", "id_conflict_across_datasets"} <= reasons


def test_demo_corpus_as_csv_and_sampled_is_prepared_exactly_as_today(tmp_path):
    data = demo_corpus.write(str(tmp_path / "listings.parquet"), n_items=600)
    frame = pd.read_parquet(data)
    frame.to_csv(tmp_path / "listings.csv", index=False)
    cfg = _demo_cfg(str(tmp_path / "listings.csv"))
    cfg.tasks[0].sample = 300
    assert_same_as_reference(cfg, tmp_path)


def test_a_part_read_from_a_csv_with_a_broken_quote_is_prepared_exactly_as_today(tmp_path):
    data = demo_corpus.write(str(tmp_path / "listings.parquet"), n_items=600)
    lines = pd.read_parquet(data).to_csv(index=False).splitlines(keepends=True)
    # A quote opened and never closed swallows the rows after it up to the next quote: the
    # fragments it leaves must be rejected, not read as rows, by both implementations alike.
    lines[40] = lines[40].replace(",", ',"', 1)
    (tmp_path / "listings.csv").write_text("".join(lines))
    section = config.section_for("prepare-data", _demo_cfg(str(tmp_path / "listings.csv")))
    stats = assert_same_as_reference(config.prepare_part(section, "datasets"), tmp_path)
    assert "domain" not in stats
    assert all(s["rejected_by_reason"].get("malformed_row", 0) >= 1 for s in stats.values())


def test_awkward_parquet_values_are_prepared_exactly_as_today(tmp_path):
    """Markup, entities, odd spaces, numeric strings, nulls, duplicates and conflicts in typed columns."""
    texts = [
        "plain words",
        "plain words",
        "  spaced\t\tout \x1c text ",
        "<b>bold</b> &amp; more",
        "a &lt;b&gt; c",
        "size <30 for ages >5",
        "Ｖｉａｇｒａ\u00a0cheap",
        "\u200b\u200d",
        "",
        None,
        "ümlaut text",
        "x" * 50,
        "conflict text",
        "conflict text",
        "dup id text",
        "dup id other",
        "\u00adsoft",
        "tab\x0bvt",
    ]
    n = len(texts)
    table = pa.table(
        {
            "id": pa.array([f" id{i} " if i != 15 else "id14" for i in range(n)]),
            "text": pa.array(texts),
            "title": pa.array([None if i % 3 else f"T{i}" for i in range(n)]),
            "label": pa.array(
                ["1", "0", "1.0", " true ", "3", None, "0", "1", "1", "0", "yes", "0", "1", "0", "1", "0", "x", "0"]
            ),
            "lang": pa.array(
                [
                    "en",
                    " de ",
                    None,
                    "3.0",
                    "",
                    "en",
                    "ja",
                    "en",
                    "en",
                    "en",
                    "de",
                    "en",
                    "en",
                    "en",
                    "en",
                    "en",
                    "en",
                    "en",
                ]
            ),
            "split": pa.array(
                [
                    None,
                    "Train",
                    "test",
                    "VAL",
                    None,
                    "dev",
                    None,
                    None,
                    "nope",
                    None,
                    None,
                    None,
                    None,
                    None,
                    None,
                    None,
                    None,
                    None,
                ]
            ),
            "grp": pa.array(
                [
                    None,
                    "g1",
                    "g1",
                    None,
                    "7",
                    "7.0",
                    " ",
                    None,
                    None,
                    None,
                    "g1 ",
                    None,
                    None,
                    None,
                    None,
                    None,
                    None,
                    None,
                ]
            ),
            "num": pa.array([i % 4 if i % 5 else None for i in range(n)], pa.int64()),
        }
    )
    pq.write_table(table, tmp_path / "awkward.parquet")
    data = str(tmp_path / "awkward.parquet")
    raw = {
        "model": "m",
        "domain": {"data": data, "text": ["title", "text"], "label": "label", "group_by": ["grp", "num"]},
        "tasks": [{"name": "t", "data": data, "label": "label", "group_by": ["num", "grp"]}],
        "similarity": [{"name": "s", "data": data, "group": "grp"}, {"name": "n", "data": data, "group": "num"}],
        "prepare": {"max_rejected_fraction": 1.0, "max_text_chars": 40, "overlong": "truncate"},
    }
    raw["tasks"].append({"name": "t2", "data": data, "label": "label", "sample": 4})
    section = config.section_for("prepare-data", config.parse_config(raw))
    # Too few rows for the trainability gate: compare the tables of the passes themselves.
    new_dir = tmp_path / "new"
    prepare_data.prepare(section, new_dir)
    prepare_reference.run(section, tmp_path / "reference")
    assert_same_tables(new_dir, tmp_path / "reference")


@pytest.mark.skipif(not SHARED.exists(), reason="../shared/datasets is not on this machine")
def test_real_reviews_are_prepared_exactly_as_today(tmp_path):
    marc, amcd = str(SHARED / "marc6_reviews.parquet"), str(SHARED / "amcd_counterfactual.parquet")
    raw = {
        "model": "unused",
        "domain": {"data": marc, "label": "stars", "split": "split"},
        "tasks": [
            {"name": "negative", "data": marc, "label": "is_negative", "split": "split"},
            {"name": "counterfactual", "data": amcd, "label": "is_counterfactual", "split": "split"},
        ],
        "similarity": [{"name": "subset", "data": amcd, "group": "subset"}],
        "prepare": {"max_rejected_fraction": 1.0},
    }
    stats = assert_same_as_reference(config.parse_config(raw), tmp_path)
    assert stats["domain"]["accepted_rows"] > 100_000


def test_stored_character_classes_are_this_pythons():
    from commerce_lm.steps.prepare_data import cells, unicode_classes

    assert unicodedata.unidata_version == unicode_classes.UNIDATA_VERSION
    assert cells.compute_classes() == unicode_classes.CLASSES


def test_arrow_nfkc_is_pythons_on_every_assigned_code_point():
    """Arrow's NFKC runs on texts without unassigned code points; there it must be Python's."""
    points = [chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF and unicodedata.category(chr(c)) != "Cn"]
    arrow = pc.utf8_normalize(pa.array(points), "NFKC").to_pylist()
    assert [p for p, a in zip(points, arrow, strict=True) if unicodedata.normalize("NFKC", p) != a] == []


def test_split_hashes_in_duckdb_are_todays(tmp_path):
    """The digests and split hashes DuckDB computes are those of ``splits.text_key`` and ``splits.unit_hash``."""
    import hashlib

    from commerce_lm.data import splits
    from commerce_lm.data.parse import Dataset
    from commerce_lm.steps.prepare_data import keys

    # Arrow strings are valid UTF-8: a lone surrogate never reaches them.
    texts = ["", "a", "plain words", "größe 42 – ok", "日本語のテキスト", "x" * 5000, "val:R1", "it's"]
    db = keys.connect(tmp_path, 64, 1)
    found = keys.text_keys(db, pa.array(texts)).to_pydict()
    assert found["tu"] == [splits.unit_hash(splits.text_key(t)) for t in texts]
    assert found["tv"] == [splits.unit_hash(f"val:{splits.text_key(t)}") for t in texts]
    digests = [hashlib.sha256(t.encode()).digest() for t in texts]
    assert found["tk_hi"] == [int.from_bytes(d[:8], "big") for d in digests]
    assert found["tk_lo"] == [int.from_bytes(d[8:16], "big") for d in digests]
    spec = config.TaskSpec(name="t", data="unused", label="label", sample=10)
    parsed = pa.table(
        {
            "id": texts,
            "split": ["train", None, "test", "validation", None, None, None, None],
            "target": [0, 1, 0, 1, 0, 1, 0, 1],
            "group_key": [None, "g:1", *texts[2:]],
            "reason": [None] * 7 + ["missing_id"],
            "row": list(range(8)),
        }
    )
    shared = [
        keys.id_keys(db, parsed["id"]),
        keys.text_keys(db, parsed["id"]),
        keys.group_keys(db, parsed["group_key"]),
    ]
    rows = keys.row_keys(db, Dataset("t", "task", spec), parsed, shared, 3, 7).to_pydict()
    assert rows["ik_hi"] == found["tk_hi"]
    assert keys.group_keys(db, pa.nulls(2, pa.string())).to_pydict() == dict.fromkeys(
        ["gk_hi", "gk_lo", "gu", "gv"], [None, None]
    )
    assert rows["gk_hi"][1] == int.from_bytes(hashlib.sha256(b"g:1").digest()[:8], "big")
    assert rows["su"] == [splits.unit_hash(f"sample:7:{t}") for t in texts]
    assert rows["gu"] == [None, splits.unit_hash("g:1"), *(splits.unit_hash(t) for t in texts[2:])]
    assert rows["gv"][1] == splits.unit_hash("val:g:1")
    assert rows["own"] == [0, -1, 2, 1, -1, -1, -1, -1]
    assert rows["valid"] == [True] * 7 + [False]
    assert keys.dense(np.array(rows["pos"]), np.array([0, 5, 9, 20])).tolist() == list(range(20, 28))


def test_entities_markup_and_spaces_are_normalised_as_today():
    from commerce_lm.data import values
    from commerce_lm.steps.prepare_data import cells

    texts = [
        "a &amp; b",
        "&amp;lt;b&amp;gt; stays text",
        "&amp;amp; &amp;nbsp; once",
        "x&nbsp;&nbsp;y",
        "&lt;i&gt;shown&lt;/i&gt; <i>gone</i>",
        "&quot;q&quot; &#39;s&#39;",
        "<a href='x&amp;y'>link</a> plain",
        "&amp",
        "AT&T",
        "&copy; 2024 &eacute;t&eacute;",
        "&#x27;hex&#x27; &#128512;",
        "&nbsp",
        "&ampamp;",
        "&&amp;&",
        "tail &",
        "\u0378 unassigned &amp;",
        "no entity at all",
    ]
    texts += ["title\ndescription", " lead\n\ntrail ", "tab\there", "a\u3000b", "nbsp\u00a0x", "two  spaces", "\x1c"]
    column = pa.array(texts)
    expected = [values.normalize_text(t) for t in texts]
    assert cells.normalize(column).to_pylist() == expected
