"""Fuzz prepare-data with malformed CSV, JSONL and Parquet files (hypothesis, bounded).

For every file, prepare-data either rejects the bad rows with a reason and keeps the good ones
unchanged, or stops with one line naming the file. It never raises anything else, and never accepts
a changed value: every accepted row is a good row, with the good row's id, text and label.
"""

import json

import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from commerce_lm.data.readers import InputError
from commerce_lm.steps.prepare_data import normalize_text
from tests.helpers.malformed import BAD_CSV, BAD_JSON, ODD, csv_line
from tests.helpers.prepare import prepare_tables, write_parquet

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
GOOD_ROWS = st.lists(st.tuples(ODD, st.integers(0, 1)), min_size=2, max_size=12)


def _good(rows):
    """Good rows: unique ids and texts, so none is a duplicate of another."""
    return [(f"good{i}", f"doc {i} {text}", label) for i, (text, label) in enumerate(rows)]


def _check(tmp_path, data, good):
    try:
        out = prepare_tables(tmp_path / "out", data)
    except InputError as error:
        assert str(data) in str(error) and "\n" not in str(error)
        return None
    expected = {i: (normalize_text(t), y) for i, t, y in good}
    for name in ("domain", "task-t"):
        table, rejected, _ = out[name]
        for row in table.itertuples():
            if name == "domain" and row.id.startswith("label-"):
                continue  # any label value is a class of the domain
            assert row.id in expected, f"{name} accepted a row that was not a good row: {row}"
            label = int(out["labels"][row.label]) if name == "domain" else row.label
            assert (row.text, label) == expected[row.id]
        assert rejected["reason"].notna().all()
    return out


@FUZZ
@given(rows=GOOD_ROWS, bad=st.lists(BAD_CSV, max_size=6), seed=st.randoms())
def test_csv(tmp_path_factory, rows, bad, seed):
    good = _good(rows)
    lines = [csv_line(row) for row in [("id", "text", "label"), *good]]  # a quoted field may hold newlines
    for n, template in enumerate(bad):
        lines.insert(seed.randint(1, len(lines)), template.replace(b"{id}", f"bad{n}".encode()) + b"\n")
    data = tmp_path_factory.mktemp("csv") / "d.csv"
    data.write_bytes(b"".join(lines))
    out = _check(tmp_path_factory.mktemp("out"), data, good)
    if out is not None and not any(b'"' in t for t in bad):  # a broken quote may swallow later rows
        assert len(out["task-t"][0]) == len(good)


@FUZZ
@given(rows=GOOD_ROWS, bad=st.lists(BAD_JSON, max_size=6), raw_bytes=st.booleans(), seed=st.randoms())
def test_jsonl(tmp_path_factory, rows, bad, raw_bytes, seed):
    good = _good(rows)
    lines = [json.dumps({"id": i, "text": t, "label": y}, ensure_ascii=False).encode() for i, t, y in good]
    for n, template in enumerate(bad):
        lines.insert(seed.randint(0, len(lines)), template.replace("{id}", f"bad{n}").encode())
    if raw_bytes:
        lines.insert(seed.randint(0, len(lines)), b'{"id": "bad-raw", "text": "raw \xff byte", "label": 1}')
    data = tmp_path_factory.mktemp("jsonl") / "d.jsonl"
    data.write_bytes(b"\n".join(lines) + b"\n")
    out = _check(tmp_path_factory.mktemp("out"), data, good)
    assert out is not None and len(out["task-t"][0]) == len(good)


@FUZZ
@given(
    rows=GOOD_ROWS,
    bad_labels=st.lists(st.sampled_from(["2", "maybe", "", "1.5", "-1"]), max_size=4),
    bad_text=st.lists(st.sampled_from([b"\xff\xfe", b"ok \xc3", b"\xed\xa0\x80"]), max_size=3),
    damage=st.one_of(st.none(), st.tuples(st.floats(0, 1), st.integers(1, 64))),
)
def test_parquet(tmp_path_factory, rows, bad_labels, bad_text, damage):
    good = _good(rows)
    ids = [i for i, _, _ in good] + [f"label-{n}" for n in range(len(bad_labels))]
    ids += [f"badtext{n}" for n in range(len(bad_text))]
    texts = [t.encode() for _, t, _ in good] + [f"label {v!r}".encode() for v in bad_labels] + list(bad_text)
    labels = [str(y) for _, _, y in good] + bad_labels + ["1"] * len(bad_text)
    table = pa.table({"id": ids, "text": pa.array(texts, pa.binary()), "label": labels})
    data = write_parquet(table, tmp_path_factory.mktemp("parquet"), damage)
    out = _check(tmp_path_factory.mktemp("out"), data, good)
    if not damage:
        assert out is not None and len(out["task-t"][0]) == len(good)
