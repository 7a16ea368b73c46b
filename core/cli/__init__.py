"""Command line over the engine: `python -m core COMMAND ...` (see `python -m core --help`).

`parser()` assembles the sub-commands from one module a group, each with its own `register(sub)` and `cmd_*`
functions, in the order `--help` lists them: `inspect_commands` (layers, scan, health), `train_commands` (ablate,
train, lr-find), `run_commands` (runs, stop, resume, rename, tag, delete, publish, whoami), `class_commands`
(assignment, leaderboard), `model_commands` (export, evaluate), `tool_commands` (prefetch, bench) and
`worker_command` (the queue's hidden worker); `common` holds what they share.

Bad input ends with one sentence on stderr naming the thing and the fix, and a non-zero exit code.
TensorFlow is imported only by the commands that need it, so `runs`, `stop` and `scan` answer fast.
"""
from __future__ import annotations

import argparse
import sys

from core.cli import (class_commands, inspect_commands, model_commands, run_commands, tool_commands, train_commands,
                      worker_command)

GROUPS = (inspect_commands, train_commands, run_commands, class_commands, model_commands, tool_commands,
          worker_command)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m core", description="Fine-Tuning Lab engine.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in GROUPS:
        group.register(sub)
    return p


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.func(args) or 0
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # one sentence, no traceback, for every expected kind of bad input
        from core.data.folders import DataError
        expected = (ValueError, FileNotFoundError, DataError, RuntimeError, PermissionError)
        if not isinstance(exc, expected):
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 2
