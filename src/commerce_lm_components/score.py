"""KFP components: score one shard of new listings with a bundle, and gather the shards."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Output

from commerce_lm_components.images import CPU_IMAGE, TRAINING_IMAGE


@dsl.component(base_image=TRAINING_IMAGE, install_kfp_package=False)
def score_listings(
    bundle: str, listings: str, store: str, shard: int, num_shards: int, scores: Output[Dataset]
):  # fmt: skip
    """Scores, flags and nearest references of one shard of the listings (rows split by id)."""
    from commerce_lm.steps import score

    result = score.run(bundle, listings, scores.path, store=store or None, shard=int(shard), num_shards=int(num_shards))
    scores.metadata.update(result)


@dsl.component(base_image=CPU_IMAGE, install_kfp_package=False)
def gather_scores(parts: Input[list[Dataset]], output: str, run_name: str, scores: Output[Dataset]):
    """Merge the shards (every input row scored or rejected, once); also into ``<output>/<run name>``."""
    from commerce_lm import storage
    from commerce_lm.steps import score

    scores.metadata.update(score.gather([p.path for p in parts], scores.path))
    if output:  # one folder per run: a daily schedule never overwrites yesterday's scores
        scores.metadata["output"] = storage.join(output, run_name)
        score.gather([p.path for p in parts], scores.metadata["output"])
