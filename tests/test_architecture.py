"""The import contracts in pyproject.toml hold, and they can fail.

``lint-imports`` runs on the real tree (``src/``, where every package sits under its import name)
with the real contracts; then on a copy of ``src/`` as it is, first unchanged (kept), then with one
forbidden import added (broken).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.paths import REPO

LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
TOP_CONTRACT = "Pipelines wire components; components call the library; the library knows neither"


@pytest.fixture(scope="module")
def copy_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of ``src/`` as it is, beside the project's pyproject.toml."""
    root = tmp_path_factory.mktemp("layers")
    shutil.copytree(REPO / "src", root / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    shutil.copy(REPO / "pyproject.toml", root / "pyproject.toml")
    return root


def _lint(root: Path) -> subprocess.CompletedProcess[str]:
    # The copy comes first on the path, ahead of the installed (editable) packages.
    env = {**os.environ, "PYTHONPATH": str(root / "src")}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"], cwd=root, env=env, capture_output=True, text=True, timeout=300
    )


def test_contracts_hold_on_the_tree() -> None:
    result = subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "broken" in result.stdout and "0 broken" in result.stdout
    # The real folders are the packages it lints: the top contract names them and is kept.
    assert f"{TOP_CONTRACT} KEPT" in " ".join(result.stdout.split())


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        ("commerce_lm/steps/train_heads.py", "from commerce_lm.steps import evaluate_knn", "No step imports another"),
        ("commerce_lm/embedding/checks.py", "from commerce_lm.steps import extract_embeddings", "Library layers"),
        ("commerce_lm/metrics.py", "import kfp", "The library never imports kfp"),
        ("commerce_lm_components/images.py", "from commerce_lm_pipelines import versions", TOP_CONTRACT),
        ("commerce_lm/names.py", "import commerce_lm_components", TOP_CONTRACT),
    ],
)
def test_a_forbidden_import_breaks_its_contract(copy_root: Path, module: str, line: str, contract: str) -> None:
    target = copy_root / "src" / module
    original = target.read_text()
    kept = _lint(copy_root)
    assert kept.returncode == 0, kept.stdout + kept.stderr  # the copy itself is clean
    try:
        target.write_text(f"{line}  # noqa\n{original}")
        broken = _lint(copy_root)
    finally:
        target.write_text(original)
    assert broken.returncode != 0
    # lint-imports wraps long names; the section after "Broken contracts" names each broken one.
    report = " ".join(broken.stdout.split())
    assert "Broken contracts" in report, broken.stdout
    assert contract in report.split("Broken contracts", 1)[1], broken.stdout
