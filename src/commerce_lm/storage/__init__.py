"""Local paths and ``gs://`` URIs behind one small API, with atomic writes.

Steps write through :func:`staged_dir` or :func:`write_bytes`: outputs are built under a temporary
name and published in one step (a rename locally, an upload per file followed by a completion
marker on GCS), so a killed step never leaves a half artifact that a later step would trust.

This module is the public API; :mod:`commerce_lm.storage.gcs` holds the GCS client with its retries
and generation preconditions, :mod:`commerce_lm.storage.publish` the staged publishing of folders.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from commerce_lm.storage import gcs
from commerce_lm.storage.gcs import CHUNK_SIZE, MAX_WORKERS, RESUMABLE_THRESHOLD, ConcurrentWriteError
from commerce_lm.storage.guard import OutputError, check_output
from commerce_lm.storage.paths import GS_PREFIX, is_gcs, join, split_gcs
from commerce_lm.storage.publish import is_complete, staged_dir

__all__ = [
    "CHUNK_SIZE",
    "GS_PREFIX",
    "MAX_WORKERS",
    "RESUMABLE_THRESHOLD",
    "ConcurrentWriteError",
    "OutputError",
    "check_output",
    "download_dir",
    "exists",
    "is_complete",
    "is_gcs",
    "join",
    "list_files",
    "local_copy",
    "read_bytes",
    "read_json",
    "read_parquet",
    "read_versioned",
    "remove",
    "split_gcs",
    "staged_dir",
    "upload_dir",
    "write_bytes",
    "write_json",
]


def exists(location: str | Path) -> bool:
    """Whether a file (or, locally, a folder) exists; on GCS, whether the object exists."""
    if is_gcs(location):
        return gcs.live_generation(str(location)) is not None
    return Path(location).exists()


def read_bytes(location: str | Path) -> bytes:
    """Read a whole file.

    Raises:
        FileNotFoundError: Naming the location when it does not exist.
        PermissionError: Naming the location when access is denied.
    """
    return read_versioned(location)[0]


def read_versioned(location: str | Path) -> tuple[bytes, int | None]:
    """Read a whole file with its GCS generation, to replace it later without losing a change.

    Args:
        location: A local path or a ``gs://`` URI.

    Returns:
        ``(data, generation)``; the generation is that of exactly these bytes, ``None`` locally.

    Raises:
        FileNotFoundError: Naming the location when it does not exist.
        PermissionError: Naming the location when access is denied.
    """
    if not is_gcs(location):
        return Path(location).read_bytes(), None
    blob = gcs.get_blob(str(location))
    with gcs.errors(str(location)):
        data = blob.download_as_bytes(retry=gcs.retry(), timeout=gcs.REQUEST_TIMEOUT)
    return data, blob.generation


def write_bytes(location: str | Path, data: bytes, *, generation: int | None = None, overwrite: bool = False) -> None:
    """Write a whole file atomically: readers see the old content or the new, never a part.

    Locally the file is written under a temporary name and renamed over any earlier one. On GCS the
    upload carries a generation precondition so that no other writer's object is lost; finding the
    object already holding exactly these bytes counts as success (it is what a retried write whose
    answer was lost sees, and nothing is lost).

    Args:
        location: A local path or a ``gs://`` URI.
        data: The whole content.
        generation: GCS only: replace the object only if it is still this generation (from
            :func:`read_versioned`).
        overwrite: GCS only: replace an existing object (still failing if it changes between our
            look and our write). Without it or ``generation`` only a new object is written.

    Raises:
        FileExistsError: GCS: the object exists and neither ``generation`` nor ``overwrite`` was given.
        ConcurrentWriteError: GCS: the object is no longer the expected generation.
        PermissionError: GCS: access denied, naming the URI.
    """
    if is_gcs(location):
        uri = str(location)
        if generation is None:
            generation = (gcs.live_generation(uri) or 0) if overwrite else 0
        gcs.upload(uri, data, generation)
        return
    path = Path(location)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def read_json(location: str | Path) -> Any:
    """Read a JSON file."""
    return json.loads(read_bytes(location))


def read_parquet(location: str | Path, columns: list[str] | None = None):  # noqa: ANN201 - a pyarrow Table
    """Read a Parquet file, local or ``gs://`` (pandas and pyarrow alone cannot open ``gs://`` here)."""
    import pyarrow.parquet as pq

    if is_gcs(location):
        import io

        return pq.read_table(io.BytesIO(read_bytes(location)), columns=columns)
    return pq.read_table(location, columns=columns)


def write_json(location: str | Path, value: Any, **kwargs: Any) -> None:
    """Write a JSON file atomically, pretty-printed with sorted keys.

    Args:
        location: A local path or a ``gs://`` URI.
        value: Anything ``json.dumps`` accepts.
        **kwargs: ``generation`` / ``overwrite``, as for :func:`write_bytes`.
    """
    write_bytes(location, (json.dumps(value, indent=2, sort_keys=True) + "\n").encode(), **kwargs)


def list_files(location: str | Path) -> list[str]:
    """All files below a folder or ``gs://`` prefix, sorted."""
    if is_gcs(location):
        return sorted(gcs.list_objects(str(location)))
    root = Path(location)
    if root.is_file():
        return [str(root)]
    return sorted(str(p) for p in root.rglob("*") if p.is_file())


def download_dir(uri: str, local: str | Path) -> Path:
    """Copy every object under a ``gs://`` prefix into a local folder, in parallel.

    Each object is fetched at the generation the listing saw, so a file replaced meanwhile fails
    loudly (not found) instead of mixing versions silently.

    Raises:
        FileNotFoundError: When the prefix holds no object, naming it.
    """
    local = Path(local)
    prefix = uri.rstrip("/") + "/"
    objects = gcs.list_objects(uri)
    if not objects:
        raise FileNotFoundError(f"{uri}: no objects under this prefix")
    local.mkdir(parents=True, exist_ok=True)
    gcs.parallel(lambda item: gcs.download(item[0], local / item[0][len(prefix) :], item[1]), objects.items())
    return local


def upload_dir(local: str | Path, uri: str, *, overwrite: bool = False) -> None:
    """Copy a local folder under a ``gs://`` prefix, in parallel.

    Args:
        local: The folder.
        uri: The ``gs://`` prefix.
        overwrite: Replace objects that already exist (at the generation listed just before);
            without it an existing object makes the upload fail.

    Raises:
        FileExistsError: An object exists and ``overwrite`` is false.
    """
    files = gcs.local_files(Path(local))
    live = gcs.list_objects(uri) if overwrite else {}
    gcs.parallel(lambda item: gcs.upload(join(uri, item[0]), item[1], live.get(join(uri, item[0]), 0)), files.items())


@contextlib.contextmanager
def local_copy(location: str | Path) -> Iterator[Path]:
    """Yield a local path holding ``location``'s content (a download for ``gs://``)."""
    if not is_gcs(location):
        yield Path(location)
        return
    with tempfile.TemporaryDirectory(prefix="commerce-lm-") as tmp:
        if exists(location):  # an object; otherwise a folder (prefix)
            target = Path(tmp, Path(split_gcs(str(location))[1]).name)
            gcs.download(str(location), target)
            yield target
        else:
            yield download_dir(str(location), tmp)


def remove(location: str | Path) -> None:
    """Delete a file or a whole folder (every object under a ``gs://`` prefix); a missing one is fine."""
    if is_gcs(location):
        gcs.parallel(gcs.delete, gcs.list_objects(str(location)))
        return
    path = Path(location)
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists():
        path.unlink()
