"""`slamon check-config` on a sources file: the file itself, then its fit with the policies.

Beyond what loading checks (`agents.ingest.sources`), two kinds of problem only show
against the rest of the configuration:

- a priority the mapping sends that the policies do not serve (no target names it): every
  ticket with it would be rejected as `no_target`;
- for desks whose statuses are fixed by the vendor (Zendesk, ServiceNow), a status name
  the vendor does not have (a typo maps nothing) and a vendor status no phase takes (its
  tickets would go to the dead-letter topic as `unknown_status`).

The policies are the worker's: the file the settings name (`policies`, SLAMON_POLICIES), or
`policies` given explicitly. Secrets are not read.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path
from typing import Any

from agents.ingest.fields import normalise, obj
from agents.ingest.mapping import PHASES
from agents.ingest.sources import Source, SourcesError, read_sources

__all__ = ["check_sources", "served_priorities"]


def served_priorities(policies: Any) -> set[str]:
    """Every priority some target of `policies` names."""
    found: set[str] = set()
    for service, customer in itertools.product(("", *policies.services),
                                               ("", *policies.customers)):
        found |= set(policies.terms(service, customer).targets)
    return found


def check_sources(path: str | os.PathLike[str], policies_path: Path | None = None) -> str:
    """Check the sources file at `path`; the summary for `FILE: OK (...)`.

    Raises SourcesError with every problem, OSError if the file cannot be read.
    """
    from agents.yamlfile import read_yaml_file

    document = read_yaml_file(path, SourcesError)
    sources = read_sources(document, {}, read_secrets=False)
    served, note = _policy_priorities(policies_path)
    problems: list[str] = []
    entries = document.tree["sources"]
    for name, source in sources.items():
        entry = entries[name]
        if served is not None:
            problems += _priority_problems(document, name, entry, source, served)
        problems += _status_problems(document, name, entry, source)
    if problems:
        raise SourcesError(problems)
    types = sorted({source.desk.name for source in sources.values()})
    summary = f"sources, {len(sources)} desk{'s' if len(sources) != 1 else ''}"
    if types:
        summary += f": {', '.join(types)}"
    return summary + (f"; {note}" if note else "")


def _policy_priorities(policies_path: Path | None) -> tuple[set[str] | None, str | None]:
    from agents.policyfile import load_policies
    from sla.errors import SlamonError

    if policies_path is None:
        from agents.settings import Settings, load_settings

        try:
            policies_path = load_settings().policies
        except SlamonError:
            policies_path = Settings().policies
    try:
        return served_priorities(load_policies(policies_path)), None
    except (OSError, SlamonError):
        return None, f"priorities not checked: cannot load the policies {policies_path}"


def _priority_problems(document: Any, name: str, entry: dict[str, Any], source: Source,
                       served: set[str]) -> list[str]:
    problems = []
    listed = ", ".join(sorted(served))
    base = ("sources", name)
    given = entry.get("priorities")
    for vendor, ours in source.mapping.priorities.items():
        if ours not in served:
            where = (*base, "priorities", _given_key(given, vendor)) if isinstance(given, dict) \
                else (*base, "type")
            problems.append(f"{document.place(where)}: priority {ours!r} is not served by the "
                            f"policies (their priorities: {listed})")
    default = source.mapping.default_priority
    if default is not None and default not in served:
        where = (*base, "default_priority") if "default_priority" in entry else (*base, "type")
        problems.append(f"{document.place(where)}: default_priority {default!r} is not served "
                        f"by the policies (their priorities: {listed})")
    return problems


def _given_key(given: dict[str, Any], vendor: str) -> str:
    for key in given:
        if normalise(str(key)) == vendor:
            return str(key)
    return vendor


def _status_problems(document: Any, name: str, entry: dict[str, Any], source: Source,
                     ) -> list[str]:
    known = source.desk.known_statuses
    if known is None:
        return []
    problems = []
    base = ("sources", name, "statuses")
    vendor = {normalise(s) for s in known}
    given = obj(entry.get("statuses"))
    for phase in PHASES:
        for index, status in enumerate(given.get(phase) or []):
            if normalise(str(status)) not in vendor:
                problems.append(f"{document.place((*base, phase, index))}: unknown status "
                                f"{status!r}: {source.desk.name} has {', '.join(known)}")
    for status in known:
        if not _mapped(source, status):
            where = base if "statuses" in entry else ("sources", name, "type")
            problems.append(f"{document.place(where)}: {source.desk.name} status {status!r} is "
                            f"in no phase: its tickets would be dead letters (unknown_status)")
    return problems


def _mapped(source: Source, status: str) -> bool:
    """Mapped itself, or through its general form (`on hold: vendor` -> `on hold`)."""
    candidates = [status]
    if ": " in status:
        candidates.append(status.split(": ", 1)[0])
    return any(normalise(c) in source.mapping.phases for c in candidates)
