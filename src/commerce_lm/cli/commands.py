"""The step commands: one subcommand per pipeline step, each a thin call of the step's ``run``.

The steps and their flags come from :data:`commerce_lm.config.STEPS`: a step whose ``run`` takes its
section, its inputs in order and its output folder needs nothing here (:func:`_run_step`); a step
with flags of its own, or a ``run`` of another shape, has its command in :data:`_COMMANDS`.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Callable
from typing import Any

from commerce_lm import config as config_module
from commerce_lm.cli.config_args import add_config_args, load_section


def _print(metrics: Any) -> int:
    print(json.dumps(metrics, indent=2, sort_keys=True, default=str))
    return 0


def _demo_data(args: argparse.Namespace) -> int:
    from commerce_lm.demo import corpus

    path = corpus.write(args.output, n_items=args.items, seed=args.seed)
    print(f"wrote {path}")
    return 0


def _prepare(args: argparse.Namespace) -> int:
    from commerce_lm.steps import prepare_data

    section = config_module.prepare_part(load_section(args, "prepare-data"), args.part)
    return _print(prepare_data.run(section, args.output))


def _relaunched(args: argparse.Namespace, cfg_procs: int) -> int | None:
    from commerce_lm.launch import torchrun

    return torchrun.maybe_relaunch(
        args.num_procs or cfg_procs, [sys.executable, "-m", "commerce_lm.cli", *sys.argv[1:]]
    )


def _finetune_encoder(args: argparse.Namespace) -> int:
    from commerce_lm.steps import finetune_encoder

    section = load_section(args, "finetune-encoder")
    code = _relaunched(args, section.finetune.num_procs)
    return (
        code
        if code is not None
        else _print(finetune_encoder.run(section, args.prepared, args.output, checkpoint_dir=args.checkpoint_dir))
    )


def _finetune_baseline(args: argparse.Namespace) -> int:
    from commerce_lm.steps import finetune_baseline

    section = load_section(args, "finetune-baseline")
    code = _relaunched(args, section.baseline.num_procs)
    return (
        code
        if code is not None
        else _print(
            finetune_baseline.run(section, args.prepared, args.task, args.output, checkpoint_dir=args.checkpoint_dir)
        )
    )


def _extract(args: argparse.Namespace) -> int:
    from commerce_lm.steps import extract_embeddings

    section = load_section(args, "extract-embeddings")
    return _print(
        extract_embeddings.run(
            section,
            args.model or section.model,
            args.prepared,
            args.output,
            shard=args.shard,
            num_shards=args.num_shards or section.embed.num_shards,
        )
    )


def _gather(args: argparse.Namespace) -> int:
    from commerce_lm.steps import extract_embeddings

    return _print(extract_embeddings.gather(args.parts, args.prepared, args.output))


def _embedding_step(step: Any, args: argparse.Namespace) -> int:
    """Run a step that reads both embedding sets (heads, KNN), checking which encoder made each."""
    from commerce_lm.embedding.checks import expected_checksums

    section = load_section(args, args.command)
    arms = {"plm": args.plm_embeddings, "finetuned": args.finetuned_embeddings}
    expected = expected_checksums(section.model, args.finetuned_model)
    return _print(step.run(section, args.prepared, arms, args.output, expected))


def _train_heads(args: argparse.Namespace) -> int:
    from commerce_lm.steps import train_heads

    return _embedding_step(train_heads, args)


def _knn(args: argparse.Namespace) -> int:
    from commerce_lm.steps import evaluate_knn

    return _embedding_step(evaluate_knn, args)


def _report(args: argparse.Namespace) -> int:
    from commerce_lm.steps import build_report

    metrics = build_report.run(
        load_section(args, "build-report"),
        args.prepared,
        args.finetuned,
        {"plm": args.plm_embeddings, "finetuned": args.finetuned_embeddings},
        args.heads,
        args.baselines,
        args.knn,
        args.output,
        domain_dir=args.domain_prepared,
        bundle_dir=args.bundle,
    )
    print(f"wrote {args.output}/metrics.json, report.md, report.html ({len(metrics['tasks'])} tasks)")
    return 0


def _run_step(args: argparse.Namespace) -> int:
    """Run a step as its descriptor says: ``run(section, *inputs, output)``, printing its metrics."""
    (step,) = [s for s in config_module.STEPS if s.name == args.command]
    inputs = [getattr(args, flag.replace("-", "_")) for flag in step.inputs]
    module = importlib.import_module(step.module)  # here, not above: a step's imports are heavy
    return _print(module.run(load_section(args, step.name), *inputs, args.output))


def _score(args: argparse.Namespace) -> int:
    from commerce_lm.steps import score

    columns = {"id": args.id_column, "text": args.text_column, "lang": args.lang_column}
    return _print(
        score.run(
            args.bundle, args.input, args.output, store=args.store, columns=columns,
            token_budget=args.token_budget, shard=args.shard, num_shards=args.num_shards,
            encoding=args.encoding, max_rejected_fraction=args.max_rejected_fraction,
        )
    )  # fmt: skip


def _gather_scores(args: argparse.Namespace) -> int:
    from commerce_lm.steps import score

    return _print(score.gather(args.parts, args.output))


def _add_score_commands(sub: argparse._SubParsersAction) -> None:
    score = sub.add_parser("score", help="score new listings with a published bundle")
    score.add_argument("--bundle", required=True, help="bundle folder, or a registry (its live bundle); local or gs://")
    score.add_argument("--input", required=True, help="listings: Parquet, CSV or JSONL file, folder or glob")
    score.add_argument("--output", required=True, help="output folder: scores/, rejected/, metrics.json")
    score.add_argument("--store", help="vector store, local or gs:// (default: the local cache's)")
    score.add_argument("--id-column", help="id column (default: the bundle's training data's)")
    score.add_argument("--text-column", action="append", help="text column, repeatable (default: as trained)")
    score.add_argument("--lang-column", help="language column (default: as trained)")
    score.add_argument("--token-budget", type=int, help="padded tokens per batch (default: as trained)")
    score.add_argument("--encoding", help="CSV/JSONL encoding, e.g. utf-16 (default: UTF-8, a BOM skipped)")
    score.add_argument(
        "--max-rejected-fraction", type=float,
        help="refuse the input when more of its rows are rejected (default: the bundle's run's, 0.2 unless set)",
    )  # fmt: skip
    score.add_argument("--shard", type=int, default=0)
    score.add_argument("--num-shards", type=int, default=1)
    score.set_defaults(func=_score)
    gather = sub.add_parser("gather-scores", help="merge score shards, checking every row is counted once")
    gather.add_argument("--parts", nargs="+", required=True)
    gather.add_argument("--output", required=True)
    gather.set_defaults(func=_gather_scores)


Handler = Callable[[argparse.Namespace], int]


def _subcommand(sub: argparse._SubParsersAction, name: str, help_text: str, inputs: tuple[str, ...]) -> Any:
    parser = sub.add_parser(name, help=help_text, description=help_text)
    add_config_args(parser)
    for flag in inputs:
        parser.add_argument(f"--{flag}", required=True)
    parser.add_argument("--output", required=True, help="output folder (local or gs://)")
    return parser


def add_commands(sub: argparse._SubParsersAction) -> None:
    """One subcommand per pipeline step (and the demo data), each calling its step's ``run``."""
    demo = sub.add_parser("demo-data", help="write the synthetic multilingual listing corpus")
    demo.add_argument("--output", required=True, help="folder or .parquet file")
    demo.add_argument("--items", type=int, default=2000, help="distinct items (rows are ~1.5x)")
    demo.add_argument("--seed", type=int, default=7)
    demo.set_defaults(func=_demo_data)
    for step in config_module.STEPS:
        parser = _subcommand(sub, step.name, step.help, step.inputs)
        own = _COMMANDS.get(step.name)
        parser.set_defaults(func=own(sub, parser) if own else _run_step)
    _add_score_commands(sub)


def _prepare_command(sub: argparse._SubParsersAction, parser: argparse.ArgumentParser) -> Handler:
    parser.add_argument(
        "--part",
        default="all",
        help="which datasets: all, domain, datasets (tasks, similarity sets, corpus) or task:NAME",
    )
    return _prepare


def _training_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--num-procs", type=int, default=0, help="processes under torchrun (0: from config)")
    parser.add_argument("--checkpoint-dir", help="resumable checkpoints (local or gs://; default: beside --output)")


def _finetune_encoder_command(sub: argparse._SubParsersAction, parser: argparse.ArgumentParser) -> Handler:
    _training_flags(parser)
    return _finetune_encoder


def _finetune_baseline_command(sub: argparse._SubParsersAction, parser: argparse.ArgumentParser) -> Handler:
    _training_flags(parser)
    return _finetune_baseline


def _extract_command(sub: argparse._SubParsersAction, parser: argparse.ArgumentParser) -> Handler:
    parser.add_argument("--model", help="encoder to embed with (default: the config's PLM)")
    parser.add_argument("--shard", type=int, default=0)
    parser.add_argument("--num-shards", type=int, default=0, help="0: from config")
    # Gathering the shards is part of the step, with a command of its own beside it.
    gather = _subcommand(sub, "gather-embeddings", "merge embedding shards, checking every id", ("prepared",))
    gather.add_argument("--parts", nargs="+", required=True)
    gather.set_defaults(func=_gather)
    return _extract


def _embedding_command(handler: Handler) -> Callable[[argparse._SubParsersAction, argparse.ArgumentParser], Handler]:
    def add(sub: argparse._SubParsersAction, parser: argparse.ArgumentParser) -> Handler:
        parser.add_argument("--finetuned-model", help="the fine-tuned encoder the embeddings must come from")
        return handler

    return add


def _report_command(sub: argparse._SubParsersAction, parser: argparse.ArgumentParser) -> Handler:
    parser.add_argument("--baselines", nargs="+", required=True)
    parser.add_argument("--domain-prepared", help="prepare-data output of the domain, when prepared apart")
    parser.add_argument("--bundle", help="publish-bundle output, whose decision the report states")
    return _report


# The steps with flags of their own: each adds them to the step's parser and gives its handler.
_COMMANDS: dict[str, Callable[[argparse._SubParsersAction, argparse.ArgumentParser], Handler]] = {
    "prepare-data": _prepare_command,
    "finetune-encoder": _finetune_encoder_command,
    "finetune-baseline": _finetune_baseline_command,
    "extract-embeddings": _extract_command,
    "train-heads": _embedding_command(_train_heads),
    "evaluate-knn": _embedding_command(_knn),
    "build-report": _report_command,
}
