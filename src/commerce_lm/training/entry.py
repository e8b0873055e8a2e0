"""Command-line entry point of the two training steps, for launchers and Kubeflow Trainer jobs.

``python -m commerce_lm.training.entry encoder --config FILE --prepared DIR --output DIR`` and
``... baseline --config FILE --prepared DIR --task NAME --output DIR``. It is what every rank runs
under torchrun (``--num-procs N`` relaunches itself) and what a multi-node TrainJob / PyTorchJob
runs on each node. The ``commerce-lm`` CLI offers the same steps with the same flags.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from commerce_lm.config import load_config, section_for, section_from_json


def parser() -> argparse.ArgumentParser:
    """The argument parser (sub-commands ``encoder`` and ``baseline``)."""
    top = argparse.ArgumentParser(prog="python -m commerce_lm.training.entry", description=__doc__)
    sub = top.add_subparsers(dest="step", required=True)
    for name in ("encoder", "baseline"):
        step = sub.add_parser(name)
        source = step.add_mutually_exclusive_group(required=True)
        source.add_argument("--config", help="YAML run config")
        source.add_argument("--config-json", help="resolved run config as JSON text")
        step.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="dotted override")
        step.add_argument("--prepared", required=True, help="prepare-data output folder")
        step.add_argument("--output", required=True, help="output folder of the step")
        step.add_argument("--checkpoint-dir", default=None, help="checkpoints (default: beside --output)")
        step.add_argument("--num-procs", type=int, default=None, help="local processes (torchrun)")
        if name == "baseline":
            step.add_argument("--task", required=True, help="task name")
    return top


def main(argv: list[str] | None = None) -> int:
    """Run one training step; returns the process exit code."""
    from commerce_lm.launch import maybe_relaunch
    from commerce_lm.steps import finetune_baseline, finetune_encoder

    args = parser().parse_args(argv)
    step = "finetune-encoder" if args.step == "encoder" else "finetune-baseline"
    if args.config:
        cfg = section_for(step, load_config(args.config, args.set))
    else:
        if args.set:
            raise SystemExit("--set applies to --config only")
        cfg = section_from_json(step, args.config_json)
    num_procs = args.num_procs or (cfg.finetune if args.step == "encoder" else cfg.baseline).num_procs
    relaunched = maybe_relaunch(
        num_procs, [sys.executable, "-m", "commerce_lm.training.entry", *(argv or sys.argv[1:])]
    )
    if relaunched is not None:
        return relaunched
    if args.step == "encoder":
        metrics = finetune_encoder.run(cfg, args.prepared, args.output, checkpoint_dir=args.checkpoint_dir)
    else:
        metrics = finetune_baseline.run(cfg, args.prepared, args.task, args.output, checkpoint_dir=args.checkpoint_dir)
    if os.environ.get("RANK", "0") == "0":
        print(json.dumps({k: v for k, v in metrics.items() if k != "per_process"}, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
