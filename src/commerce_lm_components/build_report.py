"""KFP component: build-report, logging Metrics, ClassificationMetrics and an HTML report to the UI."""

from typing import Optional

from kfp import dsl
from kfp.dsl import (
    HTML,
    ClassificationMetrics,
    Dataset,
    Input,
    Metrics,
    Model,
    Output,
    SlicedClassificationMetrics,
)

from commerce_lm_components.images import CPU_IMAGE


@dsl.component(base_image=CPU_IMAGE, install_kfp_package=False)
def build_report(
    section_json: str,
    code_version: str,
    prepared: Input[Dataset],
    domain: Input[Dataset],
    encoder: Input[Model],
    plm_embeddings: Input[Dataset],
    finetuned_embeddings: Input[Dataset],
    heads: Input[Model],
    earlier_baselines: dict,
    knn: Input[Dataset],
    bundle: Input[Model],
    report: Output[Dataset],
    metrics: Output[Metrics],
    roc: Output[ClassificationMetrics],
    roc_by_language: Output[SlicedClassificationMetrics],
    html: Output[HTML],
    baselines: Optional[Input[list[Model]]] = None,  # noqa: UP045 - KFP reads Optional, not "| None"
):
    """Write the report and log it where the Kubeflow UI shows it."""
    import shutil

    from commerce_lm import config, names, storage
    from commerce_lm.cli.runtime import run_step
    from commerce_lm.steps import build_report

    result = run_step(
        "build-report", section_json, report.path, prepared=prepared.path, finetuned=encoder.path,
        plm_embeddings=plm_embeddings.path, finetuned_embeddings=finetuned_embeddings.path, heads=heads.path,
        knn=knn.path, baselines=[b.path for b in baselines or []], domain_prepared=domain.path, bundle=bundle.path,
        earlier_baselines=earlier_baselines,
    )  # fmt: skip
    for name, value in build_report.scalar_metrics(result).items():
        metrics.log_metric(name, value)
    first_task = config.section_from_json("build-report", section_json).tasks[0].name
    ui = build_report.ui_curves(report.path, first_task)
    if ui.headline["roc"]:
        roc.log_roc_curve(ui.headline["roc"]["fpr"], ui.headline["roc"]["tpr"], ui.headline["roc"]["thresholds"])
    roc.log_confusion_matrix(["0", "1"], ui.headline["confusion"])
    # kfp 2.17's SlicedClassificationMetrics cannot log ROC readings (it calls methods that
    # ClassificationMetrics lacks), so its metadata is built the way its _update_metadata would.
    slices = []
    for name, curve in ui.slices:
        part = ClassificationMetrics()
        part.log_roc_curve(curve["fpr"], curve["tpr"], curve["thresholds"])
        slices.append({"slice": name, "sliceClassificationMetrics": part.metadata})
    roc_by_language.metadata = {"evaluationSlices": slices}
    shutil.copy(storage.join(report.path, names.REPORT_HTML), html.path)
