"""The commerce-lm DAG: prepare -> (fine-tune -> embed) || embed PLM -> heads, KNN, baselines -> bundle -> report.

PLM embedding depends only on the prepared data, so it runs while the encoder fine-tunes, and
the end-to-end baselines fan out with ParallelFor over the tasks. Training steps get GPUs, a
memory-backed /dev/shm, node selection and tolerations from pipeline parameters, and retries
with backoff (they resume from their checkpoints).
"""

from typing import Any

from commerce_lm_components.build_report import build_report
from commerce_lm_components.evaluate_knn import evaluate_knn
from commerce_lm_components.extract_embeddings import (
    extract_finetuned_embeddings,
    extract_plm_embeddings,
    gather_embeddings,
)
from commerce_lm_components.finetune_baseline import finetune_baseline
from commerce_lm_components.finetune_encoder import finetune_encoder
from commerce_lm_components.images import IMAGE_UID
from commerce_lm_components.prepare_data import prepare_data
from commerce_lm_components.publish_bundle import publish_bundle
from commerce_lm_components.train_heads import train_heads
from kfp import compiler, dsl, kubernetes

from commerce_lm import __version__
from commerce_lm.config import RunConfig

PIPELINE_NAME = "commerce-lm"
SHM_SIZE = "16Gi"
# Pods with this label get a read-only root filesystem from deploy/cluster's admission policy
# (kfp-kubernetes 2.17 cannot set readOnlyRootFilesystem itself).
READ_ONLY_ROOT_LABEL = "commerce-lm/read-only-root"
# What a step writes outside its artifacts: /tmp (HOME, the Hugging Face, torch and our caches, as
# the images set them) and /gcs, where the KFP launcher stages gs:// artifacts.
SCRATCH = {"tmp": "/tmp", "kfp-gcs": "/gcs"}


def _training_settings(
    task: dsl.PipelineTask, gpus: int, accelerator: str, node_selector: dict, tolerations: list, cluster: bool
) -> None:
    """GPU, scheduling, /dev/shm and retry settings of a training step."""
    task.set_retry(num_retries=3, backoff_duration="60s", backoff_factor=2.0, backoff_max_duration="3600s")
    if not cluster:
        return  # the local runner has no Kubernetes; these settings only matter on a cluster
    task.set_accelerator_type(accelerator).set_accelerator_limit(gpus)
    kubernetes.add_node_selector_json(task, node_selector)
    kubernetes.add_toleration_json(task, tolerations)
    # NCCL and DataLoader workers share memory through /dev/shm; the default 64 MB is far too small.
    kubernetes.empty_dir_mount(task, volume_name="dshm", mount_path="/dev/shm", medium="Memory", size_limit=SHM_SIZE)


def hardened(tasks: list[dsl.PipelineTask]) -> None:
    """Run every step as the images' unprivileged user, writing only to its scratch volumes.

    kfp also drops all capabilities; deploy/cluster makes the root filesystem read-only.
    """
    for task in tasks:
        kubernetes.set_security_context(task, run_as_user=IMAGE_UID, run_as_group=IMAGE_UID, run_as_non_root=True)
        for volume, path in SCRATCH.items():
            kubernetes.empty_dir_mount(task, volume_name=volume, mount_path=path)
        kubernetes.add_pod_label(task, READ_ONLY_ROOT_LABEL, "true")


def _publish(data: dict, both: dict, heads: dsl.PipelineTask, knn: dsl.PipelineTask) -> dsl.PipelineTask:
    """The bundle (encoder, heads, thresholds, reference indexes), gated against the live one."""
    publish = publish_bundle(
        **data,
        encoder=both["encoder"],
        finetuned_embeddings=both["finetuned_embeddings"],
        heads=heads.outputs["heads"],
        knn=knn.outputs["knn"],
    )
    # The gate reads the registry's live pointer, which other runs move: never a cached decision.
    publish.set_caching_options(False)
    return publish


def build_pipeline(cluster: bool = True) -> Any:
    """The pipeline function; ``cluster=False`` leaves out Kubernetes-only settings for kfp.local."""

    @dsl.pipeline(name=PIPELINE_NAME, description="Domain-adapt an encoder, then embed once and reuse it.")
    def commerce_lm_pipeline(
        config_json: str,
        tasks: list,
        shards: list = [0],  # noqa: B006 - KFP default
        code_version: str = __version__,
        num_gpus: int = 1,
        accelerator_type: str = "nvidia-tesla-a100",
        gpu_node_selector: dict = {"cloud.google.com/gke-nodepool": "gpu-pool"},  # noqa: B006 - KFP default
        gpu_tolerations: list = [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],  # noqa: B006
    ):
        # Every step gets the config and the code version: both are part of each step's cache key.
        run = {"config_json": config_json, "code_version": code_version}
        prepared = prepare_data(**run)
        prepared.set_caching_options(True)
        data = {**run, "prepared": prepared.outputs["prepared"]}
        encoder = finetune_encoder(**data, num_procs=num_gpus)
        _training_settings(encoder, num_gpus, accelerator_type, gpu_node_selector, gpu_tolerations, cluster)
        # On one machine, concurrent loop iterations would share its cores and inflate each other's
        # measured cost; on a cluster each gets its own machine.
        parallel = 0 if cluster else 1
        # Embedding fans out over corpus shards (embed.num_shards); gathering checks every id.
        with dsl.ParallelFor(items=shards, name="plm-shards", parallelism=parallel) as shard:
            plm_part = extract_plm_embeddings(**data, shard=shard)
        plm = gather_embeddings(**data, parts=dsl.Collected(plm_part.outputs["embeddings"]))
        with dsl.ParallelFor(items=shards, name="finetuned-shards", parallelism=parallel) as shard:
            tuned_part = extract_finetuned_embeddings(**data, shard=shard, encoder=encoder.outputs["encoder"])
        tuned = gather_embeddings(**data, parts=dsl.Collected(tuned_part.outputs["embeddings"]))
        both = {
            **data,
            "encoder": encoder.outputs["encoder"],
            "plm_embeddings": plm.outputs["embeddings"],
            "finetuned_embeddings": tuned.outputs["embeddings"],
        }
        heads = train_heads(**both)
        knn = evaluate_knn(**both)
        with dsl.ParallelFor(items=tasks, name="baselines", parallelism=parallel) as task_name:
            baseline = finetune_baseline(**data, num_procs=num_gpus, task=task_name)
            _training_settings(baseline, num_gpus, accelerator_type, gpu_node_selector, gpu_tolerations, cluster)
        publish = _publish(data, both, heads, knn)
        report = build_report(
            **both,
            heads=heads.outputs["heads"],
            baselines=dsl.Collected(baseline.outputs["baseline"]),
            knn=knn.outputs["knn"],
            bundle=publish.outputs["bundle"],
        )
        if cluster:
            hardened([prepared, encoder, plm_part, plm, tuned_part, tuned, heads, knn, baseline, publish, report])

    return commerce_lm_pipeline


def pipeline_arguments(cfg: RunConfig) -> dict[str, Any]:
    """Pipeline parameters for a run of ``cfg``.

    The config travels as canonical JSON, so a changed setting changes the cache key; so does
    ``code_version``, so a new release is never served a stale cached step.
    """
    return {
        "config_json": cfg.to_json(),
        "tasks": [t.name for t in cfg.tasks],
        "shards": list(range(cfg.embed.num_shards)),
        "code_version": code_version(),
        "num_gpus": max(cfg.finetune.num_gpus, cfg.finetune.num_procs, 1),
    }


def code_version() -> str:
    """The package version plus, in a git checkout, the commit (so edited code never hits old cache)."""
    import subprocess
    from pathlib import Path

    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain"], cwd=Path(__file__).parent, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return __version__
    return f"{__version__}+g{commit}{'.dirty' if dirty else ''}"


def compile_pipeline(path: str) -> str:
    """Compile the cluster pipeline to KFP IR YAML at ``path``."""
    compiler.Compiler().compile(build_pipeline(cluster=True), package_path=path)
    return path
