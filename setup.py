"""Optional compiled engine: with SLAMON_COMPILE=1, mypyc compiles the sla/ modules to C,
and the worker's per-event glue around them (`GLUE`).

pyproject.toml holds the whole project description; this file only adds the extension
modules, and only when asked. Without SLAMON_COMPILE (the default: the dev venv, CI, any
`pip install .`) it calls setup() with nothing more and the wheel stays pure Python, so no
C compiler and no mypy are needed.

With SLAMON_COMPILE=1, `pip install .` / `pip wheel .` / `python -m build --wheel` build a
platform wheel whose sla and glue modules are extension modules (README, "Compiled engine").
mypy, which holds mypyc, is a build requirement only then: setuptools' PEP 517 backend asks
setup.py for extra requirements (`get_requires_for_build_wheel` runs `egg_info` and collects
`setup_requires`), so the isolated build environment gets mypy without pyproject.toml's
static `build-system.requires` naming it for every build.

Editable installs refuse to compile: the .so files would sit next to the sources and take
precedence over them, so edits to sla/ would be silently ignored.
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

from setuptools import setup

HERE = Path(__file__).resolve().parent
COMPILE = os.environ.get("SLAMON_COMPILE", "").strip() not in ("", "0")
MYPY = "mypy>=2.4,<3"  # the compiled build is tested with mypy 2.4 (its mypyc)
# setup.py commands that build code (the PEP 517 backend runs bdist_wheel or editable_wheel);
# the others (egg_info, dist_info, sdist) only describe the project.
BUILDS = {"bdist_wheel", "build", "build_ext", "install", "editable_wheel", "develop"}
EDITABLE = {"editable_wheel", "develop"}
# sla modules left interpreted, with why. Every other module compiles, and the golden and
# unit tests pass against the compiled build (tests/unit/test_packaging.py).
INTERPRETED = {
    # A compiled class cannot be subclassed by interpreted code, and agents/ subclasses
    # these errors (SettingsError, SourcesError, ...); raising them is never hot.
    "sla/errors.py": "subclassed in agents/",
}
# Outside sla/: what the live worker runs for every event and output besides the engine
# (decoding, the batch's bookkeeping, output records, the deadline index, metrics, the
# sender's records, compliance counting). In a worker catching up on a backlog they cost
# about as much CPU as the engine itself; compiled with it, the worker did ~20% more events
# per CPU second (README, Performance). Only modules without Faust classes: a compiled class
# cannot subclass an interpreted one, and Faust inspects the functions it is handed.
GLUE = [
    "agents/deadlines.py",
    "agents/metriccounts.py",
    "agents/metrics.py",
    "agents/batch/sender.py",
    "agents/complianceprocessor.py",
    "agents/processor.py",
    "streams/codec.py",
    "streams/outputs.py",
]


def compiled_sources() -> list[str]:
    """The module files mypyc compiles, relative to this folder, in a stable order."""
    found = sorted(path.relative_to(HERE).as_posix() for path in (HERE / "sla").glob("*.py"))
    return [name for name in found if name not in INTERPRETED] + GLUE


def main() -> None:
    commands = {arg for arg in sys.argv[1:] if not arg.startswith("-")}
    if not COMPILE:
        setup()
        return
    if commands & EDITABLE:
        raise SystemExit("SLAMON_COMPILE=1 is for wheels and non-editable installs: compiled "
                         "modules next to the sources would hide every edit to sla/. Unset "
                         "SLAMON_COMPILE for an editable install (pure Python).")
    if not commands & BUILDS:
        setup(setup_requires=[MYPY])  # the PEP 517 backend adds it to the build requirements
        return
    try:
        from mypyc.build import mypycify
    except ImportError:
        raise SystemExit(f"SLAMON_COMPILE=1 needs mypyc ({MYPY}) in the build environment: "
                         "build with pip's default build isolation, or install it first "
                         "when building with --no-build-isolation") from None
    os.chdir(HERE)  # mypyc names the modules from paths relative to the working directory
    # A fresh build folder each time, not ./build: setuptools copies whatever its build/lib
    # holds into the wheel, so a module compiled by an earlier build (since listed in
    # INTERPRETED, or renamed) would ship beside the new ones and be imported instead.
    scratch = tempfile.mkdtemp(prefix="slamon-mypyc-")
    atexit.register(shutil.rmtree, scratch, ignore_errors=True)
    # mypycify's defaults otherwise, the fast ones by its documentation: one shared library
    # for all modules (separate=False: calls between modules are direct and can be inlined)
    # and one C file (multi_file=False: a slower compile, faster code). Asserts stay
    # (strip_asserts=False): the compiled engine behaves as the interpreted one.
    extensions = mypycify(compiled_sources(), opt_level="3", target_dir=scratch)
    setup(ext_modules=extensions, options={"build": {"build_base": scratch}})


main()
