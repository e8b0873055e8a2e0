"""Which tasks get an end-to-end baseline this run, decided from the config before the run starts.

A task's ``e2e`` says ``always``, ``never`` or ``auto``: a baseline unless the bundle registry
(``publish.location``) holds a measurement of the same baseline from an earlier run
(:mod:`commerce_lm.bundle.baselines`); ``baseline.enabled: false`` runs none. "The same" is keyed
as the step cache keys the baseline and the task data it reads: both sections and both steps' code
versions. The plan is made where the run is launched (``commerce-lm run``, ``submit``,
``schedule``), so the DAG's baseline loop runs over exactly the planned tasks; a recurring run
keeps the plan it was scheduled with.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from commerce_lm.bundle import baselines
from commerce_lm.config import RunConfig, prepare_part, section_for


@dataclass
class BaselinePlan:
    """The run's end-to-end baselines.

    Attributes:
        run: Task -> record key, for each task whose baseline runs (``publish-bundle`` records it).
        earlier: Task -> record URI, for each task whose baseline does not run but was measured
            before (``build-report`` shows those figures, saying where they came from).
    """

    run: dict[str, str] = field(default_factory=dict)
    earlier: dict[str, str] = field(default_factory=dict)


def plan_baselines(cfg: RunConfig, versions: dict[str, str]) -> BaselinePlan:
    """Decide, per task, whether its baseline runs, and find the earlier record of those that do not.

    Args:
        cfg: The run config.
        versions: Each step's code version (:func:`commerce_lm_pipelines.versions.step_code_versions`).

    Returns:
        The plan.
    """
    prepare = section_for("prepare-data", cfg)
    settings = section_for("finetune-baseline", cfg).to_json()
    location = cfg.publish.location
    plan = BaselinePlan()
    for task in cfg.tasks:
        data = prepare_part(prepare, f"task:{task.name}").to_json()
        key = baselines.record_key(data, versions["prepare-data"], settings, versions["finetune-baseline"])
        earlier = baselines.find(location, task.name, key) if location else None
        wanted = task.e2e == "always" or (task.e2e == "auto" and earlier is None)
        if cfg.baseline.enabled and wanted:
            plan.run[task.name] = key
        elif earlier:
            plan.earlier[task.name] = earlier
    return plan
