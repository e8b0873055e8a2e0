"""The compiled IR on a cluster: scratch volumes and the read-only-root label on every step, and the
fine-tuning step, run from its compiled code with ``num_nodes: 2``, handing gs:// URIs to its TrainJob.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from commerce_lm import storage
from commerce_lm.config import section_for
from tests.fakes.fake_kube import FakeKube, Phase, condition
from tests.helpers.kustomize import DEPLOY, READ_ONLY_LABEL, render
from tests.helpers.training import run_config


def test_every_step_gets_scratch_volumes_and_the_read_only_root_label(ir):  # noqa: F811
    from commerce_lm_pipelines.pipeline import READ_ONLY_ROOT_LABEL

    _, executors = ir
    for name, settings in executors.items():
        mounts = {m["mountPath"] for m in settings["emptyDirMounts"]}
        assert {"/tmp", "/gcs"} <= mounts, name
        assert settings["podMetadata"]["labels"][READ_ONLY_ROOT_LABEL] == "true", name
    # ...the label deploy/cluster's admission policy acts on.
    assert READ_ONLY_ROOT_LABEL == READ_ONLY_LABEL
    (policy,) = [d for d in render(DEPLOY / "cluster") if d["kind"] == "MutatingAdmissionPolicy"]
    assert f"'{READ_ONLY_ROOT_LABEL}'" in policy["spec"]["matchConditions"][0]["expression"]


def _artifact(name: str, uri: str, schema: str) -> dict:
    return {"artifacts": [{"name": name, "uri": uri, "type": {"schemaTitle": schema}, "metadata": {}}]}


@pytest.fixture
def compiled_finetune_encoder(ir, tmp_path):  # noqa: F811
    """The finetune-encoder component as the compiled IR ships it: its program and its entry point."""
    from kfp.dsl import utils

    spec, _ = ir
    container = spec["deploymentSpec"]["executors"]["exec-finetune-encoder"]["container"]
    program = container["command"][3]  # sh -ec <script> <program>: the script writes $0 to a file
    (tmp_path / "ephemeral_component.py").write_text(program)
    function = container["args"][container["args"].index("--function_to_execute") + 1]
    return getattr(utils.load_module(module_name="ephemeral_component", module_directory=str(tmp_path)), function)


def test_the_compiled_step_hands_gs_uris_to_the_trainjob(compiled_finetune_encoder, gcs_bucket, tmp_path, monkeypatch):
    from kfp.dsl import executor
    from kfp.dsl.types import artifact_types

    # The executor maps gs:// to /gcs/ on the pod; here that local side lives under tmp_path.
    monkeypatch.setattr(artifact_types, "_GCS_LOCAL_MOUNT_PREFIX", f"{tmp_path}/gcs/")
    for variable in ("LOCAL_RANK", "TORCHELASTIC_RUN_ID", "KUBERNETES_SERVICE_HOST"):
        monkeypatch.delenv(variable, raising=False)
    settings = {"num_nodes": 2, "trainjob_image": "registry/clm-train:1.0", "trainjob_namespace": "ml"}
    section = section_for("finetune-encoder", run_config(Path("/models/tiny"), trainjob_poll_seconds=0.05, **settings))
    root = f"gs://{gcs_bucket}/pipeline-root/run-1"
    prepared, encoder = f"{root}/prepare-data/prepared", f"{root}/finetune-encoder/encoder"
    executor_input = {
        "inputs": {
            "parameterValues": {"section_json": section.to_json(), "code_version": "test", "num_procs": 1},
            "artifacts": {"prepared": _artifact("prepared", prepared, "system.Dataset")},
        },
        "outputs": {
            "artifacts": {
                "encoder": _artifact("encoder", encoder, "system.Model"),
                "metrics": _artifact("metrics", f"{root}/finetune-encoder/metrics", "system.Metrics"),
            },
            "outputFile": str(tmp_path / "executor_output.json"),
        },
    }
    publish = lambda: storage.write_json(storage.join(encoder, "metrics.json"), {"val_loss": 0.5})  # noqa: E731
    with FakeKube() as kube:
        kube.next_script = [Phase(), Phase(status={"conditions": [condition("Complete", "Done")]}, action=publish)]
        monkeypatch.setenv("KUBECONFIG", str(kube.kubeconfig(tmp_path / "kubeconfig")))
        executor.Executor(executor_input=executor_input, function_to_execute=compiled_finetune_encoder).execute()

    (job,) = kube.created
    command = job["spec"]["trainer"]["command"]
    assert command[command.index("--prepared") + 1] == prepared
    assert command[command.index("--output") + 1] == encoder
    assert not any("/gcs/" in arg for arg in command), "no pod-local path reaches the job"
    assert json.loads(command[command.index("--config-json") + 1])["finetune"]["num_nodes"] == 2
    # The metrics rank 0 published on gs:// reach the KFP UI through the Metrics artifact.
    output = json.loads((tmp_path / "executor_output.json").read_text())
    assert output["artifacts"]["metrics"]["artifacts"][0]["metadata"]["val_loss"] == 0.5
