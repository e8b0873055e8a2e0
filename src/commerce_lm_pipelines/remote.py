"""Talk to a Kubeflow Pipelines server: ``submit``, ``schedule`` and ``runs``.

Every submission uploads the compiled pipeline as a *new version of the same pipeline* (never a new
pipeline per run), so the UI keeps one history. ``schedule`` keeps exactly one recurring run per
name: re-running it replaces the old one (KFP's API has no update for recurring runs). Recurring runs
use KFP's 6-field cron (seconds first), at most one run at a time and no catch-up.

Authentication is :mod:`commerce_lm_pipelines.auth`'s; cron checks are :mod:`commerce_lm_pipelines.cron`'s.

On a multi-user deployment pass ``--namespace`` (the Kubeflow profile namespace): experiments, runs
and recurring runs live there.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from commerce_lm_pipelines.cron import validate_cron

DEFAULT_PIPELINE_NAME = "commerce-lm"
DEFAULT_EXPERIMENT = "commerce-lm"
# KFP's v2beta1 Predicate.Operation
_EQUALS = "EQUALS"


class RemoteError(RuntimeError):
    """A submission or schedule that cannot go ahead; the message says what to change."""


def _display_name_filter(name: str) -> str:
    return json.dumps({"predicates": [{"operation": _EQUALS, "key": "display_name", "string_value": name}]})


@dataclass
class PipelineVersion:
    """Where an uploaded pipeline version lives."""

    pipeline_id: str
    version_id: str
    version_name: str


def version_name_for(package_path: str | Path, now: dt.datetime | None = None) -> str:
    """A unique, readable version name: package version, UTC time, the spec's digest and a nonce."""
    from commerce_lm import __version__

    now = now or dt.datetime.now(dt.UTC)
    digest = hashlib.sha256(Path(package_path).read_bytes()).hexdigest()[:8]
    # The nonce keeps two submissions of the same spec in the same second apart.
    return f"v{__version__}-{now:%Y%m%d-%H%M%S}-{digest}-{uuid.uuid4().hex[:4]}"


def upload_version(
    client: Any, package_path: str | Path, pipeline_name: str, description: str | None = None
) -> PipelineVersion:
    """Upload a compiled pipeline as a new version of the pipeline named ``pipeline_name``.

    The pipeline is created (with this as its first version) only when none of that name exists.
    """
    version_name = version_name_for(package_path)
    pipeline_id = client.get_pipeline_id(pipeline_name)
    if pipeline_id is None:
        pipeline = client.upload_pipeline(str(package_path), pipeline_name=pipeline_name, description=description)
        pipeline_id = pipeline.pipeline_id
        versions = client.list_pipeline_versions(pipeline_id, page_size=1, sort_by="created_at desc")
        if not versions.pipeline_versions:
            raise RemoteError(f"pipeline {pipeline_name!r} was created without a version")
        version = versions.pipeline_versions[0]
        return PipelineVersion(pipeline_id, version.pipeline_version_id, version.display_name)
    version = client.upload_pipeline_version(
        str(package_path),
        pipeline_version_name=version_name,
        pipeline_id=pipeline_id,
        description=description,
    )
    return PipelineVersion(pipeline_id, version.pipeline_version_id, version_name)


def _experiment_id(client: Any, experiment: str, namespace: str | None) -> str:
    return client.create_experiment(experiment, namespace=namespace).experiment_id  # get or create


def run_url(ui_host: str, run_id: str) -> str:
    """The KFP UI link of a run."""
    return f"{ui_host.rstrip('/')}/#/runs/details/{run_id}"


@dataclass
class Submitted:
    """A started run."""

    run_id: str
    url: str
    version: PipelineVersion


def submit_run(
    client: Any,
    package_path: str | Path,
    arguments: dict[str, Any],
    *,
    ui_host: str,
    pipeline_name: str = DEFAULT_PIPELINE_NAME,
    experiment: str = DEFAULT_EXPERIMENT,
    run_name: str | None = None,
    namespace: str | None = None,
) -> Submitted:
    """Upload ``package_path`` as a new pipeline version and start a run of it.

    Args:
        client: A ``kfp.Client``.
        package_path: The compiled pipeline (YAML).
        arguments: The run's pipeline parameters.
        ui_host: Base URL of the KFP UI, for the run's link.
        pipeline_name: The pipeline that gets the new version.
        experiment: The experiment the run belongs to (created if missing).
        run_name: Display name of the run (default: pipeline name and version).
        namespace: The profile namespace on multi-user deployments.

    Returns:
        The run's id, UI link and pipeline version.
    """
    version = upload_version(client, package_path, pipeline_name)
    run = client.run_pipeline(
        experiment_id=_experiment_id(client, experiment, namespace),
        job_name=run_name or f"{pipeline_name} {version.version_name}",
        params=arguments,
        pipeline_id=version.pipeline_id,
        version_id=version.version_id,
    )
    return Submitted(run.run_id, run_url(ui_host, run.run_id), version)


def _recurring_runs_named(client: Any, name: str, experiment_id: str) -> list[Any]:
    found, token = [], ""
    while True:
        page = client.list_recurring_runs(
            page_token=token, page_size=100, experiment_id=experiment_id, filter=_display_name_filter(name)
        )
        # Filter again locally: the name is the identity of a schedule, a server-side filter is
        # only an optimisation.
        found += [r for r in page.recurring_runs or [] if r.display_name == name]
        token = page.next_page_token or ""
        if not token:
            return found


@dataclass
class Scheduled:
    """A created (or replaced) recurring run."""

    recurring_run_id: str
    replaced: list[str] = field(default_factory=list)
    version: PipelineVersion | None = None


def schedule_run(
    client: Any,
    package_path: str | Path,
    arguments: dict[str, Any],
    cron: str,
    *,
    name: str,
    pipeline_name: str = DEFAULT_PIPELINE_NAME,
    experiment: str = DEFAULT_EXPERIMENT,
    namespace: str | None = None,
) -> Scheduled:
    """Create the recurring run ``name``, replacing an earlier one of the same name.

    The new schedule is created before the old one is deleted, and the old one is paused first, so a
    failure leaves the earlier schedule (re-enabled) rather than none or two running.

    Args:
        client: A ``kfp.Client``.
        package_path: The compiled pipeline (YAML), uploaded as a new version.
        arguments: The runs' pipeline parameters.
        cron: A 6-field cron expression (see :func:`validate_cron`).
        name: The schedule's display name, its identity.
        pipeline_name: The pipeline that gets the new version.
        experiment: The experiment of the schedule and its runs.
        namespace: The profile namespace on multi-user deployments.

    Returns:
        The new recurring run's id and the ids it replaced.

    Raises:
        ValueError: For an invalid cron expression (nothing is uploaded then).
    """
    cron = validate_cron(cron)
    version = upload_version(client, package_path, pipeline_name)
    experiment_id = _experiment_id(client, experiment, namespace)
    old = _recurring_runs_named(client, name, experiment_id)
    for job in old:
        client.disable_recurring_run(job.recurring_run_id)
    try:
        created = client.create_recurring_run(
            experiment_id=experiment_id,
            job_name=name,
            description=f"{pipeline_name} {version.version_name}, cron {cron}",
            cron_expression=cron,
            max_concurrency=1,
            no_catchup=True,
            params=arguments,
            pipeline_id=version.pipeline_id,
            version_id=version.version_id,
            enabled=True,
        )
    except Exception:
        for job in old:
            client.enable_recurring_run(job.recurring_run_id)
        raise
    for job in old:
        client.delete_recurring_run(job.recurring_run_id)
    return Scheduled(created.recurring_run_id, [j.recurring_run_id for j in old], version)


def list_runs(
    client: Any, *, namespace: str | None = None, experiment: str | None = None, limit: int = 20
) -> list[dict[str, Any]]:
    """The most recent runs, newest first, as ``id``, ``name``, ``state``, ``created_at``, ``finished_at``."""
    experiment_id = None
    if experiment:
        experiment_id = client.get_experiment(experiment_name=experiment, namespace=namespace).experiment_id
    response = client.list_runs(
        page_size=limit, sort_by="created_at desc", experiment_id=experiment_id, namespace=namespace
    )
    return [
        {
            "id": run.run_id,
            "name": run.display_name,
            "state": run.state or "UNKNOWN",
            "created_at": run.created_at.isoformat() if run.created_at else "",
            "finished_at": run.finished_at.isoformat() if run.finished_at else "",
        }
        for run in response.runs or []
    ]


def format_runs(runs: list[dict[str, Any]]) -> str:
    """A plain table of :func:`list_runs`'s output."""
    if not runs:
        return "no runs"
    columns = ["state", "created_at", "name", "id"]
    widths = {c: max(len(c), *(len(str(r[c])) for r in runs)) for c in columns}
    lines = ["  ".join(c.upper().ljust(widths[c]) for c in columns)]
    lines += ["  ".join(str(r[c]).ljust(widths[c]) for c in columns) for r in runs]
    return "\n".join(line.rstrip() for line in lines)


def _pipeline_module():  # noqa: ANN202
    from commerce_lm_pipelines import pipeline

    return pipeline


def compile_for(config_path: str, overrides: list[str] | None = None) -> tuple[str, dict[str, Any]]:
    """Compile the pipeline and take its run arguments from a run config.

    Returns:
        ``(package_path, arguments)``; the package lies in a fresh temporary folder.
    """
    from commerce_lm.config import load_config

    cfg = load_config(config_path, overrides)
    pipeline = _pipeline_module()
    package = str(Path(tempfile.mkdtemp(prefix="commerce-lm-kfp-")) / "pipeline.yaml")
    arguments = pipeline.pipeline_arguments(cfg)
    # A run that plans no end-to-end baseline gets a DAG without the baseline loop.
    return pipeline.compile_pipeline(package, baselines=bool(arguments["tasks"])), arguments


def load_definition(path: str | None) -> dict[str, Any]:
    """Read a recurring-run definition (YAML: ``name``, ``cron``, ``config``, ``experiment``, ...).

    A scoring schedule says ``pipeline: score`` and gives the pipeline's ``arguments`` instead of a config.

    Relative ``config`` paths resolve against the definition's folder.
    """
    if not path:
        return {}
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    allowed = {"name", "cron", "config", "experiment", "namespace", "pipeline_name", "overrides"}
    allowed |= {"pipeline", "arguments"}  # a scoring schedule: pipeline: score, and its arguments
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise RemoteError(f"{path}: unknown keys {unknown}; allowed: {sorted(allowed)}")
    if data.get("config") and not Path(data["config"]).is_absolute():
        data["config"] = str(Path(path).parent / data["config"])
    return data
