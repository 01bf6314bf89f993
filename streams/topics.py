"""The topic catalogue: every topic the monitor reads or writes, named from one prefix.

`events` and `ticks` are co-partitioned (same key space, same partition count):
the clock agent reads both, so a tick for partition p is handled by the worker
that owns the tickets of partition p. Outputs keyed by ticket_id share that
partition count too.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["TopicCatalogue", "OUTPUT_KINDS"]

# record kind -> catalogue attribute of the topic it travels on
OUTPUT_KINDS = {
    "breach": "breaches",
    "warning": "warnings",
    "outcome": "outcomes",
    "compliance": "compliance",
    "rejected": "dlq",
}


@dataclass(frozen=True, slots=True)
class TopicCatalogue:
    prefix: str = "sla."
    partitions: int = 4

    @property
    def events(self) -> str:
        return f"{self.prefix}events"

    @property
    def ticks(self) -> str:
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
        return f"{self.prefix}events.dlq"

    @property
    def outputs(self) -> tuple[str, ...]:
        return (self.breaches, self.warnings, self.outcomes, self.compliance, self.dlq)

    def for_record(self, record: dict) -> str:
        """The topic a record goes to; a retraction travels with what it withdraws."""
        kind = record["kind"]
        if kind == "retraction":
            kind = record["retracts_kind"]
        return getattr(self, OUTPUT_KINDS[kind])
