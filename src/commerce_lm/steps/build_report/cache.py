"""A content-addressed cache of the report's costly parts: bootstrap intervals, curves and plots.

Most of ``build-report``'s time goes to bootstrap resampling and to drawing plots, and a run that
adds one task leaves every other task's predictions as they were. Each costly part is therefore
keyed as the step cache keys a step: a digest of exactly what it reads (a task's predictions and
training figures, the report settings and seed) and of the code that computes it
(:func:`code_version`), and kept as one JSON file under ``$COMMERCE_LM_CACHE/report/<kind>/``. A
part whose key is found is read back instead of computed; a changed input or changed code misses.

Files are written under a temporary name and renamed, so concurrent reports and killed ones never
leave a half file that a later report would trust; an unreadable file is computed again. A pod
with an empty cache (a cluster) computes everything, as before.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from commerce_lm import metrics, models

# The columns of a prediction table that any figure of the report reads.
PREDICTION_COLUMNS = ["id", "label", "score", "lang"]


@functools.cache
def code_version() -> str:
    """A digest of the code behind cached parts: this package (templates included) and the metrics."""
    package = Path(__file__).parent
    files = sorted(package.rglob("*.py")) + sorted((package / "templates").glob("*")) + [Path(metrics.__file__)]
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def frame_digest(frame: pd.DataFrame, columns: list[str]) -> str:
    """A digest of ``frame``'s ``columns``, row order included."""
    hashed = pd.util.hash_pandas_object(frame[columns], index=False).to_numpy()
    return hashlib.sha256(",".join(columns).encode() + hashed.tobytes()).hexdigest()


def key(*parts: Any) -> str:
    """The cache key of JSON-able ``parts`` and :func:`code_version`."""
    material = json.dumps([code_version(), *parts], sort_keys=True, default=str)
    return hashlib.sha256(material.encode()).hexdigest()


def cached(kind: str, part_key: str, compute: Callable[[], Any]) -> Any:
    """``compute()``'s value as JSON reads it back, from the cache when ``part_key`` is found there.

    Both paths return the JSON round trip, so a report from the cache equals one computed afresh.

    Args:
        kind: The sub-folder of the kind of part (``tasks``, ``similarity``, ``plots``).
        part_key: :func:`key` of what the part is computed from.
        compute: Computes the part (JSON-able).

    Returns:
        The part.
    """
    path = models.cache_root() / "report" / kind / f"{part_key}.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        pass  # not cached yet, or unreadable: computed and written again below
    text = json.dumps(compute())
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        with os.fdopen(handle, "w") as file:
            file.write(text)
        os.replace(tmp, path)
    except OSError:
        pass  # a cache that cannot be written costs only time: the next report computes the part again
    return json.loads(text)
