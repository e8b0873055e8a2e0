"""The step commands: one subcommand per pipeline step, each running the step as its component does.

The steps and their flags come from :data:`commerce_lm.config.STEPS`: every command parses its flags
and hands them to :func:`commerce_lm.cli.runtime.call`, the entry every component calls too. A step
whose flags are its descriptor's inputs needs nothing here; one with flags of its own adds them in
:data:`_FLAGS`.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

from commerce_lm import config as config_module
from commerce_lm.cli import runtime
from commerce_lm.cli.config_args import add_config_args, load_section


def _print(metrics: Any) -> int:
    print(json.dumps(metrics, indent=2, sort_keys=True, default=str))
    return 0


def _demo_data(args: argparse.Namespace) -> int:
    from commerce_lm.demo import corpus

    path = corpus.write(args.output, n_items=args.items, seed=args.seed)
    print(f"wrote {path}")
    return 0


# The flags every command has that are not a step's input: how to load the config, where to write.
_NOT_INPUTS = {"command", "func", "debug", "config", "config_json", "set", "output"}


def _run_command(args: argparse.Namespace) -> int:
    """Run a step as a component does (:func:`commerce_lm.cli.runtime.call`), printing its metrics.

    Its inputs are every flag of its command but the config's and ``--output``, so a flag a step's
    command adds reaches its ``run`` (or its adapter) by the same name.
    """
    # gather-embeddings takes the config flags beside its step's but reads no section.
    section = load_section(args, args.command) if args.command in config_module.SECTIONS else None
    inputs = {name: value for name, value in vars(args).items() if name not in _NOT_INPUTS}
    return _print(runtime.call(args.command, section, args.output, **inputs))


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
    score.set_defaults(func=_run_command)
    gather = sub.add_parser("gather-scores", help="merge score shards, checking every row is counted once")
    gather.add_argument("--parts", nargs="+", required=True)
    gather.add_argument("--output", required=True)
    gather.set_defaults(func=_run_command)


def _subcommand(sub: argparse._SubParsersAction, name: str, help_text: str, inputs: tuple[str, ...]) -> Any:
    parser = sub.add_parser(name, help=help_text, description=help_text)
    add_config_args(parser)
    for flag in inputs:
        parser.add_argument(f"--{flag}", required=True)
    parser.add_argument("--output", required=True, help="output folder (local or gs://)")
    parser.set_defaults(func=_run_command)
    return parser


def add_commands(sub: argparse._SubParsersAction) -> None:
    """One subcommand per pipeline step (and the demo data), each running its step as a component does."""
    demo = sub.add_parser("demo-data", help="write the synthetic multilingual listing corpus")
    demo.add_argument("--output", required=True, help="folder or .parquet file")
    demo.add_argument("--items", type=int, default=2000, help="distinct items (rows are ~1.5x)")
    demo.add_argument("--seed", type=int, default=7)
    demo.set_defaults(func=_demo_data)
    for step in config_module.STEPS:
        parser = _subcommand(sub, step.name, step.help, step.inputs)
        if step.trainer:
            _training_flags(parser)
        if step.name in _FLAGS:
            _FLAGS[step.name](sub, parser)
    _add_score_commands(sub)


def _prepare_flags(sub: argparse._SubParsersAction, parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--part",
        default="all",
        help="which datasets: all, domain, datasets (tasks, similarity sets, corpus) or task:NAME",
    )


def _training_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--num-procs", type=int, default=0, help="processes under torchrun (0: from config)")
    parser.add_argument("--checkpoint-dir", help="resumable checkpoints (local or gs://; default: beside --output)")


def _extract_flags(sub: argparse._SubParsersAction, parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", help="encoder to embed with (default: the config's PLM)")
    parser.add_argument("--shard", type=int, default=0)
    parser.add_argument("--num-shards", type=int, default=0, help="0: from config")
    # Gathering the shards is part of the step, with a command of its own beside it.
    gather = _subcommand(sub, "gather-embeddings", "merge embedding shards, checking every id", ("prepared",))
    gather.add_argument("--parts", nargs="+", required=True)


def _both_sets_flags(sub: argparse._SubParsersAction, parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--finetuned-model", help="the fine-tuned encoder the embeddings must come from")


def _report_flags(sub: argparse._SubParsersAction, parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--baselines", nargs="+", required=True)
    parser.add_argument("--domain-prepared", help="prepare-data output of the domain, when prepared apart")
    parser.add_argument("--bundle", help="publish-bundle output, whose decision the report states")


# The steps with flags beyond their inputs (a step with a trainer also gets the training flags).
_FLAGS: dict[str, Callable[[argparse._SubParsersAction, argparse.ArgumentParser], None]] = {
    "prepare-data": _prepare_flags,
    "extract-embeddings": _extract_flags,
    "train-heads": _both_sets_flags,
    "evaluate-knn": _both_sets_flags,
    "build-report": _report_flags,
}
