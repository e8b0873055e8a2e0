"""The multi-node PyTorchJob: the generated spec validates against the vendored CRD schema, offline."""

from __future__ import annotations

import copy
from pathlib import Path

import jsonschema
import pytest
import yaml
from conftest_training import run_config

from commerce_lm import trainjob
from commerce_lm.config import section_for
from commerce_lm.training.entry import parser

CRD = Path(__file__).resolve().parents[1] / "deploy" / "crds" / "kubeflow.org_pytorchjobs.yaml"


@pytest.fixture(scope="module")
def validator():
    crd = yaml.safe_load(CRD.read_text())
    version = next(v for v in crd["spec"]["versions"] if v["name"] == "v1")
    checker = jsonschema.FormatChecker()
    # OpenAPI integer formats, which jsonschema does not know: range checks.
    checker.checks("int32")(lambda v: not isinstance(v, int) or -(2**31) <= v < 2**31)
    checker.checks("int64")(lambda v: not isinstance(v, int) or -(2**63) <= v < 2**63)
    schema = version["schema"]["openAPIV3Schema"]
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema, format_checker=checker)


def _request(step="finetune-encoder", **train):
    settings = {"num_nodes": 3, "num_gpus": 4, "trainjob_image": "registry/clm-train:1.0", **train}
    cfg = run_config(Path("/models/tiny"), **settings)
    return trainjob.JobRequest(
        step=step, cfg=cfg, prepared="gs://bucket/run/prepared", output="gs://bucket/run/finetune",
        task="weapons" if step == "finetune-baseline" else None, service_account="trainer",
        labels={"pipelines.kubeflow.org/run_id": "abc"},
    )  # fmt: skip


@pytest.mark.parametrize("step", ["finetune-encoder", "finetune-baseline"])
def test_generated_pytorchjob_validates_against_the_crd(validator, step):
    manifest = trainjob.pytorchjob_manifest(_request(step))
    errors = sorted(validator.iter_errors(manifest), key=str)
    assert not errors, "\n".join(e.message for e in errors)
    spec = manifest["spec"]
    assert spec["pytorchReplicaSpecs"]["Master"]["replicas"] == 1
    assert spec["pytorchReplicaSpecs"]["Worker"]["replicas"] == 2 and spec["nprocPerNode"] == "4"
    pod = spec["pytorchReplicaSpecs"]["Worker"]["template"]["spec"]
    assert pod["volumes"][0]["emptyDir"]["medium"] == "Memory"
    container = pod["containers"][0]
    assert container["name"] == "pytorch" and container["resources"]["limits"]["nvidia.com/gpu"] == 4
    # The pods run our own entry point, whose parser accepts the generated arguments.
    command = container["command"]
    assert command[:5] == ["python", "-m", "torch.distributed.run", "-m", "commerce_lm.training.entry"]
    args = parser().parse_args(command[5:])
    assert args.output == "gs://bucket/run/finetune" and args.num_procs == 1
    assert getattr(args, "task", None) == ("weapons" if step == "finetune-baseline" else None)
    # Same request, same name: a retried step adopts its job instead of starting a second one.
    assert trainjob.pytorchjob_manifest(_request(step))["metadata"]["name"] == manifest["metadata"]["name"]


def test_the_schema_rejects_broken_specs(validator):
    good = trainjob.pytorchjob_manifest(_request())
    broken = []
    bad = copy.deepcopy(good)
    bad["spec"]["pytorchReplicaSpecs"]["Worker"]["replicas"] = "two"
    broken.append(bad)
    bad = copy.deepcopy(good)
    bad["spec"]["pytorchReplicaSpecs"]["Worker"]["template"]["spec"]["containers"] = []
    broken.append(bad)
    bad = copy.deepcopy(good)
    bad["spec"]["pytorchReplicaSpecs"]["Chief"] = bad["spec"]["pytorchReplicaSpecs"].pop("Worker")
    broken.append(bad)
    bad = copy.deepcopy(good)
    bad["spec"]["runPolicy"]["cleanPodPolicy"] = "Sometimes"
    broken.append(bad)
    bad = copy.deepcopy(good)
    bad["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["spec"]["containers"][0]["resources"]["limits"][
        "nvidia.com/gpu"
    ] = "four"
    broken.append(bad)
    for manifest in broken:
        assert list(validator.iter_errors(manifest)), manifest["spec"]


def test_requests_a_multi_node_job_cannot_run_fail_clearly():
    with pytest.raises(ValueError, match="gs:// locations"):
        trainjob.pytorchjob_manifest(
            trainjob.JobRequest(step="finetune-encoder", cfg=_request().cfg, prepared="/local", output="gs://b/o")
        )
    with pytest.raises(ValueError, match="2 or more nodes"):
        trainjob.pytorchjob_manifest(_request(num_nodes=1))


class _Cluster:
    """Stands in for the Kubernetes API server (a third-party boundary): replays job statuses."""

    def __init__(self, statuses):
        self.statuses, self.created = list(statuses), []

    def create_namespaced_custom_object(self, group, version, namespace, plural, body):
        self.created.append((group, version, namespace, plural, body["metadata"]["name"]))

    def get_namespaced_custom_object(self, group, version, namespace, plural, name):
        return {"status": self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]}


def _condition(kind, reason="", message=""):
    return {"type": kind, "status": "True", "reason": reason, "message": message}


def test_submit_streams_status_and_fails_with_the_jobs_reason():
    manifest = trainjob.pytorchjob_manifest(_request())
    cluster = _Cluster(
        [
            {},
            {"conditions": [_condition("Created")]},
            {"conditions": [_condition("Running")]},
            {"conditions": [_condition("Running"), _condition("Succeeded", "PyTorchJobSucceeded")]},
        ]
    )
    trainjob.submit_and_wait(manifest, api=cluster, poll_seconds=0)
    assert cluster.created[0][:4] == ("kubeflow.org", "v1", "kubeflow", "pytorchjobs")

    failing = _Cluster([{"conditions": [_condition("Running"), _condition("Failed", "OOMKilled", "pod master-0")]}])
    with pytest.raises(trainjob.TrainJobFailed, match="failed: OOMKilled: pod master-0"):
        trainjob.submit_and_wait(manifest, api=failing, poll_seconds=0)


def test_num_nodes_switches_the_steps_to_a_trainjob(monkeypatch):
    from commerce_lm.steps import finetune_baseline, finetune_encoder

    monkeypatch.delenv("LOCAL_RANK", raising=False)
    monkeypatch.delenv("TORCHELASTIC_RUN_ID", raising=False)
    cfg = _request().cfg
    # The steps build the job before any training; local paths are refused since pods cannot see them.
    with pytest.raises(ValueError, match="gs:// locations"):
        finetune_encoder.run(section_for("finetune-encoder", cfg), "/local/prepared", "/local/out")
    with pytest.raises(ValueError, match="gs:// locations"):
        finetune_baseline.run(section_for("finetune-baseline", cfg), "/local/prepared", "weapons", "/local/out")
