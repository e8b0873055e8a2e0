"""One split for the whole corpus (issue 23): a text has one split in every dataset that holds it."""

import numpy as np
import pandas as pd
import pytest

from commerce_lm import config, names
from commerce_lm.steps.prepare_data import groups, step
from tests.helpers.prepare import assert_same_as_reference


def _section(data, domain=None, task=None, tasks=()):
    raw = {
        "model": "m",
        "domain": {"data": str(data), "label": "label", **(domain or {})},
        "tasks": [{"name": "t", "data": str(data), "label": "flag", **(task or {})}, *tasks],
        "prepare": {"max_rejected_fraction": 1.0},
    }
    return config.section_for("prepare-data", config.parse_config(raw))


def _prepare(section, folder):
    folder.mkdir(parents=True, exist_ok=True)
    step.prepare_all(section, folder)
    return {ds.name: pd.read_parquet(step.table_path(folder, ds)) for ds in step.datasets(section)}


@pytest.fixture
def listings(tmp_path):
    """The same rows, grouped by seller for the domain and by re-listing for the task: they leaked before.

    Sellers hold 4 listings in a row; a re-listing ties the 4th listing of one seller to the 1st of
    the next, so the corpus's groups are blocks of 8 listings.
    """
    n = 600
    frame = pd.DataFrame(
        {
            "id": [f"r{i}" for i in range(n)],
            "text": [f"listing {i} of its seller" for i in range(n)],
            "seller": [f"s{i // 4}" for i in range(n)],
            "relist": [f"g{i // 8}" if i % 8 in (3, 4) else None for i in range(n)],
            "label": [i % 3 for i in range(n)],
            "flag": [i % 2 for i in range(n)],
        }
    )
    frame.to_parquet(tmp_path / "d.parquet")
    return tmp_path / "d.parquet"


def test_no_text_of_a_tasks_test_split_is_in_the_domains_train_split(tmp_path, listings):
    section = _section(listings, domain={"group_by": ["seller"]}, task={"group_by": ["relist"]})
    tables = _prepare(section, tmp_path / "all")
    both = tables["domain"].merge(tables["task-t"], on="text", suffixes=("_domain", "_task"))
    assert len(both) == 600 and (both["split_domain"] == both["split_task"]).all()
    assert {"train", "test"} <= set(both["split_task"])
    source = pd.read_parquet(listings)[["text", "seller", "relist"]]
    for table in tables.values():  # each dataset's own groups still never cross splits
        grouped = table.merge(source, on="text")
        assert (grouped.groupby("seller")["split"].nunique() == 1).all()
        assert (grouped.groupby("relist")["split"].nunique() == 1).all()
    # Each part alone splits as the whole run does.
    for part, name in (("domain", "domain"), ("task:t", "task-t")):
        alone = _prepare(config.prepare_part(section, part), tmp_path / part)
        pd.testing.assert_frame_equal(alone[name], tables[name])


def test_a_task_reading_the_same_file_and_groups_leaves_the_domain_part_unchanged(listings):
    grouped = {"group_by": ["relist"]}
    one = _section(listings, domain=grouped, task=grouped)
    more = {"name": "u", "data": str(listings), "label": "label", **grouped}
    two = _section(listings, domain=grouped, task=grouped, tasks=[more])
    assert config.prepare_part(one, "domain").fingerprint() == config.prepare_part(two, "domain").fingerprint()
    other = _section(listings, domain=grouped, task=grouped, tasks=[{**more, "group_by": ["seller"]}])
    assert config.prepare_part(other, "domain").fingerprint() != config.prepare_part(one, "domain").fingerprint()


def _split_files(tmp_path, domain_splits, task_splits):
    texts = [f"listing number {i}" for i in range(40)]
    base = {"id": [f"r{i}" for i in range(40)], "text": texts, "label": [i % 2 for i in range(40)]}
    pd.DataFrame({**base, "split": domain_splits}).to_parquet(tmp_path / "domain.parquet")
    pd.DataFrame({**base, "flag": base["label"], "split": task_splits}).to_parquet(tmp_path / "task.parquet")
    raw = {
        "model": "m",
        "domain": {"data": str(tmp_path / "domain.parquet"), "label": "label", "split": "split"},
        "tasks": [{"name": "t", "data": str(tmp_path / "task.parquet"), "label": "flag", "split": "split"}],
        "prepare": {"max_rejected_fraction": 1.0},
    }
    section = config.section_for("prepare-data", config.parse_config(raw))
    step.prepare_all(section, tmp_path)
    return {
        ds.name: (
            pd.read_parquet(step.table_path(tmp_path, ds)),
            pd.read_parquet(tmp_path / names.REJECTED_DIR / f"{ds.name}.parquet"),
        )
        for ds in step.datasets(section)
    }


def test_a_text_two_files_give_different_splits_is_rejected_in_both(tmp_path):
    domain_splits = ["train"] * 30 + ["test"] * 10
    task_splits = ["train"] * 29 + ["test"] * 11  # r29 is train for the domain, test for the task
    for table, rejected in _split_files(tmp_path, domain_splits, task_splits).values():
        assert "r29" not in set(table["id"])
        assert rejected[["row", "reason", "column"]].values.tolist() == [[29, "conflicting_splits", "split"]]
        assert len(table) == 39


def test_a_text_without_a_split_takes_the_one_another_file_gives_it(tmp_path):
    task_splits = ["train"] * 20 + ["test"] * 10 + ["validation"] * 10
    tables = _split_files(tmp_path, [None] * 40, task_splits)
    domain, task = tables["domain"][0], tables["task-t"][0]
    assert domain["split"].tolist() == task["split"].tolist() == task_splits


def test_joined_groups_given_and_conflicting_splits_are_the_per_row_peers(tmp_path, listings):
    """The DuckDB step and the per-row peer (a union-find) join groups and give splits alike."""
    frame = pd.read_parquet(listings)
    # The first 48 listings chain: each re-listing ties two sellers, one after another.
    frame.loc[:47, "relist"] = [f"c{(i + 2) // 4}" for i in range(48)]
    frame["split_a"] = [("train", "test", None, "test")[i % 4] if i < 90 else None for i in range(len(frame))]
    given = frame.head(120).copy()  # the task's file gives splits; rows 0..89 disagree with the domain's now and then
    given["split"] = [("train", "test", "validation", "train", "test", "train")[i % 6] for i in range(len(given))]
    frame.to_parquet(tmp_path / "a.parquet", row_group_size=50)
    given.to_csv(tmp_path / "b.csv", index=False)
    raw = {
        "model": "m",
        "domain": {"data": str(tmp_path / "a.parquet"), "label": "label", "split": "split_a", "group_by": ["seller"]},
        "tasks": [{"name": "t", "data": str(tmp_path / "b.csv"), "label": "flag", "group_by": ["relist"]}],
        "similarity": [{"name": "s", "data": str(tmp_path / "a.parquet"), "group": "relist", "group_by": ["seller"]}],
        "prepare": {"max_rejected_fraction": 1.0, "batch_rows": 97},
    }
    stats = assert_same_as_reference(config.parse_config(raw), tmp_path)
    assert stats["domain"]["rejected_by_reason"]["conflicting_splits"] > 10
    assert stats["task-t"]["rejected_by_reason"] == stats["domain"]["rejected_by_reason"]


def _union_find_roots(a, b, n):
    parent = list(range(n))

    def root(x):
        while parent[x] != x:
            x = parent[x]
        return x

    for x, y in zip(a.tolist(), b.tolist(), strict=True):
        low, high = sorted((root(x), root(y)))
        parent[high] = low
    return [root(x) for x in range(n)]


def test_the_components_of_joined_groups_are_a_union_finds():
    rng = np.random.default_rng(0)
    for _ in range(200):
        n, m = int(rng.integers(1, 40)), int(rng.integers(0, 60))
        a, b = rng.integers(0, n, m), rng.integers(0, n, m)
        assert groups.roots(a, b, n).tolist() == _union_find_roots(a, b, n)
    chain = np.arange(99_999)  # 100k groups in a chain, joined from the far end: a few rounds, not 100k
    assert set(groups.roots(chain[::-1].copy(), chain[::-1] + 1, 100_000).tolist()) == {0}
