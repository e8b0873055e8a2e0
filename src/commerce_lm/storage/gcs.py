"""The GCS side of storage (google-cloud-storage): one shared client, retries, preconditions.

* transient errors (429, 408, 5xx, dropped connections) are retried with exponential backoff;
  a permanent 403/404 fails at once with the URI in the message (:class:`PermissionError`,
  :class:`FileNotFoundError`);
* every write carries a generation precondition, so a concurrent or repeated writer never silently
  overwrites (:func:`upload`);
* files above :data:`RESUMABLE_THRESHOLD` go up as chunked resumable uploads;
* folders move with a thread pool (:func:`parallel`).

Backoff can be tuned with ``COMMERCE_LM_GCS_RETRY_INITIAL`` (first delay, seconds, default 1) and
``COMMERCE_LM_GCS_RETRY_DEADLINE`` (total, default 600). ``STORAGE_EMULATOR_HOST`` points the client
at an emulator, with anonymous credentials.
"""

from __future__ import annotations

import base64
import contextlib
import io
import os
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from commerce_lm.storage.paths import GS_PREFIX, split_gcs

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


_CLIENTS: dict[tuple[Any, ...], Any] = {}
_CLIENTS_LOCK = threading.Lock()


def client():  # noqa: ANN202 - imported lazily: local runs never need the GCS client
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


def retry():  # noqa: ANN202 - a google.api_core Retry
    """Backoff for transient errors, tunable through the environment (see the module docstring)."""
    from google.cloud.storage.retry import DEFAULT_RETRY

    initial = float(os.environ.get("COMMERCE_LM_GCS_RETRY_INITIAL", "1.0"))
    deadline = float(os.environ.get("COMMERCE_LM_GCS_RETRY_DEADLINE", "600"))
    # DEFAULT_RETRY's predicate covers 408/429/5xx and connection errors, never 403/404/412.
    return DEFAULT_RETRY.with_delay(initial=initial, maximum=32.0, multiplier=2.0).with_timeout(deadline)


def get_blob(uri: str, generation: int | None = None):  # noqa: ANN202
    """The blob a ``gs://`` URI names (optionally pinned to a generation)."""
    bucket, key = split_gcs(uri)
    if not key:
        raise ValueError(f"{uri}: names a bucket, not an object")
    return client().bucket(bucket).blob(key, generation=generation)


@contextlib.contextmanager
def errors(uri: str) -> Iterator[None]:
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


def parallel(func: Callable[[T], Any], items: Iterable[T]) -> None:
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


def live_generation(uri: str) -> int | None:
    """Return the live generation of an object, or ``None`` when it does not exist."""
    blob = get_blob(uri)
    with errors(uri):
        if not blob.exists(retry=retry(), timeout=REQUEST_TIMEOUT):
            return None
        blob.reload(retry=retry(), timeout=REQUEST_TIMEOUT)
    return blob.generation


def upload(uri: str, source: bytes | Path, if_generation_match: int) -> int:
    """Upload bytes or a file with a generation precondition; return the new generation."""
    from google.api_core import exceptions

    size = len(source) if isinstance(source, bytes) else source.stat().st_size
    blob = get_blob(uri)
    if size > RESUMABLE_THRESHOLD:
        blob.chunk_size = CHUNK_SIZE
    kwargs = {"if_generation_match": if_generation_match, "retry": retry(), "timeout": REQUEST_TIMEOUT}
    try:
        with errors(uri):
            if isinstance(source, bytes):
                blob.upload_from_file(io.BytesIO(source), size=size, **kwargs)
            else:
                blob.upload_from_filename(str(source), **kwargs)
        return blob.generation
    except exceptions.PreconditionFailed:
        # A retried request whose first attempt landed (its response lost) also ends here: then
        # the object holds exactly our bytes and the write did succeed.
        data = source if isinstance(source, bytes) else source.read_bytes()
        existing = get_blob(uri)
        with errors(uri), contextlib.suppress(exceptions.NotFound):
            existing.reload(retry=retry(), timeout=REQUEST_TIMEOUT)
            if existing.size == size and existing.crc32c == _crc32c(data):
                return existing.generation
        if if_generation_match == 0:
            raise FileExistsError(
                f"{uri}: already exists; pass overwrite=True (or the generation you read) to replace it"
            ) from None
        raise ConcurrentWriteError(
            f"{uri}: changed since generation {if_generation_match}; another writer got there first"
        ) from None


def download(uri: str, target: Path, generation: int | None = None) -> None:
    """Download one object to ``target`` atomically (temporary name, then rename)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.part")
    try:
        with errors(uri):
            get_blob(uri, generation).download_to_filename(str(tmp), retry=retry(), timeout=REQUEST_TIMEOUT)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def list_objects(uri: str) -> dict[str, int]:
    """Objects below a ``gs://`` prefix (folder semantics), as ``{uri: generation}``."""
    bucket, key = split_gcs(uri)
    prefix = key.rstrip("/") + "/" if key else ""
    with errors(uri):
        blobs = client().list_blobs(bucket, prefix=prefix, retry=retry(), timeout=REQUEST_TIMEOUT)
        return {f"{GS_PREFIX}{bucket}/{b.name}": b.generation for b in blobs if not b.name.endswith("/")}


def local_files(local: Path) -> dict[str, Path]:
    """Files below a local folder, keyed by their ``/``-joined relative path (the object key suffix)."""
    return {"/".join(p.relative_to(local).parts): p for p in sorted(local.rglob("*")) if p.is_file()}


def delete(uri: str) -> None:
    """Delete one object, with retries; one already gone is fine."""
    from google.api_core import exceptions

    with errors(uri), contextlib.suppress(exceptions.NotFound):
        get_blob(uri).delete(retry=retry(), timeout=REQUEST_TIMEOUT)
