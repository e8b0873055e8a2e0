"""A model folder's manifest: the sha256 of every file in it, to prove two builds identical."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Collection
from pathlib import Path

from commerce_lm.names import COMPLETE_MARKER

CHECKSUMS_JSON = "checksums.json"
# The completion marker is written after the manifest (and records when, so it differs per build).
_NOT_LISTED = {CHECKSUMS_JSON, COMPLETE_MARKER}


def file_sha256(path: Path) -> str:
    """The hex sha256 of one file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def checksums(
    folder: str | Path, skip: Collection[str] = _NOT_LISTED, digest: Callable[[Path], str] = file_sha256
) -> dict[str, str]:
    """``{relative path: sha256}`` of every file below ``folder``, sorted.

    Args:
        folder: The folder to checksum.
        skip: Relative paths left out (by default this module's manifest and the completion marker).
        digest: A file's hex SHA-256 (:func:`file_sha256`, or one that remembers it).
    """
    root = Path(folder)
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.relative_to(root).as_posix() not in skip)
    return {p.relative_to(root).as_posix(): digest(p) for p in files}


def write_manifest(folder: str | Path) -> dict[str, str]:
    """Write ``checksums.json`` listing :func:`checksums` of ``folder``; returns them."""
    sums = checksums(folder)
    Path(folder, CHECKSUMS_JSON).write_text(json.dumps({"sha256": sums}, indent=2, sort_keys=True) + "\n")
    return sums


def verify(folder: str | Path) -> list[str]:
    """The files of ``folder`` that differ from its manifest (changed, missing or unlisted); empty when whole."""
    listed = json.loads(Path(folder, CHECKSUMS_JSON).read_text())["sha256"]
    actual = checksums(folder)
    return sorted(name for name in set(listed) | set(actual) if listed.get(name) != actual.get(name))
