"""What a multi-node training job runs, whatever the cluster API: the request, its name, the pod command.

Both job builders (:mod:`.trainjob`, :mod:`.pytorchjob`) start from a :class:`JobRequest` and give
every pod the same ``commerce-lm`` command line as any other step (:func:`step_args`), under a
launcher that the cluster configures through environment variables.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field

from commerce_lm import config
from commerce_lm.config import LaunchConfig, TrainingSection

# The steps that can run on several nodes (the two fine-tunes), and where each keeps its trainer settings.
STEPS = {step.name: step.trainer for step in config.STEPS if step.trainer}
PART_OF = {"app.kubernetes.io/part-of": "commerce-lm"}
# The namespace a pod runs in, as Kubernetes mounts it with the service-account token.
POD_NAMESPACE_FILE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"
# The TrainJob name becomes the JobSet's and, with suffixes such as "-launcher-0-0", each pod's
# host name (at most 63 characters): keep it short.
NAME_LIMIT = 40


class JobSpecError(ValueError):
    """A multi-node request that cannot run; the message names the setting to change."""


@dataclass
class JobRequest:
    """One training step to run on several nodes.

    Attributes:
        step: ``finetune-encoder`` or ``finetune-baseline``.
        cfg: The step's section of the run config (handed to the pods as JSON); a whole run config
            works too.
        prepared: The prepare-data folder (``gs://``: the pods share no disk with the caller).
        output: The step's output folder (``gs://``).
        task: The task name (baseline only).
        checkpoint_dir: Where the ranks keep resumable checkpoints (``gs://``); by default beside
            ``output``, which is on ``gs://`` too, so a restarted job resumes.
        labels: Extra labels (e.g. the KFP run id) on the job and its pods.
    """

    step: str
    cfg: TrainingSection
    prepared: str
    output: str
    task: str | None = None
    checkpoint_dir: str | None = None
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def launch(self) -> LaunchConfig:
        """Where the step runs: its trainer settings' ``launch`` section."""
        return getattr(self.cfg, STEPS[self.step]).launch

    @property
    def procs_per_node(self) -> int:
        """Processes on each node: one per GPU, else ``num_procs``."""
        return self.launch.num_gpus or self.launch.num_procs


def check(request: JobRequest) -> None:
    """Refuse a request no cluster could run, before anything is created.

    Raises:
        JobSpecError: No image, a local location, or a baseline without a task.
    """
    if not request.launch.trainjob_image:
        raise JobSpecError(f"{STEPS[request.step]}.launch.trainjob_image: set the training image for a multi-node run")
    if request.step == "finetune-baseline" and not request.task:
        raise JobSpecError("finetune-baseline needs a task")
    locations = {"prepared": request.prepared, "output": request.output, "checkpoint_dir": request.checkpoint_dir}
    for label, location in locations.items():
        if location is not None and not location.startswith("gs://"):
            raise JobSpecError(f"{label} {location!r}: a multi-node job needs gs:// locations the pods can reach")


def job_name(request: JobRequest) -> str:
    """A DNS-1035 name that is the same for the same step, task, output and config.

    Deterministic on purpose: a retried KFP step finds the job its first attempt created and
    re-attaches to it instead of starting a second one.
    """
    identity = f"{request.step}|{request.task or ''}|{request.output}|{request.cfg.fingerprint()}"
    digest = hashlib.sha256(identity.encode()).hexdigest()[:10]
    base = re.sub(r"[^a-z0-9-]+", "-", f"clm-{request.step}-{request.task or ''}".lower()).strip("-")
    return f"{base[: NAME_LIMIT - len(digest) - 1].rstrip('-')}-{digest}"


def step_args(request: JobRequest) -> list[str]:
    """The ``commerce-lm`` command line every rank runs: the step, its config and its ``gs://`` locations."""
    args = [
        "commerce-lm", request.step, "--config-json", request.cfg.to_json(),
        "--prepared", request.prepared, "--output", request.output,
    ]  # fmt: skip
    if request.task:
        args += ["--task", request.task]
    if request.checkpoint_dir:
        args += ["--checkpoint-dir", request.checkpoint_dir]
    return args


def labels(request: JobRequest) -> dict[str, str]:
    """Labels on the job and its pods: ours, the step's, and the caller's."""
    return {**PART_OF, "commerce-lm/step": request.step, **request.labels}


def namespace(request: JobRequest) -> str:
    """The job's namespace: the config's, else the one this pod runs in (where deploy/ grants the verbs).

    Raises:
        JobSpecError: Neither is known (outside a cluster with no namespace configured).
    """
    if request.launch.trainjob_namespace:
        return request.launch.trainjob_namespace
    if os.path.isfile(POD_NAMESPACE_FILE):
        with open(POD_NAMESPACE_FILE, encoding="utf-8") as handle:
            return handle.read().strip()
    raise JobSpecError(f"{STEPS[request.step]}.launch.trainjob_namespace: set it when the step runs outside a cluster")
