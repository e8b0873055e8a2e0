"""The compiled pipeline, for the tests that read its IR."""

import subprocess
import sys

import pytest
import yaml


@pytest.fixture(scope="module")
def ir(tmp_path_factory):
    """The compiled IR: the pipeline spec and the Kubernetes platform's executors."""
    path = tmp_path_factory.mktemp("ir") / "pipeline.yaml"
    subprocess.run([sys.executable, "-m", "commerce_lm.cli", "compile", "--output", str(path)], check=True)
    spec, platform = yaml.safe_load_all(path.read_text())
    return spec, platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
