"""Cluster settings in the compiled IR: GPUs, scheduling, /dev/shm, retries, caching, pipeline root."""

import json

TRAINING_STEPS = ("finetune-encoder", "finetune-baseline")


def _all_tasks(spec):
    yield from spec["root"]["dag"]["tasks"].items()
    for component in spec["components"].values():
        yield from component.get("dag", {}).get("tasks", {}).items()


def test_accelerators_come_from_pipeline_parameters(ir):
    spec, _ = ir
    for step in TRAINING_STEPS:
        accelerator = spec["deploymentSpec"]["executors"][f"exec-{step}"]["container"]["resources"]["accelerator"]
        assert "num_gpus" in accelerator["resourceCount"] and "accelerator_type" in accelerator["resourceType"]
    assert {"num_gpus", "accelerator_type", "gpu_node_selector", "gpu_tolerations"} <= set(
        spec["root"]["inputDefinitions"]["parameters"]
    )


def test_data_preparation_pods_get_cpu_and_memory_from_the_config(ir, tiny_cfg):
    from commerce_lm_pipelines.pipeline import pipeline_arguments

    spec, _ = ir
    prepare = [e for name, e in spec["deploymentSpec"]["executors"].items() if name.startswith("exec-prepare-data")]
    assert len(prepare) == 3  # the domain, the datasets, and each task for its baseline
    for executor in prepare:
        resources = executor["container"]["resources"]
        assert "prepare_cpu" in resources["resourceCpuRequest"], resources
        assert (
            "prepare_memory" in resources["resourceMemoryRequest"]
            and "prepare_memory" in resources["resourceMemoryLimit"]
        )
    edited = tiny_cfg.model_copy(deep=True)
    edited.resources.prepare_data.cpu = "7"
    arguments, changed = pipeline_arguments(tiny_cfg), pipeline_arguments(edited)
    assert changed["prepare_cpu"] == "7" and arguments["prepare_cpu"] == tiny_cfg.resources.prepare_data.cpu
    # Resources are not settings a step reads: no cached step's section changes with them
    # (publish-bundle carries the whole run config in its bundle, and is never cached).
    unchanged = set(arguments) - {"prepare_cpu", "publish_bundle_section"}
    assert all(changed[k] == arguments[k] for k in unchanged)
    assert changed["publish_bundle_section"] != arguments["publish_bundle_section"]


def test_training_steps_get_node_selector_tolerations_and_shm(ir):
    _, executors = ir
    for step in TRAINING_STEPS:
        settings = executors[f"exec-{step}"]
        assert settings["nodeSelector"]["nodeSelectorJson"]["componentInputParameter"].endswith("gpu_node_selector")
        assert settings["tolerations"][0]["tolerationJson"]["componentInputParameter"].endswith("gpu_tolerations")
        shm = settings["emptyDirMounts"][0]
        assert shm["mountPath"] == "/dev/shm" and shm["medium"] == "Memory"


def test_training_steps_retry_with_backoff(ir):
    spec, _ = ir
    tasks = dict(_all_tasks(spec))
    for step in TRAINING_STEPS:
        policy = tasks[step]["retryPolicy"]
        assert policy["maxRetryCount"] >= 2 and policy["backoffFactor"] > 1 and policy["backoffDuration"]


def test_caching_is_on_and_keyed_by_section_and_code_version(ir):
    spec, _ = ir
    for name, task in _all_tasks(spec):
        if "componentRef" not in task or name.startswith("for-loop"):
            continue
        # publish-bundle's gate reads the registry's live pointer, which other runs move: never cached.
        assert task["cachingOptions"].get("enableCache", False) is (name != "publish-bundle"), name
        # A changed section or step code changes these inputs, hence the cache key; the gather
        # steps read no settings at all.
        assert "code_version" in task["inputs"]["parameters"], name
        assert name.startswith("gather") or "section_json" in task["inputs"]["parameters"], name
        assert "config_json" not in task["inputs"]["parameters"], name


def _resolve(spec, arguments, task_name, tasks=None):
    """What a task receives: parameter values and, for each artifact, what made its producer."""
    tasks = tasks or dict(_all_tasks(spec))
    inputs = tasks[task_name]["inputs"]
    params = {}
    for name, value in inputs.get("parameters", {}).items():
        if "componentInputParameter" in value:
            params[name] = arguments.get(value["componentInputParameter"], "<default>")
        elif "runtimeValue" in value:
            params[name] = value["runtimeValue"]["constant"]
    artifacts = {
        name: _resolve(spec, arguments, value["taskOutputArtifact"]["producerTask"], tasks)
        for name, value in inputs.get("artifacts", {}).items()
        if "taskOutputArtifact" in value
    }
    return {"task": task_name, "parameters": params, "artifacts": artifacts}


def test_configs_differing_only_in_tasks_give_the_domain_finetune_identical_inputs(ir, tiny_cfg):
    from commerce_lm.config import TaskSpec
    from commerce_lm_pipelines.pipeline import pipeline_arguments

    spec, _ = ir
    more = tiny_cfg.model_copy(deep=True)
    # A task that reads the same rows grouped as the others (one that groups them anew re-splits the
    # corpus, the domain too: docs/contracts.md, Splits).
    first_task = more.tasks[0]
    more.tasks.append(
        TaskSpec(
            name="counterfeit",
            data=first_task.data,
            text=first_task.text,
            group_by=first_task.group_by,
            label="is_counterfeit",
        )
    )
    one, two = pipeline_arguments(tiny_cfg), pipeline_arguments(more)
    assert one["tasks"] != two["tasks"]
    encoder = _resolve(spec, one, "finetune-encoder")
    assert encoder == _resolve(spec, two, "finetune-encoder")
    assert "tasks" not in json.loads(encoder["parameters"]["section_json"])
    # The same check tells apart a step that does read the tasks: it can fail.
    assert _resolve(spec, one, "train-heads") != _resolve(spec, two, "train-heads")
    # A task's own prepared data (its baseline's input) is the same whatever other tasks exist.
    first = {t["spec_name"]: t["prepare_section"] for t in one["tasks"]}
    assert all(first[t["spec_name"]] == t["prepare_section"] for t in two["tasks"] if t["spec_name"] in first)


def test_step_code_versions_are_constants_of_the_compiled_pipeline(ir):
    from commerce_lm_pipelines.versions import step_code_versions

    spec, _ = ir
    tasks = dict(_all_tasks(spec))
    versions = step_code_versions()
    constant = tasks["finetune-encoder"]["inputs"]["parameters"]["code_version"]["runtimeValue"]["constant"]
    assert constant == versions["finetune-encoder"]
    assert len(set(versions.values())) == len(versions), "each step has its own code version"


def test_large_artifacts_go_to_the_gcs_pipeline_root():
    from tests.helpers.kustomize import render

    launcher = [doc for doc in render("prod") if doc["metadata"]["name"] == "kfp-launcher"]
    assert launcher and launcher[0]["data"]["defaultPipelineRoot"].startswith("gs://")


def test_every_step_runs_as_the_images_non_root_user(ir):
    spec, executors = ir
    from commerce_lm_components.images import IMAGE_UID

    assert set(executors) == set(spec["deploymentSpec"]["executors"])
    for name, settings in executors.items():
        context = settings["securityContext"]
        assert context["runAsNonRoot"] is True and int(context["runAsUser"]) == IMAGE_UID, name
