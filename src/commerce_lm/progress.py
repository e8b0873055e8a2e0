"""Progress bars for long work, quiet in pipeline logs."""

from __future__ import annotations

import sys


def progress_bar(total: int | None, desc: str, unit: str = "doc"):  # noqa: ANN201 - a tqdm bar
    """A bar over ``total`` items (None: unknown); in pipeline logs (no terminal) redrawn every 30 s, not 1 s."""
    from tqdm.auto import tqdm

    return tqdm(total=total, unit=unit, desc=desc, mininterval=1.0 if sys.stderr.isatty() else 30.0)
