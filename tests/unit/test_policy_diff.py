"""sla.policy_diff: each kind of term, changed in a copy of a known-good file, is listed once
at the place it is written, with old and new values as a person reads them."""

from __future__ import annotations

import pytest

from agents.policyfile import parse_policies
from sla.policy_diff import TermChange, diff_policies

BASE = """\
version: 4
calendars:
  office:
    timezone: Europe/Berlin
    hours: {mon: ["09:00-17:00"], tue: ["09:00-17:00"]}
    holidays: ["2026-12-24"]
exclusions:
  - {name: move, start: "2026-11-14T20:00:00+01:00", end: "2026-11-15T04:00:00+01:00"}
corporate:
  calendar: 24x7
  warn_at: [0.5, 0.9]
  targets:
    P1: {response: 15m, resolution: 4h}
services:
  payments: {targets: {P1: {resolution: 2h}}}
customers:
  acme:
    calendar: office
    credits: [{below: 0.99, credit: 0.05}]
    services:
      payments: {targets: {P1: {response: 5m}}}
"""


def diff(old: str, new: str) -> list[tuple[str, str, str | None, str | None]]:
    changes = diff_policies(parse_policies(old).spec, parse_policies(new).spec)
    return [(c.topic, c.where, c.old, c.new) for c in changes]


def test_the_same_file_has_no_changes():
    assert diff(BASE, BASE) == []


@pytest.mark.parametrize(("edit", "expected"), [
    (("P1: {response: 15m, resolution: 4h}", "P1: {response: 10m, resolution: 4h}"),
     ("targets", "corporate.targets.P1.response", "15m", "10m")),
    (("P1: {resolution: 2h}}}", "P1: {resolution: null}}}"),
     ("targets", "services.payments.targets.P1.resolution", "2h", "null (no target)")),
    (("P1: {response: 5m}}}", "P1: {response: 1h30m}}}"),
     ("targets", "customers.acme.services.payments.targets.P1.response", "5m", "1h30m")),
    (('holidays: ["2026-12-24"]', 'holidays: ["2026-12-24", "2026-12-31"]'),
     ("calendars", "calendars.office.holidays", None, "2026-12-31")),
    (('tue: ["09:00-17:00"]', 'tue: ["08:00-12:00", "13:00-18:00"]'),
     ("calendars", "calendars.office.hours.tue", "09:00-17:00", "08:00-12:00, 13:00-18:00")),
    (("timezone: Europe/Berlin", "timezone: Europe/Paris"),
     ("calendars", "calendars.office.timezone", "Europe/Berlin", "Europe/Paris")),
    (("    calendar: office\n", "    calendar: 24x7\n"),
     ("calendars", "customers.acme.calendar", "office", "24x7")),
    (('end: "2026-11-15T04:00:00+01:00"', 'end: "2026-11-15T06:00:00+01:00"'),
     ("exclusions", "exclusions.move",
      "2026-11-14T19:00:00Z to 2026-11-15T03:00:00Z (every service)",
      "2026-11-14T19:00:00Z to 2026-11-15T05:00:00Z (every service)")),
    (("warn_at: [0.5, 0.9]", "warn_at: [0.75]"),
     ("warnings", "corporate.warn_at", "0.5, 0.9", "0.75")),
    (("credits: [{below: 0.99, credit: 0.05}]",
      "credits: [{below: 0.99, credit: 0.05}, {below: 0.95, credit: 0.1}]"),
     ("credits", "customers.acme.credits", "below 99%: 5%", "below 99%: 5%; below 95%: 10%")),
])
def test_one_changed_term_is_one_change_where_it_is_written(edit, expected):
    old_text, new_text = edit
    assert old_text in BASE
    assert diff(BASE, BASE.replace(old_text, new_text)) == [expected]


def test_levels_and_exclusions_added_and_removed():
    more = BASE + "  globex:\n    warn_at: []\n    pausable: []\n"
    assert diff(BASE, more) == [("warnings", "customers.globex.warn_at", None, "none"),
                                ("pausable", "customers.globex.pausable", None, "none")]
    without = BASE.replace(
        '  - {name: move, start: "2026-11-14T20:00:00+01:00", end: "2026-11-15T04:00:00+01:00"}\n',
        "  []\n").replace("exclusions:\n  []", "exclusions: []")
    changes = diff_policies(parse_policies(BASE).spec, parse_policies(without).spec)
    assert [(c.where, c.change) for c in changes] == [("exclusions.move", "removed")]


def test_a_change_knows_whether_it_adds_removes_or_changes():
    assert TermChange("targets", "x", None, "1h").change == "added"
    assert TermChange("targets", "x", "1h", None).change == "removed"
    assert TermChange("targets", "x", "1h", "2h").change == "changed"
