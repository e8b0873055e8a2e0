"""Where bundles are published: ``<location>/<bundle id>/``, and ``LIVE.json`` naming the live one.

Publishing copies a finished bundle under its own id (never over another) and only then moves the
live pointer, so readers see the old live bundle or the new one, whole. On ``gs://`` the pointer is
replaced only at the generation read before the decision: if another retraining moved it meanwhile,
this one fails instead of overwriting a decision it never saw.

The pointer names the live bundle relative to the registry, so a registry copied or moved whole
(another bucket, another disk) still works. Pointers written before held an absolute location:
they are read as they are while it exists, else as the bundle of that id inside the registry.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

from commerce_lm import storage
from commerce_lm.bundle.layout import MANIFEST_JSON

LIVE_JSON = "LIVE.json"


def live(location: str) -> dict[str, Any] | None:
    """The live pointer of a registry (``bundle``, ``uri``, ``since``, ``reason``), or None.

    ``uri`` is resolved to where the live bundle is now (see the module's note).
    """
    return live_versioned(location)[0]


def live_versioned(location: str) -> tuple[dict[str, Any] | None, int | None]:
    """The live pointer (its ``uri`` resolved) and its GCS generation (None locally, or when there is none yet)."""
    pointer = storage.join(location, LIVE_JSON)
    if not storage.exists(pointer):
        return None, 0 if storage.is_gcs(location) else None
    data, generation = storage.read_versioned(pointer)
    return _resolved(location, json.loads(data)), generation


def _resolved(location: str, pointer: dict[str, Any]) -> dict[str, Any]:
    """The pointer with ``uri`` where the live bundle is now (a relative one joined to ``location``)."""
    written = str(pointer.get("uri", ""))
    if not (storage.is_gcs(written) or Path(written).is_absolute()):
        return {**pointer, "uri": storage.join(location, written)}
    # An older absolute pointer: itself while it exists, else the bundle of its id in this registry.
    moved = storage.join(location, str(pointer.get("bundle", "")))
    if not storage.exists(storage.join(written, MANIFEST_JSON)) and storage.exists(storage.join(moved, MANIFEST_JSON)):
        return {**pointer, "uri": moved}
    return pointer


def publish(stage: Path, location: str, bundle_id: str) -> str:
    """Copy the bundle folder ``stage`` to ``<location>/<bundle_id>``, whole, and return its URI.

    Ids are digests of the bundle's files, so finding the id already published with the same files
    (a rerun after a crash) is success.

    Raises:
        FileExistsError: Another bundle holds that id.
    """
    uri = storage.join(location, bundle_id)
    manifest = storage.join(uri, MANIFEST_JSON)
    if storage.exists(manifest):
        ours = json.loads((stage / MANIFEST_JSON).read_text())
        if storage.read_json(manifest).get("files") != ours.get("files"):
            raise FileExistsError(f"{uri}: another bundle is already published under this id")
        return uri
    with storage.staged_dir(uri, "publish-bundle") as target:
        shutil.copytree(stage, target, dirs_exist_ok=True)
    return uri


def set_live(location: str, bundle_id: str, uri: str, reason: str, generation: int | None) -> dict[str, Any]:
    """Point the registry's live bundle at ``uri``.

    Args:
        location: The registry.
        bundle_id: The bundle's id.
        uri: Where it was published.
        reason: Why it is live now (the gate's decision).
        generation: GCS: the pointer's generation when the decision was made (0: there was none).

    Returns:
        The pointer, ``uri`` as given (the file holds it relative to ``location``).

    Raises:
        ConcurrentWriteError: GCS: another writer moved the pointer since.
    """
    since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    pointer = {"bundle": bundle_id, "uri": _relative(location, uri), "since": since, "reason": reason}
    storage.write_json(storage.join(location, LIVE_JSON), pointer, generation=generation)
    return {**pointer, "uri": uri}


def _relative(location: str, uri: str) -> str:
    """``uri`` relative to the registry when it lies inside it (as published bundles do)."""
    root = location.rstrip("/") + "/"
    return uri[len(root) :] if uri.startswith(root) else uri
