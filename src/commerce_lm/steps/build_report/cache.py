"""The report's costly parts (bootstrap intervals, curves, plots) in the local part cache.

Most of ``build-report``'s time goes to bootstrap resampling and to drawing plots, and a run that
adds one task leaves every other task's predictions as they were. Each part is kept by
:mod:`commerce_lm.part_cache` under ``$COMMERCE_LM_CACHE/report/<kind>/``, keyed by what it reads
and by this package's code (templates included) and the metrics.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

from commerce_lm import metrics, part_cache

# The columns of a prediction table that any figure of the report reads.
PREDICTION_COLUMNS = ["id", "label", "score", "lang"]

frame_digest = part_cache.frame_digest


@functools.cache
def code_version() -> str:
    """A digest of the code behind cached parts: this package (templates included) and the metrics."""
    package = Path(__file__).parent
    files = sorted(package.rglob("*.py")) + sorted((package / "templates").glob("*")) + [Path(metrics.__file__)]
    return part_cache.code_digest(files)


def key(*parts: Any) -> str:
    """The cache key of JSON-able ``parts`` and :func:`code_version`."""
    return part_cache.key(code_version(), *parts)


def cached(kind: str, part_key: str, compute: Callable[[], Any]) -> Any:
    """:func:`commerce_lm.part_cache.cached` under ``report/<kind>`` (``tasks``, ``similarity``, ``plots``)."""
    return part_cache.cached(f"report/{kind}", part_key, compute)
