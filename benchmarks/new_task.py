"""What one more task costs: a second run with one more task against the first run, same cache and store.

Runs ``commerce-lm run`` twice on a config, as a user would, with a fresh local cache (step cache,
vector store, part caches), a fresh bundle registry and fresh run folders, all in a temporary
folder or ``--keep``'s (the encoder is built into that cache before the clock starts):

1. the config without its last task (or ``--task``);
2. the whole config, the added task declared ``e2e: never`` (``--with-baseline`` keeps its
   end-to-end baseline).

It prints each run's wall time and each step's, checks that the domain metrics and the earlier
tasks' fine-tuned figures are identical, and ends with the second run's share of the first.

    python benchmarks/new_task.py [--config configs/demo.yaml] [--task offplatform] [--with-baseline]

The demo data must exist (``make demo``, or ``commerce-lm demo-data``). The last line reads
``first_run_seconds=X second_run_seconds=Y share=Z``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from commerce_lm import models, names
from commerce_lm.config import load_config

RAN = re.compile(r"^steps run: (.*)$", re.MULTILINE)
FINISHED = re.compile(r"^pipeline finished in (\d+) s$", re.MULTILINE)


def run(config: Path, out: Path, overrides: list[str]) -> tuple[dict, float]:
    """``commerce-lm run`` into ``out``; its metrics.json and the command's wall time (printed with its steps')."""
    command = [sys.executable, "-m", "commerce_lm.cli", "run", "--config", str(config), "--output", str(out)]
    for override in overrides:
        command += ["--set", override]
    began = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - began
    if result.returncode:
        raise SystemExit(f"{out.name}: commerce-lm run failed:\n{result.stderr[-3000:]}")
    pipeline = FINISHED.search(result.stdout).group(1)
    print(f"{out.name} run: {seconds:.1f} s (pipeline {pipeline} s); steps run: {RAN.search(result.stdout).group(1)}")
    return json.loads((out / names.METRICS_JSON).read_text()), seconds


def _tasks(tasks: list[dict]) -> str:
    """A ``--set`` of the config's task list, as one line of YAML."""
    return "tasks=" + yaml.safe_dump(tasks, default_flow_style=True, width=1 << 16).strip()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/demo.yaml")
    parser.add_argument("--task", help="the task added by the second run (default: the config's last)")
    parser.add_argument("--with-baseline", action="store_true", help="the added task keeps its e2e baseline")
    parser.add_argument("--keep", help="an empty folder to run in and keep (its bundles/ for score_bundle.py)")
    args = parser.parse_args()

    config = Path(args.config).resolve()
    cfg = load_config(str(config))
    raw = yaml.safe_load(config.read_text())
    added = args.task or raw["tasks"][-1]["name"]
    earlier = [t for t in raw["tasks"] if t["name"] != added]
    new = {**next(t for t in raw["tasks"] if t["name"] == added), "e2e": "always" if args.with_baseline else "never"}
    with tempfile.TemporaryDirectory(prefix="new-task-bench-") as tmp:
        root = Path(args.keep or tmp)
        if any(root.glob("*")):
            raise SystemExit(f"--keep {root}: not an empty folder")
        os.environ["COMMERCE_LM_CACHE"] = str(root / "cache")  # the runs inherit it
        models.resolve_model(cfg.model)  # a packaged model is built once, before the clock starts
        registry = f"publish.location={root / 'bundles'}"
        first, first_seconds = run(config, root / "first", [registry, _tasks(earlier)])
        second, second_seconds = run(config, root / "second", [registry, _tasks([*earlier, new])])
    same_domain = first["domain"] == second["domain"]
    same_tasks = all(
        first["tasks"][t["name"]]["finetuned"]["pr_auc"] == second["tasks"][t["name"]]["finetuned"]["pr_auc"]
        for t in earlier
    )
    print(f"domain metrics identical: {same_domain}; earlier tasks' fine-tuned PR AUC identical: {same_tasks}")
    print(
        f"first_run_seconds={first_seconds:.1f} second_run_seconds={second_seconds:.1f} "
        f"share={second_seconds / first_seconds:.3f}"
    )
    return 0 if same_domain and same_tasks else 1


if __name__ == "__main__":
    raise SystemExit(main())
