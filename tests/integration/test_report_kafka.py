"""`slamon report` reading the compliance and breach topics of the real broker, and its page
in headless Chromium (screenshot: report.png, the one in docs/).

The records are `slamon replay`'s for tests/unit/reportkit.py's month, produced to topics
under a prefix of this test's own; the report read from Kafka must equal the one read from
the file, and the page Chromium renders must show the numbers reportkit works out.
"""

from __future__ import annotations

import functools
import http.server
import re
import shutil
import threading
from collections.abc import Callable, Iterator
from html.parser import HTMLParser
from pathlib import Path

import orjson
import pytest

from agents.cli import main
from tests.integration.browser import Browser, save_screenshot
from tests.integration.monitorkit import produce
from tests.unit import reportkit

pytestmark = pytest.mark.integration


@pytest.fixture
def replayed(tmp_path: Path) -> Path:
    (tmp_path / "p.yaml").write_text(reportkit.POLICIES)
    (tmp_path / "h.jsonl").write_bytes(reportkit.history())
    out = tmp_path / "replay.jsonl"
    assert main(["replay", "--policies", str(tmp_path / "p.yaml"), "--events",
                 str(tmp_path / "h.jsonl"), "--as-of", "2026-12-01T00:00:00Z",
                 "--output", str(out)]) == 0
    return out


@pytest.fixture
def topics(kafka_bootstrap: str, kafka_admin, topic_name: Callable[[str], str],
           replayed: Path) -> Iterator[str]:
    """A topic prefix whose compliance and breaches topics hold the replayed records."""
    from kafka.admin import NewTopic

    prefix = topic_name("report") + "."
    names = [f"{prefix}compliance", f"{prefix}breaches"]
    kafka_admin.create_topics([NewTopic(name, 2, 1) for name in names])
    records = [orjson.loads(line) for line in replayed.read_bytes().splitlines()]
    compliance = [(r["id"].encode(), orjson.dumps(r)) for r in records
                  if r["kind"] == "compliance"]
    breaches = [(r["ticket_id"].encode(), orjson.dumps(r)) for r in records
                if r["kind"] in ("breach", "retraction")]
    assert produce(kafka_bootstrap, names[0], compliance) > 100
    assert produce(kafka_bootstrap, names[1], breaches) > 10
    yield prefix
    kafka_admin.delete_topics(names)


def settings_file(tmp_path: Path, bootstrap: str, prefix: str) -> Path:
    path = tmp_path / "slamon.yaml"
    path.write_text(f"broker: kafka://{bootstrap}\ntopic_prefix: {prefix}\n")
    return path


def test_report_from_the_topics_equals_the_file_and_chromium_shows_its_numbers(
        kafka_bootstrap: str, topics: str, replayed: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    config = settings_file(tmp_path, kafka_bootstrap, topics)
    common = ["report", "--customer", "acme", "--period", "2026-11"]
    assert main([*common, "--config", str(config), "--format", "json"]) == 0
    from_kafka = orjson.loads(capsys.readouterr().out)
    assert main([*common, "--from-file", str(replayed), "--format", "json"]) == 0
    from_file = orjson.loads(capsys.readouterr().out)
    assert from_kafka["source"] == f"topics {topics}compliance, {topics}breaches on " \
                                   f"kafka://{kafka_bootstrap}"
    for data in (from_kafka, from_file):
        del data["source"], data["generated_at"]
    assert from_kafka == from_file

    page = tmp_path / "site" / "report.html"
    page.parent.mkdir()
    assert main([*common, "--config", str(config), "--output", str(page)]) == 0
    seen = _browse(page, tmp_path)
    cells = _Cells(seen)
    assert cells.rows["row:payments:P1:response"] == {
        "met": "16", "breached": "4", "total": "20", "compliance_ratio": "80%",
        "p50": "20m", "p90": "45m", "p99": "45m", "credit": "10%",
        "surveys": "20", "csat_ratio": "80%", "score_mean": "85%", "csat_met_ratio": "100%",
        "csat_breached_ratio": "0%"}  # scores 5 (met), 2 (breached): (16 + 4 x 0.25) / 20
    assert cells.rows["row:email:P2:response"]["compliance_ratio"] == "100%"
    assert cells.rows["row:email:P2:response"]["credit"] == "0%"
    assert cells.cards["total"] == {"compliance_ratio": "86.67%", "met": "52", "total": "60"}
    assert cells.cards["breaches"] == {"breached": "8"}
    assert cells.cards["credit"] == {"credit": "10%"}
    assert cells.cards["csat"] == {"csat_ratio": "93.33%", "positive": "56", "surveys": "60"}
    breached = {row.get("ticket_id") for key, row in cells.rows.items()
                if key.startswith("breach:")}
    assert breached == reportkit.breached_tickets()
    # The payments chart: a point per weekday with its ratio; Wednesdays at 50%.
    section = seen[seen.index('<section data-service="payments"'):]
    points = re.findall(r'data-day="(2026-11-\d\d)" data-series="compliance_ratio" '
                        r'data-value="([\d.]+)"', section[:section.index("</svg>")])
    assert len(points) == 20 and dict(points)["2026-11-11"] == "0.5000"
    assert dict(points)["2026-11-10"] == "0.5000" and dict(points)["2026-11-12"] == "1.0000"
    assert 'aria-labelledby="chart-' in seen


def test_a_topic_that_is_not_there_is_named(kafka_bootstrap: str, tmp_path: Path,
                                            topic_name: Callable[[str], str],
                                            capsys: pytest.CaptureFixture[str]) -> None:
    prefix = topic_name("none") + "."
    config = settings_file(tmp_path, kafka_bootstrap, prefix)
    status = main(["report", "--config", str(config), "--customer", "acme", "--period",
                   "2026-11"])
    assert status == 2 and f"no topic '{prefix}compliance'" in capsys.readouterr().err


def _browse(page: Path, tmp_path: Path) -> str:
    """The page as Chromium built it, served over HTTP; its screenshot saved (report.png)."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=page.parent)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        assert shutil.which("chromium") or Path("/usr/bin/chromium").exists()
        with Browser(width=1100, height=900) as browser:
            seen = browser.visit(f"http://127.0.0.1:{server.server_port}/{page.name}",
                                 screenshot=True)
    finally:
        server.shutdown()
    assert seen.status == 200
    save_screenshot(seen.screenshot, tmp_path, "report.png")
    return seen.html


class _Cells(HTMLParser):
    """data-field texts by data-id: table rows (`rows`) and cards (`cards`)."""

    VOID = frozenset({"meta", "link", "br", "img", "input", "hr", "col", "wbr"})

    def __init__(self, html: str) -> None:
        super().__init__()
        self.rows: dict[str, dict[str, str]] = {}
        self.cards: dict[str, dict[str, str]] = {}
        self._open: list[tuple[str | None, dict[str, str] | None]] = []  # (field, target)
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.VOID:
            return
        found = dict(attrs)
        ident = found.get("data-id")
        target = None
        if ident and tag == "tr":
            target = self.rows.setdefault(ident, {})
        elif ident and tag == "div":
            target = self.cards.setdefault(ident, {})
        self._open.append((found.get("data-field"), target))

    def handle_endtag(self, tag: str) -> None:
        if tag not in self.VOID and self._open:
            self._open.pop()

    def handle_data(self, data: str) -> None:
        field = next((f for f, _ in reversed(self._open) if f), None)
        target = next((t for _, t in reversed(self._open) if t is not None), None)
        if target is not None and field and data.strip():
            target[field] = target.get(field, "") + data.strip()
