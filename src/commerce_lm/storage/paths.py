"""Where a location points: a local path or a ``gs://`` URI."""

from __future__ import annotations

from pathlib import Path

GS_PREFIX = "gs://"


def is_gcs(location: str | Path) -> bool:
    """Whether ``location`` is a ``gs://`` URI."""
    return str(location).startswith(GS_PREFIX)


def split_gcs(uri: str) -> tuple[str, str]:
    """Split ``gs://bucket/key`` into ``(bucket, key)``."""
    bucket, _, key = uri[len(GS_PREFIX) :].partition("/")
    if not bucket:
        raise ValueError(f"{uri}: not a gs:// URI with a bucket")
    return bucket, key


def join(base: str | Path, *parts: str) -> str:
    """Join path parts onto a local path or a ``gs://`` URI."""
    if is_gcs(base):
        return "/".join([str(base).rstrip("/"), *parts])
    return str(Path(base, *parts))
