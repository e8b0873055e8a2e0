"""Resumable training checkpoints, local or ``gs://``, with the last K kept.

Layout under the checkpoint root (see :func:`default_root`)::

    step-00000040/            one DeepSpeed checkpoint (every rank's shards)
        rng-rank00000.pt      each rank's RNG state (dropout must replay identically)
        train_log.jsonl       the log up to this step
        _COMPLETE             written last, by rank 0, once every rank has finished: the trainer
                              state (step, best metric, patience, counters, fingerprint, world size)
    best-step-00000030.safetensors   the best weights so far, consolidated (ZeRO-3 included)

A folder without ``_COMPLETE`` was cut off (SIGKILL, pre-emption) and is never loaded; it is
deleted before the same step is saved again. On ``gs://`` every rank writes its files to a local
staging folder and uploads them; ranks download the whole folder to resume.
"""

from __future__ import annotations

import io
import json
import logging
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from commerce_lm import storage
from commerce_lm.names import CHECKPOINTS_DIR, COMPLETE_MARKER, TRAIN_LOG
from commerce_lm.training import dist

log = logging.getLogger(__name__)

TAG_RE = re.compile(r"^step-(\d{8})$")
BEST_RE = re.compile(r"^best-step-(\d{8})\.safetensors$")


class ResumeError(RuntimeError):
    """A checkpoint exists that this run cannot continue from; the message says why and what to do."""


def default_root(out_dir: str) -> str:
    """Where a step writing ``out_dir`` keeps its checkpoints: ``<parent>/.<name>.checkpoints``.

    The final outputs replace ``out_dir`` in one rename (or upload) at the end, so in-progress
    checkpoints live beside it, where a rerun with the same ``out_dir`` (a KFP retry included)
    finds them.
    """
    text = str(out_dir).rstrip("/")
    parent, _, name = text.rpartition("/")
    return f"{parent or '.'}/.{name}.{CHECKPOINTS_DIR}"


def tag_for(step: int) -> str:
    """The folder name of the checkpoint taken after ``step`` optimizer steps."""
    return f"step-{step:08d}"


def _names_under(root: str) -> set[str]:
    """Names of the entries directly under ``root`` (folders and files)."""
    if storage.is_gcs(root):
        prefix = root.rstrip("/") + "/"
        return {path[len(prefix) :].split("/", 1)[0] for path in storage.list_files(root)}
    path = Path(root)
    return {p.name for p in path.iterdir()} if path.is_dir() else set()


class CheckpointStore:
    """Saves, finds, loads and prunes checkpoints under one root.

    Args:
        root: Local folder or ``gs://`` prefix.
        keep: How many complete checkpoints to keep (older ones are deleted after each save).
        info: This process's place in the job.
    """

    def __init__(self, root: str, keep: int, info: dist.DistInfo) -> None:
        self.root = root.rstrip("/")
        self.keep = keep
        self.info = info
        self.remote = storage.is_gcs(root)
        # A gs:// checkpoint is written locally first. The folder is removed by close(), or when
        # the process exits after a failure (a bare mkdtemp stayed behind in /tmp).
        self._tmp = tempfile.TemporaryDirectory(prefix="commerce-lm-ckpt-") if self.remote else None
        self._staging = Path(self._tmp.name) if self._tmp is not None else None

    # ---------------------------------------------------------------------------------- finding
    def complete_steps(self) -> list[int]:
        """Steps of every complete checkpoint, ascending."""
        steps = []
        for name in _names_under(self.root):
            match = TAG_RE.match(name)
            if match and storage.exists(storage.join(self.root, name, COMPLETE_MARKER)):
                steps.append(int(match.group(1)))
        return sorted(steps)

    def latest(self) -> dict[str, Any] | None:
        """The trainer state of the newest complete checkpoint, or ``None``."""
        steps = self.complete_steps()
        if not steps:
            return None
        return storage.read_json(storage.join(self.root, tag_for(steps[-1]), COMPLETE_MARKER))

    # ----------------------------------------------------------------------------------- saving
    def _local_dir(self) -> Path:
        return self._staging if self._staging is not None else Path(self.root)

    def save(self, engine: Any, step: int, state: dict[str, Any], log_records: list[dict]) -> None:
        """Save a checkpoint after ``step`` (collective: every rank must call it).

        Args:
            engine: The DeepSpeed engine.
            step: Optimizer steps done.
            state: Trainer state (JSON-serialisable), stored in the completion marker.
            log_records: The train log so far.
        """
        import torch

        tag = tag_for(step)
        local = self._local_dir()
        if self.info.is_main:
            # A folder of this tag can only be a cut-off earlier attempt: never mix it with this one.
            storage.remove(storage.join(self.root, tag))
        if self.remote and local.exists():
            shutil.rmtree(local / tag, ignore_errors=True)
        dist.barrier()
        engine.save_checkpoint(str(local), tag=tag, save_latest=False)
        rng = {"cpu": torch.get_rng_state()}
        if torch.cuda.is_available():
            rng["cuda"] = torch.cuda.get_rng_state()
        buffer = io.BytesIO()
        torch.save(rng, buffer)
        rng_name = f"rng-rank{self.info.rank:05d}.pt"
        if self.remote:
            (local / tag / rng_name).write_bytes(buffer.getvalue())
            storage.upload_dir(local / tag, storage.join(self.root, tag), overwrite=True)
            shutil.rmtree(local / tag, ignore_errors=True)
        else:
            storage.write_bytes(storage.join(self.root, tag, rng_name), buffer.getvalue())
        dist.barrier()
        if self.info.is_main:
            lines = "".join(json.dumps(r, sort_keys=True) + "\n" for r in log_records)
            storage.write_bytes(storage.join(self.root, tag, TRAIN_LOG), lines.encode(), overwrite=True)
            marker = {**state, "step": step, "tag": tag}
            storage.write_json(storage.join(self.root, tag, COMPLETE_MARKER), marker, overwrite=True)
            self.prune(state.get("best_file"))
        dist.barrier()

    def prune(self, best_file: str | None) -> None:
        """Delete old checkpoints and stale best weights (rank 0 only).

        Keeps the last ``keep`` complete checkpoints and any folder newer than them (one being
        written); deletes best-weight files other than ``best_file``.
        """
        steps = self.complete_steps()
        kept = set(steps[-self.keep :])
        newest = steps[-1] if steps else -1
        for name in _names_under(self.root):
            match = TAG_RE.match(name)
            if match and int(match.group(1)) not in kept and int(match.group(1)) < newest:
                storage.remove(storage.join(self.root, name))
            if BEST_RE.match(name) and name != best_file:
                storage.remove(storage.join(self.root, name))

    # ---------------------------------------------------------------------------------- loading
    def load(self, engine: Any, step: int) -> list[dict]:
        """Load the complete checkpoint of ``step`` into ``engine`` (collective).

        Returns:
            The train log stored with it.
        """
        import torch

        tag = tag_for(step)
        if self.remote:
            storage.download_dir(storage.join(self.root, tag), self._staging / tag)
        local = self._local_dir()
        path, _ = engine.load_checkpoint(str(local), tag=tag, load_optimizer_states=True, load_lr_scheduler_states=True)
        if path is None:
            raise ResumeError(f"{storage.join(self.root, tag)}: DeepSpeed could not load this checkpoint")
        rng = torch.load(local / tag / f"rng-rank{self.info.rank:05d}.pt", weights_only=True)
        torch.set_rng_state(rng["cpu"])
        if "cuda" in rng and torch.cuda.is_available():
            torch.cuda.set_rng_state(rng["cuda"])
        records = [
            json.loads(line)
            for line in storage.read_bytes(storage.join(self.root, tag, TRAIN_LOG)).decode().splitlines()
            if line
        ]
        if self.remote:
            shutil.rmtree(self._staging / tag, ignore_errors=True)
        return records

    # ------------------------------------------------------------------------------ best weights
    def save_best(self, state_dict: dict[str, Any], step: int) -> str:
        """Write consolidated best weights (rank 0 only); returns the file name."""
        from safetensors.torch import save

        name = f"best-step-{step:08d}.safetensors"
        storage.write_bytes(storage.join(self.root, name), save(state_dict), overwrite=True)
        return name

    def load_best(self, name: str) -> dict[str, Any]:
        """Read best weights written by :meth:`save_best`."""
        from safetensors.torch import load

        return load(storage.read_bytes(storage.join(self.root, name)))

    def clear(self) -> None:
        """Delete every checkpoint (rank 0 only; after the outputs are published)."""
        storage.remove(self.root)

    def close(self) -> None:
        """Remove the local staging folder of a ``gs://`` store (a failed run's goes when its process exits)."""
        if self._tmp is not None:
            self._tmp.cleanup()


def check_resumable(state: dict[str, Any], fingerprint: str, world_size: int, root: str) -> bool:
    """Whether the checkpoint described by ``state`` belongs to this run.

    Returns:
        ``True`` to resume from it, ``False`` when it belongs to a different run (other config or
        data), which the caller then discards.

    Raises:
        ResumeError: Same run, different number of processes: DeepSpeed's ZeRO shards and our data
            order depend on it, so continuing would silently change the run.
    """
    if state.get("fingerprint") != fingerprint:
        return False
    if state.get("world_size") != world_size:
        raise ResumeError(
            f"{root}: the checkpoint at step {state.get('step')} was written by "
            f"{state.get('world_size')} process(es), this run has {world_size}. Resuming with a "
            "different world size is not supported: rerun with the same --num-procs / GPU count, "
            f"or delete {root} to start over."
        )
    return True
