"""KFP component: publish-bundle (the run as a bundle, gated against the live one), shown as a Model."""

from typing import Optional

from kfp import dsl
from kfp.dsl import Dataset, Input, Model, Output

from commerce_lm_components.images import CPU_IMAGE


@dsl.component(base_image=CPU_IMAGE, install_kfp_package=False)
def publish_bundle(
    section_json: str,
    code_version: str,
    prepared: Input[Dataset],
    encoder: Input[Model],
    finetuned_embeddings: Input[Dataset],
    heads: Input[Model],
    knn: Input[Dataset],
    baseline_keys: dict,
    bundle: Output[Model],
    baselines: Optional[Input[list[Model]]] = None,  # noqa: UP045 - KFP reads Optional, not "| None"
):
    """Encoder, heads, thresholds and reference indexes as one bundle; published when the gate allows.

    The end-to-end baselines of this run (none when it planned none) are recorded in the registry
    under ``baseline_keys``.
    """
    from commerce_lm.cli.runtime import run_step

    result = run_step(
        "publish-bundle", section_json, bundle.path, prepared=prepared.path, finetuned=encoder.path,
        finetuned_embeddings=finetuned_embeddings.path, heads=heads.path, knn=knn.path,
        baseline_dirs=[b.path for b in baselines or []], baseline_keys=baseline_keys,
    )  # fmt: skip
    bundle.metadata.update(result)
