"""A Kubeflow Trainer v2 ``TrainJob`` (``trainer.kubeflow.org/v1alpha1``) for one training step.

The job is built from the Trainer's published API models (``kubeflow-trainer-api``) and names a
training runtime (``runtimeRef``):

- ``launcher: torchrun`` (default) uses the torch runtime (``torch-distributed``). The Trainer sets
  ``PET_NNODES``, ``PET_NPROC_PER_NODE``, ``PET_NODE_RANK`` and ``PET_MASTER_ADDR``/``PORT`` in every
  node's container; ``torchrun`` reads them, so each node runs the same command.
- ``launcher: deepspeed`` uses the DeepSpeed runtime (``deepspeed-distributed``), which is MPI: the
  launcher pod runs the command under ``mpirun`` over ssh to the node pods. With one MPI slot per
  node, ``mpirun`` starts one ``torchrun`` per node, and those meet at the launcher's host (c10d
  rendezvous), so the ranks see the same environment as under the torch runtime.

Either way the ranks run the ``commerce-lm`` command line of :func:`.jobspec.step_args`. The spec is
checked in tests, offline, against the published CRD kept in
``deploy/crds/trainer.kubeflow.org_trainjobs.yaml``.

Why not ``TrainerClient.train()`` from the Kubeflow SDK (``kubeflow`` 0.5): its
``CustomTrainerContainer`` has no ``numProcPerNode`` (the MPI runtime would then take one slot per
GPU), it renders the TrainJob only through a connected backend (no offline spec to validate), and
it turns a name conflict into a bare ``RuntimeError`` (no re-attaching). The SDK's client follows
the job's pods' logs (:mod:`.cluster`).
"""

from __future__ import annotations

from typing import Any

from kubeflow_trainer_api import models

from commerce_lm.launch import jobspec
from commerce_lm.launch.joblife import JobKind
from commerce_lm.launch.jobspec import JobRequest

KIND = JobKind(group="trainer.kubeflow.org", version="v1alpha1", plural="trainjobs", kind="TrainJob")
RUNTIMES = {"torchrun": "torch-distributed", "deepspeed": "deepspeed-distributed"}
# The container every runtime's trainer pods run the command in (and whose logs are followed).
NODE = "node"
# Who owns our runtime patch (Kueue, for one, adds its own under another manager).
MANAGER = "commerce-lm.io/launcher"
QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
PRIORITY_LABEL = "kueue.x-k8s.io/priority-class"
MPI_HOSTFILE = "/etc/mpi/hostfile"
RENDEZVOUS_PORT = 29400
# Every step writes only under /tmp (HOME and the caches point there in our images) and /dev/shm.
SCRATCH = {"tmp": "/tmp", "dshm": "/dev/shm"}


def runtime_name(request: JobRequest) -> str:
    """The runtime the job runs on: the configured one, else the launcher's stock runtime."""
    return request.launch.trainjob_runtime or RUNTIMES[request.launch.launcher]


def trainer_command(request: JobRequest, name: str) -> list[str]:
    """The trainer container's command for the job called ``name``."""
    launch = request.launch
    if launch.launcher == "torchrun":
        return ["torchrun", "--no-python", *jobspec.step_args(request)]
    # The launcher pod is also a node (the runtime's runLauncherAsNode) and has a stable host name
    # (JobSet: <jobset>-<replicated job>-<job index>-<pod index>.<jobset>), so it hosts the rendezvous.
    exported = [arg for env in ("PATH", *sorted(_env(request))) for arg in ("-x", env)]
    return [
        "mpirun", "--hostfile", MPI_HOSTFILE, *exported,
        "torchrun", f"--nnodes={launch.num_nodes}", f"--nproc-per-node={request.procs_per_node}",
        "--rdzv-backend=c10d", f"--rdzv-endpoint={name}-launcher-0-0.{name}:{RENDEZVOUS_PORT}", f"--rdzv-id={name}",
        "--no-python", *jobspec.step_args(request),
    ]  # fmt: skip


def _env(request: JobRequest) -> dict[str, str]:
    return {"PYTHONUNBUFFERED": "1", "TOKENIZERS_PARALLELISM": "false", **request.launch.trainjob_env}


def _trainer(request: JobRequest, name: str) -> models.TrainerV1alpha1Trainer:
    launch = request.launch
    resources = None
    if launch.num_gpus:
        gpus = {"nvidia.com/gpu": models.IoK8sApimachineryPkgApiResourceQuantity(str(launch.num_gpus))}
        resources = models.IoK8sApiCoreV1ResourceRequirements(requests=gpus, limits=gpus)
    return models.TrainerV1alpha1Trainer(
        image=launch.trainjob_image,
        command=trainer_command(request, name),
        env=[models.IoK8sApiCoreV1EnvVar(name=k, value=v) for k, v in _env(request).items()],
        numNodes=launch.num_nodes,
        # MPI: one slot per node (torchrun starts the ranks); torch: the ranks per node.
        numProcPerNode=1 if launch.launcher == "deepspeed" else request.procs_per_node,
        resourcesPerNode=resources,
    )


def _pod_patch(request: JobRequest) -> models.TrainerV1alpha1PodSpecPatch:
    """Scratch volumes, a read-only root filesystem where the runtime allows it, and the service account."""
    launch = request.launch
    volumes = [
        models.IoK8sApiCoreV1Volume(name="tmp", emptyDir=models.IoK8sApiCoreV1EmptyDirVolumeSource()),
        # NCCL and the data loader need far more shared memory than the container's 64 MiB default.
        models.IoK8sApiCoreV1Volume(
            name="dshm",
            emptyDir=models.IoK8sApiCoreV1EmptyDirVolumeSource(
                medium="Memory", sizeLimit=models.IoK8sApimachineryPkgApiResourceQuantity(launch.trainjob_shm_size)
            ),
        ),
    ]
    # The MPI runtime's nodes run sshd, which writes its run-time state to the root filesystem.
    read_only = launch.launcher == "torchrun"
    container = models.TrainerV1alpha1ContainerPatch(
        name=NODE,
        volumeMounts=[models.IoK8sApiCoreV1VolumeMount(name=n, mountPath=p) for n, p in SCRATCH.items()],
        securityContext=models.IoK8sApiCoreV1SecurityContext(readOnlyRootFilesystem=True) if read_only else None,
    )
    return models.TrainerV1alpha1PodSpecPatch(
        serviceAccountName=launch.trainjob_service_account, volumes=volumes, containers=[container]
    )


def _runtime_patch(request: JobRequest) -> models.TrainerV1alpha1RuntimePatch:
    jobs = ["launcher", NODE] if request.launch.launcher == "deepspeed" else [NODE]
    pod = models.TrainerV1alpha1PodTemplatePatch(
        metadata=models.IoK8sApimachineryPkgApisMetaV1ObjectMeta(labels=jobspec.labels(request)),
        spec=_pod_patch(request),
    )
    job_template = models.TrainerV1alpha1JobTemplatePatch(spec=models.TrainerV1alpha1JobSpecPatch(template=pod))
    replicated = [models.TrainerV1alpha1ReplicatedJobPatch(name=job, template=job_template) for job in jobs]
    template = models.TrainerV1alpha1JobSetTemplatePatch(
        spec=models.TrainerV1alpha1JobSetSpecPatch(replicatedJobs=replicated)
    )
    return models.TrainerV1alpha1RuntimePatch(
        manager=MANAGER, trainingRuntimeSpec=models.TrainerV1alpha1TrainingRuntimeSpecPatch(template=template)
    )


def _metadata(request: JobRequest, name: str) -> models.IoK8sApimachineryPkgApisMetaV1ObjectMeta:
    launch = request.launch
    labels = jobspec.labels(request)
    if launch.trainjob_queue:
        labels[QUEUE_LABEL] = launch.trainjob_queue
    if launch.trainjob_priority_class:
        labels[PRIORITY_LABEL] = launch.trainjob_priority_class
    return models.IoK8sApimachineryPkgApisMetaV1ObjectMeta(
        name=name,
        namespace=jobspec.namespace(request),
        labels=labels,
        annotations=dict(launch.trainjob_annotations) or None,
    )


def manifest(request: JobRequest) -> dict[str, Any]:
    """The TrainJob for a multi-node run of one training step, as the API server takes it.

    Raises:
        JobSpecError: The request cannot run on a cluster (see :func:`.jobspec.check`).
    """
    jobspec.check(request)
    name = jobspec.job_name(request)
    job = models.TrainerV1alpha1TrainJob(
        apiVersion=KIND.api_version,
        kind=KIND.kind,
        metadata=_metadata(request, name),
        spec=models.TrainerV1alpha1TrainJobSpec(
            runtimeRef=models.TrainerV1alpha1RuntimeRef(
                apiGroup=KIND.group, kind=request.launch.trainjob_runtime_kind, name=runtime_name(request)
            ),
            trainer=_trainer(request, name),
            runtimePatches=[_runtime_patch(request)],
            # Queued: Kueue admits the job by lifting the suspension, so no pod starts before that.
            suspend=True if request.launch.trainjob_queue else None,
        ),
    )
    return job.to_dict()
