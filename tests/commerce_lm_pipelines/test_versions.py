"""Per-step code versions follow exactly the modules a step imports."""

import importlib

import pytest

from commerce_lm.config import OBJECTIVES
from commerce_lm_pipelines.versions import code_version, module_closure, package_data, step_code_versions

PACKAGE = {
    "__init__.py": "",
    "names.py": "DONE = '_COMPLETE'\n",
    "engine/__init__.py": "",
    "engine/core.py": "from fakelib import names\n",
    "engine/templates/page.html": "<p>{{ x }}</p>\n",
    "steps/__init__.py": "",
    "steps/one.py": "from fakelib.engine import core\n\ndef run():\n    import fakelib.lazy\n",
    "steps/two.py": "from fakelib import names\n",
    "lazy.py": "import json\n",
    "plugins/__init__.py": "import importlib\n\ndef load(n):\n    return importlib.import_module(f'{__name__}.{n}')\n",
    "plugins/a.py": "A = 1\n",
    "steps/three.py": "from fakelib import plugins\n",
}


@pytest.fixture
def fakelib(tmp_path, monkeypatch):
    for relative, text in PACKAGE.items():
        path = tmp_path / "fakelib" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    return tmp_path / "fakelib"


def test_closure_follows_imports_lazy_ones_and_parent_packages(fakelib):
    closure = set(module_closure("fakelib.steps.one", root="fakelib"))
    assert closure == {
        "fakelib",
        "fakelib.steps",
        "fakelib.steps.one",
        "fakelib.engine",
        "fakelib.engine.core",
        "fakelib.names",
        "fakelib.lazy",
    }
    assert "fakelib.steps.two" not in closure


def test_a_change_invalidates_the_steps_that_import_it_and_no_others(fakelib):
    before = {step: code_version(f"fakelib.steps.{step}", root="fakelib") for step in ("one", "two")}
    (fakelib / "lazy.py").write_text("import json  # changed\n")
    after = {step: code_version(f"fakelib.steps.{step}", root="fakelib") for step in ("one", "two")}
    assert after["one"] != before["one"] and after["two"] == before["two"]
    (fakelib / "names.py").write_text("DONE = '_DONE'\n")
    assert code_version("fakelib.steps.one", root="fakelib") != after["one"]
    assert code_version("fakelib.steps.two", root="fakelib") != after["two"]


def test_a_template_counts_with_its_package_and_no_other(fakelib):
    before = {step: code_version(f"fakelib.steps.{step}", root="fakelib") for step in ("one", "two")}
    (fakelib / "engine" / "templates" / "page.html").write_text("<p>{{ y }}</p>\n")
    after = {step: code_version(f"fakelib.steps.{step}", root="fakelib") for step in ("one", "two")}
    assert after["one"] != before["one"] and after["two"] == before["two"]


def test_the_report_templates_version_the_report():
    closure = module_closure("commerce_lm.steps.build_report")
    assert "commerce_lm.steps.build_report.render" in closure
    assert {path.name for path in package_data(closure["commerce_lm.steps.build_report"])} == {
        "report.html",
        "report.md",
    }


def test_the_domain_finetune_does_not_depend_on_the_other_steps():
    closure = module_closure("commerce_lm.steps.finetune_encoder")
    assert "commerce_lm.training.trainer" in closure
    assert not {m for m in closure if m.startswith("commerce_lm.steps.") and m != "commerce_lm.steps.finetune_encoder"}
    assert "commerce_lm.prepare_data" not in closure and "commerce_lm.embedding.store" not in closure
    assert set(step_code_versions()) >= {"prepare-data", "finetune-encoder", "build-report"}


def test_a_package_that_loads_its_modules_by_name_counts_with_all_of_them(fakelib):
    assert "fakelib.plugins.a" in module_closure("fakelib.steps.three", root="fakelib")
    before = {step: code_version(f"fakelib.steps.{step}", root="fakelib") for step in ("one", "three")}
    (fakelib / "plugins" / "b.py").write_text("B = 2\n")  # a new module, imported by no one
    assert "fakelib.plugins.b" in module_closure("fakelib.steps.three", root="fakelib")
    assert code_version("fakelib.steps.three", root="fakelib") != before["three"]
    assert code_version("fakelib.steps.one", root="fakelib") == before["one"]


def test_the_domain_finetune_versions_the_loss_of_every_objective_it_can_build():
    # The trainer loads a loss by its name, and no module lists them: the package's folder is what counts.
    closure = module_closure("commerce_lm.steps.finetune_encoder")
    assert {f"commerce_lm.training.objectives.{name}" for name in OBJECTIVES} <= set(closure)
