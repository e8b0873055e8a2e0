"""A cluster job's life against a Kubernetes API server on 127.0.0.1 (tests/fake_kube.py), real client.

Created, runs (status and the main pod's log reach the step's log), fails with its own reason,
succeeds and is deleted; a retried step re-attaches to its running job; a job left failed by an
earlier attempt is replaced. The step itself (finetune-encoder with num_nodes: 2) reaches the
server through $KUBECONFIG and returns the metrics rank 0 published on gs:// (the GCS emulator).
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from commerce_lm import storage
from commerce_lm.launch import cluster, joblife, trainjob
from commerce_lm.launch.jobspec import JobRequest
from tests.fakes.fake_kube import FakeKube, Phase, condition
from tests.helpers.training import run_config

NAMESPACE = "ml"
LOG = ["loading gs:// prepared data", "step 1 loss 1.10", "step 2 loss 0.90", "published metrics"]


def _request(bucket: str, step: str = "finetune-encoder", **train) -> JobRequest:
    settings = {
        "num_nodes": 2, "trainjob_image": "registry/clm-train:1.0", "trainjob_namespace": NAMESPACE,
        "trainjob_poll_seconds": 0.05, **train,
    }  # fmt: skip
    cfg = run_config(Path("/models/tiny"), **settings)
    task = "weapons" if step == "finetune-baseline" else None
    return JobRequest(step, cfg, f"gs://{bucket}/prepared", f"gs://{bucket}/out", task=task)


def _pod(name: str, labels: dict[str, str], phase: str, container: str = "node") -> dict:
    return {"name": name, "labels": labels, "phase": phase, "log": LOG, "container": container}


def _trainjob_script(name: str, end: dict, action=None) -> list[Phase]:
    labels = {
        "jobset.sigs.k8s.io/jobset-name": name,
        "jobset.sigs.k8s.io/replicatedjob-name": "node",
        "batch.kubernetes.io/job-completion-index": "0",
    }
    running = {"jobsStatus": [{"name": "node", "active": 2, "ready": 2, "succeeded": 0, "failed": 0, "suspended": 0}]}
    return [
        Phase(),
        Phase(status=running, pods=[_pod(f"{name}-node-0-0-x1", labels, "Running")]),
        Phase(status=running),
        Phase(status=end, pods=[_pod(f"{name}-node-0-0-x1", labels, "Succeeded")], action=action),
    ]


def _publish(output: str, metrics: dict):
    return lambda: storage.write_json(storage.join(output, "metrics.json"), metrics)


@pytest.fixture
def kube():
    with FakeKube() as server:
        yield server


@pytest.fixture
def step_log(caplog):
    caplog.set_level(logging.INFO, logger="commerce_lm.launch")
    return caplog


def test_the_step_creates_a_trainjob_follows_it_and_deletes_it(kube, gcs_bucket, step_log, tmp_path, monkeypatch):
    from commerce_lm.steps import finetune_encoder

    request = _request(gcs_bucket)
    name = trainjob.manifest(request)["metadata"]["name"]
    done = condition("Complete", "JobSetCompleted", "jobset completed")
    kube.next_script = _trainjob_script(name, {"conditions": [done]}, _publish(request.output, {"val_loss": 0.5}))
    monkeypatch.setenv("KUBECONFIG", str(kube.kubeconfig(tmp_path / "kubeconfig")))
    for variable in ("LOCAL_RANK", "TORCHELASTIC_RUN_ID", "KUBERNETES_SERVICE_HOST"):
        monkeypatch.delenv(variable, raising=False)

    metrics = finetune_encoder.run(request.cfg, request.prepared, request.output)

    assert metrics == {"val_loss": 0.5}
    (created,) = kube.created
    command = created["spec"]["trainer"]["command"]
    assert command[command.index("--prepared") + 1] == f"gs://{gcs_bucket}/prepared"
    assert command[command.index("--output") + 1] == f"gs://{gcs_bucket}/out"
    assert kube.deleted == [name] and not kube.objects
    text = step_log.text
    assert f"created TrainJob {NAMESPACE}/{name}" in text
    assert "'active': 2" in text, "the running status reaches the step's log"
    for line in LOG:
        assert f"[{name}] {line}" in text, "the main pod's log reaches the step's log"
    assert "Complete JobSetCompleted jobset completed" in text


def test_a_failed_job_fails_the_step_with_its_reason_and_is_kept(kube):
    request = _request("bucket", "finetune-baseline")
    name = trainjob.manifest(request)["metadata"]["name"]
    failed = condition("Failed", "BackoffLimitExceeded", "job node-0 has failed: rank 3 OOMKilled")
    kube.next_script = _trainjob_script(name, {"conditions": [failed]})
    with pytest.raises(
        joblife.JobFailed, match=r"failed: BackoffLimitExceeded: job node-0 has failed: rank 3 OOMKilled"
    ):
        cluster.run_multi_node(request, configuration=kube.configuration())
    assert kube.deleted == [] and len(kube.objects) == 1, "a failed job stays for inspection"


def test_a_retried_step_reattaches_to_its_running_job(kube, gcs_bucket, step_log):
    from kubernetes import client

    request = _request(gcs_bucket)
    body = trainjob.manifest(request)
    name = body["metadata"]["name"]
    done = condition("Complete", "JobSetCompleted", "jobset completed")
    kube.next_script = _trainjob_script(name, {"conditions": [done]}, _publish(request.output, {"val_loss": 0.25}))
    # The first attempt created the job, then its pod was lost; the job kept running.
    objects = client.CustomObjectsApi(client.ApiClient(kube.configuration()))
    objects.create_namespaced_custom_object("trainer.kubeflow.org", "v1alpha1", NAMESPACE, "trainjobs", body)
    kube.get("trainjobs", NAMESPACE, name)  # the controller moved on while no step watched

    assert cluster.run_multi_node(request, configuration=kube.configuration()) == {"val_loss": 0.25}
    assert len(kube.created) == 1, "no second job"
    assert "re-attaching" in step_log.text and kube.deleted == [name]


def test_a_job_left_failed_by_an_earlier_attempt_is_replaced(kube, gcs_bucket, step_log):
    request = _request(gcs_bucket)
    name = trainjob.manifest(request)["metadata"]["name"]
    kube.next_script = [Phase(status={"conditions": [condition("Failed", "DeadlineExceeded", "too slow")]})]
    with pytest.raises(joblife.JobFailed, match="DeadlineExceeded"):
        cluster.run_multi_node(request, configuration=kube.configuration())

    done = condition("Complete", "JobSetCompleted", "jobset completed")
    kube.next_script = _trainjob_script(name, {"conditions": [done]}, _publish(request.output, {"val_loss": 0.75}))
    assert cluster.run_multi_node(request, configuration=kube.configuration()) == {"val_loss": 0.75}
    assert len(kube.created) == 2 and kube.deleted == [name, name]
    assert "failed before" in step_log.text


def test_the_legacy_pytorchjob_lives_the_same_life(kube, gcs_bucket, step_log):
    request = _request(gcs_bucket, trainjob_api="pytorchjob")
    body_name = cluster.pytorchjob.manifest(request)["metadata"]["name"]
    labels = {"training.kubeflow.org/job-name": body_name, "training.kubeflow.org/replica-type": "master"}
    running = {"replicaStatuses": {"Master": {"active": 1}, "Worker": {"active": 1}}}
    kube.next_script = [
        Phase(status={"conditions": [condition("Created", "PyTorchJobCreated")]}),
        Phase(
            status={**running, "conditions": [condition("Running", "PyTorchJobRunning")]},
            pods=[_pod(f"{body_name}-master-0", labels, "Running", container="pytorch")],
        ),
        Phase(
            status={"conditions": [condition("Succeeded", "PyTorchJobSucceeded", "done")]},
            action=_publish(request.output, {"val_loss": 0.1}),
        ),
    ]
    assert cluster.run_multi_node(request, configuration=kube.configuration()) == {"val_loss": 0.1}
    assert kube.created[0]["kind"] == "PyTorchJob" and kube.deleted == [body_name]
    assert f"[{body_name}] step 2 loss 0.90" in step_log.text


def test_a_spec_the_server_refuses_surfaces_its_message(kube):
    from kubernetes.client.exceptions import ApiException

    body = trainjob.manifest(_request("bucket"))
    body["spec"]["trainer"]["numNodes"] = "two"
    with pytest.raises(ApiException, match="numNodes"):
        joblife.run(
            body, trainjob.KIND, cluster.client.CustomObjectsApi(cluster.client.ApiClient(kube.configuration()))
        )
    assert kube.rejected == [body["metadata"]["name"]] and not kube.objects
