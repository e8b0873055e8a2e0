"""The bundle registry on GCS (publishing whole, the live pointer's generation) and the gate's rules."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from commerce_lm import storage
from commerce_lm.bundle import gate, layout, registry


def _bundle(folder: Path, content: str) -> Path:
    (folder / "heads").mkdir(parents=True)
    (folder / "heads" / "t.json").write_text(content)
    manifest = {"format": layout.FORMAT, "files": layout.checksums(folder)}
    (folder / layout.MANIFEST_JSON).write_text(json.dumps(manifest))
    return folder


def test_publishing_on_gcs_is_whole_idempotent_and_never_over_another_bundle(gcs_bucket, tmp_path):
    location = f"gs://{gcs_bucket}/bundles"
    uri = registry.publish(_bundle(tmp_path / "a", "{}"), location, "run-abc")
    assert storage.read_json(storage.join(uri, layout.MANIFEST_JSON))["format"] == layout.FORMAT
    assert storage.is_complete(uri)
    assert registry.publish(tmp_path / "a", location, "run-abc") == uri  # a rerun after a crash
    with pytest.raises(FileExistsError, match="another bundle"):
        registry.publish(_bundle(tmp_path / "b", '{"other": 1}'), location, "run-abc")


def test_the_live_pointer_moves_only_from_the_generation_the_decision_saw(gcs_bucket):
    location = f"gs://{gcs_bucket}/bundles"
    assert registry.live_versioned(location) == (None, 0)
    registry.set_live(location, "one", f"{location}/one", "first", 0)
    pointer, seen = registry.live_versioned(location)
    assert pointer["bundle"] == "one" and seen
    registry.set_live(location, "two", f"{location}/two", "better", seen)
    with pytest.raises(storage.ConcurrentWriteError):  # decided on "one", but "two" went live meanwhile
        registry.set_live(location, "three", f"{location}/three", "stale decision", seen)
    assert registry.live(location)["bundle"] == "two"


def test_the_gate_blocks_a_dropped_task_and_ignores_undefined_ones():
    live = {"a": 0.80, "b": 0.70, "c": None}
    kept = gate.decide({"a": 0.81, "c": 0.5}, live, live_uri="L", metric="pr_auc", tolerance=0.01)
    assert not kept.publish and "task(s) ['b']" in kept.reason
    assert kept.tasks["b"]["verdict"] == "dropped" and kept.tasks["c"]["verdict"] == "not comparable"
    allowed = gate.decide(
        {"a": 0.795, "c": 0.5, "d": 0.1}, live, live_uri="L", metric="pr_auc", tolerance=0.01,
        allow_dropped_tasks=True,
    )  # fmt: skip
    assert allowed.publish and allowed.tasks["a"]["verdict"] == "not worse"
    assert allowed.tasks["d"]["verdict"] == "new task"
    worse = gate.decide({"a": 0.78, "b": 0.9}, live, live_uri="L", metric="pr_auc", tolerance=0.01)
    assert not worse.publish and "a 0.7800 < 0.8000" in worse.reason
