"""The commerce-lm DAG: prepare -> (fine-tune -> embed) || embed PLM -> heads, KNN, baselines -> bundle -> report.

PLM embedding depends only on the prepared data, so it runs while the encoder fine-tunes, and
the end-to-end baselines fan out with ParallelFor over the tasks, each with its own prepared data.
Training steps get GPUs, a memory-backed /dev/shm, node selection and tolerations from pipeline
parameters, and retries with backoff (they resume from their checkpoints).

Each step gets only its config section (a pipeline parameter), the artifacts it reads and its code
version (a constant of the compiled pipeline, :mod:`commerce_lm_pipelines.versions`). The data is
prepared in parts, each its own artifact: the domain; the datasets (tasks, similarity sets and the
corpus to embed); and each task alone, for its baseline. So a new task re-runs neither the domain
fine-tune nor another task's baseline.

A step this module does not wire by hand joins the DAG from its descriptor
(:mod:`commerce_lm_pipelines.declared`), after the steps whose outputs it reads.

The baseline loop runs over the tasks planned to get one (:mod:`commerce_lm_pipelines.baseline_plan`):
``publish-bundle`` records what it measured in the bundle registry, and ``build-report`` shows the
earlier record of a task whose baseline did not run.
"""

from typing import Any

from kfp import compiler, dsl, kubernetes
from kfp.dsl import Dataset

from commerce_lm import config
from commerce_lm.config import RunConfig, prepare_part, section_for
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
from commerce_lm_pipelines.baseline_plan import plan_baselines
from commerce_lm_pipelines.declared import declared_steps, section_parameter, wire, with_section_parameters
from commerce_lm_pipelines.versions import step_code_versions

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


def _publish(
    section: Any, version: str, both: dict[str, Any], evaluated: list[Any], keys: Any, measured: dict[str, Any]
) -> Any:
    """The bundle (encoder, heads, thresholds, reference indexes), gated against the live one.

    The baselines ``measured`` (the collected outputs, when the run has any) are recorded in the
    registry under their ``keys`` (task -> record key).
    """
    publish = publish_bundle(
        section_json=section,
        code_version=version,
        baseline_keys=keys,
        **measured,
        heads=evaluated[-2].outputs["heads"],
        knn=evaluated[-1].outputs["knn"],
        prepared=both["prepared"],
        encoder=both["encoder"],
        finetuned_embeddings=both["finetuned_embeddings"],
    )
    # The gate reads the registry's live pointer, which other runs move: never a cached decision.
    publish.set_caching_options(False)
    return publish


def _embedded(extract: Any, loop: str, shards: Any, parallel: int, version: str, **inputs: Any) -> tuple[Any, Any]:
    """Embed the corpus in shards with ``extract`` (``ParallelFor``), then gather them checking every id."""
    with dsl.ParallelFor(items=shards, name=loop, parallelism=parallel) as shard:
        part = extract(code_version=version, shard=shard, **inputs)
    parts = dsl.Collected(part.outputs["embeddings"])
    return part, gather_embeddings(code_version=version, prepared=inputs["prepared"], parts=parts)


def _prepare(section: Any, version: dict[str, str], pod: tuple) -> Any:
    """One part of data preparation; on a cluster its pod gets the configured CPU and memory."""
    task = prepare_data(section_json=section, code_version=version["prepare-data"])
    cpu, memory, cluster = pod
    if cluster:  # kfp.local ignores resources
        task.set_cpu_request(cpu).set_memory_request(memory).set_memory_limit(memory)
    return task


def _baselines(tasks: Any, section: Any, version: dict[str, str], parallel: int, gpus: tuple, pod: tuple) -> tuple:
    """One end-to-end baseline per task, each on that task's own prepared data (``ParallelFor``)."""
    with dsl.ParallelFor(items=tasks, name="baselines", parallelism=parallel) as task:
        task_data = _prepare(task.prepare_section, version, pod)
        baseline = finetune_baseline(
            section_json=section,
            code_version=version["finetune-baseline"],
            num_procs=gpus[0],
            task=task.spec_name,
            prepared=task_data.outputs["prepared"],
        )
        _training_settings(baseline, *gpus)
    return task_data, baseline


def _embed_and_evaluate(
    datasets: Any, encoder: Any, sections: dict[str, Any], version: dict[str, str], shards: Any, parallel: int
) -> tuple[dict[str, Any], list[Any]]:
    """Embed with both encoders, then train the heads and run KNN on both embedding sets.

    Returns:
        The inputs the heads, KNN and report share, and the tasks made (heads and KNN last).
    """
    # PLM embedding depends only on the prepared data, so it runs while the encoder fine-tunes.
    embed = {"section_json": sections["extract"], "prepared": datasets.outputs["prepared"]}
    extract = version["extract-embeddings"]
    plm_part, plm = _embedded(extract_plm_embeddings, "plm-shards", shards, parallel, extract, **embed)
    tuned_part, tuned = _embedded(
        extract_finetuned_embeddings,
        "finetuned-shards",
        shards,
        parallel,
        extract,
        encoder=encoder.outputs["encoder"],
        **embed,
    )
    both = {
        "prepared": datasets.outputs["prepared"],
        "encoder": encoder.outputs["encoder"],
        "plm_embeddings": plm.outputs["embeddings"],
        "finetuned_embeddings": tuned.outputs["embeddings"],
    }
    heads = train_heads(section_json=sections["heads"], code_version=version["train-heads"], **both)
    knn = evaluate_knn(section_json=sections["knn"], code_version=version["evaluate-knn"], **both)
    return both, [plm_part, plm, tuned_part, tuned, heads, knn]


def build_pipeline(cluster: bool = True, baselines: bool = True) -> Any:
    """The pipeline function; ``cluster=False`` leaves out Kubernetes-only settings for kfp.local.

    Each step gets only its config section, the artifacts it reads and its code version (see the
    module docstring), so its cache key changes only when one of them does. ``baselines=False``
    leaves the baseline loop out, for a run that plans none (``tasks`` empty): kfp.local cannot
    collect the outputs of a loop of no iterations.
    """
    version = step_code_versions()
    declared = declared_steps()

    def commerce_lm_pipeline(
        tasks: list,
        prepare_domain: str,
        prepare_datasets: str,
        finetune_encoder_section: str,
        finetune_baseline_section: str,
        extract_section: str,
        train_heads_section: str,
        evaluate_knn_section: str,
        build_report_section: str,
        publish_bundle_section: str,
        baseline_keys: dict = {},  # noqa: B006 - KFP default
        earlier_baselines: dict = {},  # noqa: B006 - KFP default
        shards: list = [0],  # noqa: B006 - KFP default
        prepare_cpu: str = "4",
        prepare_memory: str = "16Gi",
        num_gpus: int = 1,
        accelerator_type: str = "nvidia-tesla-a100",
        gpu_node_selector: dict = {"cloud.google.com/gke-nodepool": "gpu-pool"},  # noqa: B006 - KFP default
        gpu_tolerations: list = [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],  # noqa: B006
        **declared_sections: str,
    ) -> Dataset:
        gpus = (num_gpus, accelerator_type, gpu_node_selector, gpu_tolerations, cluster)
        pod = (prepare_cpu, prepare_memory, cluster)
        domain = _prepare(prepare_domain, version, pod)
        datasets = _prepare(prepare_datasets, version, pod)
        encoder = finetune_encoder(
            section_json=finetune_encoder_section,
            code_version=version["finetune-encoder"],
            num_procs=num_gpus,
            prepared=domain.outputs["prepared"],
        )
        _training_settings(encoder, *gpus)
        # On one machine, concurrent loop iterations would share its cores and inflate each other's
        # measured cost; on a cluster each gets its own machine.
        parallel = 0 if cluster else 1
        sections = {"extract": extract_section, "heads": train_heads_section, "knn": evaluate_knn_section}
        both, evaluated = _embed_and_evaluate(datasets, encoder, sections, version, shards, parallel)
        loop = _baselines(tasks, finetune_baseline_section, version, parallel, gpus, pod) if baselines else ()

        def measured() -> dict[str, Any]:
            # Each consumer gets its own Collected: the compiler loses the loop of one passed to two tasks.
            return {"baselines": dsl.Collected(loop[-1].outputs["baseline"])} if loop else {}

        publish = _publish(
            publish_bundle_section, version["publish-bundle"], both, evaluated, baseline_keys, measured()
        )
        report = build_report(
            section_json=build_report_section,
            code_version=version["build-report"],
            domain=domain.outputs["prepared"],
            heads=evaluated[-2].outputs["heads"],
            earlier_baselines=earlier_baselines,
            **measured(),
            knn=evaluated[-1].outputs["knn"],
            bundle=publish.outputs["bundle"],
            **both,
        )
        # The steps wired from their descriptors read these, named as the descriptors' outputs.
        artifacts = {
            "prepared": both["prepared"],
            "finetuned": both["encoder"],
            "plm-embeddings": both["plm_embeddings"],
            "finetuned-embeddings": both["finetuned_embeddings"],
            "heads": evaluated[-2].outputs["heads"],
            "knn": evaluated[-1].outputs["knn"],
            "bundle": publish.outputs["bundle"],
            "report": report.outputs["report"],
        }
        added = wire(declared, declared_sections, artifacts, version)
        if cluster:
            hardened([domain, datasets, encoder, *evaluated, *loop, publish, report, *added])
        return report.outputs["report"]

    description = "Domain-adapt an encoder, then embed once and reuse it."
    return dsl.pipeline(name=PIPELINE_NAME, description=description)(
        with_section_parameters(commerce_lm_pipeline, declared)
    )


def pipeline_arguments(cfg: RunConfig) -> dict[str, Any]:
    """Pipeline parameters for a run of ``cfg``: each step's section of it, as canonical JSON.

    Each step receives only its own section, so a setting changes the cache key of exactly the
    steps that read it. The baseline loop gets only the tasks planned to get a baseline
    (:func:`commerce_lm_pipelines.baseline_plan.plan_baselines`).
    """
    plan = plan_baselines(cfg, step_code_versions())
    prepare = section_for("prepare-data", cfg)
    # Data preparation runs in parts, each with its own parameter (below); every other step gets its section.
    sections = {
        section_parameter(step.name): section_for(step.name, cfg).to_json()
        for step in config.STEPS
        if step.name != "prepare-data"
    }
    tasks = [
        {"spec_name": t.name, "prepare_section": prepare_part(prepare, f"task:{t.name}").to_json()}
        for t in cfg.tasks
        if t.name in plan.run
    ]
    return {
        "tasks": tasks,
        "prepare_domain": prepare_part(prepare, "domain").to_json(),
        "prepare_datasets": prepare_part(prepare, "datasets").to_json(),
        **sections,
        "baseline_keys": plan.run,
        "earlier_baselines": plan.earlier,
        "shards": list(range(cfg.embed.num_shards)),
        "num_gpus": max(cfg.finetune.launch.num_gpus, cfg.finetune.launch.num_procs, 1),
        "prepare_cpu": cfg.resources.prepare_data.cpu,
        "prepare_memory": cfg.resources.prepare_data.memory,
    }


def compile_pipeline(path: str, baselines: bool = True) -> str:
    """Compile the cluster pipeline to KFP IR YAML at ``path`` (``baselines``: see :func:`build_pipeline`)."""
    compiler.Compiler().compile(build_pipeline(cluster=True, baselines=baselines), package_path=path)
    return path
