"""No credentials anywhere in the repository, the images or the manifests."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.helpers.paths import REPO

# Shapes of real secrets: private keys, service-account key files, cloud access keys, tokens.
SECRET_PATTERNS = [
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    re.compile(r'"private_key_id"\s*:'),
    re.compile(r'"type"\s*:\s*"service_account"'),
    re.compile(r"AKIA[0-9A-Z]{16}"),
    re.compile(r"AIza[0-9A-Za-z_\-]{35}"),
    re.compile(r"ghp_[0-9A-Za-z]{36}"),
]


def _tracked_files():
    # An image's test stage has the files but no .git (and no git): the checkout's own run covers them.
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return [REPO / name for name in listed if (REPO / name).is_file()]


def test_no_secrets_in_the_repository():
    this = Path(__file__).resolve()
    found = []
    for path in _tracked_files():
        if path.resolve() == this or path.stat().st_size > 2_000_000:
            continue
        text = path.read_text(errors="ignore")
        found += [f"{path.relative_to(REPO)}: {p.pattern}" for p in SECRET_PATTERNS if p.search(text)]
    assert found == []


def test_images_and_manifests_use_workload_identity_not_key_files():
    for path in [*REPO.glob("images/*"), *REPO.glob("deploy/**/*.yaml")]:
        if not path.is_file():
            continue  # images/__pycache__ (tests import images/skeleton.py)
        text = path.read_text()
        assert "GOOGLE_APPLICATION_CREDENTIALS" not in text, path
        assert not re.search(r"^kind:\s*Secret\b", text, re.M), path
