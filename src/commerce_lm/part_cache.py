"""A content-addressed local cache of a step's costly, separable parts.

A run that adds one task leaves every other task's inputs as they were, so the parts of a step that
depend on one task alone (a head, a task's bootstrap intervals, a plot) are worth keeping between
runs. Each part is keyed as the step cache keys a step: a digest of exactly what it reads and of the
code that computes it, and kept as one JSON file under ``$COMMERCE_LM_CACHE/<kind>/``. A part whose
key is found is read back instead of computed; a changed input or changed code misses.

Files are written atomically (:func:`commerce_lm.storage.write_bytes`), so concurrent steps and killed ones never
leave a half file that a later step would trust; an unreadable file is computed again. A pod with
an empty cache (a cluster) computes everything, as before.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from commerce_lm import models, storage


def code_digest(files: Iterable[Path]) -> str:
    """A digest of the code behind a kind of part: the names and bytes of ``files``, in order."""
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def frame_digest(frame: pd.DataFrame, columns: list[str]) -> str:
    """A digest of ``frame``'s ``columns``, row order included."""
    hashed = pd.util.hash_pandas_object(frame[columns], index=False).to_numpy()
    return hashlib.sha256(",".join(columns).encode() + hashed.tobytes()).hexdigest()


def array_digest(array: np.ndarray) -> str:
    """A digest of ``array``'s dtype, shape and values."""
    array = np.ascontiguousarray(array)
    return hashlib.sha256(f"{array.dtype.str}{array.shape}".encode() + array.tobytes()).hexdigest()


def key(code: str, *parts: Any) -> str:
    """The cache key of a part: the ``code`` digest behind it and the JSON-able ``parts`` it reads."""
    material = json.dumps([code, *parts], sort_keys=True, default=str)
    return hashlib.sha256(material.encode()).hexdigest()


def cached(kind: str, part_key: str, compute: Callable[[], Any]) -> Any:
    """``compute()``'s value as JSON reads it back, from the cache when ``part_key`` is found there.

    Both paths return the JSON round trip, so a step's output from the cache equals one computed
    afresh.

    Args:
        kind: The cache's sub-folder for this kind of part (``heads``, ``report/plots``).
        part_key: :func:`key` of what the part is computed from.
        compute: Computes the part (JSON-able).

    Returns:
        The part.
    """
    path = models.cache_root() / kind / f"{part_key}.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        pass  # not cached yet, or unreadable: computed and written again below
    text = json.dumps(compute())
    with contextlib.suppress(OSError):  # a cache that cannot be written costs only time
        storage.write_bytes(path, text.encode())
    return json.loads(text)
