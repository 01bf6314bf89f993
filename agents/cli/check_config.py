"""`slamon check-config FILE...`: validate slamon's config files and report every problem.

Four kinds of file, told apart by their content unless `--kind` names one:

- portal tokens (config/portal.yaml): only `customers:`, each a token, `{file: PATH}` or
  a list of those. The token files are not read: they are secrets mounted where the
  worker runs, not part of the config under review.
- settings (config/slamon.yaml): keys of the worker's settings (`broker`, `partitions`,
  ...) and none of a policy file's. The file alone is checked; SLAMON_* variables are not
  applied.
- sources (config/sources.yaml): only `sources:`, the connected service desks; checked
  against the policies the settings name too (`agents.ingest.checks`). Secrets are not read.
- policies (config/policies.yaml): everything else, so a broken policy file is reported
  as one.

Prints `FILE: OK (version 7, 2 calendars, 2 customers)` for a valid policy file (and
`FILE: OK (settings, ...)`, `FILE: OK (portal tokens, ...)` for the other kinds) on
stdout; for an invalid file, every problem (`file:line: path: reason`) on stderr. Exit
status: 0 all valid, 1 some file invalid, 2 some file unreadable.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal

__all__ = ["HELP", "KINDS", "add_arguments", "check_file", "detect_kind", "run"]

HELP = ("check slamon config files (policies, settings, portal tokens, sources); "
        "print every problem")

EXIT_OK, EXIT_INVALID, EXIT_UNREADABLE = 0, 1, 2

Kind = Literal["policies", "settings", "portal-tokens", "sources"]
KINDS: tuple[Kind, ...] = ("policies", "settings", "portal-tokens", "sources")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", metavar="FILE",
                        help="config file(s) (YAML): policies, settings or portal tokens")
    parser.add_argument("--kind", choices=KINDS, default=None,
                        help="check every FILE as this kind (default: told from its content)")


def run(args: argparse.Namespace) -> int:
    return max(check_file(path, args.kind) for path in args.files)


def check_file(path: str, kind: Kind | None = None) -> int:
    """Check one config file, print the verdict, and return its exit status."""
    from agents.yamlfile import read_yaml_file
    from sla.errors import ProblemsError

    try:
        tree = read_yaml_file(path, ProblemsError).tree
        summary = _CHECKS[kind or detect_kind(tree)](path, tree)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        print(f"{path}: cannot read: {reason}", file=sys.stderr)
        return EXIT_UNREADABLE
    except ProblemsError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        print(f"{path}: invalid ({_count(len(exc.problems), 'problem')})", file=sys.stderr)
        return EXIT_INVALID
    print(f"{path}: OK ({summary})")
    return EXIT_OK


def detect_kind(tree: Any) -> Kind:
    """The kind of config a parsed document is, from its top-level keys (see the docstring)."""
    from agents.settings import ENV_VARS
    from sla.policy_spec import TOP_KEYS

    if not isinstance(tree, Mapping) or not tree:
        return "policies"
    keys = set(tree)
    if keys == {"sources"}:
        return "sources"
    customers = tree.get("customers")
    if keys == {"customers"} and isinstance(customers, Mapping) and customers and all(
        isinstance(value, str | list) or _is_file_entry(value) for value in customers.values()
    ):
        return "portal-tokens"
    if keys & set(ENV_VARS) and not keys & set(TOP_KEYS):
        return "settings"
    return "policies"


def _check_policies(path: str, tree: Any) -> str:
    from agents.policyfile import load_policies

    policies = load_policies(path)
    calendars = len(policies.calendars) - 1  # the built-in 24x7 is not the file's
    return (
        f"version {policies.version}, {_count(calendars, 'calendar')}, "
        f"{_count(len(policies.customers), 'customer')}"
    )


def _check_settings(path: str, tree: Any) -> str:
    from agents.settings import load_settings

    load_settings(Path(path), environ={})
    return f"settings, {_count(len(tree) if isinstance(tree, Mapping) else 0, 'key')}"


def _check_portal_tokens(path: str, tree: Any) -> str:
    from agents.portal.tokens import load_tokens

    tokens = load_tokens(Path(path), read_files=False)
    customers = tree["customers"]  # load_tokens checked that it is a mapping
    files = sum(
        1 for value in customers.values()
        for entry in (value if isinstance(value, list) else [value]) if _is_file_entry(entry)
    )
    parts = [f"portal tokens, {_count(len(customers), 'customer')}"]
    if len(tokens):
        parts.append(_count(len(tokens), "inline token"))
    if files:
        parts.append(f"{_count(files, 'token file')} not read")
    return ", ".join(parts)


def _check_sources(path: str, tree: Any) -> str:
    from agents.ingest.checks import check_sources

    return check_sources(path)


def _is_file_entry(value: Any) -> bool:
    return isinstance(value, Mapping) and set(value) == {"file"}


_CHECKS: dict[Kind, Callable[[str, Any], str]] = {
    "policies": _check_policies,
    "settings": _check_settings,
    "portal-tokens": _check_portal_tokens,
    "sources": _check_sources,
}


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"
