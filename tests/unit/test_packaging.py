"""pyproject.toml ships every package of the tree: the Docker image installs non-editable."""

from __future__ import annotations

import tomllib
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
TOP_LEVEL = ("sla", "streams", "agents")


def test_every_package_is_listed() -> None:
    listed = set(
        tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    found = {
        ".".join(init.parent.relative_to(REPO_ROOT).parts)
        for top in TOP_LEVEL
        for init in (REPO_ROOT / top).rglob("__init__.py")
    }
    assert sorted(found - listed) == []
