"""Run one training step on several nodes of the cluster and return what its rank 0 published.

``finetune.launch.trainjob_api`` picks the API: a Trainer v2 ``TrainJob`` (:mod:`.trainjob`, the default)
or a Training Operator v1 ``PyTorchJob`` (:mod:`.pytorchjob`). :mod:`.joblife` follows either.

The calls stay inside the job's namespace: the job itself, and the pods and logs of its main pod,
which is all the Role in ``deploy/base/rbac.yaml`` grants. (The Kubeflow SDK's
``TrainerClient.get_job_logs`` would also read the job's ``ClusterTrainingRuntime``, a cluster-wide
permission, so the main pod's log is read here with the core API.)
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from kubernetes import client, config, watch

from commerce_lm import storage
from commerce_lm.launch import joblife, pytorchjob, trainjob
from commerce_lm.launch.jobspec import JobRequest
from commerce_lm.names import METRICS_JSON

# Label selectors of each kind's main pod (rank 0 runs there): JobSet labels for a TrainJob (the
# first pod of the trainer job: "node", or "launcher" under MPI), the operator's for a PyTorchJob.
_MAIN_POD = {
    trainjob.KIND.kind: "jobset.sigs.k8s.io/jobset-name={name},jobset.sigs.k8s.io/replicatedjob-name={job},"
    "batch.kubernetes.io/job-completion-index=0",
    pytorchjob.KIND.kind: "training.kubeflow.org/job-name={name},training.kubeflow.org/replica-type=master",
}


def default_configuration() -> client.Configuration:
    """The API server of the cluster this pod runs in (or ``~/.kube/config`` outside a cluster)."""
    configuration = client.Configuration()
    try:
        config.load_incluster_config(client_configuration=configuration)
    except config.ConfigException:
        # $KUBECONFIG as it is now: the client library reads it once, when it is imported.
        config.load_kube_config(config_file=os.environ.get("KUBECONFIG"), client_configuration=configuration)
    return configuration


class MainPodLog:
    """Follows the log of a job's main pod (a :data:`.joblife.LogReader`)."""

    def __init__(self, core: client.CoreV1Api, kind: str, namespace: str, job: str, container: str) -> None:
        self.core, self.kind, self.namespace, self.job, self.container = core, kind, namespace, job, container

    def __call__(self, name: str) -> Iterator[str]:
        """The main pod's log lines as they come; nothing while that pod is not running yet."""
        selector = _MAIN_POD[self.kind].format(name=name, job=self.job)
        pods = self.core.list_namespaced_pod(self.namespace, label_selector=selector).items
        running = [p for p in pods if p.status and p.status.phase in ("Running", "Succeeded", "Failed")]
        if not running:
            return
        yield from watch.Watch().stream(
            self.core.read_namespaced_pod_log,
            name=running[0].metadata.name,
            namespace=self.namespace,
            container=self.container,
            follow=True,
        )


def run_multi_node(
    request: JobRequest,
    configuration: client.Configuration | None = None,
    timeout_seconds: float | None = None,
) -> dict[str, Any]:
    """Run a training step as a cluster job and return the metrics its rank 0 published.

    Args:
        request: The step, its ``gs://`` inputs and output.
        configuration: How to reach the API server; by default the in-cluster service account (or
            ``$KUBECONFIG`` / ``~/.kube/config`` outside a cluster).
        timeout_seconds: Give up (and delete the job) after this long; ``None`` waits for ever.

    Returns:
        The step's ``metrics.json``.

    Raises:
        JobSpecError: The request cannot run on a cluster.
        JobFailed: The job failed, with its reason.
    """
    launch = request.launch
    if launch.trainjob_api == "pytorchjob":
        body, kind, job, container = pytorchjob.manifest(request), pytorchjob.KIND, "", pytorchjob.CONTAINER
    else:
        body, kind, container = trainjob.manifest(request), trainjob.KIND, trainjob.NODE
        job = "launcher" if launch.launcher == "deepspeed" else trainjob.NODE
    api_client = client.ApiClient(configuration or default_configuration())
    logs = MainPodLog(client.CoreV1Api(api_client), kind.kind, body["metadata"]["namespace"], job, container)
    joblife.run(
        body,
        kind,
        client.CustomObjectsApi(api_client),
        logs,
        poll_seconds=launch.trainjob_poll_seconds,
        timeout_seconds=timeout_seconds,
    )
    return storage.read_json(storage.join(request.output, METRICS_JSON))
