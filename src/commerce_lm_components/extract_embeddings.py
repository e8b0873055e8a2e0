"""KFP components: extract-embeddings, one shard at a time, and the gather step that merges shards.

The PLM and the fine-tuned encoder get a component each (the PLM comes from the config, the
fine-tuned encoder from the upstream artifact), so PLM embedding never waits for fine-tuning.
"""

from kfp import dsl
from kfp.dsl import Dataset, Input, Model, Output

from commerce_lm_components.images import CPU_IMAGE, TRAINING_IMAGE


@dsl.component(base_image=TRAINING_IMAGE, install_kfp_package=False)
def extract_plm_embeddings(
    section_json: str, code_version: str, shard: int, prepared: Input[Dataset], embeddings: Output[Dataset]
):
    """[CLS] vectors of one shard of the corpus with the config's pre-trained model."""
    from commerce_lm.cli.runtime import run_step

    run_step("extract-embeddings", section_json, embeddings.path, prepared=prepared.path, shard=shard)


@dsl.component(base_image=TRAINING_IMAGE, install_kfp_package=False)
def extract_finetuned_embeddings(
    section_json: str,
    code_version: str,
    shard: int,
    prepared: Input[Dataset],
    encoder: Input[Model],
    embeddings: Output[Dataset],
):
    """[CLS] vectors of one shard of the corpus with the fine-tuned, frozen encoder."""
    from commerce_lm.cli.runtime import run_step

    inputs = {"prepared": prepared.path, "finetuned": encoder.path, "shard": shard}
    run_step("extract-embeddings", section_json, embeddings.path, **inputs)


@dsl.component(base_image=CPU_IMAGE, install_kfp_package=False)
def gather_embeddings(
    code_version: str,
    prepared: Input[Dataset],
    parts: Input[list[Dataset]],
    embeddings: Output[Dataset],
):
    """Merge the shards, checking that every corpus id came back exactly once."""
    from commerce_lm.cli.runtime import run_step

    inputs = {"prepared": prepared.path, "parts": [p.path for p in parts]}
    embeddings.metadata.update(run_step("gather-embeddings", None, embeddings.path, **inputs))
