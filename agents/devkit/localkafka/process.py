"""Running the local broker: format its log dir once, start `kafka.Kafka`, wait, stop, status.

The broker runs in a session of its own, so that it outlives `slamon kafka start`; its pid
file and its command line identify it afterwards.
"""

from __future__ import annotations

import base64
import contextlib
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from agents.devkit.localkafka.config import (
    REPO_ROOT,
    BrokerAlreadyRunning,
    BrokerConfig,
    BrokerStatus,
    LocalKafkaError,
    Say,
    render_properties,
)
from agents.devkit.localkafka.prereqs import ensure_jars, find_java, last_lines
from agents.devkit.localkafka.probe import port_in_use, probe
from agents.devkit.localkafka.secure import prepare, scram_arguments, secure_properties

__all__ = ["instances", "log_tail", "start", "status", "stop"]


def _java_command(cfg: BrokerConfig, java: str, main: str, *args: str) -> list[str]:
    return [
        java, f"-Xmx{cfg.heap}", "-Xms128m", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
        "-XX:+ExitOnOutOfMemoryError", "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={cfg.deploy_dir / 'log4j2.xml'}",
        f"-Dkafka.logs.dir={cfg.log_dir}",
        "-cp", str(cfg.lib_dir / "*"), main, *args,
    ]  # fmt: skip


def _new_cluster_id() -> str:
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()


def _format_storage(cfg: BrokerConfig, java: str, password: str | None) -> None:
    """Format the log dir once; with `password` (secure mode) it holds the SCRAM users."""
    scram_marker = cfg.data_dir / "slamon-scram-users"
    if (cfg.data_dir / "meta.properties").is_file():
        if password is not None and not scram_marker.is_file():
            raise LocalKafkaError(
                f"{cfg.data_dir} was formatted without SCRAM users, so a secure broker on it "
                f"would refuse every client: remove {cfg.state_dir} or choose another --port")
        return
    command = _java_command(
        cfg, java, "kafka.tools.StorageTool", "format", "--ignore-formatted",
        f"--cluster-id={_new_cluster_id()}", "-c", str(cfg.properties_file),  # may begin with -
        *(scram_arguments(password) if password is not None else []),
    )  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        output = last_lines(result.stdout + result.stderr, 30)
        raise LocalKafkaError(f"formatting {cfg.data_dir} failed ({result.returncode}):\n{output}")
    if password is not None:
        scram_marker.write_text("SCRAM-SHA-512 and SCRAM-SHA-256 users added at format time\n")


_children: dict[int, subprocess.Popen[bytes]] = {}  # brokers this process started, to reap them


def _alive(pid: int) -> bool:
    child = _children.get(pid)
    if child is not None:
        return child.poll() is None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError):
        if Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("Z"):
            return False  # a zombie: exited, not yet reaped by its parent
    return True


def _is_this_broker(pid: int, cfg: BrokerConfig) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return not Path("/proc/self").exists() and _alive(pid)  # no procfs: trust the pid
    except OSError:
        return False
    return b"kafka.Kafka" in cmdline and str(cfg.properties_file).encode() in cmdline


def _running_pid(cfg: BrokerConfig) -> int | None:
    try:
        pid = int(cfg.pid_file.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    return pid if _alive(pid) and _is_this_broker(pid, cfg) else None


def status(cfg: BrokerConfig) -> BrokerStatus:
    """Whether the broker of `cfg` runs, by its pid file and the process it names."""
    return BrokerStatus(cfg, _running_pid(cfg))


def instances(home: Path = REPO_ROOT / ".kafka") -> list[BrokerStatus]:
    """Every broker whose state lies under `home` (running or not), by port."""
    found = []
    for pid_file in sorted(home.glob("*/broker.pid")):
        if pid_file.parent.name.isdigit():
            found.append(status(BrokerConfig(port=int(pid_file.parent.name), home=home)))
    return found


def _death_signal_setter() -> Callable[[], None] | None:
    """A function for the child (between fork and exec) that asks Linux for SIGTERM when
    its parent dies; resolved here in the parent, so the child imports nothing."""
    try:
        import ctypes

        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    sigterm = int(signal.SIGTERM)
    return lambda: prctl(1, sigterm)  # 1 = PR_SET_PDEATHSIG


def _launch(cfg: BrokerConfig, java: str, tie_to_parent: bool) -> subprocess.Popen[bytes]:
    cfg.log_dir.mkdir(parents=True, exist_ok=True)
    command = _java_command(cfg, java, "kafka.Kafka", str(cfg.properties_file))
    with open(cfg.log_dir / "console.log", "ab") as console:
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=console, stderr=subprocess.STDOUT,
            cwd=cfg.state_dir, start_new_session=True,
            preexec_fn=_death_signal_setter() if tie_to_parent else None,
        )  # fmt: skip
    _children[process.pid] = process
    cfg.pid_file.write_text(f"{process.pid}\n")
    return process


def start(cfg: BrokerConfig, say: Say = print, tie_to_parent: bool = False) -> BrokerStatus:
    """Start the broker and wait until it answers Kafka requests.

    Raises BrokerAlreadyRunning when it runs already, LocalKafkaError when a port is taken,
    java or the jars are missing, or it does not come up in time (the log tail attached).
    With `tie_to_parent` the broker gets SIGTERM when the calling process dies (Linux).
    """
    running = status(cfg)
    if running.running:
        raise BrokerAlreadyRunning(f"a local Kafka broker is already {running.describe()}")
    for port in cfg.ports:
        if port_in_use(cfg.host, port):
            raise LocalKafkaError(
                f"{cfg.host}:{port} is already in use by another process; choose other ports "
                "(--port, --controller-port) or point SLAMON_BROKER at that broker"
            )
    java = find_java()
    ensure_jars(cfg, say)
    cfg.state_dir.mkdir(parents=True, exist_ok=True)
    password = prepare(cfg, say) if cfg.secure else None
    secure = secure_properties(cfg, password) if password is not None else None
    cfg.properties_file.touch()
    cfg.properties_file.chmod(0o600)  # secure mode writes the PLAIN user's password in it
    cfg.properties_file.write_text(render_properties(cfg, secure))
    _format_storage(cfg, java, password)
    process = _launch(cfg, java, tie_to_parent)
    try:
        _wait_until_ready(cfg, process)
    except BaseException:  # not ready, or interrupted: leave nothing running
        stop(cfg, timeout=10.0)
        raise
    return BrokerStatus(cfg, process.pid)


def _wait_until_ready(cfg: BrokerConfig, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + cfg.start_timeout
    options = None
    if cfg.secure:
        from agents.devkit.localkafka.secure import client_options

        options = client_options(cfg)
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise LocalKafkaError(
                f"the broker exited with status {process.returncode} while starting; "
                f"log tail:\n{log_tail(cfg)}"
            )
        if probe(cfg.bootstrap, options=options):
            return
        time.sleep(0.25)
    raise LocalKafkaError(
        f"the broker did not answer on {cfg.bootstrap} within {cfg.start_timeout:.0f} s; "
        f"log tail:\n{log_tail(cfg)}"
    )


def stop(cfg: BrokerConfig, timeout: float = 30.0) -> int | None:
    """Stop the broker: SIGTERM, wait up to `timeout` s, then SIGKILL. Its pid, or None."""
    pid = _running_pid(cfg)
    if pid is None:
        cfg.pid_file.unlink(missing_ok=True)
        return None
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    if not _wait_exit(pid, timeout):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        _wait_exit(pid, 10.0)
    _children.pop(pid, None)
    cfg.pid_file.unlink(missing_ok=True)
    return pid


def _wait_exit(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while _alive(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)
    return True


def log_tail(cfg: BrokerConfig, lines: int = 40) -> str:
    """The last lines of the broker's console output and Log4j log, for error messages."""
    parts = []
    for path in (cfg.log_dir / "console.log", cfg.log_dir / "server.log"):
        with contextlib.suppress(OSError):
            text = last_lines(path.read_text(errors="replace"), lines)
            if text.strip():
                parts.append(f"--- {path} ---\n{text}")
    return "\n".join(parts) or f"(no log in {cfg.log_dir})"
