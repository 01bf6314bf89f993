"""Policies: validation messages (one broken field per case), level merge, Terms."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from agents.policyfile import load_policies, parse_policies, read_tree
from sla.errors import PolicyError
from sla.model import DEFAULT_METRICS, UNIVERSAL_EVENT_TYPES, CreditTier, MetricDef
from sla.policy import Policies, build_policies

ROOT = Path(__file__).resolve().parents[2]
H = 3_600_000

GOOD: dict[str, Any] = {
    "version": 7,
    "calendars": {
        "office-berlin": {
            "timezone": "Europe/Berlin",
            "hours": {
                "mon": ["09:00-12:00", "13:00-17:00"],
                "tue": ["09:00-17:00"],
                "wed": ["09:00-17:00"],
                "thu": ["09:00-17:00"],
                "fri": ["09:00-17:00"],
            },
            "holidays": ["2026-12-24", "2026-12-25"],
        }
    },
    "exclusions": [
        {
            "name": "db-maintenance",
            "start": "2026-12-05T22:00:00Z",
            "end": "2026-12-06T02:00:00Z",
            "services": ["payments"],
        }
    ],
    "corporate": {
        "calendar": "24x7",
        "warn_at": [0.5, 0.75, 0.9],
        "pausable": ["resolution"],
        "targets": {
            "P1": {"response": "15m", "resolution": "4h"},
            "P2": {"response": "1h", "resolution": "8h"},
        },
    },
    "services": {"payments": {"targets": {"P1": {"resolution": "2h"}}}},
    "customers": {
        "acme": {
            "calendar": "office-berlin",
            "targets": {"P2": {"response": "2h"}},
            "credits": [{"below": 0.99, "credit": 0.05}, {"below": 0.95, "credit": 0.10}],
            "services": {"payments": {"targets": {"P1": {"response": "5m"}}}},
        }
    },
}


def build(tree: Any) -> Policies:
    return build_policies(tree, source="policies.yaml")


def broken(path: str, value: Any) -> dict[str, Any]:
    """GOOD with the field at dotted `path` set to `value` (DELETE removes it)."""
    tree = copy.deepcopy(GOOD)
    *parents, last = path.split(".")
    node: Any = tree
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    key: Any = int(last) if isinstance(node, list) else last
    if value is DELETE:
        del node[key]
    else:
        node[key] = value
    return tree


DELETE = object()


def test_good_spec_builds() -> None:
    policies = build(GOOD)
    assert policies.version == 7
    assert policies.customers == ("acme",)
    assert policies.services == ("payments",)
    assert policies.priorities == ("P1", "P2")
    assert set(policies.calendars) == {"24x7", "office-berlin"}


CASES = [
    ("version", DELETE, "policies.yaml: missing 'version' (the policy format, e.g. 'version: 1' "
     "at the top)"),
    ("version", "7", "policies.yaml: version: expected a whole number from 1 up, got '7'"),
    ("version", 0, "policies.yaml: version: expected a whole number from 1 up, got 0"),
    ("calender", {}, "policies.yaml: calender: unknown key (did you mean 'calendars'?)"),
    ("calendars.office-berlin.timezone", "Europe/Berln", "policies.yaml: calendars.office-berlin."
     "timezone: unknown timezone 'Europe/Berln' (did you mean 'Europe/Berlin'?)"),
    ("calendars.office-berlin.timezone", DELETE, "policies.yaml: calendars.office-berlin: "
     "missing 'timezone' (an IANA name such as Europe/Berlin)"),
    ("calendars.office-berlin.hours.mon", ["09:00-12:00", "11:00-13:00"], "policies.yaml: "
     "calendars.office-berlin.hours.mon[1]: '11:00-13:00' overlaps '09:00-12:00'"),
    ("calendars.office-berlin.hours.tue", ["9:00-17:00"], "policies.yaml: calendars.office-berlin"
     ".hours.tue[0]: '9:00' is not a time of day (use hh:mm, e.g. 09:00)"),
    ("calendars.office-berlin.hours.wed", ["17:00-09:00"], "policies.yaml: calendars.office-berlin"
     ".hours.wed[0]: '17:00-09:00' ends at or before its start"),
    ("calendars.office-berlin.hours.thu", "09:00-17:00", "policies.yaml: calendars.office-berlin"
     '.hours.thu: expected a list, e.g. ["09:00-12:00", "13:00-17:00"], got \'09:00-17:00\''),
    ("calendars.office-berlin.hours.fri2", [], "policies.yaml: calendars.office-berlin.hours.fri2:"
     " unknown key (did you mean 'fri'?)"),
    ("calendars.office-berlin.hours", {}, "policies.yaml: calendars.office-berlin: calendar "
     "'office-berlin' has no working hours"),
    ("calendars.office-berlin.holidays", ["2026-12-32"], "policies.yaml: calendars.office-berlin."
     "holidays[0]: '2026-12-32' is not a date (use YYYY-MM-DD)"),
    ("calendars.24x7", {"timezone": "UTC", "hours": {}}, "policies.yaml: calendars.24x7: 24x7 is "
     "built in (UTC, always on); give yours another name"),
    ("exclusions.0.end", "2026-12-05T21:00:00Z", "policies.yaml: exclusions[0].end: "
     "'2026-12-05T21:00:00Z' is not after start '2026-12-05T22:00:00Z'"),
    ("exclusions.0.start", "2026-12-05 22:00", "policies.yaml: exclusions[0].start: "
     "'2026-12-05 22:00' has no UTC offset (add Z or e.g. +01:00)"),
    ("exclusions.0.start", "5 Dec 2026", "policies.yaml: exclusions[0].start: '5 Dec 2026' is "
     "not a time (use RFC 3339, e.g. 2026-12-05T22:00:00Z)"),
    ("exclusions.0.name", DELETE, "policies.yaml: exclusions[0]: missing 'name' (what the window "
     "is for)"),
    ("exclusions.0.services", "payments", "policies.yaml: exclusions[0].services: expected a "
     "list, e.g. [payments], got 'payments'"),
    ("corporate.calendar", "office-berln", "policies.yaml: corporate.calendar: unknown calendar "
     "'office-berln' (did you mean 'office-berlin'?)"),
    ("corporate.warn_at", [0.5, 1.0], "policies.yaml: corporate.warn_at[1]: 1.0 is not a "
     "fraction between 0 and 1 (exclusive)"),
    ("corporate.warn_at", [0.9, 0.5], "policies.yaml: corporate.warn_at[1]: 0.5 does not come "
     "after 0.9: list fractions in ascending order, once"),
    ("corporate.warn_at", 0.5, "policies.yaml: corporate.warn_at: expected a list, e.g. "
     "[0.5, 0.75, 0.9], got 0.5"),
    ("corporate.warn_at", ["half"], "policies.yaml: corporate.warn_at[0]: expected a fraction "
     "such as 0.75, got 'half'"),
    ("corporate.pausable", ["resolutoin"], "policies.yaml: corporate.pausable[0]: unknown metric "
     "'resolutoin' (did you mean 'resolution'?)"),
    ("corporate.targets.P1.response", "2x", "policies.yaml: corporate.targets.P1.response: '2x' "
     "is not a duration (use e.g. 90s, 15m, 1h30m, 3d)"),
    ("corporate.targets.P1.resolutin", "4h", "policies.yaml: corporate.targets.P1.resolutin: "
     "unknown metric 'resolutin' (did you mean 'resolution'?)"),
    ("corporate.targets.P1.uptime", "4h", "policies.yaml: corporate.targets.P1.uptime: unknown "
     "metric 'uptime' (expected one of: resolution, response)"),
    ("corporate.targets.P2", "1h", "policies.yaml: corporate.targets.P2: expected a mapping "
     "(key: value), got '1h'"),
    ("corporate.credits", [], "policies.yaml: corporate.credits: credits are owed to a customer: "
     "set them under customers.<name> or customers.<name>.services.<service>"),
    ("corporate.targts", {}, "policies.yaml: corporate.targts: unknown key (did you mean "
     "'targets'?)"),
    ("services.payments.targets.P1.resolution", "2 hours", "policies.yaml: services.payments."
     "targets.P1.resolution: '2 hours' is not a duration (use e.g. 90s, 15m, 1h30m, 3d)"),
    ("customers.acme.credits.0.below", 1.5, "policies.yaml: customers.acme.credits[0].below: 1.5 "
     "is not a ratio in (0, 1]"),
    ("customers.acme.credits.1.credit", -0.1, "policies.yaml: customers.acme.credits[1].credit: "
     "-0.1 is negative"),
    ("customers.acme.credits.1", {"below": 0.9}, "policies.yaml: customers.acme.credits[1]: "
     "missing 'credit' (the credit owed, e.g. 0.05)"),
    ("customers.acme.services.payments.calendar", "nope", "policies.yaml: customers.acme.services"
     ".payments.calendar: unknown calendar 'nope' (expected one of: 24x7, office-berlin)"),
    ("customers.acme.services.payments.services", {}, "policies.yaml: customers.acme.services."
     "payments.services: unknown key (expected one of: calendar, credits, pausable, targets, "
     "warn_at)"),
    ("metrics", {"next_response": {"start": ["customer_replied"]}}, "policies.yaml: metrics."
     "next_response: missing 'stop' (the event types that stop the clock)"),
    ("metrics", {"resolution": {"on_reopen": "sometimes"}}, "policies.yaml: metrics.resolution."
     "on_reopen: 'sometimes' is not one of: resume, new_cycle"),
    ("metrics", {"Next": {"start": ["a"], "stop": ["b"]}}, "policies.yaml: metrics.Next: a metric "
     "name uses lower-case letters, digits and _"),
    ("metrics", {"x": {"start": [], "stop": ["b"]}}, "policies.yaml: metrics.x.start: name at "
     "least one event type that starts the clock"),
    ("metrics", {"x": {"start": ["a"], "stop": ["a"]}}, "policies.yaml: metrics.x: event type "
     "'a' is in both start and stop"),
]


@pytest.mark.parametrize(("path", "value", "message"), CASES, ids=[c[0] for c in CASES])
def test_one_broken_field_one_message(path: str, value: Any, message: str) -> None:
    with pytest.raises(PolicyError) as caught:
        build(broken(path, value))
    assert caught.value.problems == [message]


def test_every_problem_is_reported_at_once() -> None:
    tree = broken("corporate.targets.P1.response", "2x")
    tree["customers"]["acme"]["calendar"] = "nope"
    tree["version"] = "seven"
    with pytest.raises(PolicyError) as caught:
        build(tree)
    assert len(caught.value.problems) == 3


def test_empty_and_non_mapping_files() -> None:
    with pytest.raises(PolicyError) as caught:
        build(None)
    assert caught.value.problems == [
        "policies.yaml:1: the file is empty; a policy file needs at least 'version'"
    ]
    with pytest.raises(PolicyError) as caught:
        build([1])
    assert caught.value.problems == ["policies.yaml: expected a mapping (key: value), got a list"]


# -- messages carry the line -------------------------------------------------------------------

YAML_TEXT = """\
version: 3
calendars:
  office:
    timezone: Europe/Berlin
    hours: {mon: ["09:00-17:00"]}
    holidays: [2026-12-24, "2026-12-25"]
exclusions:
  - {name: move, start: 2026-11-14T20:00:00+01:00, end: "2026-11-15T04:00:00+01:00"}
customers:
  acme:
    calendar: office
    targets:
      P2: {response: 2x}
"""


def test_problem_messages_carry_the_line() -> None:
    with pytest.raises(PolicyError) as caught:
        parse_policies(YAML_TEXT, source="config/policies.yaml")
    assert caught.value.problems == [
        "config/policies.yaml:13: customers.acme.targets.P2.response: '2x' is not a duration "
        "(use e.g. 90s, 15m, 1h30m, 3d)"
    ]


def test_unquoted_dates_and_times_are_read_as_written() -> None:
    tree, lines = read_tree(YAML_TEXT)
    assert tree["calendars"]["office"]["holidays"][0] == "2026-12-24"
    assert tree["exclusions"][0]["start"] == "2026-11-14T20:00:00+01:00"
    assert lines[("customers", "acme", "targets", "P2", "response")] == 13
    assert lines[("exclusions", 0)] == 8
    policies = parse_policies(YAML_TEXT.replace("2x", "2h"))
    window = policies.spec.exclusions[0]
    assert window.start_ms == int(datetime(2026, 11, 14, 19, tzinfo=UTC).timestamp() * 1000)


def test_yaml_syntax_error_has_file_and_line() -> None:
    with pytest.raises(PolicyError) as caught:
        parse_policies("version: 1\ncorporate:\n  targets: {P1: [\n", source="p.yaml")
    (problem,) = caught.value.problems
    assert problem.startswith("p.yaml:4: not valid YAML: ")


def test_duplicate_key_is_refused_with_its_line() -> None:
    with pytest.raises(PolicyError) as caught:
        parse_policies("version: 1\nversion: 2\n", source="p.yaml")
    (problem,) = caught.value.problems
    assert problem.startswith("p.yaml:2: not valid YAML: ") and "duplicate key" in problem


# -- merging -----------------------------------------------------------------------------------


def test_levels_merge_most_specific_wins() -> None:
    policies = build(GOOD)
    plain = policies.terms("email", "initech")  # corporate only
    assert plain.calendar_name == "24x7"
    assert dict(plain.targets["P1"]) == {"response": 900, "resolution": 4 * 3600}
    assert plain.warn_at == (0.5, 0.75, 0.9)
    assert plain.pausable == frozenset({"resolution"})
    assert plain.credits == ()
    payments = policies.terms("payments", "initech")  # service overrides P1 resolution only
    assert dict(payments.targets["P1"]) == {"response": 900, "resolution": 2 * 3600}
    acme = policies.terms("email", "acme")  # customer: calendar, P2 response, credits
    assert acme.calendar_name == "office-berlin"
    assert dict(acme.targets["P2"]) == {"response": 2 * 3600, "resolution": 8 * 3600}
    assert acme.credits == (CreditTier(0.99, 0.05), CreditTier(0.95, 0.10))
    both = policies.terms("payments", "acme")  # customer+service on top of all three
    assert dict(both.targets["P1"]) == {"response": 300, "resolution": 2 * 3600}
    assert both.calendar_name == "office-berlin"
    assert both.target_ms("P1", "response") == 300_000
    assert both.credit_for(0.96) == 0.05 and both.credit_for(0.90) == 0.10


def test_null_removes_an_inherited_target_and_empty_lists_clear() -> None:
    tree = copy.deepcopy(GOOD)
    tree["services"]["reports"] = {"targets": {"P2": {"resolution": None}}, "warn_at": [],
                                   "pausable": []}
    terms = build(tree).terms("reports", "initech")
    assert dict(terms.targets["P2"]) == {"response": 3600}
    assert terms.warn_at == () and terms.pausable == frozenset()


def test_terms_are_cached_per_pair() -> None:
    policies = build(GOOD)
    assert policies.terms("payments", "acme") is policies.terms("payments", "acme")
    assert policies.terms("a", "b").calendar is policies.terms("c", "d").calendar


def test_exclusions_apply_per_service() -> None:
    policies = build(GOOD)
    start = int(datetime(2026, 12, 5, 21, tzinfo=UTC).timestamp() * 1000)
    # payments has db-maintenance (22:00Z-02:00Z): 21:00Z + 2 h -> 03:00Z; email does not
    assert policies.terms("payments", "x").calendar.instant_after(start, 2 * H) == start + 6 * H
    assert policies.terms("email", "x").calendar.instant_after(start, 2 * H) == start + 2 * H


def test_metrics_default_extend_and_override() -> None:
    assert build(GOOD).metrics == DEFAULT_METRICS
    tree = copy.deepcopy(GOOD)
    tree["metrics"] = {
        "next_response": {"start": ["customer_replied"], "stop": ["agent_replied"],
                          "cycles": "per_start"},
        "resolution": {"pause": ["paused", "waiting_for_customer"]},
    }
    tree["corporate"]["targets"]["P1"]["next_response"] = "30m"
    policies = build(tree)
    assert [m.name for m in policies.metrics] == ["response", "resolution", "next_response"]
    assert policies.metric("next_response") == MetricDef(
        "next_response", frozenset({"customer_replied"}), frozenset({"agent_replied"}),
        cycles="per_start",
    )
    resolution = policies.metric("resolution")
    assert resolution.pause == frozenset({"paused", "waiting_for_customer"})
    assert resolution.reopen == frozenset({"reopened"})  # kept from the default
    assert {"customer_replied", "agent_replied", "waiting_for_customer"} <= policies.event_types
    assert UNIVERSAL_EVENT_TYPES | {"cancelled"} <= policies.event_types
    assert policies.terms("x", "y").target_ms("P1", "next_response") == 30 * 60_000


def test_credits_listing_for_the_portal() -> None:
    policies = build(GOOD)
    assert policies.credits("acme") == (CreditTier(0.99, 0.05), CreditTier(0.95, 0.10))
    assert policies.credits("initech") == ()


def test_shipped_config_is_valid() -> None:
    policies = load_policies(ROOT / "config" / "policies.yaml")
    assert policies.version >= 1
    assert {"acme", "globex"} <= set(policies.customers)
    assert policies.terms("payments", "acme").target_ms("P1", "response") == 5 * 60_000
