"""Process-group set-up for the trainer: one process without a launcher, or N under torchrun.

DeepSpeed needs ``torch.distributed`` even for a single process. When no launcher set the usual
environment (``RANK``, ``WORLD_SIZE``, ...), :func:`init` fills it in for a world of one, with a
free port, so a step runs in a plain Python process (tests, KFP component bodies).

On CPU DeepSpeed would JIT-compile its shared-memory all-reduce op (``deepspeed_shm_comm``, tens of
seconds of C++ build, cached under ``TORCH_EXTENSIONS_DIR``) the first time a process group starts.
Gloo's all-reduce is plenty for CPU runs, so the op is switched off unless
``COMMERCE_LM_DS_SHM_COMM=1`` asks for it; no op is built on the test path.
"""

from __future__ import annotations

import datetime
import os
import socket
from dataclasses import dataclass

# Variables :func:`init` sets for a world of one, and the marker saying it did: a child process
# (torchrun, a test's subprocess) must not inherit them, or it would think it is already rank 0 of
# a launched job and reuse our rendezvous port.
SINGLE_PROCESS_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
FILLED_MARKER = "COMMERCE_LM_SINGLE_PROCESS"
SHM_COMM_ENV = "COMMERCE_LM_DS_SHM_COMM"
# Collective timeout: long enough for a rank-0-only export of a large model while others wait.
TIMEOUT = datetime.timedelta(minutes=60)


@dataclass(frozen=True)
class DistInfo:
    """Where this process sits in the job.

    Attributes:
        rank: Global rank.
        local_rank: Rank on this node (selects the GPU).
        world_size: Number of processes.
        device: ``cuda:<local_rank>`` or ``cpu``.
    """

    rank: int
    local_rank: int
    world_size: int
    device: str

    @property
    def is_main(self) -> bool:
        """Whether this is rank 0, the only process that writes outputs."""
        return self.rank == 0

    @property
    def on_gpu(self) -> bool:
        """Whether this process trains on a GPU."""
        return self.device.startswith("cuda")


def free_port() -> int:
    """A TCP port that was free a moment ago (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def under_launcher() -> bool:
    """Whether torchrun / the deepspeed launcher started this process."""
    if "TORCHELASTIC_RUN_ID" in os.environ:
        return True
    # LOCAL_RANK alone may be the one init() set for a world of one (here or in a parent process).
    return "LOCAL_RANK" in os.environ and FILLED_MARKER not in os.environ


def child_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """``base`` (default: this process's environment) without the single-process settings :func:`init` added."""
    env = dict(os.environ if base is None else base)
    if env.pop(FILLED_MARKER, None) is not None:
        for name in SINGLE_PROCESS_ENV:
            env.pop(name, None)
    return env


def _fill_single_process_env() -> None:
    filled_by = os.environ.get(FILLED_MARKER)
    if filled_by == str(os.getpid()):
        return  # this process filled them already
    if filled_by is None and "RANK" in os.environ and "WORLD_SIZE" in os.environ:
        return  # a launcher's settings
    # Settings a parent process filled for itself are not ours: its MASTER_PORT may still be bound
    # by its process group, so a child (a pipeline step it spawned) takes a fresh world of one.
    os.environ[FILLED_MARKER] = str(os.getpid())
    os.environ.update(
        RANK="0",
        WORLD_SIZE="1",
        LOCAL_RANK="0",
        LOCAL_WORLD_SIZE="1",
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(free_port()),
    )


def _disable_shm_comm_op() -> None:
    """Keep DeepSpeed from JIT-building its CPU shared-memory comm op (see the module docstring)."""
    if os.environ.get(SHM_COMM_ENV) == "1":
        return
    import deepspeed.ops

    # DeepSpeed caches its op-compatibility probe in this module-level dict and consults it (only)
    # before building this op; marking the op incompatible makes the backend use plain gloo. Seeding
    # the dict also skips the probe itself, which runs a compiler per op (seconds, and linker noise).
    vars(deepspeed.ops).setdefault("__compatible_ops__", {})["deepspeed_shm_comm"] = False


def init() -> DistInfo:
    """Start (or join) the process group and return this process's place in it.

    Safe to call more than once in a process: later calls reuse the group.

    Returns:
        Rank, local rank, world size and device.
    """
    import deepspeed
    import torch

    _fill_single_process_env()
    on_gpu = torch.cuda.is_available()
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if on_gpu:
        torch.cuda.set_device(local_rank)
    else:
        _disable_shm_comm_op()
    if not torch.distributed.is_initialized():
        deepspeed.init_distributed(dist_backend="nccl" if on_gpu else "gloo", timeout=TIMEOUT)
    return DistInfo(
        rank=torch.distributed.get_rank(),
        local_rank=local_rank,
        world_size=torch.distributed.get_world_size(),
        device=f"cuda:{local_rank}" if on_gpu else "cpu",
    )


def barrier() -> None:
    """Wait for every rank (a no-op without a process group)."""
    import torch

    if torch.distributed.is_initialized():
        torch.distributed.barrier()


def all_gather_objects(value: object) -> list[object]:
    """Every rank's ``value``, in rank order."""
    import torch

    if not torch.distributed.is_initialized() or torch.distributed.get_world_size() == 1:
        return [value]
    out: list[object] = [None] * torch.distributed.get_world_size()
    torch.distributed.all_gather_object(out, value)
    return out


def broadcast_object(value: object) -> object:
    """Rank 0's ``value`` on every rank."""
    import torch

    if not torch.distributed.is_initialized() or torch.distributed.get_world_size() == 1:
        return value
    box = [value]
    torch.distributed.broadcast_object_list(box, src=0)
    return box[0]
