"""Kill -9 in the middle of training, rerun with the same arguments: same end state as no kill."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from commerce_lm.config import load_config, section_for
from commerce_lm.steps import finetune_encoder
from commerce_lm.training import checkpoint, dist
from tests.fakes.gcs_emulator import gcs_bucket, gcs_emulator  # noqa: F401 - fixtures
from tests.helpers.training import tiny_model, trained_with_lowest_layer_frozen, write_prepared

# Dropout stays on (0.1): resuming must replay the RNG too, not only weights and optimizer.
SECTION = {
    "max_length": 32,
    "epochs": 3,
    "per_device_batch_size": 8,
    "learning_rate": 1e-3,
    "eval_every": 6,
    "best_metric": "val_macro_f1",
    "launch": {"checkpoint_every": 3, "keep_checkpoints": 2},
}


def _log(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]


def _complete(root: Path) -> list[int]:
    if not root.exists():
        return []
    return sorted(int(p.parent.name[5:]) for p in root.glob("step-*/_COMPLETE"))


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    root = tmp_path_factory.mktemp("resume")
    write_prepared(root / "prepared")
    model = tiny_model(root / "model")
    config = {
        "model": str(model),
        "seed": 5,
        "domain": {"data": "unused", "label": "label"},
        "tasks": [{"name": "weapons", "data": "unused", "label": "label"}],
        "finetune": SECTION,
    }
    (root / "cfg.yaml").write_text(yaml.safe_dump(config))
    return root


def test_sigkill_then_rerun_resumes_and_matches_an_uninterrupted_run(work):
    cfg = section_for("finetune-encoder", load_config(work / "cfg.yaml"))
    reference = finetune_encoder.run(cfg, str(work / "prepared"), str(work / "reference"))
    assert reference["global_steps"] == 36

    out = work / "killed"
    ckpts = Path(checkpoint.default_root(str(out)))
    command = [
        sys.executable, "-m", "commerce_lm.cli", "finetune-encoder",
        "--config", str(work / "cfg.yaml"), "--prepared", str(work / "prepared"), "--output", str(out),
    ]  # fmt: skip
    stderr = open(work / "killed.stderr", "wb")  # noqa: SIM115 - a file, not a pipe: a full pipe stalls the child
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr, env=dist.child_env())
    deadline = time.monotonic() + 180
    while not any(step >= 9 for step in _complete(ckpts)):
        assert proc.poll() is None, "run ended before the kill: " + (work / "killed.stderr").read_text()[-3000:]
        assert time.monotonic() < deadline, "no checkpoint appeared"
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    stderr.close()
    assert not out.exists(), "a killed step must not publish outputs"
    complete = _complete(ckpts)
    assert len(complete) <= SECTION["launch"]["keep_checkpoints"] + 1  # the last K, plus one being pruned
    last = complete[-1]

    # A checkpoint cut off half-written (no completion marker, truncated shard) is never loaded.
    cut = ckpts / checkpoint.tag_for(last + 3)
    cut.mkdir(exist_ok=True)
    (cut / "mp_rank_00_model_states.pt").write_bytes(b"\x80\x02truncated")

    resumed = finetune_encoder.run(cfg, str(work / "prepared"), str(out))
    log = _log(out)
    resumes = [r for r in log if r["event"] == "resumed"]
    assert [r["step"] for r in resumes] == [last]
    steps = [r["step"] for r in log if r["event"] == "step"]
    assert steps == list(range(1, 37)), "a step was repeated or skipped"
    reference_losses = [r["loss"] for r in _log(work / "reference") if r["event"] == "step"]
    assert [r["loss"] for r in log if r["event"] == "step"] == pytest.approx(reference_losses, abs=1e-5)
    for key in ("val_loss", "val_accuracy", "val_macro_f1", "global_steps", "best_step"):
        assert resumed[key] == pytest.approx(reference[key], abs=1e-5), key
    assert not ckpts.exists(), "checkpoints are dropped once the outputs are published"


def _gcs_complete(root: str) -> list[int]:
    from commerce_lm import storage

    return sorted(int(uri.split("/")[-2][5:]) for uri in storage.list_files(root) if uri.endswith("/_COMPLETE"))


def test_checkpoints_on_gcs_resume_after_a_kill(work, gcs_bucket):  # noqa: F811 - the fixture
    """The same scenario with every location on gs:// (the GCS emulator): staged uploads, download to resume."""
    from commerce_lm import storage

    prepared = f"gs://{gcs_bucket}/prepared"
    storage.upload_dir(work / "prepared", prepared)
    out = f"gs://{gcs_bucket}/runs/encoder"
    root = checkpoint.default_root(out)
    overrides = ["--set", "finetune.epochs=1", "--set", "finetune.launch.checkpoint_every=2"]
    command = [
        sys.executable, "-m", "commerce_lm.cli", "finetune-encoder", "--config", str(work / "cfg.yaml"),
        *overrides, "--prepared", prepared, "--output", out,
    ]  # fmt: skip
    with open(work / "gcs.stderr", "wb") as stderr:
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr, env=dist.child_env())
        deadline = time.monotonic() + 180
        while not any(step >= 4 for step in _gcs_complete(root)):
            assert proc.poll() is None, "run ended before the kill: " + (work / "gcs.stderr").read_text()[-3000:]
            assert time.monotonic() < deadline, "no checkpoint appeared"
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert not storage.is_complete(out)
    last = _gcs_complete(root)[-1]

    cfg = section_for(
        "finetune-encoder", load_config(work / "cfg.yaml", ["finetune.epochs=1", "finetune.launch.checkpoint_every=2"])
    )
    resumed = finetune_encoder.run(cfg, prepared, out)
    log = [json.loads(line) for line in storage.read_bytes(f"{out}/train_log.jsonl").decode().splitlines()]
    assert [r["step"] for r in log if r["event"] == "resumed"] == [last]
    assert [r["step"] for r in log if r["event"] == "step"] == list(range(1, 13))
    assert resumed["global_steps"] == 12 and storage.is_complete(out)
    assert storage.exists(f"{out}/model/model.safetensors")
    assert not storage.list_files(root)


def test_resuming_with_another_world_size_is_refused_with_a_clear_message():
    state = {"fingerprint": "abc", "world_size": 2, "step": 12}
    assert checkpoint.check_resumable(state, "abc", 2, "ckpts") is True
    assert checkpoint.check_resumable(state, "other-run", 1, "ckpts") is False
    with pytest.raises(checkpoint.ResumeError, match=r"written by 2 process\(es\), this run has 1"):
        checkpoint.check_resumable(state, "abc", 1, "ckpts")


@pytest.mark.parametrize(("stage", "adapters"), [(0, False), (2, False), (2, True)])
def test_frozen_parameters_resume_under_zero_stages(work, stage, adapters, monkeypatch):
    """Frozen word embeddings and a frozen layer (outside the optimizer) save and load with ZeRO 0 and 2,
    and so do low-rank adapters (only they train, and the export merges them)."""
    import shutil

    from commerce_lm import models
    from commerce_lm.training import classifier_run

    overrides = [f"finetune.zero_stage={stage}", "finetune.epochs=1", "finetune.freeze_embeddings=true",
                 "finetune.freeze_layers=1", *(["finetune.lora_rank=4"] if adapters else [])]  # fmt: skip
    cfg = section_for("finetune-encoder", load_config(work / "cfg.yaml", overrides))
    out = work / f"frozen-z{stage}{'-lora' if adapters else ''}"
    # The first run keeps its checkpoints, as if killed right after publishing; the rerun resumes.
    monkeypatch.setattr(classifier_run, "finish", lambda trained: None)
    first = finetune_encoder.run(cfg, str(work / "prepared"), str(out))
    first_log = _log(out)
    shutil.rmtree(out)
    monkeypatch.undo()
    resumed = finetune_encoder.run(cfg, str(work / "prepared"), str(out))

    assert [r["step"] for r in _log(out) if r["event"] == "resumed"] == [9]
    step_losses = [r["loss"] for r in _log(out) if r["event"] == "step"]
    assert step_losses == pytest.approx([r["loss"] for r in first_log if r["event"] == "step"], abs=1e-5)
    assert resumed["val_loss"] == pytest.approx(first["val_loss"], abs=1e-5)
    plm, tuned = models.load_encoder(cfg.model).state_dict(), models.load_encoder(str(out / "model"))
    for name, value in tuned.state_dict().items():
        # The pooler is unused by the pooled vector: its change is weight decay alone, per ZeRO stage.
        if not name.startswith("pooler."):
            assert torch.equal(value, plm[name]) != trained_with_lowest_layer_frozen(name, adapters), name
