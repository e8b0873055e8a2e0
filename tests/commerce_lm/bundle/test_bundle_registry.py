"""The bundle registry (publishing whole; the live pointer: its generation, relative to the registry), the gate."""

from __future__ import annotations

import json
import shutil
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


def test_a_registry_copied_elsewhere_still_finds_its_live_bundle(tmp_path):
    location = tmp_path / "bundles"
    uri = registry.publish(_bundle(tmp_path / "a", "{}"), str(location), "run-abc")
    registry.set_live(str(location), "run-abc", uri, "first", None)
    assert json.loads((location / registry.LIVE_JSON).read_text())["uri"] == "run-abc"  # relative to the registry
    shutil.move(location, tmp_path / "copied")
    assert registry.live(str(tmp_path / "copied"))["uri"] == str(tmp_path / "copied" / "run-abc")


def test_an_older_absolute_pointer_is_read_while_it_exists_then_as_the_bundle_of_its_id(tmp_path):
    location = tmp_path / "bundles"
    uri = registry.publish(_bundle(tmp_path / "a", "{}"), str(location), "run-abc")
    (location / registry.LIVE_JSON).write_text(json.dumps({"bundle": "run-abc", "uri": uri}))
    assert registry.live(str(location))["uri"] == uri
    shutil.move(location, tmp_path / "copied")
    assert registry.live(str(tmp_path / "copied"))["uri"] == str(tmp_path / "copied" / "run-abc")


def test_a_live_pointer_to_a_missing_bundle_is_one_clear_error(tmp_path, capsys):
    from commerce_lm import cli

    location = tmp_path / "bundles"
    location.mkdir()
    (location / registry.LIVE_JSON).write_text(json.dumps({"bundle": "run-abc", "uri": "/gone/bundles/run-abc"}))
    code = cli.main(["score", "--bundle", str(location), "--input", str(tmp_path), "--output", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and "its live bundle run-abc is not at /gone/bundles/run-abc" in err and "Errno" not in err
