"""The topic catalogue: every topic the monitor reads or writes, named from one prefix.

This is the only place that names topics: everything else asks a catalogue
(`Settings.topics` builds the worker's one from its settings). `events` and
`ticks` are co-partitioned (same key space, same partition count): the clock
agent reads both, so a tick for partition p is handled by the worker that owns
the tickets of partition p. Outputs keyed by ticket_id share that partition
count too.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

__all__ = ["TopicCatalogue", "OUTPUT_KINDS", "SHORT_NAMES", "catalogue"]

# record kind -> catalogue attribute of the topic it travels on
OUTPUT_KINDS = {
    "breach": "breaches",
    "warning": "warnings",
    "outcome": "outcomes",
    "survey": "outcomes",  # a satisfaction survey counted for a ticket (sla.surveys)
    "compliance": "compliance",
    "rejected": "dlq",
}

# what a person types (`slamon tail breaches`) -> catalogue attribute; the name after the prefix
SHORT_NAMES = {
    "events": "events",
    "ticks": "ticks",
    "breaches": "breaches",
    "warnings": "warnings",
    "outcomes": "outcomes",
    "compliance": "compliance",
    "compliance.input": "compliance_input",
    "events.dlq": "dlq",
    "policies": "policies",
    "raw": "raw",
    "raw.dlq": "raw_dlq",
}


@dataclass(frozen=True, slots=True)
class TopicCatalogue:
    prefix: str = "sla."
    partitions: int = 4

    @property
    def events(self) -> str:
        """Service events in, keyed by ticket_id."""
        return f"{self.prefix}events"

    @property
    def ticks(self) -> str:
        """Deadline ticks, co-partitioned with `events`; empty values."""
        return f"{self.prefix}ticks"

    @property
    def breaches(self) -> str:
        return f"{self.prefix}breaches"

    @property
    def warnings(self) -> str:
        return f"{self.prefix}warnings"

    @property
    def outcomes(self) -> str:
        return f"{self.prefix}outcomes"

    @property
    def compliance(self) -> str:
        return f"{self.prefix}compliance"

    @property
    def compliance_input(self) -> str:
        """Outcomes re-keyed by their compliance dimensions, for the compliance agent."""
        return f"{self.prefix}compliance.input"

    @property
    def dlq(self) -> str:
        """Rejected input: the original bytes, the reason in headers."""
        return f"{self.prefix}events.dlq"

    @property
    def policies(self) -> str:
        """Every policy version's text, keyed by version (compacted, one partition)."""
        return f"{self.prefix}policies"

    @property
    def raw(self) -> str:
        """Service desk webhooks as received (agents.ingest), keyed by `source|ticket`."""
        return f"{self.prefix}raw"

    @property
    def raw_dlq(self) -> str:
        """Desk payloads the translator could not translate: the bytes, the reason in headers."""
        return f"{self.prefix}raw.dlq"

    @property
    def outputs(self) -> tuple[str, ...]:
        return (self.breaches, self.warnings, self.outcomes, self.compliance, self.dlq)

    def for_record(self, record: dict) -> str:
        """The topic a record goes to; a retraction travels with what it withdraws."""
        kind = record["kind"]
        if kind == "retraction":
            kind = record["retracts_kind"]
        return getattr(self, OUTPUT_KINDS[kind])

    def named(self, name: str) -> str:
        """A topic a person named: a short name (`breaches`, `events.dlq`) gets the prefix;
        anything else is taken as a full topic name, as given."""
        attribute = SHORT_NAMES.get(name)
        return name if attribute is None else str(getattr(self, attribute))


@lru_cache(maxsize=16)
def catalogue(prefix: str, partitions: int) -> TopicCatalogue:
    """The one catalogue for a prefix and partition count (built once, then shared)."""
    return TopicCatalogue(prefix, partitions)
