"""End-to-end baselines measured earlier, kept in the bundle registry so a later run need not redo them.

An end-to-end baseline is the costliest step of a run with a new task, and its figures change only
when its task data, the model, its settings or its code change. ``publish-bundle`` records each
baseline it is handed under ``<location>/baselines/<task>/<key>/`` (``predictions.parquet``,
``metrics.json`` as ``finetune-baseline`` wrote them, and ``origin.json``: the run and bundle they
came from), where ``key`` hashes what the step's cache key hashes (:func:`record_key`). A later
run plans with :func:`find` and ``build-report`` reads the record like a baseline's own output.

Records are immutable and published whole (:func:`commerce_lm.storage.staged_dir`); a second
record of one key (a re-measured baseline, ``e2e: always``) replaces the first whole.
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

from commerce_lm import names, storage

BASELINES_DIR = "baselines"
ORIGIN_JSON = "origin.json"
STEP = "record-baseline"


def record_key(*parts: str) -> str:
    """A digest of what a baseline's result depends on (its sections and code versions, in order)."""
    return hashlib.sha256(json.dumps(list(parts)).encode()).hexdigest()[:32]


def record_uri(location: str, task: str, key: str) -> str:
    """Where the record of ``task``'s baseline of ``key`` lives in the registry at ``location``."""
    return storage.join(location, BASELINES_DIR, task, key)


def find(location: str, task: str, key: str) -> str | None:
    """The record of ``task``'s baseline of ``key``, when the registry holds a whole one."""
    uri = record_uri(location, task, key)
    # The completion marker is published last (on GCS too), so a record being written is not found.
    return uri if storage.exists(storage.join(uri, names.COMPLETE_MARKER)) else None


def record(location: str, task: str, key: str, baseline_dir: str, origin: dict[str, Any]) -> str:
    """Copy a ``finetune-baseline`` output into the registry under ``key``, with where it came from.

    Args:
        location: The bundle registry.
        task: The baseline's task.
        key: :func:`record_key` of the baseline.
        baseline_dir: The ``finetune-baseline`` output (``predictions.parquet``, ``metrics.json``).
        origin: The run and bundle the figures come from; the time is added.

    Returns:
        The record's URI.
    """
    uri = record_uri(location, task, key)
    with storage.staged_dir(uri, STEP) as stage:
        for name in (names.PREDICTIONS_TABLE, names.METRICS_JSON):
            storage.write_bytes(stage / name, storage.read_bytes(storage.join(baseline_dir, name)))
        recorded = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        storage.write_json(stage / ORIGIN_JSON, {**origin, "task": task, "key": key, "recorded": recorded})
    return uri


def origin(uri: str) -> dict[str, Any]:
    """A record's ``origin.json``: ``run``, ``bundle``, ``recorded``, ``task``, ``key``."""
    return storage.read_json(storage.join(uri, ORIGIN_JSON))
