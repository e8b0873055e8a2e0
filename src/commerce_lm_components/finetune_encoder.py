"""KFP component: finetune-encoder (DeepSpeed; the launcher runs inside the pod when num_procs > 1)."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Model, Output

from commerce_lm_components.images import TRAINING_IMAGE


@dsl.component(base_image=TRAINING_IMAGE, install_kfp_package=False)
def finetune_encoder(
    section_json: str,
    code_version: str,
    num_procs: int,
    prepared: Input[Dataset],
    encoder: Output[Model],
    metrics: Output[Metrics],
):
    """Multi-class domain fine-tuning; ``num_procs`` > 1 runs it under torchrun, ``num_nodes`` > 1 as a TrainJob."""
    import json
    import os

    from commerce_lm import names, storage
    from commerce_lm.cli.runtime import run_step

    # By URI (gs:// on a cluster): a multi-node job's pods reach the bucket, not this pod's disk, and
    # checkpoints beside the output stay in the bucket, where a KFP retry resumes.
    run_step("finetune-encoder", section_json, encoder.uri, prepared=prepared.uri, num_procs=num_procs)
    os.makedirs(encoder.path, exist_ok=True)  # the KFP launcher uploads this (empty) local copy afterwards
    found = storage.read_json(storage.join(encoder.uri, names.METRICS_JSON)).items()
    scalars = {key: value for key, value in found if isinstance(value, int | float)}
    for key, value in scalars.items():
        metrics.log_metric(key, value)
    # kfp.local serves a cache hit only when every output artifact has a file; Metrics has none.
    with open(metrics.path, "w") as handle:
        json.dump(scalars, handle, sort_keys=True)
