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


# -- every kind of config file: settings and portal tokens beside policies ----------------------

CONFIG = sorted((ROOT / "config").glob("*.yaml"))


def test_every_shipped_config_file_passes(capsys: pytest.CaptureFixture[str]) -> None:
    assert CONFIG, "config/ has no YAML files"
    assert main(["check-config", *map(str, CONFIG)]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert [line.split(": OK (")[0] for line in out.splitlines()] == list(map(str, CONFIG))


def test_the_kind_is_told_from_the_content(capsys: pytest.CaptureFixture[str]) -> None:
    paths = [ROOT / "config" / name for name in ("slamon.yaml", "portal.yaml", "policies.yaml")]
    assert main(["check-config", *map(str, paths)]) == 0
    settings, portal, policies = capsys.readouterr().out.splitlines()
    keys = [line for line in paths[0].read_text().splitlines() if line[:1].isalpha()]
    assert settings == f"{paths[0]}: OK (settings, {len(keys)} keys)"
    assert portal == f"{paths[1]}: OK (portal tokens, 2 customers, 3 token files not read)"
    assert policies == f"{paths[2]}: OK (version 7, 2 calendars, 2 customers)"


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_a_bad_settings_file_reports_every_problem(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, "slamon.yaml", "app_id: slamon\npartitions: many\nweb_port: 0\n")
    assert main(["check-config", str(path)]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == [
        f"{path}:2: partitions: 'many' is not an integer",
        f"{path}:3: web_port: 0 is out of range 1..65535",
        f"{path}: invalid (2 problems)",
    ]


def test_settings_are_checked_without_the_environment(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("SLAMON_PARTITIONS", "2")  # would hide the file's bad value at run time
    path = _write(tmp_path, "slamon.yaml", "partitions: many\n")
    assert main(["check-config", str(path)]) == 1
    assert f"{path}:1: partitions: 'many' is not an integer" in capsys.readouterr().err


def test_a_bad_tokens_file_reports_every_problem_without_the_tokens(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    token = "a-good-token-of-24-chars"
    path = _write(tmp_path, "portal.yaml", (
        f"customers:\n  acme: short\n  globex: {token}\n  initech: [{token}]\n"
        "  hooli: {file: not-there.token}\n"))
    assert main(["check-config", str(path)]) == 1
    out, err = capsys.readouterr()
    assert err.splitlines() == [
        f"{path}:2: customers.acme: a token needs at least 16 characters, each a letter, "
        "a digit, '-', '_', '.' or '~'",
        f"{path}: customers globex and initech share a token",
        f"{path}: invalid (2 problems)",
    ]
    assert token not in err and "short" not in err and out == ""


def test_kind_names_the_kind(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    settings = _write(tmp_path, "slamon.yaml", "partitions: 4\nstore: memory://\n")
    assert main(["check-config", "--kind", "policies", str(settings)]) == 1
    known = "expected one of: calendars, corporate, customers, exclusions, metrics, services, "
    assert capsys.readouterr().err.splitlines() == [
        f"{settings}:1: partitions: unknown key ({known}version)",
        f"{settings}:1: missing 'version' (the policy format, e.g. 'version: 1' at the top)",
        f"{settings}:2: store: unknown key ({known}version)",
        f"{settings}: invalid (3 problems)",
    ]


def test_a_policy_file_with_only_customers_is_checked_as_policies(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, "p.yaml", "customers:\n  acme: {calendar: 24x7}\n")
    assert main(["check-config", str(path)]) == 1
    assert f"{path}:1: missing 'version'" in capsys.readouterr().err


def test_yaml_syntax_errors_have_a_line_in_every_kind(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, "slamon.yaml", "partitions: [1\n")
    assert main(["check-config", "--kind", "settings", str(path)]) == 1
    first, summary = capsys.readouterr().err.splitlines()
    assert first.startswith(f"{path}:2: not valid YAML: ")
    assert summary == f"{path}: invalid (1 problem)"
