"""What a step may replace: only an earlier output of its own, never a user's file or an input."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

from commerce_lm.names import COMPLETE_MARKER
from commerce_lm.storage import gcs
from commerce_lm.storage.paths import is_gcs, join


class OutputError(ValueError):
    """An output location this step must not write; the message names the path."""


def marker_record(step: str, **extra: object) -> bytes:
    """The completion marker's content: the step that published the folder (and, on GCS, its files)."""
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
        fixed = location.split("*", 1)[0]
        if is_gcs(location):
            roots.append(fixed)
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
        _check_gcs(target, step)
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


def _check_gcs(uri: str, step: str) -> None:
    marker = join(uri, COMPLETE_MARKER)
    try:
        live = gcs.list_objects(uri)
        if marker in live:
            with gcs.errors(marker):
                live[marker] = _marked_step(gcs.get_blob(marker).download_as_bytes(retry=gcs.retry())) == step
    except Exception as error:  # credentials, permissions, network: the URI is what the user needs
        raise OutputError(f"{uri}: cannot check the output location: {' '.join(str(error).split())}") from None
    if live and live.get(marker) is not True:
        raise OutputError(
            f"{uri}: refusing to replace objects that are not an earlier output of {step} "
            f"(no {COMPLETE_MARKER} marker of {step}); choose another output or remove them"
        )
