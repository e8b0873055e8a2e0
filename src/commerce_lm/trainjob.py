"""Multi-node training through the Kubeflow Training Operator: a PyTorchJob running our entry point.

With ``num_nodes > 1`` in a step's trainer settings, the step (inside its KFP pod) does not train
itself: it builds a ``kubeflow.org/v1`` PyTorchJob (:func:`pytorchjob_manifest`) whose pods run
``python -m torch.distributed.run ... -m commerce_lm.training.entry <step> --config-json ...``,
submits it with the ``kubernetes`` client, streams its status into the step's log and fails with
the job's own reason (:func:`submit_and_wait`). The operator sets ``PET_NNODES``,
``PET_NPROC_PER_NODE``, ``PET_NODE_RANK`` and ``PET_MASTER_ADDR``/``PORT`` in every pod; torchrun
reads them, so the command is the same on every node. Inputs and outputs must be ``gs://`` (the
pods share no disk with the KFP pod); checkpoints go beside the output as in a local run, so a
failed and resubmitted job resumes.

The generated spec is validated in tests, offline, against the CRD schema vendored in
``deploy/crds/kubeflow.org_pytorchjobs.yaml``.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from dataclasses import dataclass, field
from typing import Any

from commerce_lm.config import RunConfig, TrainConfig

log = logging.getLogger(__name__)

GROUP, VERSION, PLURAL, KIND = "kubeflow.org", "v1", "pytorchjobs", "PyTorchJob"
# The training operator injects its rendezvous settings into the container named "pytorch".
CONTAINER = "pytorch"
ENTRY = "commerce_lm.training.entry"
STEPS = {"finetune-encoder": "encoder", "finetune-baseline": "baseline"}


class TrainJobFailed(RuntimeError):
    """The PyTorchJob failed (or timed out); the message carries the job's reason."""


@dataclass
class JobRequest:
    """What to run and on what.

    Attributes:
        step: ``finetune-encoder`` or ``finetune-baseline``.
        cfg: The resolved run config (passed to the pods as JSON).
        prepared: The prepare-data folder (``gs://``).
        output: The step's output folder (``gs://``).
        task: The task name (baseline only).
        image: Container image with commerce-lm installed (the CUDA training image).
        namespace: Kubernetes namespace of the job.
        service_account: Service account with access to the bucket (Workload Identity).
        shm_size: Size of the memory-backed ``/dev/shm`` (NCCL and data loading need more than the
            64 MiB default).
        labels: Extra labels (e.g. the KFP run id) on the job and its pods.
    """

    step: str
    cfg: RunConfig
    prepared: str
    output: str
    task: str | None = None
    image: str | None = None
    namespace: str | None = None
    service_account: str | None = None
    shm_size: str = "16Gi"
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def train(self) -> TrainConfig:
        """The trainer settings of the step."""
        return self.cfg.finetune if self.step == "finetune-encoder" else self.cfg.baseline


def job_name(request: JobRequest) -> str:
    """A DNS-1123 name that is the same for the same step, output and config.

    Deterministic on purpose: a retried KFP step finds (and waits for, or replaces) its own job
    instead of starting a second one.
    """
    digest = hashlib.sha256(f"{request.step}|{request.output}|{request.cfg.fingerprint()}".encode()).hexdigest()
    base = re.sub(r"[^a-z0-9-]+", "-", f"clm-{request.step}-{request.task or ''}".lower()).strip("-")
    return f"{base[:50].rstrip('-')}-{digest[:10]}"


def entry_command(request: JobRequest) -> list[str]:
    """The command every pod runs: torchrun (configured by the operator's ``PET_*`` variables) on our entry."""
    args = [
        "python", "-m", "torch.distributed.run", "-m", ENTRY, STEPS[request.step],
        "--config-json", request.cfg.to_json(), "--prepared", request.prepared, "--output", request.output,
        "--num-procs", "1",  # already under torchrun: never relaunch inside the pod
    ]  # fmt: skip
    if request.step == "finetune-baseline":
        if not request.task:
            raise ValueError("finetune-baseline needs a task")
        args += ["--task", request.task]
    return args


def _replica(request: JobRequest, replicas: int) -> dict[str, Any]:
    tcfg = request.train
    resources: dict[str, Any] = {}
    if tcfg.num_gpus:
        resources = {"limits": {"nvidia.com/gpu": tcfg.num_gpus}, "requests": {"nvidia.com/gpu": tcfg.num_gpus}}
    container: dict[str, Any] = {
        "name": CONTAINER,
        "image": request.image or tcfg.trainjob_image,
        "command": entry_command(request),
        "env": [
            {"name": "TOKENIZERS_PARALLELISM", "value": "false"},
            {"name": "PYTHONUNBUFFERED", "value": "1"},
        ],
        "volumeMounts": [{"name": "dshm", "mountPath": "/dev/shm"}],
    }
    if resources:
        container["resources"] = resources
    pod_spec: dict[str, Any] = {
        "containers": [container],
        "volumes": [{"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": request.shm_size}}],
    }
    if request.service_account:
        pod_spec["serviceAccountName"] = request.service_account
    return {
        "replicas": replicas,
        "restartPolicy": "OnFailure",
        "template": {"metadata": {"labels": dict(request.labels)}, "spec": pod_spec},
    }


def pytorchjob_manifest(request: JobRequest) -> dict[str, Any]:
    """The PyTorchJob for a multi-node run of one training step.

    One ``Master`` pod and ``num_nodes - 1`` ``Worker`` pods, each running ``num_procs`` ranks (or
    one per GPU), a memory-backed ``/dev/shm``, and the operator's retry budget for pod failures
    (a resubmitted pod resumes from the last checkpoint).

    Raises:
        ValueError: Local paths (pods cannot see them), no image, or fewer than two nodes.
    """
    tcfg = request.train
    if tcfg.num_nodes < 2:
        raise ValueError(f"{request.step}: num_nodes is {tcfg.num_nodes}; a PyTorchJob is for 2 or more nodes")
    if not (request.image or tcfg.trainjob_image):
        raise ValueError(f"{request.step}: set trainjob_image (the training image) for a multi-node run")
    for label, location in (("prepared", request.prepared), ("output", request.output)):
        if not location.startswith("gs://"):
            raise ValueError(f"{label} {location!r}: a multi-node job needs gs:// locations the pods can reach")
    procs = tcfg.num_gpus or tcfg.num_procs
    labels = {"app.kubernetes.io/part-of": "commerce-lm", "commerce-lm/step": request.step, **request.labels}
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": KIND,
        "metadata": {
            "name": job_name(request),
            "namespace": request.namespace or tcfg.trainjob_namespace,
            "labels": labels,
        },
        "spec": {
            "nprocPerNode": str(procs),
            "runPolicy": {"cleanPodPolicy": "Running", "backoffLimit": 3, "ttlSecondsAfterFinished": 86400},
            "pytorchReplicaSpecs": {
                "Master": _replica(request, 1),
                "Worker": _replica(request, tcfg.num_nodes - 1),
            },
        },
    }


def job_state(job: dict[str, Any]) -> tuple[str | None, str, str]:
    """The job's latest condition: ``(type, reason, message)``; type is ``None`` before the first."""
    conditions = [c for c in (job.get("status") or {}).get("conditions") or [] if c.get("status") == "True"]
    if not conditions:
        return None, "", ""
    last = conditions[-1]
    return last.get("type"), last.get("reason", ""), last.get("message", "")


def submit_and_wait(
    manifest: dict[str, Any], api: Any = None, poll_seconds: float = 15.0, timeout_seconds: float | None = None
) -> dict[str, Any]:
    """Create the PyTorchJob (or adopt the one a previous attempt created) and wait for its end.

    Args:
        manifest: From :func:`pytorchjob_manifest`.
        api: A ``kubernetes.client.CustomObjectsApi``; by default one from the in-cluster config
            (or ``~/.kube/config`` outside a cluster).
        poll_seconds: Seconds between status reads.
        timeout_seconds: Give up (and delete the job) after this long; ``None`` waits for ever.

    Returns:
        The finished job object.

    Raises:
        TrainJobFailed: The job failed, naming its reason and message, or the timeout passed.
    """
    if api is None:
        api = _default_api()
    name, namespace = manifest["metadata"]["name"], manifest["metadata"]["namespace"]
    try:
        api.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, manifest)
        log.info("submitted %s %s/%s", KIND, namespace, name)
    except Exception as error:  # noqa: BLE001 - the kubernetes ApiException, imported lazily
        if getattr(error, "status", None) != 409:
            raise
        # 409: a retried step finds the job its first attempt created; the job is the same run.
        log.info("%s %s/%s exists already (a retried step); following it", KIND, namespace, name)
    started = time.monotonic()
    last_seen: tuple[Any, ...] | None = None
    while True:
        job = api.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
        kind, reason, message = job_state(job)
        replicas = (job.get("status") or {}).get("replicaStatuses") or {}
        seen = (kind, reason, repr(sorted(replicas.items())))
        if seen != last_seen:
            log.info("%s %s: %s %s %s replicas=%s", KIND, name, kind or "Pending", reason, message, replicas)
            last_seen = seen
        if kind == "Succeeded":
            return job
        if kind == "Failed":
            raise TrainJobFailed(f"{KIND} {namespace}/{name} failed: {reason or 'no reason'}: {message}")
        if timeout_seconds is not None and time.monotonic() - started > timeout_seconds:
            api.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
            raise TrainJobFailed(f"{KIND} {namespace}/{name}: no result after {timeout_seconds:.0f}s; deleted it")
        time.sleep(poll_seconds)


def _default_api() -> Any:
    from kubernetes import client, config

    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config()
    return client.CustomObjectsApi()


def run_multi_node(request: JobRequest, **wait: Any) -> dict[str, Any]:
    """Run a training step as a PyTorchJob and return the metrics its rank 0 published.

    Args:
        request: The step, its inputs and where to run.
        **wait: Passed to :func:`submit_and_wait` (``api``, ``poll_seconds``, ``timeout_seconds``).

    Returns:
        The step's ``metrics.json``.
    """
    from commerce_lm import storage
    from commerce_lm.names import METRICS_JSON

    submit_and_wait(pytorchjob_manifest(request), **wait)
    return storage.read_json(storage.join(request.output, METRICS_JSON))
