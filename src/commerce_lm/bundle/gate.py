"""The retraining gate: a new bundle replaces the live one only when it is not worse on any task.

Both bundles are scored on the same validation data (the new run's); the decision compares one
metric per task with a tolerance, and always says why.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Decision:
    """Whether to publish, and why.

    Attributes:
        publish: True when the new bundle should become live.
        reason: One sentence a person can act on.
        metric: The validation metric compared (``pr_auc`` or ``roc_auc``).
        tolerance: How much worse than the live bundle a task may be.
        live: The live bundle's URI before the decision (None: there was none).
        tasks: Per task: the new and live values, their difference and a verdict.
    """

    publish: bool
    reason: str
    metric: str
    tolerance: float
    live: str | None = None
    tasks: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready copy."""
        return asdict(self)


def _verdicts(new: dict[str, float | None], live: dict[str, float | None], tolerance: float) -> dict[str, dict]:
    tasks: dict[str, dict[str, Any]] = {}
    for task in sorted(set(new) | set(live)):
        ours, theirs = new.get(task), live.get(task)
        entry: dict[str, Any] = {"new": ours, "live": theirs, "delta": None}
        if task not in new:
            entry["verdict"] = "dropped"
        elif task not in live:
            entry["verdict"] = "new task"
        elif ours is None or theirs is None:
            entry["verdict"] = "not comparable"  # a validation split with one class only
        else:
            entry["delta"] = ours - theirs
            entry["verdict"] = "worse" if ours < theirs - tolerance else "not worse"
        tasks[task] = entry
    return tasks


def decide(
    new: dict[str, float | None],
    live: dict[str, float | None] | None,
    *,
    live_uri: str | None,
    metric: str,
    tolerance: float,
    allow_dropped_tasks: bool = False,
) -> Decision:
    """Compare the new bundle's validation metric per task with the live bundle's.

    Args:
        new: Task -> the new bundle's validation metric (None where it is undefined).
        live: Task -> the live bundle's metric on the same validation data (tasks it has a head for);
            None when no bundle is live.
        live_uri: The live bundle's URI, for the reason.
        metric: The metric's name, for the reason.
        tolerance: How much lower than the live value a task may be and still count as not worse.
        allow_dropped_tasks: Publish even when the live bundle scores a task the new one has no head for.

    Returns:
        The decision, with a reason naming the tasks that decided it.
    """
    base = {"metric": metric, "tolerance": tolerance, "live": live_uri}
    if live is None:
        return Decision(True, "no bundle is live yet: the new one becomes live", **base)
    tasks = _verdicts(new, live, tolerance)
    worse = [t for t, e in tasks.items() if e["verdict"] == "worse"]
    dropped = [t for t, e in tasks.items() if e["verdict"] == "dropped"]
    if worse:
        details = ", ".join(f"{t} {tasks[t]['new']:.4f} < {tasks[t]['live']:.4f}" for t in worse)
        reason = f"kept {live_uri}: the new bundle is worse on validation {metric} beyond {tolerance} ({details})"
        return Decision(False, reason, tasks=tasks, **base)
    if dropped and not allow_dropped_tasks:
        reason = f"kept {live_uri}: it scores task(s) {dropped} that the new bundle has no head for"
        return Decision(False, reason, tasks=tasks, **base)
    reason = f"replaces {live_uri}: not worse on validation {metric} beyond {tolerance} on any task"
    return Decision(True, reason, tasks=tasks, **base)
