"""Property-based tests of the loaders and the splitter (hypothesis)."""

import json

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from commerce_lm import config, names
from commerce_lm.data import readers, splits
from commerce_lm.steps.prepare_data import step

TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=40)
SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _write(frame: pd.DataFrame, path, fmt: str) -> None:
    if fmt == "parquet":
        frame.to_parquet(path, index=False)
    elif fmt == "csv":
        frame.to_csv(path, index=False)
    else:
        path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in frame.to_dict("records")) + "\n")


@SETTINGS
@given(
    texts=st.lists(TEXT, min_size=1, max_size=30),
    fmt=st.sampled_from(["parquet", "csv", "jsonl"]),
    batch=st.integers(1, 7),
)
def test_loaders_return_every_row_unchanged_in_order(tmp_path_factory, texts, fmt, batch):
    folder = tmp_path_factory.mktemp("load")
    frame = pd.DataFrame({"id": [f"r{i}" for i in range(len(texts))], "text": texts})
    path = folder / f"data.{fmt}"
    _write(frame, path, fmt)
    got = pd.DataFrame([r for _, r in readers.iter_records(str(path), ["id", "text"], batch_rows=batch)])
    assert list(got["id"]) == list(frame["id"]) and list(got["_row"]) == list(range(len(texts)))
    assert list(got["text"]) == texts


ROWS = st.lists(
    st.tuples(st.integers(0, 10_000), st.sampled_from([None, "g1", "g2", "g3", "g4"]), st.integers(0, 1)),
    min_size=1,
    max_size=40,
    unique_by=lambda r: r[0],
)


def _prepare(folder, rows):
    data = folder / "d.parquet"
    pd.DataFrame(
        {
            "id": [f"r{n}" for n, _, _ in rows],
            "text": [f"listing number {n}" for n, _, _ in rows],
            "group": [g for _, g, _ in rows],
            "label": [y for _, _, y in rows],
        }
    ).to_parquet(data)
    cfg = config.parse_config(
        {
            "model": "m",
            "domain": {"data": str(data), "label": "label", "group_by": ["group"]},
            "tasks": [{"name": "t", "data": str(data), "label": "label", "group_by": ["group"]}],
            "similarity": [{"name": "s", "data": str(data), "group": "group"}],
        }
    )
    section = config.section_for("prepare-data", cfg)
    step.prepare_all(section, folder)
    return {ds.name: pd.read_parquet(step.table_path(folder, ds)) for ds in step.datasets(section)}


@SETTINGS
@given(rows=ROWS)
def test_split_is_deterministic_and_groups_stay_together(tmp_path_factory, rows):
    first = _prepare(tmp_path_factory.mktemp("a"), rows)
    second = _prepare(tmp_path_factory.mktemp("b"), rows)
    for name, table in first.items():
        pd.testing.assert_frame_equal(table, second[name])
    similarity = first["similarity-s"].dropna(subset=["group"])
    assert (similarity.groupby("group")["split"].nunique() <= 1).all()
    task = first["task-t"].merge(pd.DataFrame({"id": [f"r{n}" for n, _, _ in rows], "g": [g for _, g, _ in rows]}))
    assert (task.dropna(subset=["g"]).groupby("g")["split"].nunique() <= 1).all()
    assert (task.groupby("text")["split"].nunique() == 1).all()


@SETTINGS
@given(rows=ROWS, extra=ROWS)
def test_adding_rows_never_moves_an_existing_row(tmp_path_factory, rows, extra):
    known = {n for n, _, _ in rows}
    grown = rows + [r for r in extra if r[0] not in known]
    before = _prepare(tmp_path_factory.mktemp("before"), rows)
    after = _prepare(tmp_path_factory.mktemp("after"), grown)
    for name, table in before.items():
        moved = table.merge(after[name], on="id", suffixes=("_before", "_after"))
        assert (moved["split_before"] == moved["split_after"]).all(), name


@given(key=st.text(max_size=30), val=st.floats(0, 0.4), test=st.floats(0.01, 0.5))
def test_assign_split_is_a_pure_function(key, val, test):
    assert splits.assign_split(key, val, test) == splits.assign_split(key, val, test)
    assert splits.assign_split(key, val, test) in names.SPLITS
