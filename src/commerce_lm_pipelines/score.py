"""The scoring DAG: score shards of new listings in parallel with a bundle, then gather them.

Schedule it daily with ``commerce-lm schedule --pipeline score`` (see deploy/overlays/*/score-run.yaml):
the bundle may be a registry, so each run scores with whatever bundle is live that day.
"""

from typing import Any

from kfp import compiler, dsl

from commerce_lm_components.score import gather_scores, score_listings
from commerce_lm_pipelines.pipeline import hardened

SCORE_PIPELINE_NAME = "commerce-lm-score"


def build_score_pipeline(cluster: bool = True) -> Any:
    """The scoring pipeline; ``cluster=False`` leaves out Kubernetes-only settings for kfp.local."""

    @dsl.pipeline(name=SCORE_PIPELINE_NAME, description="Score new listings with a published bundle.")
    def commerce_lm_score(
        bundle: str,
        listings: str,
        output: str = "",
        store: str = "",
        shards: list = [0],  # noqa: B006 - KFP default
        num_shards: int = 1,
    ):
        with dsl.ParallelFor(items=shards, name="score-shards", parallelism=0 if cluster else 1) as shard:
            part = score_listings(bundle=bundle, listings=listings, store=store, shard=shard, num_shards=num_shards)
        gathered = gather_scores(
            parts=dsl.Collected(part.outputs["scores"]), output=output, run_name=dsl.PIPELINE_JOB_NAME_PLACEHOLDER
        )
        # New listings change daily and the live bundle may change: never serve yesterday's scores.
        for task in (part, gathered):
            task.set_caching_options(False)
        if cluster:
            hardened([part, gathered])

    return commerce_lm_score


def score_arguments(bundle: str, listings: str, output: str = "", store: str = "", num_shards: int = 1) -> dict:
    """Pipeline parameters of a scoring run."""
    return {
        "bundle": bundle,
        "listings": listings,
        "output": output,
        "store": store,
        "shards": list(range(num_shards)),
        "num_shards": num_shards,
    }


def compile_score_pipeline(path: str) -> str:
    """Compile the cluster scoring pipeline to KFP IR YAML at ``path``."""
    compiler.Compiler().compile(build_score_pipeline(cluster=True), package_path=path)
    return path
