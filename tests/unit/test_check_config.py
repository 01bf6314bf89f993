"""`slamon check-config` through the real command line: good/ and bad/ policy folders.

Each bad file lists the exact problems it must produce, one `# expect:` line each,
with `{file}` standing for its path; check-config must print exactly those.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from agents.cli import main

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
GOOD = sorted((HERE / "policies" / "good").glob("*.yaml"))
BAD = sorted((HERE / "policies" / "bad").glob("*.yaml"))


def expected_problems(path: Path) -> list[str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    found = [line.removeprefix("# expect: ") for line in lines if line.startswith("# expect: ")]
    return [problem.replace("{file}", str(path)) for problem in found]


@pytest.mark.parametrize("path", GOOD, ids=[p.name for p in GOOD])
def test_good_files_pass(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-config", str(path)]) == 0
    out, err = capsys.readouterr()
    assert out.startswith(f"{path}: OK (version ")
    assert err == ""


@pytest.mark.parametrize("path", BAD, ids=[p.name for p in BAD])
def test_bad_files_report_every_problem(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    expected = expected_problems(path)
    assert expected, f"{path.name} has no '# expect:' lines"
    assert main(["check-config", str(path)]) == 1
    out, err = capsys.readouterr()
    *problems, summary = err.splitlines()
    assert problems == expected
    noun = "problem" if len(expected) == 1 else "problems"
    assert summary == f"{path}: invalid ({len(expected)} {noun})"
    assert out == ""


def test_shipped_config_passes(capsys: pytest.CaptureFixture[str]) -> None:
    path = ROOT / "config" / "policies.yaml"
    assert main(["check-config", str(path)]) == 0
    assert capsys.readouterr().out == f"{path}: OK (version 7, 2 calendars, 2 customers)\n"


def test_missing_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.yaml"
    assert main(["check-config", str(missing)]) == 2
    assert capsys.readouterr().err == f"{missing}: cannot read: No such file or directory\n"


def test_several_files_worst_status_wins(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-config", str(GOOD[0]), str(BAD[0])]) == 1
    out, err = capsys.readouterr()
    assert "OK" in out and "invalid" in err
