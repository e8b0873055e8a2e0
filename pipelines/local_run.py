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
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from commerce_lm import names, storage
from commerce_lm.config import ConfigError, RunConfig
from commerce_lm.storage.guard import marker_record

REPORT_FILES = (names.METRICS_JSON, names.REPORT_MD, names.REPORT_HTML)
RUN_CONFIG = "run_config.json"
STEP = "run"  # the name in the _COMPLETE marker of a run folder
# kfp.local logs "Task <name> cache hit (key=...)" through the root logger, at INFO.
_CACHE_HIT = re.compile(r"Task (\S+) cache hit")


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


class _CacheHits(logging.Handler):
    """Collects the names of the tasks kfp.local served from its cache."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.tasks: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        match = _CACHE_HIT.search(record.getMessage())
        if match:
            self.tasks.append(re.sub(r"\x1b\[[0-9;]*m", "", match.group(1)).strip("'"))


@contextmanager
def _cache_hits() -> Iterator[_CacheHits]:
    """Record cache hits while the pipeline runs (the root logger passes INFO only meanwhile)."""
    root, hits = logging.getLogger(), _CacheHits()
    level = root.level
    root.addHandler(hits)
    root.setLevel(min(level, logging.INFO))
    try:
        yield hits
    finally:
        root.removeHandler(hits)
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
        ``seconds`` (wall time of the pipeline) and ``cache_hits`` (the tasks served from the cache).
    """
    from commerce_lm_pipelines.pipeline import build_pipeline, pipeline_arguments
    from kfp import local

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
    with _cache_hits() as hits:
        # The pipeline returns its report; from a cache hit it lies in an earlier run's folder.
        report = Path(build_pipeline(cluster=False)(**pipeline_arguments(cfg)).output.path)
    for name in REPORT_FILES:
        shutil.copy(report / name, out / name)
    return {"seconds": time.time() - started, "cache_hits": sorted(hits.tasks)}
