"""The compiled pipeline's DAG, with what may change without changing the DAG normalised away.

A component's body is compiled into its executor's command, and each step's code version into a
constant of its task; both change with the library's code. Everything else (tasks, their
dependencies, parameters, artifacts, caching, retries, images, resources, Kubernetes settings) is
the DAG, which :func:`dag` keeps.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

from commerce_lm import __version__

CODE = "<component body>"
VERSION = "<code version>"
PACKAGE_VERSION = "<package version>"


def dag(spec: dict[str, Any], platform: dict[str, Any]) -> dict[str, Any]:
    """The pipeline spec and its platform spec with executor code and code versions replaced by placeholders."""
    spec = copy.deepcopy(spec)
    for executor in spec["deploymentSpec"]["executors"].values():
        executor["container"]["command"] = CODE
        # The images are tagged with the package's version (commerce_lm_components.images).
        executor["container"]["image"] = executor["container"]["image"].replace(__version__, PACKAGE_VERSION)
    for task in _tasks(spec):
        version = task.get("inputs", {}).get("parameters", {}).get("code_version", {})
        if "runtimeValue" in version:
            version["runtimeValue"]["constant"] = VERSION
    return {"pipeline": spec, "platform": platform}


def _tasks(spec: dict[str, Any]) -> list[dict[str, Any]]:
    tasks = list(spec["root"]["dag"]["tasks"].values())
    for component in spec["components"].values():
        tasks += component.get("dag", {}).get("tasks", {}).values()
    return tasks


def compiled() -> tuple[dict[str, Any], dict[str, Any]]:
    """The cluster pipeline as ``commerce-lm compile`` writes it: its spec and its platform spec."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder, "pipeline.yaml")
        command = [sys.executable, "-m", "commerce_lm.cli", "compile", "--output", str(path)]
        subprocess.run(command, check=True, capture_output=True)
        spec, platform = yaml.safe_load_all(path.read_text())
    return spec, platform


if __name__ == "__main__":
    # python -m tests.helpers.ir > tests/commerce_lm_pipelines/dag.json: record a DAG changed on purpose.
    print(json.dumps(dag(*compiled()), indent=1, sort_keys=True))
