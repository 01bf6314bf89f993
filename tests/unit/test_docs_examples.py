"""README.md's "Writing policies" section and docs/examples/ against the real command line.

So that the docs cannot drift from the code:

- the worked example (docs/examples/policies.yaml + events.jsonl) replays to exactly
  docs/examples/expected.jsonl;
- every ```yaml block of the section is a whole policy file that passes
  `slamon check-config`, unless the line before it is a marker:
  `<!-- docs: fragment -->` (part of a file: it must still parse as YAML) or
  `<!-- docs: invalid ... -->` (a file check-config must refuse);
- a block marked `<!-- docs: file PATH -->` is that file as written (minus the
  file's leading comment lines);
- every ```console block is run: each `$ slamon ...` command must print the lines
  shown under it (stdout, then stderr). A shown JSON line may be trimmed: it must
  hold a subset of the real record's fields, with the same values;
- the merge table under "Levels and how they merge" is what the fragment above it
  gives.

config/policies.yaml is checked in test_check_config.py and test_policy.py.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from agents.cli import main
from agents.policyfile import read_tree
from sla.duration import parse_duration
from sla.policy import build_policies

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
EXAMPLES = ROOT / "docs" / "examples"
HEADING = "## Writing policies"
AS_OF = "2027-01-01T00:00:00Z"
REPLAY_ARGS = [
    "replay",
    "--policies",
    "docs/examples/policies.yaml",
    "--events",
    "docs/examples/events.jsonl",
    "--as-of",
    AS_OF,
]
_MARKER = re.compile(r"<!--\s*docs:\s*(.*?)\s*-->")


@dataclass(frozen=True)
class Block:
    """A fenced code block of the section, with its marker and where it is."""

    lang: str
    text: str
    marker: tuple[str, ...]  # the words of a `<!-- docs: ... -->` line before it
    line: int  # of the opening fence, in README.md
    heading: str  # the `###` heading it is under

    @property
    def file(self) -> str | None:
        words = list(self.marker)
        return words[words.index("file") + 1] if "file" in words else None

    def __str__(self) -> str:
        return f"README.md:{self.line} ({self.lang} block under {self.heading!r})"


def section() -> tuple[list[str], int]:
    """The lines of the section (heading to the next `## `) and the line number of its heading."""
    lines = README.read_text(encoding="utf-8").splitlines()
    assert HEADING in lines, f"README.md has no {HEADING!r} heading"
    start = lines.index(HEADING)
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    return lines[start:end], start + 1


def blocks() -> list[Block]:
    lines, first = section()
    found: list[Block] = []
    heading = HEADING
    index = 0
    while index < len(lines):
        line = lines[index]
        if line.startswith("### "):
            heading = line[4:]
        if line.startswith("```") and line != "```":
            close = lines.index("```", index + 1)
            previous = next((lines[i] for i in range(index - 1, -1, -1) if lines[i].strip()), "")
            match = _MARKER.fullmatch(previous.strip())
            marker = tuple(match.group(1).split()) if match else ()
            text = "\n".join(lines[index + 1 : close]) + "\n"
            found.append(Block(line[3:].strip(), text, marker, first + index, heading))
            index = close
        index += 1
    return found


BLOCKS = blocks()
YAML_BLOCKS = [b for b in BLOCKS if b.lang == "yaml"]
CONSOLE_BLOCKS = [b for b in BLOCKS if b.lang == "console"]
FILE_BLOCKS = [b for b in BLOCKS if b.file]


def slamon(args: list[str]) -> subprocess.CompletedProcess[str]:
    """Run the installed `slamon` console script (as a user would) from the repository root."""
    script = Path(sys.executable).with_name("slamon")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "agents.cli"]
    return subprocess.run(
        command + args, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )


def file_as_shown(path: str) -> str:
    """A docs file as the README shows it: without its leading comment and blank lines."""
    lines = (ROOT / path).read_text(encoding="utf-8").splitlines()
    while lines and (not lines[0].strip() or lines[0].startswith("#")):
        lines.pop(0)
    return "\n".join(lines) + "\n"


# -- (a) the worked example ----------------------------------------------------------------


def test_worked_example_replays_to_expected_output() -> None:
    result = slamon(REPLAY_ARGS)
    assert result.returncode == 0, result.stderr
    expected = (EXAMPLES / "expected.jsonl").read_text(encoding="utf-8")
    assert result.stdout == expected, (
        "the replay of docs/examples/ changed; if the change is intended, regenerate with\n"
        f"  slamon {shlex.join(REPLAY_ARGS)} > docs/examples/expected.jsonl\n"
        "and update the worked example in README.md"
    )


def test_readme_shows_the_replay_the_test_runs() -> None:
    commands = [line for b in CONSOLE_BLOCKS for line in b.text.splitlines()]
    assert f"$ slamon {shlex.join(REPLAY_ARGS)}" in commands


# -- (b) the section's YAML ----------------------------------------------------------------


def test_section_has_checked_and_fragment_snippets() -> None:
    # guards the block parser: if it found nothing, the tests below would pass vacuously
    kinds = {b.marker[0] if b.marker else "full" for b in YAML_BLOCKS}
    assert {"full", "fragment", "invalid"} <= kinds
    assert {b.file for b in FILE_BLOCKS} >= {
        "docs/examples/policies.yaml",
        "docs/examples/events.jsonl",
        "docs/examples/broken-policies.yaml",
    }
    assert CONSOLE_BLOCKS


@pytest.mark.parametrize("block", YAML_BLOCKS, ids=str)
def test_yaml_snippet(block: Block, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    if "fragment" in block.marker:
        read_tree(block.text, source=str(block))  # PolicyError if it is not even YAML
        return
    path = tmp_path / "policies.yaml"
    path.write_text(block.text, encoding="utf-8")
    status = main(["check-config", str(path)])
    _, err = capsys.readouterr()
    if "invalid" in block.marker:
        assert status == 1, f"{block} should be refused by check-config"
    else:
        assert status == 0, f"{block} fails check-config:\n{err}"


@pytest.mark.parametrize("block", FILE_BLOCKS, ids=str)
def test_block_is_its_file(block: Block) -> None:
    assert block.file is not None
    assert block.text == file_as_shown(block.file), f"{block} differs from {block.file}"


# -- console blocks: the commands and what they print --------------------------------------


def _matches(shown: str, real: str) -> bool:
    """A shown line matches a real one exactly, or as a trimmed JSON record."""
    if shown == real:
        return True
    if not shown.startswith("{"):
        return False
    try:
        trimmed, record = json.loads(shown), json.loads(real)
    except json.JSONDecodeError:
        return False
    return all(key in record and record[key] == value for key, value in trimmed.items())


def _commands(block: Block) -> list[tuple[list[str], list[str]]]:
    """(argv after `slamon`, shown output lines) per `$ slamon ...` line of a console block."""
    runs: list[tuple[list[str], list[str]]] = []
    for line in block.text.splitlines():
        if line.startswith("$ "):
            argv = shlex.split(line[2:])
            assert argv[0] == "slamon", f"{block}: only slamon commands are run: {line}"
            runs.append((argv[1:], []))
        else:
            assert runs, f"{block}: output before any command"
            runs[-1][1].append(line)
    return runs


@pytest.mark.parametrize("block", CONSOLE_BLOCKS, ids=str)
def test_console_block_shows_real_output(block: Block) -> None:
    for argv, shown in _commands(block):
        result = slamon(argv)
        real = result.stdout.splitlines() + result.stderr.splitlines()
        assert len(shown) == len(real), (
            f"{block}: `slamon {shlex.join(argv)}` prints {len(real)} lines, "
            f"the README shows {len(shown)}:\n" + "\n".join(real)
        )
        for number, (want, got) in enumerate(zip(shown, real, strict=True), 1):
            assert _matches(want, got), (
                f"{block}, output line {number}:\n  shown {want}\n  real  {got}"
            )


# -- the merge table -----------------------------------------------------------------------


def _merge_table(heading: str) -> list[list[str]]:
    """The body rows of the first markdown table under `### heading`."""
    lines, _ = section()
    start = lines.index(f"### {heading}")
    rows = []
    for line in lines[start + 1 :]:
        if line.startswith("### "):
            break
        if line.startswith("|") and not line.startswith("|---"):
            rows.append([cell.strip() for cell in line.strip("|").split("|")])
        elif rows and not line.startswith("|"):
            break
    return rows[1:]  # without the header row


def _target(cell: str) -> int | None:
    first = cell.split()[0]
    return None if first.rstrip(":") == "none" else parse_duration(first)


def test_merge_table_is_what_the_fragment_gives() -> None:
    heading = "Levels and how they merge"
    fragment = next(b for b in YAML_BLOCKS if b.heading == heading)
    tree, _ = read_tree(fragment.text)
    examples, _ = read_tree((EXAMPLES / "policies.yaml").read_text(encoding="utf-8"))
    tree = {"version": 1, "calendars": examples["calendars"], **tree}
    policies = build_policies(tree)
    rows = _merge_table(heading)
    assert len(rows) >= 4
    for pair, calendar, warn_at, response, resolution in rows:
        service, customer = re.findall(r"`([^`]+)`", pair)
        terms = policies.terms(service, customer)
        p1 = terms.targets.get("P1", {})
        assert terms.calendar_name == calendar.split()[0], pair
        assert terms.warn_at == tuple(float(x) for x in warn_at.split("(")[0].split(",")), pair
        assert p1.get("response") == _target(response), pair
        assert p1.get("resolution") == _target(resolution), pair
