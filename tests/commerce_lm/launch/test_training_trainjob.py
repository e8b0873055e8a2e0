"""The cluster job specs validate against the published CRDs (deploy/crds/), offline.

TrainJob (Trainer v2): 1 and 4 nodes, with and without a Kueue queue, with each launcher (torch and
DeepSpeed runtimes), for both training steps. PyTorchJob (Training Operator v1, the legacy path):
1 and 4 nodes. Each pod's command is the ``commerce-lm`` CLI, whose own parser takes it.
"""

from __future__ import annotations

import copy
import itertools
from pathlib import Path

import pytest

from commerce_lm.cli import build_parser
from commerce_lm.config import section_for
from commerce_lm.launch import jobspec, pytorchjob, trainjob
from commerce_lm.launch.jobspec import JobRequest, JobSpecError
from tests.fakes import kube_schema
from tests.helpers.training import run_config

PREPARED, OUTPUT = "gs://bucket/run/prepared", "gs://bucket/run/finetune"


@pytest.fixture(scope="module")
def trainjob_schema():
    return kube_schema.validator(kube_schema.TRAINJOB_CRD, "v1alpha1")


@pytest.fixture(scope="module")
def pytorchjob_schema():
    return kube_schema.validator(kube_schema.PYTORCHJOB_CRD, "v1")


def _request(step="finetune-encoder", **train) -> JobRequest:
    settings = {"num_nodes": 4, "num_gpus": 8, "trainjob_image": "registry/clm-train:1.0", "trainjob_namespace": "ml"}
    cfg = run_config(Path("/models/tiny"), **{**settings, **train})
    task = "weapons" if step == "finetune-baseline" else None
    return JobRequest(step, cfg, PREPARED, OUTPUT, task=task, labels={"pipelines.kubeflow.org/run_id": "abc"})


def _cli_args(command: list[str]):
    """The arguments after ``commerce-lm``, parsed by the CLI's own parser."""
    at = command.index("commerce-lm")
    return build_parser().parse_args(command[at + 1 :])


def test_the_crd_rules_we_check_are_all_it_has():
    # jsonschema does not run CEL; kube_schema.name_errors stands in for exactly these two rules.
    rules = kube_schema.top_level_rules(kube_schema.TRAINJOB_CRD, "v1alpha1")
    assert rules == [
        "self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')",
        "size(self.metadata.name) <= 63",
    ]


CASES = list(
    itertools.product([1, 4], [None, "team-a"], ["torchrun", "deepspeed"], ["finetune-encoder", "finetune-baseline"])
)


@pytest.mark.parametrize(("nodes", "queue", "launcher", "step"), CASES)
def test_trainjob_validates_against_the_crd(trainjob_schema, nodes, queue, launcher, step):
    request = _request(step, num_nodes=nodes, trainjob_queue=queue, launcher=launcher)
    job = trainjob.manifest(request)
    assert not kube_schema.errors(trainjob_schema, job)

    spec, trainer = job["spec"], job["spec"]["trainer"]
    runtime = {"torchrun": "torch-distributed", "deepspeed": "deepspeed-distributed"}[launcher]
    assert spec["runtimeRef"] == {"apiGroup": "trainer.kubeflow.org", "kind": "ClusterTrainingRuntime", "name": runtime}
    assert trainer["numNodes"] == nodes and trainer["image"] == "registry/clm-train:1.0"
    assert trainer["resourcesPerNode"]["limits"] == {"nvidia.com/gpu": "8"}
    # torch: 8 ranks per node from the Trainer; MPI: one slot per node, whose torchrun starts the 8.
    assert trainer["numProcPerNode"] == (8 if launcher == "torchrun" else 1)
    command = trainer["command"]
    assert command[0] == ("torchrun" if launcher == "torchrun" else "mpirun")
    if launcher == "deepspeed":
        assert f"--nnodes={nodes}" in command and "--nproc-per-node=8" in command
    args = _cli_args(command)
    assert args.command == step and args.prepared == PREPARED and args.output == OUTPUT
    assert getattr(args, "task", None) == ("weapons" if step == "finetune-baseline" else None)

    labels = job["metadata"]["labels"]
    assert labels.get("kueue.x-k8s.io/queue-name") == queue
    assert spec.get("suspend") is (True if queue else None)
    patches = spec["runtimePatches"][0]["trainingRuntimeSpec"]["template"]["spec"]["replicatedJobs"]
    assert [p["name"] for p in patches] == (["node"] if launcher == "torchrun" else ["launcher", "node"])
    pod = patches[-1]["template"]["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "pipeline-runner"
    assert {v["name"]: v["emptyDir"] for v in pod["volumes"]} == {
        "tmp": {},
        "dshm": {"medium": "Memory", "sizeLimit": "16Gi"},
    }
    container = pod["containers"][0]
    assert {m["mountPath"] for m in container["volumeMounts"]} == {"/tmp", "/dev/shm"}
    # The torch runtime's pods run only our command: read-only root. The MPI nodes run sshd.
    assert container.get("securityContext", {}).get("readOnlyRootFilesystem") is (launcher == "torchrun" or None)


def test_same_request_same_name_and_names_fit_the_crd():
    first, again = trainjob.manifest(_request()), trainjob.manifest(_request())
    assert first["metadata"]["name"] == again["metadata"]["name"]
    other = trainjob.manifest(_request(learning_rate=0.5))
    assert other["metadata"]["name"] != first["metadata"]["name"]
    long_task = JobRequest("finetune-baseline", _request().cfg, PREPARED, OUTPUT, task="x" * 80)
    name = jobspec.job_name(long_task)
    # With the JobSet suffix the launcher pod's host name still fits a DNS label.
    assert not kube_schema.name_errors({"metadata": {"name": name}}) and len(f"{name}-launcher-0-0") <= 63


def test_the_schema_rejects_broken_trainjobs(trainjob_schema):
    good = trainjob.manifest(_request())
    broken = {
        "numNodes as text": lambda j: j["spec"]["trainer"].update(numNodes="4"),
        "misspelt field": lambda j: j["spec"]["trainer"].update(numNode=4),
        "no runtimeRef": lambda j: j["spec"].pop("runtimeRef"),
        "runtimeRef without a name": lambda j: j["spec"]["runtimeRef"].pop("name"),
        "bad quantity": lambda j: j["spec"]["trainer"]["resourcesPerNode"]["limits"].update(
            {"nvidia.com/gpu": "8 GPUs"}
        ),
        "upper-case name": lambda j: j["metadata"].update(name="Clm-Job"),
    }
    for label, damage in broken.items():
        job = copy.deepcopy(good)
        damage(job)
        assert kube_schema.errors(trainjob_schema, job), label


@pytest.mark.parametrize(("nodes", "queue"), list(itertools.product([1, 4], [None, "team-a"])))
def test_legacy_pytorchjob_validates_against_its_crd(pytorchjob_schema, nodes, queue):
    job = pytorchjob.manifest(_request(num_nodes=nodes, trainjob_api="pytorchjob", trainjob_queue=queue))
    assert not kube_schema.errors(pytorchjob_schema, job)
    replicas = job["spec"]["pytorchReplicaSpecs"]
    assert replicas["Master"]["replicas"] == 1 and replicas.get("Worker", {}).get("replicas", 0) == nodes - 1
    container = replicas["Master"]["template"]["spec"]["containers"][0]
    assert container["name"] == "pytorch" and container["securityContext"]["readOnlyRootFilesystem"] is True
    assert _cli_args(container["command"]).output == OUTPUT
    assert job["metadata"]["labels"].get("kueue.x-k8s.io/queue-name") == queue
    for damage in (lambda r: r.update(replicas="one"), lambda r: r["template"]["spec"].update(container=[])):
        broken = copy.deepcopy(job)
        damage(broken["spec"]["pytorchReplicaSpecs"]["Master"])
        assert kube_schema.errors(pytorchjob_schema, broken)


def test_requests_no_cluster_could_run_fail_clearly():
    cfg = _request().cfg
    with pytest.raises(JobSpecError, match="gs:// locations"):
        trainjob.manifest(JobRequest("finetune-encoder", cfg, "/gcs/bucket/prepared", OUTPUT))
    with pytest.raises(JobSpecError, match="checkpoint_dir"):
        trainjob.manifest(JobRequest("finetune-encoder", cfg, PREPARED, OUTPUT, checkpoint_dir="/tmp/ckpt"))
    with pytest.raises(JobSpecError, match="baseline.launch.trainjob_image"):
        trainjob.manifest(_request("finetune-baseline", trainjob_image=None))
    with pytest.raises(JobSpecError, match="trainjob_namespace"):
        trainjob.manifest(_request(trainjob_namespace=None))


def test_num_nodes_switches_the_steps_to_a_cluster_job(monkeypatch):
    from commerce_lm.steps import finetune_baseline, finetune_encoder

    monkeypatch.delenv("LOCAL_RANK", raising=False)
    monkeypatch.delenv("TORCHELASTIC_RUN_ID", raising=False)
    cfg = _request(num_nodes=2).cfg
    # The steps build the job before any training: local paths are refused, since pods cannot see them.
    with pytest.raises(JobSpecError, match="gs:// locations"):
        finetune_encoder.run(section_for("finetune-encoder", cfg), "/local/prepared", "/local/out")
    with pytest.raises(JobSpecError, match="gs:// locations"):
        finetune_baseline.run(section_for("finetune-baseline", cfg), "/local/prepared", "weapons", "/local/out")
