"""``prepare-data --part``: the domain, the datasets and each task are prepared apart, each its own artifact."""

import json

import pandas as pd

from commerce_lm import names
from commerce_lm.cli import main
from commerce_lm.config import prepare_part, section_for


def test_each_part_holds_only_its_datasets(tmp_path, tiny_run_dir, tiny_cfg, tiny_prepared):
    config = str(tiny_run_dir / "tiny.yaml")
    for part in ("domain", "datasets", "task:prohibited"):
        assert main(["prepare-data", "--config", config, "--part", part, "--output", str(tmp_path / part)]) == 0
    domain, datasets, task = (tmp_path / p for p in ("domain", "datasets", "task:prohibited"))
    assert (domain / names.DOMAIN_TABLE).exists() and (domain / names.LABELS_JSON).exists()
    assert not (domain / names.TASKS_DIR).exists() and set(json.loads((domain / names.STATS_JSON).read_text())) == {
        "domain"
    }
    assert not (datasets / names.DOMAIN_TABLE).exists()
    assert sorted(p.name for p in (datasets / names.TASKS_DIR).iterdir()) == [
        "offplatform.parquet",
        "prohibited.parquet",
    ]
    assert [p.name for p in (task / names.TASKS_DIR).iterdir()] == ["prohibited.parquet"]
    # Prepared apart, every table is the one the whole preparation writes.
    for part_dir, table in (
        (domain, names.DOMAIN_TABLE),
        (datasets, f"{names.TASKS_DIR}/offplatform.parquet"),
        (datasets, f"{names.SIMILARITY_DIR}/relisted.parquet"),
        (datasets, names.CORPUS_TABLE),
        (task, f"{names.TASKS_DIR}/prohibited.parquet"),
    ):
        pd.testing.assert_frame_equal(pd.read_parquet(part_dir / table), pd.read_parquet(tiny_prepared / table))


def test_the_component_json_of_a_part_reads_back(tiny_cfg, tmp_path):
    section = prepare_part(section_for("prepare-data", tiny_cfg), "task:offplatform")
    out = tmp_path / "offplatform"
    assert main(["prepare-data", "--config-json", section.to_json(), "--output", str(out)]) == 0
    assert [p.name for p in (out / names.TASKS_DIR).iterdir()] == ["offplatform.parquet"]
