"""train-heads trains only what changed: a head whose rows, vectors and settings are unchanged is read back."""

import pandas as pd
import pytest

from commerce_lm import names
from commerce_lm.config import section_for
from commerce_lm.steps import extract_embeddings, train_heads


@pytest.fixture(scope="module")
def embeddings(tmp_path_factory, tiny_cfg, tiny_prepared, tiny_run_dir):
    out = tmp_path_factory.mktemp("emb") / "plm"
    extract_embeddings.run(section_for("extract-embeddings", tiny_cfg), tiny_cfg.model, str(tiny_prepared), str(out))
    return out


@pytest.fixture
def heads(tmp_path, monkeypatch, tiny_cfg, tiny_prepared, embeddings):
    """Runs train-heads into a named folder with its own empty cache; returns every output file's bytes."""
    monkeypatch.setenv("COMMERCE_LM_CACHE", str(tmp_path / "cache"))

    def run(name, section=None, prepared=tiny_prepared):
        out = tmp_path / name
        section = section or section_for("train-heads", tiny_cfg)
        train_heads.run(section, str(prepared), {"plm": str(embeddings)}, str(out))
        return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}

    return run


def _count_fits(monkeypatch):
    fitted = []
    real = train_heads.fit_head
    monkeypatch.setattr(train_heads, "fit_head", lambda *a: fitted.append(a) or real(*a))
    return fitted


def test_a_second_run_on_unchanged_inputs_trains_nothing_and_writes_the_same_bytes(heads, monkeypatch):
    first = heads("first")
    fitted = _count_fits(monkeypatch)
    assert heads("second") == first
    assert fitted == []


def test_a_task_whose_rows_changed_is_trained_again_and_only_that_task(heads, monkeypatch, tmp_path, tiny_prepared):
    heads("first")
    changed = tmp_path / "prepared"
    for file in tiny_prepared.rglob("*"):
        if file.is_file():
            (changed / file.relative_to(tiny_prepared)).parent.mkdir(parents=True, exist_ok=True)
            (changed / file.relative_to(tiny_prepared)).write_bytes(file.read_bytes())
    task = changed / names.TASKS_DIR / "prohibited.parquet"
    table = pd.read_parquet(task)
    table.loc[table["split"] == "train", "label"] = 1 - table.loc[table["split"] == "train", "label"]
    table.to_parquet(task, index=False)
    fitted = _count_fits(monkeypatch)
    heads("second", prepared=changed)
    assert len(fitted) == 1
    assert list(fitted[0][1][1]) == list(table.query("split == 'train'")["label"])


def test_changed_head_settings_train_every_head_again(heads, monkeypatch, tiny_cfg):
    first = heads("first")
    fitted = _count_fits(monkeypatch)
    section = section_for("train-heads", tiny_cfg)
    section = section.model_copy(update={"heads": section.heads.model_copy(update={"c_grid": [0.5]})})
    second = heads("second", section=section)
    assert len(fitted) == len(tiny_cfg.tasks)
    assert second[names.METRICS_JSON] != first[names.METRICS_JSON]
