"""The launch settings have their own section (``finetune.launch``, ``baseline.launch``); configs written
before it keep working, and the canonical JSON, hence every fingerprint and cache key, is unchanged."""

import json

import pytest

from commerce_lm.config import ConfigError, FinetuneConfig, TrainConfig, load_config, section_for
from commerce_lm.config.launch import LaunchConfig

BASE = """
model: some/model
domain: {data: d.parquet, label: y}
tasks: [{name: t, data: d.parquet, label: z}]
"""
NEW = (
    BASE
    + """
finetune: {epochs: 2, launch: {num_procs: 4, num_nodes: 2, trainjob_image: img, checkpoint_every: 10}}
baseline: {launch: {num_gpus: 8}}
"""
)
OLD = (
    BASE
    + """
finetune: {epochs: 2, num_procs: 4, num_nodes: 2, trainjob_image: img, checkpoint_every: 10}
baseline: {num_gpus: 8}
"""
)


def _load(tmp_path, text, overrides=None):
    path = tmp_path / "run.yaml"
    path.write_text(text)
    return load_config(path, overrides)


def test_the_launch_settings_are_their_own_section(tmp_path):
    cfg = _load(tmp_path, NEW)
    assert cfg.finetune.launch == LaunchConfig(num_procs=4, num_nodes=2, trainjob_image="img", checkpoint_every=10)
    assert cfg.baseline.launch.num_gpus == 8 and cfg.baseline.epochs == 5.0
    # Every setting of the trainer is either the trainer's own or in launch, never both.
    assert not set(LaunchConfig.model_fields) & set(TrainConfig.model_fields)


def test_a_config_written_before_the_section_keeps_working_and_its_fingerprints(tmp_path):
    old, new = _load(tmp_path, OLD), _load(tmp_path, NEW)
    assert old == new
    assert old.fingerprint() == new.fingerprint()
    for step in ("finetune-encoder", "finetune-baseline"):
        assert section_for(step, old).to_json() == section_for(step, new).to_json()
    # ...and so does an override in the old spelling.
    assert _load(tmp_path, BASE, ["finetune.num_procs=4"]).finetune.launch.num_procs == 4


def test_the_canonical_json_spells_the_launch_settings_as_before(tmp_path):
    finetune = json.loads(_load(tmp_path, NEW).to_json())["finetune"]
    assert "launch" not in finetune
    assert finetune["num_procs"] == 4 and finetune["trainjob_image"] == "img" and finetune["epochs"] == 2
    # The JSON a step receives reads back as the same settings.
    cfg = _load(tmp_path, NEW)
    assert FinetuneConfig.model_validate(finetune) == cfg.finetune


def test_a_setting_given_both_ways_is_one_line_naming_the_new_spelling(tmp_path):
    with pytest.raises(ConfigError) as error:
        _load(tmp_path, NEW, ["finetune.num_procs=2"])
    message = str(error.value).splitlines()[1]
    assert "['num_procs'] given twice" in message and "in launch" in message and message.startswith("  finetune:")


def test_a_bad_launch_setting_is_named_where_it_now_lives(tmp_path):
    with pytest.raises(ConfigError, match=r"finetune\.launch\.num_nodes"):
        _load(tmp_path, BASE + "finetune: {launch: {num_nodes: 0}}\n")
    with pytest.raises(ConfigError, match=r"finetune\.launch\.trainjob_imag: unknown key"):
        _load(tmp_path, BASE + "finetune: {launch: {trainjob_imag: x}}\n")
