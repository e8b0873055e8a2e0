"""Each step's section of the run config: what it holds, how it is cut, how it travels as JSON."""

import json

import pytest

from commerce_lm.config import (
    SECTIONS,
    ConfigError,
    FinetuneEncoderSection,
    RunConfig,
    load_config,
    prepare_part,
    section_for,
    section_from_json,
)
from tests.helpers.paths import REPO


@pytest.fixture(scope="module")
def demo() -> RunConfig:
    return load_config(REPO / "configs" / "demo.yaml")


def test_every_section_takes_its_keys_from_the_run_config(demo):
    for step, section_type in SECTIONS.items():
        section = section_for(step, demo)
        # A run config's own key, or one it derives (``split_groups``, of all its datasets).
        assert all(hasattr(demo, key) for key in section_type.model_fields), step
        for key in section_type.model_fields:
            if getattr(demo, key) is not None:
                assert getattr(section, key).__repr__() == getattr(demo, key).__repr__(), (step, key)


def test_the_domain_finetune_never_sees_tasks(demo):
    section = section_for("finetune-encoder", demo)
    assert isinstance(section, FinetuneEncoderSection)
    assert set(json.loads(section.to_json())) == {"model", "seed", "domain", "finetune"}
    other_tasks = demo.model_copy(update={"tasks": demo.tasks[:1], "report": demo.report.model_copy()})
    assert section_for("finetune-encoder", other_tasks).fingerprint() == section.fingerprint()
    assert section_for("train-heads", other_tasks).fingerprint() != section_for("train-heads", demo).fingerprint()


def test_a_section_reads_back_from_its_json_or_from_the_whole_config(demo):
    for step in SECTIONS:
        section = section_for(step, demo)
        assert section_from_json(step, section.to_json()) == section
        assert section_from_json(step, demo.to_json()) == section


def test_a_bad_section_names_the_key():
    with pytest.raises(ConfigError, match="finetune.epochs"):
        section_from_json(
            "finetune-encoder",
            json.dumps({"model": "m", "seed": 1, "domain": {"data": "d", "label": "y"}, "finetune": {"epochs": -1}}),
        )


def test_prepare_parts_split_the_data(demo):
    whole = section_for("prepare-data", demo)
    domain = prepare_part(whole, "domain")
    assert domain.domain == demo.domain and not domain.tasks and not domain.similarity
    datasets = prepare_part(whole, "datasets")
    assert datasets.domain is None and datasets.tasks == demo.tasks and datasets.similarity == demo.similarity
    one = prepare_part(whole, "task:counterfeit")
    assert [t.name for t in one.tasks] == ["counterfeit"] and one.domain is None and not one.similarity
    # Adding a task changes neither the domain part nor another task's part.
    fewer = section_for("prepare-data", demo.model_copy(update={"tasks": demo.tasks[1:]}))
    assert prepare_part(fewer, "domain") == domain
    assert prepare_part(fewer, "task:counterfeit") == one
    with pytest.raises(ValueError, match="task:prohibited"):
        prepare_part(whole, "task:nope")
