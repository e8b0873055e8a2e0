"""The KFP-facing ``commerce-lm`` subcommands: ``compile`` and ``run`` (local), plus the remote ones.

Registered through the ``commerce_lm.commands`` entry point, so the library's CLI picks them up
without importing kfp itself.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from commerce_lm.cli import add_config_args, load_run_config
from commerce_lm_pipelines.auth import TOKEN_ENV, Auth, make_client
from commerce_lm_pipelines.cron import validate_cron
from commerce_lm_pipelines.local_run import REPORT_FILES, default_cache_dir
from commerce_lm_pipelines.remote import (
    DEFAULT_EXPERIMENT,
    DEFAULT_PIPELINE_NAME,
    RemoteError,
    compile_for,
    format_runs,
    list_runs,
    load_definition,
    schedule_run,
    submit_run,
)

PIPELINES = ("train", "score")
# A scheduled scoring run's default schedule name and KFP pipeline (apart from the training one's).
SCORE_DEFAULTS = ("commerce-lm-score-daily", "commerce-lm-score")


def _compile(args: argparse.Namespace) -> int:
    if args.pipeline == "score":
        from commerce_lm_pipelines.score import compile_score_pipeline as compile_pipeline
    else:
        from commerce_lm_pipelines.pipeline import compile_pipeline

    print(f"wrote {compile_pipeline(args.output)}")
    return 0


def _run_local(args: argparse.Namespace) -> int:
    from commerce_lm_pipelines.local_run import run_local

    out = Path(args.output).resolve()
    cache_dir = None if args.no_cache else Path(args.cache_dir or default_cache_dir()).resolve()
    result = run_local(
        load_run_config(args), out, cache_dir=cache_dir, overwrite=args.overwrite, config_file=args.config
    )
    print(f"pipeline finished in {result['seconds']:.0f} s")
    steps = sorted(result["step_seconds"].items(), key=lambda item: -item[1])
    print("steps run: " + (", ".join(f"{task} {seconds:.1f} s" for task, seconds in steps) or "none"))
    if cache_dir is not None:
        hits = ", ".join(result["cache_hits"]) or "none"
        print(f"cache {cache_dir}: hits {hits}")
    for name in REPORT_FILES:
        print(f"  {out / name}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``compile``, ``run`` and the remote commands to the ``commerce-lm`` parser."""
    compile_parser = sub.add_parser("compile", help="compile the pipeline to KFP IR YAML")
    compile_parser.add_argument("--output", required=True, help="YAML file to write")
    compile_parser.add_argument(
        "--pipeline", choices=PIPELINES, default="train", help="train (the whole run) or score (new listings)"
    )
    compile_parser.set_defaults(func=_compile)

    run = sub.add_parser("run", help="run the whole DAG locally with kfp.local (SubprocessRunner)")
    add_config_args(run)
    run.add_argument("--output", required=True, help="run folder: report files and the local pipeline root")
    run.add_argument("--overwrite", action="store_true", help="replace an earlier run folder made with another config")
    run.add_argument("--cache-dir", help=f"step cache shared across run folders (default: {default_cache_dir()})")
    run.add_argument("--no-cache", action="store_true", help="run every step, reading and writing no cache")
    run.set_defaults(func=_run_local)

    add_remote_commands(sub)


# --------------------------------------------------------------------------------------------------
# Remote: submit, schedule, runs (the client API is commerce_lm_pipelines.remote)


def _client_for(args: argparse.Namespace) -> tuple[Any, Auth]:
    auth = Auth.from_environment(namespace=args.namespace, token_env=args.token_env)
    print(f"KFP {args.host} ({auth.describe()})")
    return make_client(args.host, auth), auth


def _cmd_submit(args: argparse.Namespace) -> int:
    package, arguments = compile_for(args.config, args.set)
    client, auth = _client_for(args)
    result = submit_run(
        client, package, arguments,
        ui_host=args.ui_host or args.host, pipeline_name=args.pipeline_name,
        experiment=args.experiment, run_name=args.run_name, namespace=auth.namespace,
    )  # fmt: skip
    print(f"pipeline version {result.version.version_name} ({result.version.version_id})")
    print(f"run {result.run_id}: {result.url}")
    return 0


def _score_package(definition: dict[str, Any], sets: list[str]) -> tuple[str, dict[str, Any]]:
    """Compile the scoring pipeline; its arguments from the definition, then ``--set KEY=VALUE``."""
    import tempfile

    import yaml

    from commerce_lm_pipelines.score import compile_score_pipeline, score_arguments

    given = dict(definition.get("arguments") or {})
    for item in sets:
        key, sep, value = item.partition("=")
        if not sep:
            raise RemoteError(f"--set {item!r}: expected KEY=VALUE, e.g. bundle=gs://bucket/bundles")
        given[key] = yaml.safe_load(value)
    if not given.get("bundle") or not given.get("listings"):
        raise RemoteError("scheduled scoring needs arguments bundle and listings (definition or --set)")
    try:
        arguments = score_arguments(**given)
    except TypeError as error:
        raise RemoteError(f"scoring arguments {sorted(given)}: {error}") from None
    package = str(Path(tempfile.mkdtemp(prefix="commerce-lm-kfp-")) / "score.yaml")
    return compile_score_pipeline(package), arguments


def _cmd_schedule(args: argparse.Namespace) -> int:
    definition = load_definition(args.definition)
    pipeline = args.pipeline or definition.get("pipeline") or "train"
    config = args.config or definition.get("config")
    cron = args.cron or definition.get("cron")
    if not cron or (pipeline == "train" and not config):
        raise RemoteError("schedule needs --cron and, to retrain, --config (or a --definition file naming them)")
    validate_cron(str(cron))  # fail before compiling or contacting the server
    args.namespace = args.namespace or definition.get("namespace")
    if pipeline == "score":
        package, arguments = _score_package(definition, args.set or [])
    else:
        package, arguments = compile_for(config, [*definition.get("overrides", []), *(args.set or [])])
    client, auth = _client_for(args)
    default_name = {"train": ("commerce-lm-retrain", args.pipeline_name), "score": SCORE_DEFAULTS}[pipeline]
    result = schedule_run(
        client, package, arguments, str(cron),
        name=args.name or definition.get("name") or default_name[0],
        pipeline_name=definition.get("pipeline_name") or default_name[1],
        experiment=args.experiment or definition.get("experiment") or DEFAULT_EXPERIMENT,
        namespace=auth.namespace,
    )  # fmt: skip
    replaced = f", replacing {', '.join(result.replaced)}" if result.replaced else ""
    print(f"recurring run {result.recurring_run_id} ({cron}){replaced}")
    return 0


def _cmd_runs(args: argparse.Namespace) -> int:
    client, auth = _client_for(args)
    print(format_runs(list_runs(client, namespace=auth.namespace, experiment=args.experiment, limit=args.limit)))
    return 0


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", required=True, help="KFP API endpoint, e.g. https://HOST or http://localhost:8080")
    parser.add_argument("--namespace", help="Kubeflow profile namespace (multi-user deployments)")
    parser.add_argument(
        "--token-env", default=TOKEN_ENV, help=f"environment variable holding a bearer token (default {TOKEN_ENV})"
    )


def _guard(func: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        try:
            return func(args)
        except (RemoteError, ValueError) as error:
            # A user error, as for every other command: one line and status 2.
            print(f"commerce-lm {args.command}: error: {' '.join(str(error).split())}", file=sys.stderr)
            return 2

    return run


def add_remote_commands(subparsers: Any) -> None:
    """Register ``submit``, ``schedule`` and ``runs`` on an argparse subparsers object.

    Each parser sets ``func`` (taking the parsed args, returning an exit code).
    """
    submit = subparsers.add_parser("submit", help="upload the pipeline as a new version and start a run")
    _common(submit)
    submit.add_argument("--config", required=True, help="run config (YAML)")
    submit.add_argument("--experiment", default=DEFAULT_EXPERIMENT)
    submit.add_argument("--run-name")
    submit.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")
    submit.add_argument("--pipeline-name", default=DEFAULT_PIPELINE_NAME)
    submit.add_argument("--ui-host", help="KFP UI base URL for the run link (default: --host)")
    submit.set_defaults(func=_guard(_cmd_submit))

    schedule = subparsers.add_parser("schedule", help="create or replace a recurring retraining run")
    _common(schedule)
    schedule.add_argument("--config", help="run config (YAML)")
    schedule.add_argument("--cron", help="6-field cron, seconds first: '0 0 3 * * 1' = Mondays 03:00")
    schedule.add_argument("--definition", help="recurring-run definition (YAML), e.g. deploy/.../recurring-run.yaml")
    schedule.add_argument("--name", help="schedule name; re-using it replaces the schedule")
    schedule.add_argument("--experiment")
    schedule.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")
    schedule.add_argument("--pipeline-name", default=DEFAULT_PIPELINE_NAME)
    schedule.add_argument("--pipeline", choices=PIPELINES, help="train (default) or score (daily scoring)")
    schedule.set_defaults(func=_guard(_cmd_schedule))

    runs = subparsers.add_parser("runs", help="list recent runs and their states")
    _common(runs)
    runs.add_argument("--experiment")
    runs.add_argument("--limit", type=int, default=20)
    runs.set_defaults(func=_guard(_cmd_runs))
