"""What the command groups of `python -m core` share: JSON output, declaring a sub-command, the flags of a run
specification, and waiting on a run while printing its epochs.

Imports neither TensorFlow nor Streamlit.
"""
from __future__ import annotations

import argparse
import json
import sys


def print_json(obj) -> None:
    print(json.dumps(obj, indent=2, default=str))


def add_command(sub, name: str, func, help: str | None, *positionals: str) -> argparse.ArgumentParser:
    """The sub-command `name`, run by `func(args)`, with plain positional arguments (e.g. "run": a run's id, unique
    id prefix or name); its flags are added to the parser it returns. help=None: not listed in --help (argparse
    would print a suppressed one as "==SUPPRESS==")."""
    s = sub.add_parser(name, **({"help": help} if help is not None else {}))
    for positional in positionals:
        s.add_argument(positional)
    s.set_defaults(func=func)
    return s


def add_spec_flags(s: argparse.ArgumentParser) -> None:
    """--recipe, then one flag per RunSpec field, with the type, choices, range and help of the field's metadata."""
    from core.config import RECIPES, RunSpec, number_text
    s.add_argument("--recipe", choices=list(RECIPES))
    for name, meta in RunSpec.params().items():
        if not meta["cli"]:
            continue
        flags = ["--" + name.replace("_", "-")] + (["--aug-file"] if name == "augment" else [])
        kwargs = {"dest": name, "help": meta["help"]}
        if meta["kind"] == "int":
            kwargs["type"] = int
        elif meta["kind"] in ("float", "lr"):
            kwargs["type"] = float
        elif meta["kind"] == "flag":
            kwargs["action"] = "store_const"  # None when absent: the recipe's default stays
            kwargs["const"] = True
        elif meta["kind"] == "choice":  # checked by RunSpec.validate, which says the same sentence everywhere
            kwargs["metavar"] = "{" + ",".join(meta["options"]) + "}"
        elif meta["kind"] == "hashes":  # images to leave out, named by path; recorded as content hashes
            kwargs["nargs"] = "+"
            kwargs["metavar"] = "FILE_OR_FOLDER"
        if meta["min"] is not None:
            unit = f" {meta['unit']}" if meta["unit"] else ""
            kwargs["help"] += f"; {number_text(meta['min'])} to {number_text(meta['max'])}{unit}"
        s.add_argument(*flags, **kwargs)


def cli_values(a) -> dict:
    """The RunSpec values given on the command line (None: not given)."""
    from core.config import RunSpec
    return {name: getattr(a, name) for name, meta in RunSpec.params().items() if meta["cli"]}


def spec_from_args(a):
    """The validated RunSpec of --recipe and the flags of add_spec_flags."""
    from core.runs.specs import build_spec
    values = cli_values(a)
    if values.get("exclude"):  # files, folders or lists of paths -> the content hashes a run records
        from core.data.exclusions import from_paths
        values["exclude"] = from_paths(values["exclude"])
    return build_spec(a.recipe, values)  # the command line is not confined to TUNELAB_DATA_ROOTS


def wait_and_report(run_id: str) -> int:
    """Print each epoch of a queued run as it ends, then its JSON summary; 0 if it finished, else 1."""
    from core.runs import runner

    def on_epoch(row):
        parts = [f"{k}={row[k]:.4f}" for k in ("loss", "accuracy", "val_loss", "val_accuracy") if row[k] is not None]
        print(f"epoch {row['epoch']} [{row['phase']}] " + " ".join(parts) + f" ({row['seconds']:.1f}s)", flush=True)
    run = runner.wait(run_id, on_epoch)
    result = runner.summary(run_id)
    if run["status"] == "failed":
        print(f"run failed: {run['error']}", file=sys.stderr)
    print(json.dumps(result), flush=True)
    return 0 if run["status"] == "finished" else 1
