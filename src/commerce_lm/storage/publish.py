"""Staged publishing: a folder appears whole or not at all, locally and on GCS."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path

from commerce_lm.names import COMPLETE_MARKER
from commerce_lm.storage import gcs
from commerce_lm.storage.guard import OutputError, check_output, marker_record
from commerce_lm.storage.paths import is_gcs, join


def is_complete(location: str | Path) -> bool:
    """Whether a folder published by :func:`staged_dir` is whole: it has its completion marker.

    Locally the folder appears by one rename, marker included; on GCS the marker is written after
    every file.
    """
    if is_gcs(location):
        return gcs.live_generation(join(location, COMPLETE_MARKER)) is not None
    return Path(location, COMPLETE_MARKER).is_file()


def _publish_gcs(stage: Path, uri: str, marker_generation: int | None, step: str) -> None:
    """Publish a staged folder under ``uri``: files first, stale objects removed, marker last."""
    from google.api_core import exceptions

    marker = join(uri, COMPLETE_MARKER)
    live = gcs.list_objects(uri)
    if live.get(marker) != marker_generation:
        raise gcs.ConcurrentWriteError(f"{uri}: published by another writer while this one was staging")
    if marker_generation is not None:
        # Readers must stop trusting the old folder before any of its files change.
        with gcs.errors(marker):
            gcs.get_blob(marker).delete(
                if_generation_match=marker_generation, retry=gcs.retry(), timeout=gcs.REQUEST_TIMEOUT
            )
        del live[marker]
    files = gcs.local_files(stage)
    files.pop(COMPLETE_MARKER, None)
    targets = {join(uri, rel): path for rel, path in files.items()}
    written: dict[str, int] = {}

    def upload(item: tuple[str, Path]) -> None:
        written[item[0]] = gcs.upload(item[0], item[1], live.get(item[0], 0))

    gcs.parallel(upload, targets.items())

    def delete(item: tuple[str, int]) -> None:
        with gcs.errors(item[0]), contextlib.suppress(exceptions.NotFound):
            gcs.get_blob(item[0]).delete(if_generation_match=item[1], retry=gcs.retry(), timeout=gcs.REQUEST_TIMEOUT)

    gcs.parallel(delete, [(u, g) for u, g in live.items() if u not in targets])
    files = {u[len(uri.rstrip("/")) + 1 :]: g for u, g in sorted(written.items())}
    gcs.upload(marker, marker_record(step, files=files), 0)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    return True


def _remove_abandoned_stages(final: Path) -> None:
    """Delete staging and trash folders left by killed writers of ``final`` (their process is gone)."""
    for leftover in final.parent.glob(f".{final.name}.*"):
        parts = leftover.name[len(final.name) + 2 :].split(".")
        owner = int(parts[0]) if parts[0].isdigit() else None
        if leftover.suffix in (".staging", ".old") and (owner is None or not _pid_alive(owner)):
            shutil.rmtree(leftover, ignore_errors=True)


@contextlib.contextmanager
def staged_dir(location: str | Path, step: str, inputs: Iterable[str] = ()) -> Iterator[Path]:
    """Build a folder under a temporary name and publish it only when the block succeeds.

    Nothing but an earlier output of the same ``step`` is ever replaced (:func:`check_output`,
    before the block runs and again before publishing); the published folder carries a completion
    marker naming ``step``. Locally the staging folder is a sibling renamed over ``location`` at
    the end. For ``gs://`` the folder is built locally and uploaded when the block succeeds: the old
    completion marker goes first, then every file (in parallel, each with a generation
    precondition), then objects of an earlier version that are not in the new one, and the new
    marker last, recording each file's generation. If another writer publishes the same folder
    meanwhile, this one fails with :class:`ConcurrentWriteError` instead of mixing the two. On an
    exception nothing is published and the staging folder is removed.

    Raises:
        OutputError: When ``location`` must not be written (see :func:`check_output`), or cannot be.
    """
    check_output(location, step, inputs)
    if is_gcs(location):
        uri = str(location).rstrip("/")
        marker_generation = gcs.live_generation(join(uri, COMPLETE_MARKER))
        with tempfile.TemporaryDirectory(prefix="commerce-lm-stage-") as tmp:
            yield Path(tmp)
            _publish_gcs(Path(tmp), uri, marker_generation, step)
        return
    final = Path(os.path.abspath(location))
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        _remove_abandoned_stages(final)
        stage = final.with_name(f".{final.name}.{os.getpid()}.{uuid.uuid4().hex}.staging")
        stage.mkdir()
    except OSError as error:
        raise OutputError(f"{location}: cannot write the output here: {error.strerror or error}") from None
    try:
        yield stage
        (stage / COMPLETE_MARKER).write_bytes(marker_record(step))
        check_output(location, step, inputs)
        if final.exists():
            trash = final.with_name(f".{final.name}.{uuid.uuid4().hex}.old")
            os.replace(final, trash)
            shutil.rmtree(trash)
        os.replace(stage, final)
    finally:
        if stage.exists():
            shutil.rmtree(stage)
