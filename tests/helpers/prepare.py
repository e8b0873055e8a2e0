"""Run the passes of prepare-data on one file (no trainability gate) and read them back; compare with the peer."""

import json
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from commerce_lm import config, names
from commerce_lm.steps import prepare_data
from commerce_lm.steps.prepare_data import step
from tests.commerce_lm.steps.prepare_data import prepare_reference


def prepare_tables(folder, data, *, domain=None, task=None, similarity=None, **prepare):
    """``{dataset: (accepted, rejected, stats)}`` plus ``labels``; counts are checked to balance."""
    raw = {
        "model": "m",
        "domain": {"data": str(data), "label": "label", **(domain or {})},
        "tasks": [{"name": "t", "data": str(data), "label": "label", **(task or {})}],
        "prepare": {"max_rejected_fraction": 1.0, **prepare},
    }
    if similarity is not None:
        raw["similarity"] = [{"name": "s", "data": str(data), **similarity}]
    cfg = config.section_for("prepare-data", config.parse_config(raw))
    every, labels, _ = step.prepare_all(cfg, folder)
    out = {}
    for ds in step.datasets(cfg):
        stats = every[ds.name]
        assert stats["input_rows"] == stats["accepted_rows"] + stats["rejected_rows"] + stats["sampled_out_rows"]
        rejected = pd.read_parquet(folder / names.REJECTED_DIR / f"{ds.name}.parquet")
        out[ds.name] = (pd.read_parquet(step.table_path(folder, ds)), rejected, stats)
    out["labels"] = labels
    return out


def reference_tables(folder: Path) -> dict[str, object]:
    """Every table and JSON file a prepared folder holds, by path."""
    found: dict[str, object] = {}
    for path in sorted(folder.rglob("*.parquet")):
        found[str(path.relative_to(folder))] = pq.read_table(path).to_pandas()
    for name in (names.STATS_JSON, names.LABELS_JSON):
        if (folder / name).exists():  # a part without the domain has no labels
            found[name] = json.loads((folder / name).read_text())
    return found


def assert_same_as_reference(cfg: config.RunConfig | config.PrepareSection, tmp_path: Path) -> dict:
    """Prepare ``cfg`` with the step and with the per-row peer; every table must be equal. Returns the stats."""
    section = cfg if isinstance(cfg, config.PrepareSection) else config.section_for("prepare-data", cfg)
    prepare_data.run(section, str(tmp_path / "new"))
    prepare_reference.run(section, tmp_path / "reference")
    return assert_same_tables(tmp_path / "new", tmp_path / "reference")[names.STATS_JSON]


def assert_same_tables(new_dir: Path, reference_dir: Path) -> dict:
    """Every table and JSON of two prepare-data folders must be equal. Returns the reference's."""
    new, reference = reference_tables(new_dir), reference_tables(reference_dir)
    assert sorted(new) == sorted(reference)
    for name, expected in reference.items():
        if isinstance(expected, pd.DataFrame):
            pd.testing.assert_frame_equal(new[name], expected, obj=name)
        else:
            assert new[name] == expected, name
    return reference


def write_parquet(table, folder: Path, damage: tuple[float, int] | None):  # noqa: ANN001 - a pyarrow Table
    """Write ``table`` as small-row-group Parquet with page checksums; ``damage`` zeroes bytes.

    Args:
        table: The rows.
        folder: Where ``d.parquet`` goes.
        damage: ``(where, how many)``: zero ``how many`` bytes from ``where`` (a fraction of the file).
    """
    import pyarrow.parquet as pq

    data = folder / "d.parquet"
    pq.write_table(table, data, write_page_checksum=True, row_group_size=4)
    if damage:
        raw = bytearray(data.read_bytes())
        start = int(damage[0] * (len(raw) - 1))
        raw[start : start + damage[1]] = bytes(len(raw[start : start + damage[1]]))
        data.write_bytes(bytes(raw))
    return data
