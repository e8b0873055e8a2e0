"""Cluster settings in the compiled IR: GPUs, scheduling, /dev/shm, retries, caching, pipeline root."""

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
TRAINING_STEPS = ("finetune-encoder", "finetune-baseline")


@pytest.fixture(scope="module")
def ir(tmp_path_factory):
    path = tmp_path_factory.mktemp("ir") / "pipeline.yaml"
    subprocess.run([sys.executable, "-m", "commerce_lm.cli", "compile", "--output", str(path)], check=True)
    spec, platform = yaml.safe_load_all(path.read_text())
    return spec, platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]


def _all_tasks(spec):
    yield from spec["root"]["dag"]["tasks"].items()
    for component in spec["components"].values():
        yield from component.get("dag", {}).get("tasks", {}).items()


def test_accelerators_come_from_pipeline_parameters(ir):
    spec, _ = ir
    for step in TRAINING_STEPS:
        accelerator = spec["deploymentSpec"]["executors"][f"exec-{step}"]["container"]["resources"]["accelerator"]
        assert "num_gpus" in accelerator["resourceCount"] and "accelerator_type" in accelerator["resourceType"]
    assert {"num_gpus", "accelerator_type", "gpu_node_selector", "gpu_tolerations"} <= set(
        spec["root"]["inputDefinitions"]["parameters"]
    )


def test_training_steps_get_node_selector_tolerations_and_shm(ir):
    _, executors = ir
    for step in TRAINING_STEPS:
        settings = executors[f"exec-{step}"]
        assert settings["nodeSelector"]["nodeSelectorJson"]["componentInputParameter"].endswith("gpu_node_selector")
        assert settings["tolerations"][0]["tolerationJson"]["componentInputParameter"].endswith("gpu_tolerations")
        shm = settings["emptyDirMounts"][0]
        assert shm["mountPath"] == "/dev/shm" and shm["medium"] == "Memory"


def test_training_steps_retry_with_backoff(ir):
    spec, _ = ir
    tasks = dict(_all_tasks(spec))
    for step in TRAINING_STEPS:
        policy = tasks[step]["retryPolicy"]
        assert policy["maxRetryCount"] >= 2 and policy["backoffFactor"] > 1 and policy["backoffDuration"]


def test_caching_is_on_and_keyed_by_config_and_code_version(ir):
    spec, _ = ir
    for name, task in _all_tasks(spec):
        if "componentRef" not in task or name.startswith("for-loop"):
            continue
        # publish-bundle's gate reads the registry's live pointer, which other runs move: never cached.
        assert task["cachingOptions"].get("enableCache", False) is (name != "publish-bundle"), name
        # A changed config or release changes these inputs, hence the cache key.
        assert {"config_json", "code_version"} <= set(task["inputs"]["parameters"]), name


def test_code_version_changes_with_the_commit():
    from commerce_lm_pipelines.pipeline import code_version

    from commerce_lm import __version__

    assert code_version().startswith(__version__)


def test_large_artifacts_go_to_the_gcs_pipeline_root():
    from test_deploy import render

    launcher = [doc for doc in render("prod") if doc["metadata"]["name"] == "kfp-launcher"]
    assert launcher and launcher[0]["data"]["defaultPipelineRoot"].startswith("gs://")


def test_every_step_runs_as_the_images_non_root_user(ir):
    spec, executors = ir
    from commerce_lm_components.images import IMAGE_UID

    assert set(executors) == set(spec["deploymentSpec"]["executors"])
    for name, settings in executors.items():
        context = settings["securityContext"]
        assert context["runAsNonRoot"] is True and int(context["runAsUser"]) == IMAGE_UID, name
