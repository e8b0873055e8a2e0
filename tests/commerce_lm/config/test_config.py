import pytest

from commerce_lm.config import ConfigError, config_from_json, load_config
from tests.helpers.paths import REPO


@pytest.mark.parametrize("name", ["demo.yaml", "tiny.yaml", "xlmr-base.yaml"])
def test_shipped_configs_validate(name):
    cfg = load_config(REPO / "configs" / name)
    assert cfg.tasks and cfg.domain.label
    assert config_from_json(cfg.to_json()) == cfg


def test_xlmr_config_names_the_production_model():
    assert load_config(REPO / "configs" / "xlmr-base.yaml").model == "FacebookAI/xlm-roberta-base"


def _write(tmp_path, text):
    path = tmp_path / "run.yaml"
    path.write_text(text)
    return path


BASE = """
model: some/model
domain: {data: d.parquet, label: y}
tasks: [{name: t, data: d.parquet, label: z}]
"""


def test_unknown_key_is_named_with_the_file(tmp_path):
    path = _write(tmp_path, BASE + "finetune: {zero_stag: 2}\n")
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert str(path) in str(error.value)
    assert "finetune.zero_stag: unknown key" in str(error.value)


def test_wrong_type_is_named(tmp_path):
    with pytest.raises(ConfigError, match=r"finetune\.epochs"):
        load_config(_write(tmp_path, BASE + "finetune: {epochs: lots}\n"))


def test_dotted_override_and_relative_paths(tmp_path):
    cfg = load_config(_write(tmp_path, BASE), ["finetune.zero_stage=3", "embed.pooling=mean"])
    assert cfg.finetune.zero_stage == 3 and cfg.embed.pooling == "mean"
    assert cfg.domain.data == str(tmp_path / "d.parquet")
    assert cfg.model == "some/model"  # not a local folder: a hub id stays as written


def test_fingerprint_changes_with_any_setting(tmp_path):
    path = _write(tmp_path, BASE)
    assert load_config(path).fingerprint() == load_config(path).fingerprint()
    assert load_config(path).fingerprint() != load_config(path, ["seed=1"]).fingerprint()


def test_duplicate_task_names_rejected(tmp_path):
    text = BASE.replace(
        "tasks: [{name: t, data: d.parquet, label: z}]",
        "tasks: [{name: t, data: d.parquet, label: z}, {name: t, data: e.parquet, label: z}]",
    )
    with pytest.raises(ConfigError, match="duplicate names"):
        load_config(_write(tmp_path, text))
