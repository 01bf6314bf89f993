"""The `slamon` command line: one module per subcommand, imported only when run.

Each command module exposes `HELP` (one line), `add_arguments(parser)` and
`run(args) -> int` (the exit status). A `SlamonError` a command lets out is reported here,
once for all commands, as `slamon <command>: message` with exit status 2.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from importlib import metadata
from types import ModuleType

from sla.errors import SlamonError

__all__ = ["main"]

# subcommand -> module; a module is imported only when its command runs or help is built.
COMMANDS: dict[str, str] = {
    "worker": "agents.cli.worker",
    "replay": "agents.cli.replay",
    "check-config": "agents.cli.check_config",
    "kafka": "agents.cli.kafka",
    "produce": "agents.cli.produce",
    "tail": "agents.cli.tail",
    "demo": "agents.cli.demo",
    "translate": "agents.cli.translate",
    "review": "agents.cli.review",
    "report": "agents.cli.report",
}


def _load(module_name: str) -> ModuleType | None:
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name:  # a command not built yet; a missing dependency still raises
            return None
        raise


def version() -> str:
    """The installed distribution's version (`slamon --version`), from its metadata."""
    try:
        return metadata.version("slamon")
    except metadata.PackageNotFoundError:  # run from a tree that was never installed
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="slamon", description="Real-time SLA monitor.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, module_name in COMMANDS.items():
        module = _load(module_name)
        if module is None:
            continue
        command = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(command)
        command.set_defaults(_module=module)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args._module.run(args) or 0)
    except SlamonError as exc:
        name = " ".join(filter(None, (args.command, getattr(args, "action", None))))
        print(f"slamon {name}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `slamon replay ... | head`: the reader left, as Unix tools allow
        # Python would flush stdout again at exit, into the closed pipe, and complain.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, what a shell reports for a tool the pipe stopped


if __name__ == "__main__":
    sys.exit(main())
