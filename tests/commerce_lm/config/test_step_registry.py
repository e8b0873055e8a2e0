"""Every step is declared once (``commerce_lm.config.STEPS``); its command, section and code version follow."""

import importlib
import json

import pytest

from commerce_lm import config
from commerce_lm.cli import main
from commerce_lm.config import Step, StepSection
from commerce_lm.launch import jobspec
from commerce_lm_pipelines.versions import step_code_versions

TOY_MODULE = """
import json
import os


def run(section, prepared, output):
    os.makedirs(output, exist_ok=True)
    with open(os.path.join(output, "toy.json"), "w") as handle:
        json.dump({"seed": section.seed, "prepared": prepared}, handle)
    return {"seed": section.seed}
"""


class ToySection(StepSection):
    seed: int


@pytest.fixture
def toy_step(tmp_path, monkeypatch):
    """A step registered the way a new one is: its library module and its descriptor, nothing else."""
    (tmp_path / "toy_steps").mkdir()
    (tmp_path / "toy_steps" / "__init__.py").write_text("")
    (tmp_path / "toy_steps" / "toy.py").write_text(TOY_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    toy = Step("toy-step", ToySection, "toy_steps.toy", "a toy step for the registry's test", ("prepared",))
    monkeypatch.setattr(config, "STEPS", (*config.STEPS, toy))
    # SECTIONS is derived from STEPS when config is imported; the registered step joins it the same way.
    monkeypatch.setitem(config.SECTIONS, toy.name, toy.section)
    return toy


def test_the_maps_by_step_name_come_from_the_registry():
    names = [step.name for step in config.STEPS]
    assert len(set(names)) == len(names)
    assert {step.name: step.section for step in config.STEPS} == config.SECTIONS
    assert set(step_code_versions()) == set(names)
    assert jobspec.STEPS == {"finetune-encoder": "finetune", "finetune-baseline": "baseline"}
    for step in config.STEPS:
        assert callable(importlib.import_module(step.module).run), step.module


def test_a_registered_step_gets_its_command(toy_step, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([toy_step.name, "--help"])
    assert exit_.value.code == 0
    shown = capsys.readouterr().out
    assert toy_step.help in shown and "--prepared" in shown and "--output" in shown
    out = tmp_path / "out"
    code = main([toy_step.name, "--config-json", json.dumps({"seed": 5}), "--prepared", "p", "--output", str(out)])
    assert code == 0
    assert json.loads(capsys.readouterr().out) == {"seed": 5}
    assert json.loads((out / "toy.json").read_text()) == {"seed": 5, "prepared": "p"}


def test_a_registered_step_gets_a_section_and_a_code_version(toy_step, tiny_cfg):
    assert config.section_for(toy_step.name, tiny_cfg) == ToySection(seed=tiny_cfg.seed)
    versions = step_code_versions()
    assert toy_step.name in versions and len(versions[toy_step.name]) == 16


def test_a_step_unknown_to_the_registry_has_no_command(capsys):
    with pytest.raises(SystemExit):
        main(["toy-step", "--help"])
    assert "invalid choice: 'toy-step'" in capsys.readouterr().err
