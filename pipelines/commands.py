"""The KFP-facing ``commerce-lm`` subcommands: ``compile`` and ``run`` (local), plus the remote ones.

Registered through the ``commerce_lm.commands`` entry point, so the library's CLI picks them up
without importing kfp itself.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

from commerce_lm import names, storage
from commerce_lm.cli import add_config_args, load_run_config
from commerce_lm.config import ConfigError

REPORT_FILES = (names.METRICS_JSON, names.REPORT_MD, names.REPORT_HTML)
RUN_CONFIG = "run_config.json"


def _compile(args: argparse.Namespace) -> int:
    from commerce_lm_pipelines.pipeline import compile_pipeline

    print(f"wrote {compile_pipeline(args.output)}")
    return 0


def claim_run_dir(out: Path, cfg_json: str, fingerprint: str, overwrite: bool) -> None:
    """Refuse to reuse a run folder made with another config, unless ``overwrite`` is set.

    Raises:
        ConfigError: Naming both config fingerprints.
    """
    marker = out / RUN_CONFIG
    if marker.exists() and not overwrite:
        previous = storage.read_json(marker)
        if previous.get("fingerprint") != fingerprint:
            raise ConfigError(
                f"{out}: this run folder holds a run of config {previous.get('fingerprint')}, "
                f"not {fingerprint}; use another --output or pass --overwrite"
            )
    if overwrite and out.exists():
        shutil.rmtree(out)
    storage.write_json(marker, {"fingerprint": fingerprint, "config": cfg_json})


def _find_report(root: Path, started: float) -> Path:
    candidates = [p for p in root.glob("*/build-report/report") if p.stat().st_mtime >= started]
    if not candidates:
        raise RuntimeError(f"{root}: the local run produced no report")
    return max(candidates, key=lambda p: p.stat().st_mtime)


def _run_local(args: argparse.Namespace) -> int:
    from commerce_lm_pipelines.pipeline import build_pipeline, pipeline_arguments
    from kfp import local

    cfg = load_run_config(args)
    out = Path(args.output).resolve()
    claim_run_dir(out, cfg.to_json(), cfg.fingerprint(), args.overwrite)
    # Components run as `python3 -m kfp.dsl.executor_main`: make that python this environment's.
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    root = out / "kfp-root"
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(root), raise_on_error=True)
    started = time.time()
    build_pipeline(cluster=False)(**pipeline_arguments(cfg))
    report = _find_report(root, started - 1)
    for name in REPORT_FILES:
        shutil.copy(report / name, out / name)
    seconds = time.time() - started
    print(f"pipeline finished in {seconds:.0f} s")
    for name in REPORT_FILES:
        print(f"  {out / name}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``compile``, ``run`` and the remote commands to the ``commerce-lm`` parser."""
    compile_parser = sub.add_parser("compile", help="compile the pipeline to KFP IR YAML")
    compile_parser.add_argument("--output", required=True, help="YAML file to write")
    compile_parser.set_defaults(func=_compile)

    run = sub.add_parser("run", help="run the whole DAG locally with kfp.local (SubprocessRunner)")
    add_config_args(run)
    run.add_argument("--output", required=True, help="run folder: report files and the local pipeline root")
    run.add_argument("--overwrite", action="store_true", help="reuse a run folder made with another config")
    run.set_defaults(func=_run_local)

    try:
        from commerce_lm_pipelines import remote
    except ImportError:  # remote commands need the kfp client extras
        return
    remote.add_commands(sub)
