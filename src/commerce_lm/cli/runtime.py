"""The one runtime entry of every step: what each KFP component and each step command calls.

``run_step(NAME, section_json, output, **inputs)`` runs step ``NAME`` with its section of the run
config, its inputs (folders, a task's name, options such as ``shard``) by keyword and its output
folder, and returns the step's metrics. The keywords are the step command's flags (``--plm-embeddings``
is ``plm_embeddings``), so a component and ``commerce-lm NAME`` hand a step the same things; a
component passes its input artifacts' folders, and the step's adapter here derives what the step's
``run`` wants from them (the fine-tuned model inside a ``finetune-encoder`` output, the two embedding
sets).

A step whose ``run`` is ``run(section, *inputs, output, **options)``, its inputs in its descriptor's
order (:data:`commerce_lm.config.STEPS`), needs nothing here; a ``run`` of another shape has its
adapter in :data:`_ADAPTERS`. A step that may train on several processes (its descriptor names a
``trainer``) is re-run under torchrun here, for a component as for the command line.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Sequence
from typing import Any

from commerce_lm import config, names, storage

Adapter = Callable[..., dict[str, Any]]


def run_step(step: str, section_json: str | None, output: str, **inputs: Any) -> dict[str, Any]:
    """Run ``step``: the same call for every component.

    Args:
        step: The step's command name (``train-heads``; also ``gather-embeddings``, ``score``, ``gather-scores``).
        section_json: The step's section as JSON (or a whole resolved run config); ``None`` for the
            commands that read no config (gathering, scoring).
        output: The step's output folder (local or ``gs://``).
        **inputs: Its inputs and options, named as its command's flags with ``_`` for ``-``.

    Returns:
        The step's metrics.
    """
    section = None if section_json is None else config.section_from_json(step, section_json)
    return call(step, section, output, **inputs)


def call(step: str, section: Any, output: str, **inputs: Any) -> dict[str, Any]:
    """Run ``step`` with a section already loaded (what ``commerce-lm NAME`` does after parsing).

    Args:
        step: The step's command name.
        section: Its section of the run config, or ``None`` for a command that reads none.
        output: The step's output folder.
        **inputs: As for :func:`run_step`.

    Returns:
        The step's metrics.
    """
    if step in _ADAPTERS:
        return _ADAPTERS[step](section, output, **inputs)
    descriptor = config.step_named(step)
    if descriptor.trainer:
        num_procs = inputs.pop("num_procs", 0) or getattr(section, descriptor.trainer).launch.num_procs
        relaunched = _under_torchrun(step, section, output, num_procs, inputs)
        if relaunched is not None:
            return relaunched
    ordered = [inputs.pop(config.identifier(flag)) for flag in descriptor.inputs]
    module = importlib.import_module(descriptor.module)  # here, not above: a step's imports are heavy
    return module.run(section, *ordered, output, **inputs)


def _under_torchrun(step: str, section: Any, output: str, num_procs: int, inputs: dict[str, Any]) -> Any:
    """Re-run the step as ``num_procs`` torchrun processes; ``None`` to run it in this process.

    The ranks run the step's own command line, built from what this call was given (not from this
    process's ``sys.argv``, which in a KFP pod is the executor's), and rank 0 publishes the metrics.
    """
    from commerce_lm.launch import torchrun

    argv = [sys.executable, "-m", "commerce_lm.cli", step, "--config-json", section.to_json(), "--output", output]
    for name, value in inputs.items():
        if value is not None:
            argv += [f"--{name.replace('_', '-')}", str(value)]
    code = torchrun.maybe_relaunch(num_procs, argv)
    if code is None:
        return None
    if code != 0:
        raise RuntimeError(f"{step}: its {num_procs} torchrun processes exited with status {code}")
    return storage.read_json(storage.join(output, names.METRICS_JSON))


def embedding_sets(plm_embeddings: str, finetuned_embeddings: str) -> dict[str, str]:
    """The two embedding sets that heads, KNN and the report compare, by arm name."""
    return {"plm": plm_embeddings, "finetuned": finetuned_embeddings}


def _model_in(finetuned: str | None) -> str | None:
    """The encoder inside a ``finetune-encoder`` output folder (``None`` for none)."""
    return storage.join(finetuned, names.MODEL_DIR) if finetuned else None


def _prepare(section: Any, output: str, part: str = "all") -> dict[str, Any]:
    from commerce_lm.steps import prepare_data

    return prepare_data.run(config.prepare_part(section, part), output)


def _extract(
    section: Any,
    output: str,
    prepared: str,
    model: str | None = None,
    finetuned: str | None = None,
    shard: int = 0,
    num_shards: int = 0,
) -> dict[str, Any]:
    from commerce_lm.steps import extract_embeddings

    encoder = model or _model_in(finetuned) or section.model
    shards = num_shards or section.embed.num_shards
    return extract_embeddings.run(section, encoder, prepared, output, int(shard), shards)


def _gather_embeddings(section: Any, output: str, prepared: str, parts: list[str]) -> dict[str, Any]:
    from commerce_lm.steps import extract_embeddings

    return extract_embeddings.gather(parts, prepared, output)


def _on_both_sets(step: str) -> Adapter:
    """The adapter of a step that reads both embedding sets, checking which encoder made each."""

    def adapter(
        section: Any,
        output: str,
        prepared: str,
        plm_embeddings: str,
        finetuned_embeddings: str,
        finetuned: str | None = None,
        finetuned_model: str | None = None,
    ) -> dict[str, Any]:
        from commerce_lm.embedding.checks import expected_checksums

        expected = expected_checksums(section.model, finetuned_model or _model_in(finetuned))
        module = importlib.import_module(config.step_named(step).module)
        return module.run(section, prepared, embedding_sets(plm_embeddings, finetuned_embeddings), output, expected)

    return adapter


def _report(
    section: Any,
    output: str,
    prepared: str,
    finetuned: str,
    plm_embeddings: str,
    finetuned_embeddings: str,
    heads: str,
    knn: str,
    baselines: Sequence[str] = (),
    domain_prepared: str | None = None,
    bundle: str | None = None,
    earlier_baselines: dict[str, str] | None = None,
) -> dict[str, Any]:
    from commerce_lm.steps import build_report

    arms = embedding_sets(plm_embeddings, finetuned_embeddings)
    return build_report.run(
        section, prepared, finetuned, arms, heads, list(baselines), knn, output,
        domain_dir=domain_prepared, bundle_dir=bundle, earlier_baselines=earlier_baselines,
    )  # fmt: skip


def _score(
    section: Any,
    output: str,
    bundle: str,
    input: str,  # noqa: A002 - the command's flag
    id_column: str | None = None,
    text_column: list[str] | None = None,
    lang_column: str | None = None,
    shard: int = 0,
    num_shards: int = 1,
    **options: Any,
) -> dict[str, Any]:
    from commerce_lm.steps import score

    columns = {"id": id_column, "text": text_column, "lang": lang_column}
    return score.run(bundle, input, output, columns=columns, shard=int(shard), num_shards=int(num_shards), **options)


def _gather_scores(section: Any, output: str, parts: list[str]) -> dict[str, Any]:
    from commerce_lm.steps import score

    return score.gather(parts, output)


# The commands whose library call is not ``run(section, *inputs, output, **options)``.
_ADAPTERS: dict[str, Adapter] = {
    "prepare-data": _prepare,
    "extract-embeddings": _extract,
    "gather-embeddings": _gather_embeddings,
    "train-heads": _on_both_sets("train-heads"),
    "evaluate-knn": _on_both_sets("evaluate-knn"),
    "build-report": _report,
    "score": _score,
    "gather-scores": _gather_scores,
}
