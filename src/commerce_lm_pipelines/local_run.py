"""``commerce-lm run``: the whole DAG on this machine with ``kfp.local``, its steps cached across runs.

The cache lives in one folder shared by every run folder (``--cache-dir``; by default
``$COMMERCE_LM_CACHE/kfp-local``, ``~/.cache/commerce-lm/kfp-local`` when unset), so a second run
that differs only in its tasks re-uses the domain fine-tune from the first, wherever that one
wrote. A cache hit hands the step the earlier run's artifacts; ``kfp.local`` treats an entry whose
artifact folder was deleted as a miss. ``--no-cache`` runs every step.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import sys
import threading
import time
import warnings
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, redirect_stdout
from pathlib import Path
from typing import Any, TextIO

from commerce_lm import names, storage
from commerce_lm.cli import UserError, user_errors
from commerce_lm.config import ConfigError, RunConfig
from commerce_lm.storage.guard import marker_record

REPORT_FILES = (names.METRICS_JSON, names.REPORT_MD, names.REPORT_HTML)
RUN_CONFIG = "run_config.json"
STEP = "run"  # the name in the _COMPLETE marker of a run folder
# kfp.local logs "Task <name> cache hit (key=...)" and "Executing task <name>"; a failed run raises
# "Pipeline <name> finished with status FAILURE. Inner task failed: <task> inside <its DAGs>" (a
# lone task: "Task <name> finished with status FAILURE"); names and statuses are in colour.
_CACHE_HIT = re.compile(r"Task (\S+) cache hit")
_EXECUTING = re.compile(r"Executing task (\S+)")
_FINISHED = re.compile(r"Task (\S+) finished with status")
_FAILED = re.compile(r"Inner task failed: '([^']+)'|Task '([^']+)' finished with status FAILURE")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def default_cache_dir() -> Path:
    """The step cache shared by every local run: ``$COMMERCE_LM_CACHE/kfp-local``."""
    return Path(os.environ.get("COMMERCE_LM_CACHE", Path.home() / ".cache" / "commerce-lm")) / "kfp-local"


def run_inputs(cfg: RunConfig, config_file: str | None) -> list[str]:
    """What a run reads and its output must never sit in or hold: data, a local model, the config's folder."""
    inputs = [spec.data for spec in (cfg.domain, *cfg.tasks, *cfg.similarity)]
    if Path(cfg.model).is_dir():
        inputs.append(cfg.model)
    if config_file:
        inputs.append(str(Path(config_file).resolve().parent))
    return inputs


def claim_run_dir(
    out: Path, cfg_json: str, fingerprint: str, overwrite: bool, inputs: Sequence[str], cache_dir: Path | None
) -> None:
    """Make ``out`` this run's folder, replacing only a folder that an earlier ``run`` made.

    The rule is every step's (:func:`commerce_lm.storage.check_output`): a folder holding anything
    but an earlier run's output (its ``_COMPLETE`` marker of ``run``) is refused, with or without
    ``overwrite``, and so is an output inside (or holding) an input or the step cache.

    Args:
        out: The run folder.
        cfg_json: The resolved config, recorded in ``run_config.json``.
        fingerprint: The config's fingerprint; an earlier run of another config is replaced only
            with ``overwrite``.
        overwrite: Replace an earlier run's folder made with another config.
        inputs: Locations the run reads (:func:`run_inputs`).
        cache_dir: The shared step cache (created here), or None.

    Raises:
        ConfigError: An earlier run of another config, naming both fingerprints.
        OutputError: A folder that is not an earlier run's, or one inside an input or the cache.
    """
    if cache_dir is not None:
        try:
            cache_dir.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise storage.OutputError(f"--cache-dir {cache_dir}: not a folder (a file is in the way)") from None
    storage.check_output(out, STEP, [*inputs, *([str(cache_dir)] if cache_dir is not None else [])])
    marker = out / RUN_CONFIG
    if marker.exists():
        previous = storage.read_json(marker)
        if previous.get("fingerprint") != fingerprint:
            if not overwrite:
                raise ConfigError(
                    f"{out}: this run folder holds a run of config {previous.get('fingerprint')}, "
                    f"not {fingerprint}; use another --output or pass --overwrite"
                )
            shutil.rmtree(out)  # check_output found run's own marker: nothing of the user's is in it
    out.mkdir(parents=True, exist_ok=True)
    (out / names.COMPLETE_MARKER).write_bytes(marker_record(STEP))
    storage.write_json(marker, {"fingerprint": fingerprint, "config": cfg_json})


def _plain(text: str) -> str:
    """``text`` without the terminal colour codes kfp.local puts around task names and statuses."""
    return _ANSI.sub("", text)


class _TaskLog(logging.Handler):
    """What kfp.local says while the pipeline runs: cache hits, each task's wall time and streamed log.

    kfp.local runs tasks in threads; from its thread, each task's "Executing task <name>" line (its
    own logger writes to ``sys.stdout``) and then the task's output (stdout and stderr, merged) are
    printed. Each printed line is passed through and also kept under its thread's task, so that a
    failed task's own error can be found even while other tasks print. Cache hits come through the
    root logger.
    """

    def __init__(self, stream: TextIO) -> None:
        super().__init__(logging.INFO)
        self.stream = stream
        self.cache_hits: list[str] = []
        self.step_seconds: dict[str, float] = {}  # task -> wall time, from its start to its finish line
        self._started: dict[str, float] = {}
        self.logs: dict[str, list[str]] = defaultdict(list)  # task -> its printed lines
        self._task: dict[int, str] = {}  # thread -> the task it runs
        self._partial: dict[int, str] = defaultdict(str)

    def emit(self, record: logging.LogRecord) -> None:
        message = _plain(record.getMessage())
        if match := _CACHE_HIT.search(message):
            self.cache_hits.append(match.group(1).strip("'"))

    def write(self, text: str) -> int:
        """Pass printed text through to the terminal, keeping its lines under the thread's task."""
        self.stream.write(text)
        thread = threading.get_ident()
        *done, self._partial[thread] = (self._partial[thread] + text).split("\n")
        for line in map(_plain, done):
            if match := _EXECUTING.search(line):
                self._task[thread] = match.group(1).strip("'")
                self._started[self._task[thread]] = time.perf_counter()
            elif (match := _FINISHED.search(line)) and (task := match.group(1).strip("'")) in self._started:
                # A task inside a loop runs once per iteration under one name: its times add up.
                elapsed = time.perf_counter() - self._started.pop(task)
                self.step_seconds[task] = self.step_seconds.get(task, 0.0) + elapsed
            self.logs[self._task.get(thread, "")].append(line)
        return len(text)

    def flush(self) -> None:
        """Flush the terminal."""
        self.stream.flush()

    def failure(self, error: RuntimeError, pipeline_root: Path) -> Exception:
        """kfp.local's "... finished with status FAILURE" as one line naming the failed task and its reason.

        The task's log is written to ``<its folder>/step.log``. A reason that is one of the user
        errors the CLI knows (a config, the data, a model...) becomes a :class:`UserError`.
        """
        message = _plain(str(error))
        match = _FAILED.search(message)
        if match is None:
            return RuntimeError(message)
        task = match.group(1) or match.group(2)  # the first task that failed, before the DAGs around it
        runs = sorted(pipeline_root.glob("*/"), key=lambda p: p.stat().st_mtime)
        run = runs[-1] if runs else pipeline_root
        # A task inside a loop has its folder inside the loop iteration's.
        log = next((p for p in run.rglob(task) if p.is_dir()), run / task) / "step.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text("\n".join(self.logs.get(task, [])) + "\n", encoding="utf-8")
        kind, _, detail = (_error_line(self.logs.get(task, [])) or "").partition(": ")
        kind = kind.rsplit(".", 1)[-1]  # the exception's name without its module
        text = f"step {task} failed: {f'{kind}: {detail}' if kind else 'see its log'} (its log: {log})"
        return UserError(text) if kind in {cls.__name__ for cls in user_errors()} else RuntimeError(text)


def _error_line(lines: list[str]) -> str | None:
    """The exception a log's last traceback ends with (``module.Type: message``, on one line), or None."""
    starts = [i for i, line in enumerate(lines) if line.strip() == "Traceback (most recent call last):"]
    if not starts:
        return None
    indent = len(lines[starts[-1]]) - len(lines[starts[-1]].lstrip())
    found: list[str] = []
    for line in lines[starts[-1] + 1 :]:
        depth = len(line) - len(line.lstrip())
        if not line.strip():
            if found:
                break
        elif depth == indent:  # the exception itself; the frames above are indented deeper
            found = [line.strip()]
        elif found:  # a message of several lines continues, indented deeper
            found.append(line.strip())
    return " ".join(found) or None


@contextmanager
def _task_log() -> Iterator[_TaskLog]:
    """Watch kfp.local while the pipeline runs (the root logger passes INFO only meanwhile)."""
    root, log = logging.getLogger(), _TaskLog(sys.stdout)
    level = root.level
    root.addHandler(log)
    root.setLevel(min(level, logging.INFO))
    try:
        with redirect_stdout(log):
            yield log
    finally:
        root.removeHandler(log)
        root.setLevel(level)


def run_local(
    cfg: RunConfig, out: Path, *, cache_dir: Path | None, overwrite: bool = False, config_file: str | None = None
) -> dict[str, Any]:
    """Run the pipeline for ``cfg`` with kfp.local and copy the report into ``out``.

    Args:
        cfg: The run config.
        out: The run folder: report files and this run's pipeline root (``kfp-root/``).
        cache_dir: The shared step cache; ``None`` runs every step.
        overwrite: Replace a run folder made with another config.
        config_file: The config file, whose folder the run folder must not be in.

    Returns:
        ``seconds`` (wall time of the pipeline), ``cache_hits`` (the tasks served from the cache)
        and ``step_seconds`` (each task that ran: its wall time, a loop's iterations added up).

    Raises:
        UserError: A step failed on what the user gave: names the step, its own error and its log.
        RuntimeError: A step failed otherwise (the same line).
    """
    from kfp import local

    from commerce_lm_pipelines.pipeline import build_pipeline, pipeline_arguments

    claim_run_dir(out, cfg.to_json(), cfg.fingerprint(), overwrite, run_inputs(cfg, config_file), cache_dir)
    # Components run as `python3 -m kfp.dsl.executor_main`: make that python this environment's.
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    local.init(
        runner=local.SubprocessRunner(use_venv=False),
        pipeline_root=str(out / "kfp-root"),
        raise_on_error=True,
        enable_caching=cache_dir is not None,
        cache_root=str(cache_dir) if cache_dir is not None else None,
    )
    started = time.time()
    with _task_log() as log, warnings.catch_warnings():
        # Our images hold this environment's packages, which is why the SubprocessRunner may run them.
        warnings.filterwarnings("ignore", "You may be attemping to run a task that uses custom", RuntimeWarning)
        try:
            # The pipeline returns its report; from a cache hit it lies in an earlier run's folder.
            arguments = pipeline_arguments(cfg)
            # kfp.local cannot collect a loop of no iterations: a run without baselines has no loop.
            dag = build_pipeline(cluster=False, baselines=bool(arguments["tasks"]))
            report = Path(dag(**arguments).output.path)
        except RuntimeError as error:
            raise log.failure(error, out / "kfp-root") from None
    for name in REPORT_FILES:
        shutil.copy(report / name, out / name)
    return {"seconds": time.time() - started, "cache_hits": sorted(log.cache_hits), "step_seconds": log.step_seconds}
