"""The legacy multi-node path: a Training Operator v1 ``PyTorchJob`` (``kubeflow.org/v1``).

Chosen with ``trainjob_api: pytorchjob`` for clusters that still run the Training Operator v1
(kept on its release-1.9 branch); current Kubeflow has only the Trainer v2 TrainJob
(:mod:`.trainjob`). One ``Master`` pod and ``num_nodes - 1`` ``Worker`` pods run the same
``commerce-lm`` command under ``torchrun``, which reads the ``PET_NNODES``, ``PET_NPROC_PER_NODE``,
``PET_NODE_RANK`` and ``PET_MASTER_ADDR``/``PORT`` variables the operator sets in the container named
``pytorch``. The spec is validated in tests, offline, against the CRD schema kept in
``deploy/crds/kubeflow.org_pytorchjobs.yaml``.
"""

from __future__ import annotations

from typing import Any

from commerce_lm.launch import jobspec
from commerce_lm.launch.joblife import JobKind
from commerce_lm.launch.jobspec import JobRequest

KIND = JobKind(
    group="kubeflow.org", version="v1", plural="pytorchjobs", kind="PyTorchJob",
    succeeded="Succeeded", progress="replicaStatuses",
)  # fmt: skip
# The operator injects its rendezvous settings into the container of this name.
CONTAINER = "pytorch"
SCRATCH = {"tmp": "/tmp", "dshm": "/dev/shm"}


def _replica(request: JobRequest, replicas: int) -> dict[str, Any]:
    launch = request.launch
    container: dict[str, Any] = {
        "name": CONTAINER,
        "image": launch.trainjob_image,
        "command": ["torchrun", "--no-python", *jobspec.step_args(request)],
        "env": [{"name": k, "value": v} for k, v in {"PYTHONUNBUFFERED": "1", **launch.trainjob_env}.items()],
        "volumeMounts": [{"name": name, "mountPath": path} for name, path in SCRATCH.items()],
        "securityContext": {"readOnlyRootFilesystem": True},
    }
    if launch.num_gpus:
        gpus = {"nvidia.com/gpu": launch.num_gpus}
        container["resources"] = {"limits": gpus, "requests": gpus}
    pod_spec: dict[str, Any] = {
        "containers": [container],
        "volumes": [
            {"name": "tmp", "emptyDir": {}},
            {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": launch.trainjob_shm_size}},
        ],
    }
    if launch.trainjob_service_account:
        pod_spec["serviceAccountName"] = launch.trainjob_service_account
    return {
        "replicas": replicas,
        "restartPolicy": "OnFailure",
        "template": {"metadata": {"labels": jobspec.labels(request)}, "spec": pod_spec},
    }


def manifest(request: JobRequest) -> dict[str, Any]:
    """The PyTorchJob for a multi-node run of one training step.

    Raises:
        JobSpecError: The request cannot run on a cluster (see :func:`.jobspec.check`).
    """
    jobspec.check(request)
    labels = jobspec.labels(request)
    if request.launch.trainjob_queue:
        labels["kueue.x-k8s.io/queue-name"] = request.launch.trainjob_queue
    return {
        "apiVersion": KIND.api_version,
        "kind": KIND.kind,
        "metadata": {
            "name": jobspec.job_name(request),
            "namespace": jobspec.namespace(request),
            "labels": labels,
            **({"annotations": dict(annotations)} if (annotations := request.launch.trainjob_annotations) else {}),
        },
        "spec": {
            "nprocPerNode": str(request.procs_per_node),
            "runPolicy": {"cleanPodPolicy": "Running", "backoffLimit": 3, "ttlSecondsAfterFinished": 86400},
            "pytorchReplicaSpecs": {
                "Master": _replica(request, 1),
                **({"Worker": _replica(request, workers)} if (workers := request.launch.num_nodes - 1) else {}),
            },
        },
    }
