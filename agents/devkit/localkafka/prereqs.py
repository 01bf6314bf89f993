"""What the local broker needs before it starts: a Java 17+ runtime and the broker's jars."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

from agents.devkit.localkafka.config import DEPLOY_DIR, BrokerConfig, LocalKafkaError, Say

__all__ = ["MIN_JAVA", "ensure_jars", "find_java", "kafka_version", "last_lines"]

MIN_JAVA = 17


def find_java() -> str:
    """The `java` to run the broker with (JAVA_HOME first, then PATH); it must be Java 17+."""
    java_home = os.environ.get("JAVA_HOME")
    candidate = Path(java_home, "bin", "java") if java_home else None
    java = str(candidate) if candidate and candidate.is_file() else shutil.which("java")
    if java is None:
        raise LocalKafkaError(
            "java not found: the local Kafka broker needs a Java 17+ runtime on PATH "
            "(Debian: apt-get install openjdk-17-jre-headless), or set SLAMON_BROKER to use "
            "an existing broker"
        )
    major = _java_major(java)
    if major is not None and major < MIN_JAVA:
        raise LocalKafkaError(f"{java} is Java {major}; Kafka 4 needs Java {MIN_JAVA} or newer")
    return java


def _java_major(java: str) -> int | None:
    result = subprocess.run([java, "-version"], capture_output=True, text=True, check=False)
    found = re.search(r'version "(\d+)(?:\.(\d+))?', result.stderr + result.stdout)
    if not found:
        return None
    major = int(found.group(1))
    return int(found.group(2) or 0) if major == 1 else major  # "1.8.0" is Java 8


def kafka_version(deploy_dir: Path = DEPLOY_DIR) -> str:
    """The Kafka version the POM in `deploy_dir` pins (property `kafka.version`)."""
    ns = {"m": "http://maven.apache.org/POM/4.0.0"}
    node = ET.parse(deploy_dir / "pom.xml").getroot().find("m:properties/m:kafka.version", ns)
    if node is None or not (node.text or "").strip():
        raise LocalKafkaError(f"{deploy_dir / 'pom.xml'}: no <kafka.version> property")
    return (node.text or "").strip()


def _broker_jar(cfg: BrokerConfig) -> Path:
    return cfg.lib_dir / f"kafka_2.13-{kafka_version(cfg.deploy_dir)}.jar"


def ensure_jars(cfg: BrokerConfig, say: Say = print) -> None:
    """Fetch the broker's jars with Maven unless lib/ already holds the pinned version."""
    if _broker_jar(cfg).is_file():
        return
    mvn = shutil.which("mvn")
    if mvn is None:
        raise LocalKafkaError(
            f"mvn not found: the Kafka jars in {cfg.lib_dir} are fetched with Maven "
            "(Debian: apt-get install maven); or set SLAMON_BROKER to use an existing broker"
        )
    for stale in cfg.lib_dir.glob("*.jar"):  # another version's jars must not mix in
        stale.unlink()
    say(f"fetching Kafka {kafka_version(cfg.deploy_dir)} jars with Maven into {cfg.lib_dir} ...")
    command = [
        mvn,
        "-B",
        "-q",
        "-f",
        str(cfg.deploy_dir / "pom.xml"),
        "dependency:copy-dependencies",
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0 or not _broker_jar(cfg).is_file():
        output = last_lines(result.stdout + result.stderr, 30)
        raise LocalKafkaError(f"`{' '.join(command)}` failed ({result.returncode}):\n{output}")


def last_lines(text: str, count: int) -> str:
    """The last `count` lines of `text`, for error messages."""
    return "\n".join(text.rstrip().splitlines()[-count:])
