"""The mesa-econ command: reproduce the paper, run a demo, train agents, run sweeps.

Each subcommand lives in its own module of this package (``demo``, ``train``, ``sweep``,
``reproduce``, ``tune``, ``stability``, ``nash``) and registers itself through an
``add_parser(subparsers)`` function, so this module stays a thin router. The commands share
one ``KEY=VALUE`` parser (``_params``) and one writer of results (``_output``), which checks
``--out`` before any work. Building the parser imports neither torch nor Mesa
(``mesa-econ --help`` answers at once): modules import them inside the functions that run
a command. Domain modules never import this package.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from mesa_econ.cli.demo import run_demo

__all__ = ["main", "run_demo"]

# subcommand -> module providing add_parser(subparsers) (which sets func=...)
_PLUGINS = {"demo": "mesa_econ.cli.demo", "reproduce": "mesa_econ.cli.reproduce",
            "train": "mesa_econ.cli.train", "sweep": "mesa_econ.cli.sweep",
            "tune": "mesa_econ.cli.tune", "stability": "mesa_econ.cli.stability",
            "nash": "mesa_econ.cli.nash"}


def describe(doc: str | None) -> str:
    """A module docstring's first line as ``--help`` text: without RST's double
    backquotes (argparse prints them as they are)."""
    return (doc or "").strip().splitlines()[0].replace("``", "")


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mesa-econ", description=describe(__doc__))
    sub = parser.add_subparsers(dest="command", required=True)
    for name, module in _PLUGINS.items():
        try:
            plugin = importlib.import_module(module)
        except ModuleNotFoundError as exc:  # an optional extra is not installed
            sub.add_parser(name, help=f"unavailable: {exc}")
            continue
        plugin.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``mesa-econ`` console script."""
    args = _build_parser().parse_args(argv)
    if not hasattr(args, "func"):
        print(f"mesa-econ {args.command} is unavailable in this install", file=sys.stderr)
        return 2
    try:
        return int(args.func(args) or 0)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
