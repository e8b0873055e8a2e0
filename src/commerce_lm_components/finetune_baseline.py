"""KFP component: finetune-baseline (end-to-end fine-tuning of the PLM on one binary task)."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Model, Output

from commerce_lm_components.images import TRAINING_IMAGE


@dsl.component(base_image=TRAINING_IMAGE, install_kfp_package=False)
def finetune_baseline(
    section_json: str, code_version: str, num_procs: int, task: str, prepared: Input[Dataset], baseline: Output[Model]
):
    """End-to-end baseline for ``task``; ``num_procs`` > 1 runs it under torchrun, ``num_nodes`` > 1 as a TrainJob."""
    import os

    from commerce_lm.cli.runtime import run_step

    # By URI, as finetune-encoder: the job's pods and a KFP retry's checkpoints live in the bucket.
    run_step("finetune-baseline", section_json, baseline.uri, prepared=prepared.uri, task=task, num_procs=num_procs)
    os.makedirs(baseline.path, exist_ok=True)  # the KFP launcher uploads this (empty) local copy afterwards
