"""The distribution: `python -m build` makes an sdist and a wheel that ship every module and
data file, and the wheel, installed into a clean virtual environment (not editable), runs
`slamon --version`, `slamon check-config` on the shipped policies and `slamon replay` on
the docs' example.

Building and installing takes a minute or two (pip resolves the dependencies from the index,
from its cache after the first time), so that part runs in CI (CI set) or with
SLAMON_PACKAGING_TEST=1; the quick checks always run.
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
import tomllib
import venv
import zipfile
from pathlib import Path

import pytest

from agents.cli import build_parser, version
from tests.golden.cases import Case, all_cases

REPO_ROOT = Path(__file__).resolve().parents[2]
TOP_LEVEL = ("agents", "sla", "streams")
PYPROJECT = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
VERSION = PYPROJECT["project"]["version"]
AS_OF = "2027-01-01T00:00:00Z"  # as tests/unit/test_docs_examples.py replays the example
RUN_SLOW = bool(os.environ.get("CI") or os.environ.get("SLAMON_PACKAGING_TEST"))
slow = pytest.mark.skipif(not RUN_SLOW, reason="builds and installs the wheel (a minute or "
                          "two): set SLAMON_PACKAGING_TEST=1; CI runs it")
# The default build, whatever the caller's environment says (setup.py, SLAMON_COMPILE).
PURE_ENV = {name: value for name, value in os.environ.items() if name != "SLAMON_COMPILE"}


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


def source_copy(into: Path) -> Path:
    """The working tree's files git would commit (tracked, or new and not ignored), copied.

    A build writes into its source tree (slamon.egg-info): built from a copy, it leaves
    the working tree as it was, and two test runs (.ci/run's Pythons) cannot collide there.
    """
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            cwd=REPO_ROOT, capture_output=True, check=True).stdout
    for name in filter(None, listed.decode().split("\0")):
        source = REPO_ROOT / name
        if source.is_file():  # not a file deleted from the working tree but not from git
            target = into / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return into


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """sdist and wheel of the working tree, by `python -m build` (the wheel from the sdist)."""
    out = tmp_path_factory.mktemp("dist")
    source = source_copy(tmp_path_factory.mktemp("source"))
    result = subprocess.run([sys.executable, "-m", "build", "--outdir", str(out), str(source)],
                            capture_output=True, text=True, check=False, timeout=600,
                            env=PURE_ENV)
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


# --- the compiled engine (SLAMON_COMPILE=1: setup.py, README "Compiled engine") --------------

def _setup_modules(name: str) -> list[str]:
    """The module names of setup.py's list (or dict keys) `name`, read from its text (setup.py
    builds when imported)."""
    tree = ast.parse((REPO_ROOT / "setup.py").read_text(encoding="utf-8"))
    (paths,) = [ast.literal_eval(node.value) for node in tree.body if isinstance(node, ast.Assign)
                and [getattr(t, "id", None) for t in node.targets] == [name]]
    return [path.removesuffix(".py").replace("/", ".") for path in paths]


# The sla modules setup.py leaves interpreted (its INTERPRETED); every other one is compiled,
# and so is the worker's per-event glue outside sla/ (its GLUE).
INTERPRETED = set(_setup_modules("INTERPRETED"))
GLUE = _setup_modules("GLUE")
# Their unit tests, and those of the engine's hand-tuned event paths (decoding, formatting
# times with a cache of days), run against the compiled wheel by the last test below.
GLUE_TESTS = ["test_processor.py", "test_outputs.py", "test_metrics_exposition.py",
              "test_metrics.py", "test_batch_sender.py", "test_compliance_store.py",
              "test_event_fast_path.py", "test_event_times.py"]
# 75-90 s more (mypyc and gcc, then a venv): in CI once, on the image's Python (3.11), not
# again in the 3.12 and 3.13 unit runs; SLAMON_COMPILE_TEST=1 runs it on any Python.
compiling = pytest.mark.skipif(
    not RUN_SLOW or not (sys.version_info[:2] == (3, 11) or os.environ.get("SLAMON_COMPILE_TEST")),
    reason="builds the compiled wheel (75-90 s): with SLAMON_PACKAGING_TEST=1 on Python 3.11 "
           "(the image's), or SLAMON_COMPILE_TEST=1 on any")


@pytest.fixture(scope="module")
def compiled(dist: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The SLAMON_COMPILE=1 wheel built from the sdist, and a clean venv it is installed in."""
    out = tmp_path_factory.mktemp("compiled")
    (sdist,) = dist.glob("*.tar.gz")
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet",
                            "--disable-pip-version-check", "--wheel-dir", str(out), str(sdist)],
                           capture_output=True, text=True, check=False, timeout=900,
                           env={**PURE_ENV, "SLAMON_COMPILE": "1"})
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    (wheel,) = out.glob("*.whl")
    env_dir = tmp_path_factory.mktemp("compiled-venv") / "venv"
    venv.EnvBuilder(with_pip=True, clear=True).create(env_dir)
    result = subprocess.run([str(env_dir / "bin" / "python"), "-m", "pip", "install", "--quiet",
                             "--disable-pip-version-check", str(wheel)],
                            capture_output=True, text=True, check=False, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return wheel, env_dir


@compiling
def test_the_compiled_wheel_holds_extension_modules_for_the_engine(
        compiled: tuple[Path, Path], tmp_path: Path) -> None:
    wheel, env_dir = compiled
    assert wheel.name.startswith(f"slamon-{VERSION}-cp3") and "-none-any" not in wheel.name
    modules = sorted(f"sla.{Path(name).stem}".removesuffix(".__init__") for name in tracked(".py")
                     if name.startswith("sla/") and name.count("/") == 1)
    assert "sla.engine" in modules and "sla" in modules
    modules += GLUE
    where = subprocess.run(
        [str(env_dir / "bin" / "python"), "-c",
         "import importlib, json, sys; print(json.dumps("
         "{name: importlib.import_module(name).__file__ for name in sys.argv[1:]}))", *modules],
        cwd=tmp_path, capture_output=True, text=True, check=True, env={**os.environ,
                                                                      "PYTHONPATH": ""})
    files = json.loads(where.stdout)
    assert all(path.startswith(str(env_dir)) for path in files.values()), files
    interpreted = {name for name, path in files.items() if path.endswith(".py")}
    assert interpreted == INTERPRETED, files
    assert all(path.endswith(".so") for name, path in files.items() if name not in INTERPRETED)


@compiling
@pytest.mark.parametrize("jobs", ["1", "2"])
@pytest.mark.parametrize("case", all_cases(), ids=lambda case: case.name)
def test_the_compiled_engine_replays_each_golden_case_to_its_bytes(
        compiled: tuple[Path, Path], case: Case, jobs: str, tmp_path: Path) -> None:
    """The installed command (not this process): run from the repository root, as the golden
    tests run, since the cases' args name files there; a console script never imports from
    its working directory, and the test above checks where the engine comes from. In one
    process, and split over two (`--jobs`: the compiled shards, merged)."""
    _, env_dir = compiled
    output = tmp_path / "records.jsonl"
    replayed = subprocess.run(
        [str(env_dir / "bin" / "slamon"), "replay", *case.options(), "--events",
         str(case.events), "--output", str(output), "--jobs", jobs],
        cwd=REPO_ROOT, capture_output=True, text=True, check=False, timeout=300,
        env={**os.environ, "PYTHONPATH": ""})
    assert replayed.returncode == 0, replayed.stderr
    assert output.read_bytes() == case.expected.read_bytes()


@compiling
def test_the_compiled_glue_passes_its_unit_tests(compiled: tuple[Path, Path],
                                                tmp_path: Path) -> None:
    """GLUE's tests, in a folder of their own so that the installed (compiled) modules are
    imported, not the sources here; with this process's pytest and hypothesis versions.
    A compiled module checks the types its annotations declare, at run time: a value the
    interpreter lets through would fail here."""
    from importlib.metadata import version as installed_version

    _, env_dir = compiled
    python = str(env_dir / "bin" / "python")
    tools = [f"{name}=={installed_version(name)}"
             for name in ("pytest", "pytest-asyncio", "pytest-timeout", "hypothesis")]
    added = subprocess.run([python, "-m", "pip", "install", "--quiet",
                            "--disable-pip-version-check", *tools],
                           capture_output=True, text=True, check=False, timeout=600)
    assert added.returncode == 0, added.stdout[-3000:] + added.stderr[-3000:]
    unit = tmp_path / "tests" / "unit"
    unit.mkdir(parents=True)
    for name in ("__init__.py", "unit/__init__.py", "unit/enginekit.py",
                 *(f"unit/{test}" for test in GLUE_TESTS)):
        (tmp_path / "tests" / name).write_bytes((REPO_ROOT / "tests" / name).read_bytes())
    (unit / "test_compiled_glue.py").write_text(
        "import importlib\n\n"
        f"def test_the_glue_is_compiled():\n"
        f"    for name in {GLUE!r}:\n"
        "        assert importlib.import_module(name).__file__.endswith('.so'), name\n")
    for name in ("pyproject.toml", "config/policies.yaml"):  # pytest's settings; a fixture's
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_bytes((REPO_ROOT / name).read_bytes())
    ran = subprocess.run([python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/unit"],
                         cwd=tmp_path, capture_output=True, text=True, check=False, timeout=600,
                         env={**os.environ, "PYTHONPATH": ""})
    assert ran.returncode == 0, ran.stdout[-5000:] + ran.stderr[-3000:]
    assert " passed" in ran.stdout and " failed" not in ran.stdout
