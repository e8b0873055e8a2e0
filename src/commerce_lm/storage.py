"""Local paths and ``gs://`` URIs behind one small API, with atomic writes.

Steps write through :func:`staged_dir` or :func:`write_bytes`: outputs are built under a temporary
name and published in one step (a rename locally, an upload per file followed by a completion
marker on GCS), so a killed step never leaves a half artifact that a later step would trust.

On GCS (google-cloud-storage):

* transient errors (429, 408, 5xx, dropped connections) are retried with exponential backoff;
  a permanent 403/404 fails at once with the URI in the message (:class:`PermissionError`,
  :class:`FileNotFoundError`);
* every write carries a generation precondition, so a concurrent or repeated writer never silently
  overwrites: a new object is written with ``if_generation_match=0``, a replacement with the
  generation the caller read (:func:`read_versioned`) or, when asked to ``overwrite``, the one seen
  just before the write;
* files above :data:`RESUMABLE_THRESHOLD` go up as chunked resumable uploads;
* folders move with a thread pool, and :func:`staged_dir` writes a completion marker
  (:data:`commerce_lm.names.COMPLETE_MARKER`) last, so :func:`is_complete` tells a whole folder.

Backoff can be tuned with ``COMMERCE_LM_GCS_RETRY_INITIAL`` (first delay, seconds, default 1) and
``COMMERCE_LM_GCS_RETRY_DEADLINE`` (total, default 600). ``STORAGE_EMULATOR_HOST`` points the client
at an emulator, with anonymous credentials.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import shutil
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from commerce_lm.names import COMPLETE_MARKER

GS_PREFIX = "gs://"
# Above this size an upload is resumable and sent in CHUNK_SIZE pieces, each retried on its own;
# below it one multipart request is cheaper. CHUNK_SIZE must be a multiple of 256 KiB.
RESUMABLE_THRESHOLD = 8 * 1024 * 1024
CHUNK_SIZE = 8 * 1024 * 1024
# Parallel transfers for folders; GCS scales per object, the limit protects the pod's memory/sockets.
MAX_WORKERS = 8
# (connect, read) seconds for one HTTP request; a stalled request is then retried.
REQUEST_TIMEOUT = (20, 120)

T = TypeVar("T")


class ConcurrentWriteError(RuntimeError):
    """A GCS object changed between the read and the write that was meant to replace it."""


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


# --------------------------------------------------------------------------------------------------
# GCS plumbing

_CLIENTS: dict[tuple[Any, ...], Any] = {}
_CLIENTS_LOCK = threading.Lock()


def _client():  # noqa: ANN202 - imported lazily: local runs never need the GCS client
    """One client per process and endpoint: clients are costly to build and safe to share."""
    key = (os.getpid(), os.environ.get("STORAGE_EMULATOR_HOST"), os.environ.get("GOOGLE_CLOUD_PROJECT"))
    with _CLIENTS_LOCK:
        client = _CLIENTS.get(key)
        if client is None:
            from google.cloud import storage as gcs

            client = gcs.Client()
            # The default urllib3 pool (10) would make parallel transfers wait for sockets.
            adapter = _pool_adapter(MAX_WORKERS * 2)
            client._http.mount("https://", adapter)
            client._http.mount("http://", adapter)
            _CLIENTS[key] = client
        return client


def _pool_adapter(size: int):  # noqa: ANN202
    import requests.adapters

    return requests.adapters.HTTPAdapter(pool_connections=size, pool_maxsize=size)


def _retry():  # noqa: ANN202 - a google.api_core Retry
    from google.cloud.storage.retry import DEFAULT_RETRY

    initial = float(os.environ.get("COMMERCE_LM_GCS_RETRY_INITIAL", "1.0"))
    deadline = float(os.environ.get("COMMERCE_LM_GCS_RETRY_DEADLINE", "600"))
    # DEFAULT_RETRY's predicate covers 408/429/5xx and connection errors, never 403/404/412.
    return DEFAULT_RETRY.with_delay(initial=initial, maximum=32.0, multiplier=2.0).with_timeout(deadline)


def _blob(uri: str, generation: int | None = None):  # noqa: ANN202
    bucket, key = split_gcs(uri)
    if not key:
        raise ValueError(f"{uri}: names a bucket, not an object")
    return _client().bucket(bucket).blob(key, generation=generation)


@contextlib.contextmanager
def _gcs_errors(uri: str) -> Iterator[None]:
    """Turn permanent GCS errors into built-in ones that name the URI."""
    from google.api_core import exceptions

    try:
        yield
    except exceptions.NotFound as error:
        raise FileNotFoundError(f"{uri}: not found (no such object or bucket): {error.message}") from None
    except exceptions.Forbidden as error:
        raise PermissionError(f"{uri}: permission denied: {error.message}") from None
    except exceptions.Unauthorized as error:
        raise PermissionError(f"{uri}: not authenticated: {error.message}") from None
    except exceptions.RetryError as error:
        raise TimeoutError(f"{uri}: gave up after retrying transient errors: {error.cause}") from None


def _crc32c(data: bytes) -> str:
    import google_crc32c

    return base64.b64encode(google_crc32c.Checksum(data).digest()).decode()


def _parallel(func: Callable[[T], Any], items: Iterable[T]) -> None:
    """Run ``func`` over ``items`` on a thread pool; the first error is raised after all finish."""
    items = list(items)
    if len(items) <= 1:
        for item in items:
            func(item)
        return
    with ThreadPoolExecutor(max_workers=min(MAX_WORKERS, len(items))) as pool:
        futures = [pool.submit(func, item) for item in items]
    for future in futures:
        future.result()


def _gcs_generation(uri: str) -> int | None:
    """Return the live generation of an object, or ``None`` when it does not exist."""
    blob = _blob(uri)
    with _gcs_errors(uri):
        if not blob.exists(retry=_retry(), timeout=REQUEST_TIMEOUT):
            return None
        blob.reload(retry=_retry(), timeout=REQUEST_TIMEOUT)
    return blob.generation


def _gcs_upload(uri: str, source: bytes | Path, if_generation_match: int) -> int:
    """Upload bytes or a file with a generation precondition; return the new generation."""
    from google.api_core import exceptions

    size = len(source) if isinstance(source, bytes) else source.stat().st_size
    blob = _blob(uri)
    if size > RESUMABLE_THRESHOLD:
        blob.chunk_size = CHUNK_SIZE
    kwargs = {"if_generation_match": if_generation_match, "retry": _retry(), "timeout": REQUEST_TIMEOUT}
    try:
        with _gcs_errors(uri):
            if isinstance(source, bytes):
                blob.upload_from_file(io.BytesIO(source), size=size, **kwargs)
            else:
                blob.upload_from_filename(str(source), **kwargs)
        return blob.generation
    except exceptions.PreconditionFailed:
        # A retried request whose first attempt landed (its response lost) also ends here: then
        # the object holds exactly our bytes and the write did succeed.
        data = source if isinstance(source, bytes) else source.read_bytes()
        existing = _blob(uri)
        with _gcs_errors(uri), contextlib.suppress(exceptions.NotFound):
            existing.reload(retry=_retry(), timeout=REQUEST_TIMEOUT)
            if existing.size == size and existing.crc32c == _crc32c(data):
                return existing.generation
        if if_generation_match == 0:
            raise FileExistsError(
                f"{uri}: already exists; pass overwrite=True (or the generation you read) to replace it"
            ) from None
        raise ConcurrentWriteError(
            f"{uri}: changed since generation {if_generation_match}; another writer got there first"
        ) from None


def _gcs_download(uri: str, target: Path, generation: int | None = None) -> None:
    """Download one object to ``target`` atomically (temporary name, then rename)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.part")
    try:
        with _gcs_errors(uri):
            _blob(uri, generation).download_to_filename(str(tmp), retry=_retry(), timeout=REQUEST_TIMEOUT)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def _gcs_list(uri: str) -> dict[str, int]:
    """Objects below a ``gs://`` prefix (folder semantics), as ``{uri: generation}``."""
    bucket, key = split_gcs(uri)
    prefix = key.rstrip("/") + "/" if key else ""
    with _gcs_errors(uri):
        blobs = _client().list_blobs(bucket, prefix=prefix, retry=_retry(), timeout=REQUEST_TIMEOUT)
        return {f"{GS_PREFIX}{bucket}/{b.name}": b.generation for b in blobs if not b.name.endswith("/")}


# --------------------------------------------------------------------------------------------------
# Public API


def exists(location: str | Path) -> bool:
    """Whether a file (or, locally, a folder) exists; on GCS, whether the object exists."""
    if is_gcs(location):
        return _gcs_generation(str(location)) is not None
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
    blob = _blob(str(location))
    with _gcs_errors(str(location)):
        data = blob.download_as_bytes(retry=_retry(), timeout=REQUEST_TIMEOUT)
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
            generation = (_gcs_generation(uri) or 0) if overwrite else 0
        _gcs_upload(uri, data, generation)
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
        return sorted(_gcs_list(str(location)))
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
    objects = _gcs_list(uri)
    if not objects:
        raise FileNotFoundError(f"{uri}: no objects under this prefix")
    local.mkdir(parents=True, exist_ok=True)
    _parallel(lambda item: _gcs_download(item[0], local / item[0][len(prefix) :], item[1]), objects.items())
    return local


def _local_files(local: Path) -> dict[str, Path]:
    return {"/".join(p.relative_to(local).parts): p for p in sorted(local.rglob("*")) if p.is_file()}


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
    files = _local_files(Path(local))
    live = _gcs_list(uri) if overwrite else {}
    _parallel(lambda item: _gcs_upload(join(uri, item[0]), item[1], live.get(join(uri, item[0]), 0)), files.items())


def is_complete(location: str | Path) -> bool:
    """Whether a folder published by :func:`staged_dir` is whole: it has its completion marker.

    Locally the folder appears by one rename, marker included; on GCS the marker is written after
    every file.
    """
    if is_gcs(location):
        return _gcs_generation(join(location, COMPLETE_MARKER)) is not None
    return Path(location, COMPLETE_MARKER).is_file()


@contextlib.contextmanager
def local_copy(location: str | Path) -> Iterator[Path]:
    """Yield a local path holding ``location``'s content (a download for ``gs://``)."""
    if not is_gcs(location):
        yield Path(location)
        return
    with tempfile.TemporaryDirectory(prefix="commerce-lm-") as tmp:
        if exists(location):  # an object; otherwise a folder (prefix)
            target = Path(tmp, Path(split_gcs(str(location))[1]).name)
            _gcs_download(str(location), target)
            yield target
        else:
            yield download_dir(str(location), tmp)


def _publish_gcs(stage: Path, uri: str, marker_generation: int | None, step: str) -> None:
    """Publish a staged folder under ``uri``: files first, stale objects removed, marker last."""
    from google.api_core import exceptions

    marker = join(uri, COMPLETE_MARKER)
    live = _gcs_list(uri)
    if live.get(marker) != marker_generation:
        raise ConcurrentWriteError(f"{uri}: published by another writer while this one was staging")
    if marker_generation is not None:
        # Readers must stop trusting the old folder before any of its files change.
        with _gcs_errors(marker):
            _blob(marker).delete(if_generation_match=marker_generation, retry=_retry(), timeout=REQUEST_TIMEOUT)
        del live[marker]
    files = _local_files(stage)
    files.pop(COMPLETE_MARKER, None)
    targets = {join(uri, rel): path for rel, path in files.items()}
    written: dict[str, int] = {}

    def upload(item: tuple[str, Path]) -> None:
        written[item[0]] = _gcs_upload(item[0], item[1], live.get(item[0], 0))

    _parallel(upload, targets.items())

    def delete(item: tuple[str, int]) -> None:
        with _gcs_errors(item[0]), contextlib.suppress(exceptions.NotFound):
            _blob(item[0]).delete(if_generation_match=item[1], retry=_retry(), timeout=REQUEST_TIMEOUT)

    _parallel(delete, [(u, g) for u, g in live.items() if u not in targets])
    files = {u[len(uri.rstrip("/")) + 1 :]: g for u, g in sorted(written.items())}
    _gcs_upload(marker, _marker_record(step, files=files), 0)


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


class OutputError(ValueError):
    """An output location this step must not write; the message names the path."""


def _marker_record(step: str, **extra: Any) -> bytes:
    return (json.dumps({"step": step, **extra}, indent=2, sort_keys=True) + "\n").encode()


def _marked_step(marker: bytes) -> str | None:
    try:
        record = json.loads(marker)
    except ValueError:
        return None
    return record.get("step") if isinstance(record, dict) else None


def _inside(child: str, parent: str) -> bool:
    child, parent = child.rstrip("/"), parent.rstrip("/")
    return child == parent or child.startswith(parent + "/")


def _input_roots(inputs: Iterable[str]) -> list[str]:
    """The folders a step reads: a folder input itself, a glob's fixed part (a file is no folder)."""
    roots = []
    for location in inputs:
        fixed = str(location).split("*", 1)[0]
        if is_gcs(location):
            roots.append(fixed if fixed != location else location)
        elif Path(location).is_dir() or fixed != location:
            roots.append(os.path.abspath(fixed if Path(fixed).is_dir() else os.path.dirname(fixed)))
    return roots


def check_output(location: str | Path, step: str, inputs: Iterable[str] = ()) -> None:
    """Refuse an output that would destroy anything but an earlier output of the same step.

    Args:
        location: The output folder (local or ``gs://``).
        step: The step that writes it; its name is recorded in the completion marker.
        inputs: Locations the step reads; an output inside one (or holding one) is refused.

    Raises:
        OutputError: For an existing file, a folder that is not empty and not marked as an output
            of ``step``, or an output inside (or around) an input; the message names the path.
    """
    target = str(location).rstrip("/") if is_gcs(location) else os.path.abspath(location)
    inputs = [str(i) if is_gcs(i) else os.path.abspath(i) for i in inputs]
    for root in _input_roots(inputs):
        if _inside(target, root):
            raise OutputError(f"{location}: refusing to write an output inside the input folder {root}")
    for source in inputs:
        if _inside(source, target):
            raise OutputError(f"{location}: refusing to replace a folder that holds the input {source}")
    if is_gcs(target):
        _check_gcs_output(target, step)
        return
    path = Path(target)
    if path.exists() and not path.is_dir():
        raise OutputError(f"{location}: refusing to replace a file; {step} writes a folder")
    marker = path / COMPLETE_MARKER
    if path.is_dir() and any(path.iterdir()) and not (marker.is_file() and _marked_step(marker.read_bytes()) == step):
        raise OutputError(
            f"{location}: refusing to replace a folder that is not an earlier output of {step} "
            f"(no {COMPLETE_MARKER} marker of {step}); choose another output or remove it"
        )


def _check_gcs_output(uri: str, step: str) -> None:
    try:
        live = _gcs_list(uri)
        marker = join(uri, COMPLETE_MARKER)
        marked = marker in live and _marked_step(read_bytes(marker)) == step
    except OutputError:
        raise
    except Exception as error:  # credentials, permissions, network: the URI is what the user needs
        raise OutputError(f"{uri}: cannot check the output location: {' '.join(str(error).split())}") from None
    if live and not marked:
        raise OutputError(
            f"{uri}: refusing to replace objects that are not an earlier output of {step} "
            f"(no {COMPLETE_MARKER} marker of {step}); choose another output or remove them"
        )


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
        marker_generation = _gcs_generation(join(uri, COMPLETE_MARKER))
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
        (stage / COMPLETE_MARKER).write_bytes(_marker_record(step))
        check_output(location, step, inputs)
        if final.exists():
            trash = final.with_name(f".{final.name}.{uuid.uuid4().hex}.old")
            os.replace(final, trash)
            shutil.rmtree(trash)
        os.replace(stage, final)
    finally:
        if stage.exists():
            shutil.rmtree(stage)
