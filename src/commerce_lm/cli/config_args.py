"""The config flags every step command takes: ``--config`` or ``--config-json``, and ``--set``."""

from __future__ import annotations

import argparse
from typing import Any

from commerce_lm import config as config_module
from commerce_lm.config import RunConfig


def add_config_args(parser: argparse.ArgumentParser) -> None:
    """``--config FILE`` (or ``--config-json TEXT``) and repeatable ``--set KEY=VALUE``."""
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--config", help="run config YAML")
    source.add_argument("--config-json", help="resolved run config as JSON (what pipeline steps pass)")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="dotted override, e.g. finetune.zero_stage=3 (repeatable)",
    )


def load_run_config(args: argparse.Namespace) -> RunConfig:
    """The run config named by ``--config``/``--config-json`` with ``--set`` overrides applied."""
    if args.config_json:
        if args.set:
            raise config_module.ConfigError("--set applies to --config files, not to --config-json")
        return config_module.config_from_json(args.config_json)
    return config_module.load_config(args.config, args.set)


def load_section(args: argparse.Namespace, step: str) -> Any:
    """``step``'s section of the run config (see :mod:`commerce_lm.config.steps`).

    ``--config-json`` may hold the section alone (what the pipeline's components pass) or a whole
    resolved run config; a ``--config`` file is loaded, overridden with ``--set``, then cut.
    """
    if args.config_json:
        if args.set:
            raise config_module.ConfigError("--set applies to --config files, not to --config-json")
        return config_module.section_from_json(step, args.config_json)
    return config_module.section_for(step, config_module.load_config(args.config, args.set))
