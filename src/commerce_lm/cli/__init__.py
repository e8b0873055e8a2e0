"""``commerce-lm``: one subcommand per pipeline step, plus the demo data generator.

The KFP-facing commands (``compile``, ``run``, ``submit``, ``schedule``, ``runs``) live with the
pipeline package and register themselves through the ``commerce_lm.commands`` entry point, so the
library never imports kfp.
"""

from __future__ import annotations

import argparse
import sys
from importlib.metadata import entry_points

from commerce_lm import config as config_module
from commerce_lm.cli import commands
from commerce_lm.cli.config_args import add_config_args, load_run_config, load_section

__all__ = ["UserError", "add_config_args", "build_parser", "load_run_config", "load_section", "main", "user_errors"]


class UserError(Exception):
    """A user error a command found itself, e.g. ``run`` reporting a step's own user error; one line, exit 2."""


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser, with plugin commands registered."""
    parser = argparse.ArgumentParser(prog="commerce-lm", description=__doc__.splitlines()[0])
    parser.add_argument("--debug", action="store_true", help="show the traceback of an unexpected error")
    sub = parser.add_subparsers(dest="command", required=True)
    commands.add_commands(sub)
    for plugin in entry_points(group="commerce_lm.commands"):
        plugin.load()(sub)
    return parser


def user_errors() -> tuple[type[BaseException], ...]:
    """Errors in what the user gave (paths, credentials, configs, data, models): one line, exit 2."""
    from commerce_lm import storage
    from commerce_lm.bundle.layout import BundleError
    from commerce_lm.data.readers import InputError
    from commerce_lm.embedding.vector_store import StoreError
    from commerce_lm.models import ModelError
    from commerce_lm.steps.prepare_data import DataError

    return (
        config_module.ConfigError,
        InputError,
        DataError,
        storage.OutputError,
        ModelError,
        BundleError,
        StoreError,
        UserError,
        FileNotFoundError,
        PermissionError,
    )


def main(argv: list[str] | None = None) -> int:
    """Run the CLI.

    A user error (input, config, output, credentials, model) prints one line and exits with status
    2. Any other error prints one line and exits with 1; ``--debug`` shows its traceback instead.
    """
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except user_errors() as error:
        print(f"commerce-lm {args.command}: error: {' '.join(str(error).split())}", file=sys.stderr)
        return 2
    except Exception as error:
        if args.debug:
            raise
        reason = " ".join(f"{type(error).__name__}: {error}".split())
        print(f"commerce-lm {args.command}: unexpected error: {reason} (--debug shows the traceback)", file=sys.stderr)
        return 1
