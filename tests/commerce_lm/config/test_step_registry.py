"""Every step is declared once (``commerce_lm.config.STEPS``); its command, section, code version and
place in the compiled pipeline follow.

The toy step here is added as docs/architecture.md ("Adding a step") says: a library module, a
descriptor, a component; nothing else is edited.
"""

import importlib
import json
import re
import sys

import pytest
import yaml
from kfp import compiler

import commerce_lm.config.steps
from commerce_lm import config
from commerce_lm.cli import main
from commerce_lm.config import Step, section_reading
from commerce_lm.launch import jobspec
from commerce_lm_pipelines.pipeline import build_pipeline, pipeline_arguments
from commerce_lm_pipelines.versions import step_code_versions
from tests.helpers.paths import REPO

GUIDE = (REPO / "docs" / "architecture.md").read_text().split("## Adding a step")[1].split("\n## ")[0]

TOY_MODULE = """
import json
import os


def run(section, prepared, output):
    os.makedirs(output, exist_ok=True)
    with open(os.path.join(output, "toy.json"), "w") as handle:
        json.dump({"seed": section.seed, "prepared": prepared}, handle)
    return {"seed": section.seed}
"""


def test_the_guide_names_three_files():
    files = re.findall(r"^\d\. `([^`]+)`", GUIDE, flags=re.MULTILINE)
    library, descriptor, component = "src/commerce_lm/steps/NAME.py", "src/commerce_lm/config/steps.py", "NAME.py"
    assert files == [library, descriptor, f"src/commerce_lm_components/{component}"]


@pytest.fixture
def toy(tmp_path, monkeypatch):
    """A step registered the way a new one is: its library module, its descriptor and its component."""
    (tmp_path / "toy_steps").mkdir()
    (tmp_path / "toy_steps" / "__init__.py").write_text("")
    (tmp_path / "toy_steps" / "toy.py").write_text(TOY_MODULE)
    # Its component file is the guide's, for a step named toy-step whose output is named toy.
    (component,) = re.findall(r"```python\n(.*?)```", GUIDE, flags=re.DOTALL)
    component = component.replace('"NAME"', '"toy-step"').replace("NAME_OUT", "toy").replace("NAME", "toy_step")
    (tmp_path / "toy_components").mkdir()
    (tmp_path / "toy_components" / "__init__.py").write_text("")
    (tmp_path / "toy_components" / "toy_step.py").write_text(component)
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    toy = Step(
        "toy-step", section_reading("seed"), "toy_steps.toy", "a toy step for the registry's test",
        inputs=("prepared",), outputs=("toy",),
    )  # fmt: skip
    # What the descriptor's line in config/steps.py does: STEPS holds it (both names of the tuple)...
    for module in (config, commerce_lm.config.steps):
        monkeypatch.setattr(module, "STEPS", (*config.STEPS, toy))
    # ...and SECTIONS, derived from STEPS when config is imported, holds its section.
    monkeypatch.setitem(config.SECTIONS, toy.name, toy.section)
    # Found where its file src/commerce_lm_components/toy_step.py would be.
    component_module = importlib.import_module("toy_components.toy_step")
    monkeypatch.setitem(sys.modules, "commerce_lm_components.toy_step", component_module)
    yield toy
    # The next test's toy packages live in its own folder: forget these.
    for name in [m for m in sys.modules if m.split(".")[0] in ("toy_steps", "toy_components")]:
        del sys.modules[name]


def test_the_maps_by_step_name_come_from_the_registry():
    names = [step.name for step in config.STEPS]
    assert len(set(names)) == len(names)
    assert {step.name: step.section for step in config.STEPS} == config.SECTIONS
    assert set(step_code_versions()) == set(names)
    assert jobspec.STEPS == {"finetune-encoder": "finetune", "finetune-baseline": "baseline"}
    for step in config.STEPS:
        assert callable(importlib.import_module(step.module).run), step.module


def test_a_registered_step_gets_its_command(toy, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([toy.name, "--help"])
    assert exit_.value.code == 0
    shown = capsys.readouterr().out
    assert toy.help in shown and "--prepared" in shown and "--output" in shown
    out = tmp_path / "out"
    code = main([toy.name, "--config-json", json.dumps({"seed": 5}), "--prepared", "p", "--output", str(out)])
    assert code == 0
    assert json.loads(capsys.readouterr().out) == {"seed": 5}
    assert json.loads((out / "toy.json").read_text()) == {"seed": 5, "prepared": "p"}


def test_a_registered_step_gets_a_section_and_a_code_version(toy, tiny_cfg):
    section = config.section_for(toy.name, tiny_cfg)
    assert section.to_json() == json.dumps({"seed": tiny_cfg.seed})
    versions = step_code_versions()
    assert toy.name in versions and len(versions[toy.name]) == 16


def test_a_step_unknown_to_the_registry_has_no_command(capsys):
    with pytest.raises(SystemExit):
        main(["toy-step", "--help"])
    assert "invalid choice: 'toy-step'" in capsys.readouterr().err


def test_a_registered_step_joins_the_compiled_pipeline(toy, tmp_path, tiny_cfg):
    path = tmp_path / "pipeline.yaml"
    compiler.Compiler().compile(build_pipeline(cluster=True), package_path=str(path))
    spec, platform = yaml.safe_load_all(path.read_text())
    task = spec["root"]["dag"]["tasks"]["toy-step"]
    assert spec["root"]["inputDefinitions"]["parameters"]["toy_step_section"]["parameterType"] == "STRING"
    parameters = task["inputs"]["parameters"]
    assert parameters["section_json"] == {"componentInputParameter": "toy_step_section"}
    assert parameters["code_version"]["runtimeValue"]["constant"] == step_code_versions()["toy-step"]
    # It reads the prepared datasets: the output of the prepare-data task that the heads read too.
    prepared = task["inputs"]["artifacts"]["prepared"]["taskOutputArtifact"]
    heads_prepared = spec["root"]["dag"]["tasks"]["train-heads"]["inputs"]["artifacts"]["prepared"]
    assert prepared == heads_prepared["taskOutputArtifact"]
    assert task["cachingOptions"] == {"enableCache": True}
    assert "toy" in spec["components"]["comp-toy-step"]["outputDefinitions"]["artifacts"]
    program = " ".join(spec["deploymentSpec"]["executors"]["exec-toy-step"]["container"]["command"])
    assert 'run_step("toy-step"' in program
    # On a cluster it runs hardened, as every step does.
    executors = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    assert executors["exec-toy-step"]["securityContext"]["runAsNonRoot"] is True
    # A run hands it its section.
    assert json.loads(pipeline_arguments(tiny_cfg)["toy_step_section"]) == {"seed": tiny_cfg.seed}


def test_a_step_reading_what_no_step_makes_is_refused(toy, monkeypatch):
    lost = Step("lost-step", section_reading("seed"), "toy_steps.toy", "reads nothing made", inputs=("nowhere",))
    for module in (config, commerce_lm.config.steps):
        monkeypatch.setattr(module, "STEPS", (*config.STEPS, lost))
    with pytest.raises(ValueError, match=r"lost-step: no step makes \['nowhere'\]"):
        build_pipeline(cluster=False)


def test_a_section_of_keys_the_run_config_lacks_is_refused():
    with pytest.raises(KeyError, match="'sed'"):
        section_reading("seed", "sed")


READS_EVERYTHING = """
from kfp import dsl
from kfp.dsl import Artifact, Input, Output


@dsl.component(base_image="python:3.11", install_kfp_package=False)
def reads_everything(section_json: str, code_version: str, {inputs}, seen: Output[Artifact]):
    pass
"""


def test_a_declared_step_may_read_every_output_of_the_hand_wired_steps(toy, tmp_path, monkeypatch):
    from commerce_lm_pipelines.declared import WIRED_BY_HAND

    # Every output but the baselines', which exist only inside their loop over tasks.
    made = [out for step in config.STEPS if step.name in WIRED_BY_HAND for out in step.outputs if out != "baseline"]
    inputs = ", ".join(f"{name.replace('-', '_')}: Input[Artifact]" for name in made)
    (tmp_path / "toy_components" / "reads_everything.py").write_text(READS_EVERYTHING.format(inputs=inputs))
    component = importlib.import_module("toy_components.reads_everything")
    monkeypatch.setitem(sys.modules, "commerce_lm_components.reads_everything", component)
    step = Step("reads-everything", section_reading("seed"), "toy_steps.toy", "reads all", inputs=tuple(made))
    for module in (config, commerce_lm.config.steps):
        monkeypatch.setattr(module, "STEPS", (*config.STEPS, step))
    monkeypatch.setitem(config.SECTIONS, step.name, step.section)
    path = tmp_path / "pipeline.yaml"
    compiler.Compiler().compile(build_pipeline(cluster=False), package_path=str(path))
    spec = next(yaml.safe_load_all(path.read_text()))
    producers = {
        name: value["taskOutputArtifact"]["producerTask"]
        for name, value in spec["root"]["dag"]["tasks"]["reads-everything"]["inputs"]["artifacts"].items()
    }
    assert set(producers) == {name.replace("-", "_") for name in made}
    assert producers["knn"] == "evaluate-knn" and producers["report"] == "build-report"
    assert producers["finetuned"] == "finetune-encoder" and producers["plm_embeddings"] == "gather-embeddings"
