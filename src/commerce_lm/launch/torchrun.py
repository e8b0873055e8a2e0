"""Run a training step under ``torchrun`` with N local processes (``--num-procs N``).

The CLI calls :func:`maybe_relaunch` first thing in ``finetune-encoder`` / ``finetune-baseline``:
with more than one process requested and no launcher around us yet, it re-runs the very same
command line under ``torchrun --standalone --nproc-per-node N`` and returns its exit code; each
child then finds ``LOCAL_RANK`` set and trains as one rank (gloo on CPU, NCCL on GPU).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Sequence

from commerce_lm.training import dist


def torchrun_command(num_procs: int, argv: Sequence[str]) -> list[str]:
    """The ``torchrun`` command line that runs ``argv`` as ``num_procs`` local processes.

    ``--no-python`` makes torchrun execute ``argv`` as given (``python -m commerce_lm.cli ...`` or
    the ``commerce-lm`` console script alike); ``--standalone`` picks a free rendezvous port.
    """
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc-per-node={num_procs}",
        "--no-python",
        *argv,
    ]


def rank_env(num_procs: int) -> dict[str, str]:
    """Environment of the launched ranks.

    torchrun would pin every rank to one OpenMP thread; on CPU that wastes the cores, so each rank
    gets an equal share unless the caller chose already.
    """
    env = dist.child_env()
    if "OMP_NUM_THREADS" not in env:
        env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // num_procs))
    return env


def maybe_relaunch(num_procs: int, argv: list[str]) -> int | None:
    """Re-run ``argv`` under torchrun with ``num_procs`` processes, unless that is not needed.

    Args:
        num_procs: Processes requested (``--num-procs``).
        argv: The full command line to re-run, e.g. ``[sys.executable, "-m", "commerce_lm.cli", ...]``.

    Returns:
        torchrun's exit code, or ``None`` when the caller should just run the step in-process
        (one process requested, or already under a launcher).
    """
    if num_procs <= 1 or dist.under_launcher():
        return None
    proc = subprocess.Popen(torchrun_command(num_procs, argv), env=rank_env(num_procs))

    def forward(signum: int, _frame: object) -> None:
        # A pod being stopped (SIGTERM) must stop the ranks too, or they outlive it as orphans.
        proc.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        return proc.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
