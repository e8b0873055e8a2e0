"""The one runtime entry: every component calls it alike, and a training step's torchrun ranks get the
command line of the call, whatever started this process."""

import ast
import json
import sys
from pathlib import Path

import pytest

from commerce_lm import config
from commerce_lm.cli import runtime
from commerce_lm.launch import torchrun
from tests.helpers.paths import REPO

COMPONENTS = sorted((REPO / "src" / "commerce_lm_components").glob("*.py"))


def _component_bodies(path: Path) -> list[ast.FunctionDef]:
    tree = ast.parse(path.read_text())
    return [f for f in tree.body if isinstance(f, ast.FunctionDef) and f.decorator_list]


@pytest.mark.parametrize("path", COMPONENTS, ids=lambda p: p.name)
def test_every_component_calls_its_step_through_run_step(path):
    for function in _component_bodies(path):
        imported = {
            f"{node.module}.{alias.name}"
            for node in ast.walk(function)
            if isinstance(node, ast.ImportFrom)
            for alias in node.names
        }
        calls = [n.func for n in ast.walk(function) if isinstance(n, ast.Call)]
        assert "commerce_lm.cli.runtime.run_step" in imported, function.name
        assert any(isinstance(f, ast.Name) and f.id == "run_step" for f in calls), function.name
        # Nothing else runs a step: no step's run, no command line.
        others = [f.attr for f in calls if isinstance(f, ast.Attribute) and f.attr in {"run", "gather", "main"}]
        assert not others, function.name
        assert "commerce_lm.cli.main" not in imported, function.name


def test_the_components_are_all_found():
    names = {f.name for path in COMPONENTS for f in _component_bodies(path)}
    assert {"finetune_encoder", "train_heads", "evaluate_knn", "gather_scores"} <= names


def test_a_training_step_relaunches_the_call_under_torchrun(tiny_cfg, tmp_path, monkeypatch):
    seen = {}

    def relaunch(num_procs, argv):
        seen.update(num_procs=num_procs, argv=argv)
        (tmp_path / "out").mkdir()
        (tmp_path / "out" / "metrics.json").write_text(json.dumps({"val_loss": 0.5}))
        return 0

    monkeypatch.setattr(torchrun, "maybe_relaunch", relaunch)
    # What a KFP pod's command line looks like: nothing of it may reach the ranks.
    monkeypatch.setattr(sys, "argv", ["executor_main", "--executor_input", "{}"])
    section = config.section_for("finetune-baseline", tiny_cfg).to_json()
    out = str(tmp_path / "out")
    metrics = runtime.run_step("finetune-baseline", section, out, prepared="gs://b/p", task="t", num_procs=2)
    assert metrics == {"val_loss": 0.5}
    argv = seen["argv"]
    assert seen["num_procs"] == 2 and argv[1:4] == ["-m", "commerce_lm.cli", "finetune-baseline"]
    assert argv[argv.index("--config-json") + 1] == section and argv[argv.index("--output") + 1] == out
    assert argv[argv.index("--prepared") + 1] == "gs://b/p" and argv[argv.index("--task") + 1] == "t"
    assert "--num-procs" not in argv and "--executor_input" not in argv


def test_a_failed_relaunch_raises(tiny_cfg, tmp_path, monkeypatch):
    monkeypatch.setattr(torchrun, "maybe_relaunch", lambda num_procs, argv: 3)
    section = config.section_for("finetune-encoder", tiny_cfg).to_json()
    with pytest.raises(RuntimeError, match="exited with status 3"):
        runtime.run_step("finetune-encoder", section, str(tmp_path / "out"), prepared="p", num_procs=2)


def test_the_two_embedding_sets_are_named_by_arm():
    assert runtime.embedding_sets("a", "b") == {"plm": "a", "finetuned": "b"}
