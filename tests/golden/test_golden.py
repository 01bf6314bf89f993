"""Golden replay tests: each tests/golden/<case>/ replays to exactly its expected.jsonl.

A behaviour change shows as a line diff here; when it is intended, regenerate with
`.venv/bin/python -m tests.golden.regenerate` and review `git diff tests/golden`
(tests/golden/README.md).
"""

from __future__ import annotations

import difflib

import pytest

from tests.golden.cases import ROOT, Case, all_cases, replay_case

CASES = all_cases()
REGENERATE = ".venv/bin/python -m tests.golden.regenerate"


def test_there_are_cases() -> None:
    assert len(CASES) >= 6, [case.name for case in CASES]


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_replay_matches_the_golden_file(case: Case) -> None:
    assert case.expected.is_file(), f"{case.name} has no expected.jsonl: run {REGENERATE}"
    result = replay_case(case)
    assert result.status == 0, result.stderr
    actual = result.records.decode("utf-8").splitlines()
    expected = case.expected.read_text(encoding="utf-8").splitlines()
    if actual != expected:
        diff = "\n".join(difflib.unified_diff(
            expected, actual, f"{case.name}/expected.jsonl", "slamon replay now", lineterm=""))
        pytest.fail(f"the replay of tests/golden/{case.name} changed:\n{diff}\n"
                    f"if the change is intended: {REGENERATE} {case.name}", pytrace=False)


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_the_case_names_one_policy_file_that_exists(case: Case) -> None:
    options = case.options()
    assert options.count("--policies") == 1, f"{case.name}: --policies given twice"
    own = case.folder / "policies.yaml"
    policies = ROOT / options[options.index("--policies") + 1]
    assert policies.is_file(), f"{case.name}: no policy file {policies}"
    assert policies == own or not own.exists(), (
        f"{case.name}: has policies.yaml but its args name {policies}")
