"""Where the repository is, for tests that read its files (configs, deploy/, images/, pyproject.toml)."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
