"""KFP components: score one shard of new listings with a bundle, and gather the shards."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Output

from commerce_lm_components.images import CPU_IMAGE, TRAINING_IMAGE


@dsl.component(base_image=TRAINING_IMAGE, install_kfp_package=False)
def score_listings(
    bundle: str, listings: str, store: str, shard: int, num_shards: int, scores: Output[Dataset]
):  # fmt: skip
    """Scores, flags and nearest references of one shard of the listings (rows split by id)."""
    from commerce_lm.cli.runtime import run_step

    inputs = {"bundle": bundle, "input": listings, "store": store or None, "shard": shard, "num_shards": num_shards}
    scores.metadata.update(run_step("score", None, scores.path, **inputs))


@dsl.component(base_image=CPU_IMAGE, install_kfp_package=False)
def gather_scores(parts: Input[list[Dataset]], output: str, run_name: str, scores: Output[Dataset]):
    """Merge the shards (every input row scored or rejected, once); also into ``<output>/<run name>``."""
    from commerce_lm import storage
    from commerce_lm.cli.runtime import run_step

    scores.metadata.update(run_step("gather-scores", None, scores.path, parts=[p.path for p in parts]))
    if output:  # one folder per run: a daily schedule never overwrites yesterday's scores
        scores.metadata["output"] = storage.join(output, run_name)
        run_step("gather-scores", None, scores.metadata["output"], parts=[p.path for p in parts])
