"""Fuzz ``score`` with malformed CSV, JSONL and Parquet listings (hypothesis, bounded, a tiny bundle).

For every file, score either scores every good row and rejects each bad one with a reason (the
input rows always equal the scored plus the rejected rows), or stops with one line naming the file.
It never raises anything else and never loses a row.
"""

import json

import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from commerce_lm import names
from commerce_lm.data.readers import InputError
from commerce_lm.steps import score
from tests.helpers.malformed import BAD_CSV, BAD_JSON, ODD, csv_line
from tests.helpers.prepare import write_parquet

# Each example embeds its texts with the tiny encoder: few examples keep the suite fast.
FUZZ = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
GOOD_TEXTS = st.lists(ODD, min_size=1, max_size=8)
# None: the bundle's run's gate (0.2); 1.0: no gate, so that every row's fate can be checked.
GATE = st.sampled_from([None, 1.0])
COLUMNS = {"id": "id", "text": ["title"], "lang": "lang"}  # the tiny bundle reads title and description


@pytest.fixture(scope="module")
def bundle(published) -> str:
    return published["live"]


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> str:
    return str(tmp_path_factory.mktemp("store"))  # shared: a text is embedded once across examples


def _good(texts: list[str]) -> list[tuple[str, str]]:
    """Good listings: unique ids and texts with a word in them, so none is empty or a duplicate."""
    return [(f"good{i}", f"listing {i} {text}") for i, text in enumerate(texts)]


def _score(bundle: str, store: str, out, data, gate, clean: bool) -> pd.DataFrame | None:
    """Score ``data``: the scores, or None when it was refused with one line naming it (never when ``clean``)."""
    try:
        metrics = score.run(bundle, str(data), str(out), store=store, columns=COLUMNS, max_rejected_fraction=gate)
    except InputError as error:
        assert not clean and str(data) in str(error) and "\n" not in str(error)
        return None
    assert metrics["input_rows"] == metrics["scored_rows"] + metrics["rejected_rows"]
    scored = pd.read_parquet(out / score.SCORES_DIR)
    rejected = pd.read_parquet(out / score.REJECTED_DIR)
    assert len(scored) == metrics["scored_rows"] and len(rejected) == metrics["rejected_rows"]
    assert rejected["reason"].notna().all() and scored["id"].is_unique
    assert json.loads((out / names.METRICS_JSON).read_text())["input_rows"] == metrics["input_rows"]
    return scored


@FUZZ
@given(texts=GOOD_TEXTS, bad=st.lists(BAD_CSV, max_size=5), gate=GATE, seed=st.randoms())
def test_csv(tmp_path_factory, bundle, store, texts, bad, gate, seed):
    good = _good(texts)
    # One entry per record, not per line: a good text may hold a line break inside its quotes, and a
    # bad line put there would break that good row, not add one of its own.
    records = [csv_line((i, t, "en")) for i, t in good]
    for n, template in enumerate(bad):  # the prepare-data fuzz cases, a third column as score reads it
        records.insert(seed.randint(0, len(records)), template.replace(b"{id}", f"bad{n}".encode()) + b"\n")
    data = tmp_path_factory.mktemp("csv") / "d.csv"
    data.write_bytes(csv_line(("id", "title", "lang")) + b"".join(records))
    scored = _score(bundle, store, tmp_path_factory.mktemp("out") / "o", data, gate, clean=not bad)
    if scored is not None and not any(b'"' in t for t in bad):  # a broken quote may swallow later rows
        assert {i for i, _ in good} <= set(scored["id"])


@FUZZ
@given(texts=GOOD_TEXTS, bad=st.lists(BAD_JSON, max_size=5), gate=GATE, seed=st.randoms())
def test_jsonl(tmp_path_factory, bundle, store, texts, bad, gate, seed):
    good = _good(texts)
    lines = [json.dumps({"id": i, "title": t, "lang": "en"}, ensure_ascii=False).encode() for i, t in good]
    for n, template in enumerate(bad):
        lines.insert(
            seed.randint(0, len(lines)), template.replace("{id}", f"bad{n}").replace('"text"', '"title"').encode()
        )
    data = tmp_path_factory.mktemp("jsonl") / "d.jsonl"
    data.write_bytes(b"\n".join(lines) + b"\n")
    scored = _score(bundle, store, tmp_path_factory.mktemp("out") / "o", data, gate, clean=not bad)
    if scored is not None:
        assert {i for i, _ in good} <= set(scored["id"])


@FUZZ
@given(
    texts=GOOD_TEXTS,
    bad_text=st.lists(st.sampled_from([b"\xff\xfe", b"ok \xc3", b"\xed\xa0\x80", b"", b"\xe2\x80\x8b"]), max_size=3),
    bad_ids=st.lists(st.sampled_from([None, "", "good0"]), max_size=3),
    gate=GATE,
    damage=st.one_of(st.none(), st.tuples(st.floats(0, 1), st.integers(1, 64))),
)
def test_parquet(tmp_path_factory, bundle, store, texts, bad_text, bad_ids, gate, damage):
    good = _good(texts)
    ids = [i for i, _ in good] + [f"badtext{n}" for n in range(len(bad_text))] + bad_ids
    titles = [t.encode() for _, t in good] + list(bad_text) + [b"a listing with a bad id"] * len(bad_ids)
    table = pa.table(
        {"id": pa.array(ids, pa.string()), "title": pa.array(titles, pa.binary()), "lang": ["en"] * len(ids)}
    )
    data = write_parquet(table, tmp_path_factory.mktemp("parquet"), damage)
    clean = not (bad_text or bad_ids or damage)
    scored = _score(bundle, store, tmp_path_factory.mktemp("out") / "o", data, gate, clean)
    if scored is not None and not damage:
        assert {i for i, _ in good} <= set(scored["id"])
