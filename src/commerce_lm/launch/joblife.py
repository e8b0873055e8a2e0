"""The life of a cluster training job, the same for a TrainJob and a PyTorchJob.

:func:`run` creates the job, or re-attaches to the one a previous attempt of the same step created
(its name is deterministic), streams its status and its main pod's log into the step's log, fails
with the job's own reason, and deletes the job once it has succeeded. A job that a previous attempt
left failed is replaced: the checkpoints on ``gs://`` make the new one resume.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from kubernetes.client.exceptions import ApiException

log = logging.getLogger(__name__)

# Follows the main pod's log of the job named by the argument; yields nothing while no pod runs.
LogReader = Callable[[str], Iterable[str]]


@dataclass(frozen=True)
class JobKind:
    """A custom resource kind and the condition types that end its jobs.

    Attributes:
        group: API group, e.g. ``trainer.kubeflow.org``.
        version: API version, e.g. ``v1alpha1``.
        plural: Resource name in URLs, e.g. ``trainjobs``.
        kind: Kind, e.g. ``TrainJob``.
        succeeded: The condition type of a successful end.
        failed: The condition type of a failed end.
        progress: The status field that tells how far the pods got (printed as it changes).
    """

    group: str
    version: str
    plural: str
    kind: str
    succeeded: str = "Complete"
    failed: str = "Failed"
    progress: str = "jobsStatus"

    @property
    def api_version(self) -> str:
        """``group/version``."""
        return f"{self.group}/{self.version}"


class JobFailed(RuntimeError):
    """The job failed or ran out of time; the message carries the job's reason and message."""


def conditions(job: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The job's conditions that hold (status ``True``), by type."""
    return {c["type"]: c for c in (job.get("status") or {}).get("conditions") or [] if c.get("status") == "True"}


def _describe(kind: JobKind, job: dict[str, Any]) -> str:
    held = conditions(job)
    state = next(reversed(held), "Pending")
    latest = held.get(state, {})
    progress = (job.get("status") or {}).get(kind.progress)
    return f"{state} {latest.get('reason', '')} {latest.get('message', '')} {progress or ''}".strip()


class _Api:
    """The four calls on one job, with its coordinates filled in."""

    def __init__(self, objects: Any, kind: JobKind, namespace: str, name: str) -> None:
        self.objects, self.kind, self.namespace, self.name = objects, kind, namespace, name
        self.where = f"{kind.kind} {namespace}/{name}"

    def _coords(self) -> tuple[str, str, str, str]:
        return self.kind.group, self.kind.version, self.namespace, self.kind.plural

    def create(self, body: dict[str, Any]) -> None:
        self.objects.create_namespaced_custom_object(*self._coords(), body)

    def get(self) -> dict[str, Any] | None:
        try:
            return self.objects.get_namespaced_custom_object(*self._coords(), self.name)
        except ApiException as error:
            if error.status == 404:
                return None
            raise

    def delete(self) -> None:
        try:
            self.objects.delete_namespaced_custom_object(*self._coords(), self.name)
        except ApiException as error:
            if error.status != 404:
                raise


def _submit(api: _Api, body: dict[str, Any], poll_seconds: float) -> None:
    try:
        api.create(body)
        log.info("created %s", api.where)
        return
    except ApiException as error:
        if error.status != 409:
            raise
    existing = api.get() or {}
    failed = conditions(existing).get(api.kind.failed)
    if failed is None:
        # A retried KFP step: its first attempt's job is still running (or done); follow that one.
        log.info("%s exists (created by an earlier attempt of this step): re-attaching to it", api.where)
        return
    reason = failed.get("reason") or "no reason given"
    log.info("%s failed before (%s); replacing it: the new job resumes from the checkpoints", api.where, reason)
    api.delete()
    while api.get() is not None:
        time.sleep(poll_seconds)
    api.create(body)
    log.info("created %s", api.where)


class _LogFollower(threading.Thread):
    """Streams the main pod's log into the step's log from the moment the pod runs."""

    def __init__(self, read: LogReader, name: str, poll_seconds: float) -> None:
        super().__init__(name=f"logs-{name}", daemon=True)
        self.read, self.job, self.poll_seconds = read, name, poll_seconds
        self.stop = threading.Event()

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                lines = 0
                for line in self.read(self.job):
                    lines += 1
                    log.info("[%s] %s", self.job, line.rstrip("\n"))
                if lines:
                    return  # the pod's container ended; its log is complete
                self.stop.wait(self.poll_seconds)
        except Exception as error:  # noqa: BLE001 - logs are a courtesy: the job's status decides
            log.warning("stopped following the logs of %s: %s", self.job, error)


def run(
    body: dict[str, Any],
    kind: JobKind,
    objects: Any,
    logs: LogReader | None = None,
    poll_seconds: float = 10.0,
    timeout_seconds: float | None = None,
) -> dict[str, Any]:
    """Create (or re-attach to) the job, follow it to its end and delete it when it succeeded.

    Args:
        body: The job's manifest.
        kind: Its kind and the condition types that end it.
        objects: A ``kubernetes.client.CustomObjectsApi``.
        logs: Follows the main pod's log (see :data:`LogReader`); ``None`` prints status only.
        poll_seconds: Seconds between status reads.
        timeout_seconds: Give up after this long and delete the job; ``None`` waits for ever.

    Returns:
        The job as it finished.

    Raises:
        JobFailed: The job failed (its reason and message), vanished, or ran out of time.
    """
    api = _Api(objects, kind, body["metadata"]["namespace"], body["metadata"]["name"])
    _submit(api, body, poll_seconds)
    follower = _LogFollower(logs, api.name, poll_seconds) if logs else None
    if follower:
        follower.start()
    started, last = time.monotonic(), None
    try:
        while True:
            job = api.get()
            if job is None:
                raise JobFailed(f"{api.where} was deleted before it finished")
            if (seen := _describe(kind, job)) != last:
                log.info("%s: %s", api.where, seen)
                last = seen
            held = conditions(job)
            if kind.failed in held:
                failed = held[kind.failed]
                reason = failed.get("reason") or "no reason given"
                raise JobFailed(f"{api.where} failed: {reason}: {failed.get('message', '')}")
            if kind.succeeded in held:
                if follower:
                    follower.join(timeout=30)  # let the last lines of the log arrive
                api.delete()
                log.info("%s succeeded; deleted it", api.where)
                return job
            if timeout_seconds is not None and time.monotonic() - started > timeout_seconds:
                api.delete()
                raise JobFailed(f"{api.where}: no result after {timeout_seconds:.0f}s; deleted it")
            time.sleep(poll_seconds)
    finally:
        if follower:
            follower.stop.set()
