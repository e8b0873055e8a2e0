"""The import contracts in pyproject.toml hold, and they can fail.

Each check runs ``lint-imports`` on a copy of the packages (under their import names) with the real
contracts, first unchanged (kept), then with one forbidden import added (broken).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


@pytest.fixture(scope="module")
def copy_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The three packages under their import names, beside the project's pyproject.toml."""
    root = tmp_path_factory.mktemp("layers")
    ignore = shutil.ignore_patterns("__pycache__")
    shutil.copytree(ROOT / "src" / "commerce_lm", root / "commerce_lm", ignore=ignore)
    shutil.copytree(ROOT / "components", root / "commerce_lm_components", ignore=ignore)
    shutil.copytree(ROOT / "pipelines", root / "commerce_lm_pipelines", ignore=ignore)
    shutil.copy(ROOT / "pyproject.toml", root / "pyproject.toml")
    return root


def _lint(root: Path) -> subprocess.CompletedProcess[str]:
    # The copy comes first on the path, ahead of the installed (editable) packages.
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"], cwd=root, env=env, capture_output=True, text=True, timeout=300
    )


def test_contracts_hold_on_the_tree() -> None:
    result = subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "broken" in result.stdout and "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        ("steps/train_heads.py", "from commerce_lm.steps import evaluate_knn", "No step imports another step"),
        ("embedding/checks.py", "from commerce_lm.steps import extract_embeddings", "Library layers"),
        ("metrics.py", "import kfp", "The library never imports kfp"),
    ],
)
def test_a_forbidden_import_breaks_its_contract(copy_root: Path, module: str, line: str, contract: str) -> None:
    target = copy_root / "commerce_lm" / module
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
