"""KFP component: finetune-encoder (DeepSpeed; the launcher runs inside the pod when num_procs > 1)."""

from commerce_lm_components.images import TRAINING_IMAGE
from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Model, Output


@dsl.component(base_image=TRAINING_IMAGE, install_kfp_package=False)
def finetune_encoder(
    section_json: str,
    code_version: str,
    num_procs: int,
    prepared: Input[Dataset],
    encoder: Output[Model],
    metrics: Output[Metrics],
):
    """Multi-class domain fine-tuning; ``num_procs`` > 1 runs it under torchrun."""
    import json
    from pathlib import Path

    from commerce_lm.cli import main

    args = [
        "finetune-encoder",
        "--config-json",
        section_json,
        "--prepared",
        prepared.path,
        "--output",
        encoder.path,
        "--num-procs",
        str(num_procs),
    ]
    if encoder.uri.startswith("gs://"):
        # The pod's disk dies with it: keep checkpoints in the bucket, where a KFP retry resumes.
        args += ["--checkpoint-dir", encoder.uri.rstrip("/") + ".checkpoints"]
    if main(args) != 0:
        raise RuntimeError("finetune-encoder failed")
    scalars = {
        k: v
        for k, v in json.loads(Path(encoder.path, "metrics.json").read_text()).items()
        if isinstance(v, int | float)
    }
    for key, value in scalars.items():
        metrics.log_metric(key, value)
    # kfp.local serves a cache hit only when every output artifact has a file; Metrics has none.
    Path(metrics.path).write_text(json.dumps(scalars, sort_keys=True))
