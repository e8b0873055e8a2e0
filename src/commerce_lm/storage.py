"""Local paths and ``gs://`` URIs behind one small API, with atomic writes.

Steps write through :func:`staged_dir` or :func:`write_bytes`: outputs are built under a temporary
name and published in one step (a rename locally, an upload per file followed by a completion
marker on GCS), so a killed step never leaves a half artifact that a later step would trust.
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


def _client():  # noqa: ANN202 - imported lazily: local runs never need the GCS client
    from google.cloud import storage as gcs

    return gcs.Client()


def _blob(uri: str):  # noqa: ANN202
    bucket, key = split_gcs(uri)
    return _client().bucket(bucket).blob(key)


def exists(location: str | Path) -> bool:
    """Whether a file (or, locally, a folder) exists."""
    if is_gcs(location):
        return _blob(str(location)).exists()
    return Path(location).exists()


def read_bytes(location: str | Path) -> bytes:
    """Read a whole file.

    Raises:
        FileNotFoundError: Naming the location when it does not exist.
    """
    if is_gcs(location):
        from google.api_core import exceptions

        try:
            return _blob(str(location)).download_as_bytes()
        except exceptions.NotFound:
            raise FileNotFoundError(f"{location}: no such object") from None
    return Path(location).read_bytes()


def write_bytes(location: str | Path, data: bytes) -> None:
    """Write a whole file atomically: readers see the old content or the new, never a part."""
    if is_gcs(location):
        _blob(str(location)).upload_from_string(data)
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


def write_json(location: str | Path, value: Any) -> None:
    """Write a JSON file atomically, pretty-printed with sorted keys."""
    write_bytes(location, (json.dumps(value, indent=2, sort_keys=True) + "\n").encode())


def list_files(location: str | Path) -> list[str]:
    """All files below a folder or ``gs://`` prefix, sorted."""
    if is_gcs(location):
        bucket, key = split_gcs(str(location))
        prefix = key.rstrip("/") + "/" if key else ""
        return sorted(
            f"{GS_PREFIX}{bucket}/{blob.name}"
            for blob in _client().list_blobs(bucket, prefix=prefix)
            if not blob.name.endswith("/")
        )
    root = Path(location)
    if root.is_file():
        return [str(root)]
    return sorted(str(p) for p in root.rglob("*") if p.is_file())


def download_dir(uri: str, local: str | Path) -> Path:
    """Copy every object under a ``gs://`` prefix into a local folder."""
    local = Path(local)
    prefix = uri.rstrip("/") + "/"
    for source in list_files(uri):
        target = local / source[len(prefix) :]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(read_bytes(source))
    return local


def upload_dir(local: str | Path, uri: str) -> None:
    """Copy a local folder under a ``gs://`` prefix."""
    local = Path(local)
    for path in sorted(p for p in local.rglob("*") if p.is_file()):
        write_bytes(join(uri, *path.relative_to(local).parts), path.read_bytes())


@contextlib.contextmanager
def local_copy(location: str | Path) -> Iterator[Path]:
    """A local path holding ``location``'s content (a download for ``gs://``)."""
    if not is_gcs(location):
        yield Path(location)
        return
    with tempfile.TemporaryDirectory(prefix="commerce-lm-") as tmp:
        files = list_files(str(location))
        if files == [str(location)]:
            target = Path(tmp, Path(split_gcs(str(location))[1]).name)
            target.write_bytes(read_bytes(location))
            yield target
        else:
            yield download_dir(str(location), tmp)


@contextlib.contextmanager
def staged_dir(location: str | Path) -> Iterator[Path]:
    """Build a folder under a temporary name and publish it only when the block succeeds.

    Locally the staging folder is a sibling renamed over ``location`` at the end; an earlier
    complete folder is replaced. For ``gs://`` the folder is uploaded when the block succeeds.
    On an exception nothing is published and the staging folder is removed.
    """
    if is_gcs(location):
        with tempfile.TemporaryDirectory(prefix="commerce-lm-stage-") as tmp:
            yield Path(tmp)
            upload_dir(tmp, str(location))
        return
    final = Path(location)
    final.parent.mkdir(parents=True, exist_ok=True)
    stage = final.with_name(f".{final.name}.{uuid.uuid4().hex}.staging")
    stage.mkdir()
    try:
        yield stage
        if final.exists():
            trash = final.with_name(f".{final.name}.{uuid.uuid4().hex}.old")
            os.replace(final, trash)
            shutil.rmtree(trash)
        os.replace(stage, final)
    finally:
        if stage.exists():
            shutil.rmtree(stage)
