"""KFP component: finetune-baseline (end-to-end fine-tuning of the PLM on one binary task)."""

from commerce_lm_components.images import TRAINING_IMAGE
from kfp import dsl
from kfp.dsl import Dataset, Input, Model, Output


@dsl.component(base_image=TRAINING_IMAGE, install_kfp_package=False)
def finetune_baseline(
    section_json: str, code_version: str, num_procs: int, task: str, prepared: Input[Dataset], baseline: Output[Model]
):
    """End-to-end baseline for ``task``; ``num_procs`` > 1 runs it under torchrun."""
    from commerce_lm.cli import main

    args = [
        "finetune-baseline",
        "--config-json",
        section_json,
        "--prepared",
        prepared.path,
        "--task",
        task,
        "--output",
        baseline.path,
        "--num-procs",
        str(num_procs),
    ]
    if baseline.uri.startswith("gs://"):
        # The pod's disk dies with it: keep checkpoints in the bucket, where a KFP retry resumes.
        args += ["--checkpoint-dir", baseline.uri.rstrip("/") + ".checkpoints"]
    if main(args) != 0:
        raise RuntimeError(f"finetune-baseline failed for task {task}")
