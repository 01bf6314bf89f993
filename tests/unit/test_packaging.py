"""The distribution: `python -m build` makes an sdist and a wheel that ship every module and
data file, and the wheel, installed into a clean virtual environment (not editable), runs
`slamon --version`, `slamon check-config` on the shipped policies and `slamon replay` on
the docs' example.

Building and installing takes a minute or two (pip resolves the dependencies from the index,
from its cache after the first time), so that part runs in CI (CI set) or with
SLAMON_PACKAGING_TEST=1; the quick checks always run.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
import venv
import zipfile
from pathlib import Path

import pytest

from agents.cli import build_parser, version

REPO_ROOT = Path(__file__).resolve().parents[2]
TOP_LEVEL = ("agents", "sla", "streams")
PYPROJECT = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
VERSION = PYPROJECT["project"]["version"]
AS_OF = "2027-01-01T00:00:00Z"  # as tests/unit/test_docs_examples.py replays the example
RUN_SLOW = bool(os.environ.get("CI") or os.environ.get("SLAMON_PACKAGING_TEST"))
slow = pytest.mark.skipif(not RUN_SLOW, reason="builds and installs the wheel (a minute or "
                          "two): set SLAMON_PACKAGING_TEST=1; CI runs it")


def tracked(*suffixes: str) -> set[str]:
    """Files git tracks under the top-level packages, with one of `suffixes`."""
    listed = subprocess.run(["git", "ls-files", *TOP_LEVEL], cwd=REPO_ROOT, capture_output=True,
                            text=True, check=True).stdout.split()
    return {name for name in listed if name.endswith(suffixes)}


# --- quick ---------------------------------------------------------------------------------------


def test_version_is_the_distributions(capsys: pytest.CaptureFixture[str]) -> None:
    assert version() == VERSION  # .venv has slamon installed (editable) by scripts/setup
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"slamon {VERSION}"


def test_every_python_the_project_claims_is_tested_in_ci() -> None:
    """requires-python's floor and the classifiers name the Pythons .ci/run tests."""
    assert PYPROJECT["project"]["requires-python"] == ">=3.11"
    claimed = {c.rsplit(" :: ", 1)[1] for c in PYPROJECT["project"]["classifiers"]
               if c.startswith("Programming Language :: Python :: 3.")}
    ci = (REPO_ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert claimed == {"3.11", *(v for v in ("3.12", "3.13") if f"run_unit {v}" in ci)}


# --- built and installed -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """sdist and wheel of the working tree, by `python -m build` (the wheel from the sdist)."""
    out = tmp_path_factory.mktemp("dist")
    result = subprocess.run([sys.executable, "-m", "build", "--outdir", str(out), str(REPO_ROOT)],
                            capture_output=True, text=True, check=False, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "is absent from the `packages` configuration" not in result.stdout + result.stderr
    return out


@pytest.fixture(scope="module")
def installed(dist: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A clean virtual environment (no site packages, no editable install) with the wheel."""
    env_dir = tmp_path_factory.mktemp("clean") / "venv"
    venv.EnvBuilder(with_pip=True, clear=True).create(env_dir)
    python = env_dir / "bin" / "python"
    (wheel,) = dist.glob("*.whl")
    result = subprocess.run([str(python), "-m", "pip", "install", "--quiet",
                             "--disable-pip-version-check", str(wheel)],
                            capture_output=True, text=True, check=False, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return env_dir


@slow
def test_build_makes_an_sdist_and_a_wheel_with_every_module(dist: Path) -> None:
    assert sorted(p.name for p in dist.iterdir()) == [f"slamon-{VERSION}-py3-none-any.whl",
                                                      f"slamon-{VERSION}.tar.gz"]
    with zipfile.ZipFile(dist / f"slamon-{VERSION}-py3-none-any.whl") as wheel:
        names = set(wheel.namelist())
        top_level = wheel.read(f"slamon-{VERSION}.dist-info/top_level.txt").decode().split()
        metadata = wheel.read(f"slamon-{VERSION}.dist-info/METADATA").decode()
    data = tracked(".json", ".html", "py.typed")
    assert data >= {"streams/schemas/breach.json", "agents/portal/templates/base.html"}
    missing = (tracked(".py") | data) - names
    assert sorted(missing) == []
    assert sorted(top_level) == sorted(TOP_LEVEL)  # the documented choice (README)
    assert "Requires-Python: >=3.11" in metadata
    assert not [n for n in names if n.startswith(("tests/", "bench/")) or "__pycache__" in n]


@slow
def test_the_installed_wheel_runs_the_commands(installed: Path, tmp_path: Path) -> None:
    """Run from an empty directory, so nothing of the working tree can be imported."""

    def slamon(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(installed / "bin" / "slamon"), *args], cwd=tmp_path,
                              capture_output=True, text=True, check=False, timeout=300,
                              env={**os.environ, "PYTHONPATH": ""})

    where = subprocess.run([str(installed / "bin" / "python"), "-c",
                            "import agents, sla, streams; print(agents.__file__)"],
                           cwd=tmp_path, capture_output=True, text=True, check=True)
    assert where.stdout.startswith(str(installed)), where.stdout
    assert slamon("--version").stdout.strip() == f"slamon {VERSION}"
    checked = slamon("check-config", str(REPO_ROOT / "config" / "policies.yaml"))
    assert checked.returncode == 0, checked.stderr
    assert "OK" in checked.stdout
    examples = REPO_ROOT / "docs" / "examples"
    replayed = slamon("replay", "--policies", str(examples / "policies.yaml"),
                      "--events", str(examples / "events.jsonl"), "--as-of", AS_OF)
    assert replayed.returncode == 0, replayed.stderr
    assert replayed.stdout == (examples / "expected.jsonl").read_text(encoding="utf-8")
